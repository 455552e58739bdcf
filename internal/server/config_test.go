package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "slipway.yaml")
	os.WriteFile(file, []byte("port: 6000\nhost: 0.0.0.0\ndata_dir: /from/file\nshutdown_grace: 5s\n"), 0o644)
	env := map[string]string{"SLIPWAY_PORT": "7000", "SLIPWAY_LOG_FORMAT": "json"}
	cfg, err := LoadConfig(file, func(k string) string { return env[k] }, map[string]string{"port": "8000"})
	if err != nil {
		t.Fatal(err)
	}
	// flag beats env beats file beats default
	if cfg.Port != 8000 || cfg.LogFormat != "json" || cfg.Host != "0.0.0.0" || cfg.DataDir != "/from/file" || cfg.LogLevel != "info" {
		t.Fatalf("config = %+v", cfg)
	}
	if cfg.ShutdownGrace != 5*time.Second {
		t.Fatalf("shutdown_grace = %v", cfg.ShutdownGrace)
	}
	if !cfg.RequireAuth() {
		t.Fatal("0.0.0.0 without insecure-no-auth must require auth")
	}
	if cfg.DBLocation() != "/from/file/slipway.db" || cfg.ArtifactLocation() != "/from/file/artifacts" {
		t.Fatalf("locations: %s %s", cfg.DBLocation(), cfg.ArtifactLocation())
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("port: 1\nprot: 2\n"), 0o644)
	none := func(string) string { return "" }
	for _, c := range []struct {
		name  string
		file  string
		env   map[string]string
		flags map[string]string
		want  string
	}{
		{"unknown yaml key", unknown, nil, nil, "field prot not found"},
		{"bad port flag", "", nil, map[string]string{"port": "http"}, "--port"},
		{"bad port env", "", map[string]string{"SLIPWAY_PORT": "99999"}, nil, "SLIPWAY_PORT"},
		{"bad bool", "", map[string]string{"SLIPWAY_INSECURE_NO_AUTH": "maybe"}, nil, "insecure-no-auth"},
		{"bad level", "", nil, map[string]string{"log-level": "loud"}, "log-level"},
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, nil, "config file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := none
			if c.env != nil {
				env = func(k string) string { return c.env[k] }
			}
			_, err := LoadConfig(c.file, env, c.flags)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestLoopbackDefaults(t *testing.T) {
	for host, loop := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "0.0.0.0": false, "10.1.2.3": false, "": false} {
		c := Defaults()
		c.Host = host
		if c.Loopback() != loop || c.RequireAuth() == loop {
			t.Errorf("host %q: loopback=%v requireAuth=%v", host, c.Loopback(), c.RequireAuth())
		}
	}
	c := Defaults()
	c.Host, c.InsecureNoAuth = "0.0.0.0", true
	if c.RequireAuth() {
		t.Error("--insecure-no-auth must lift the auth requirement")
	}
}
