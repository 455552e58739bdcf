package server

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is everything `slipway server` can be told. Each setting has one
// name used three ways: --data-dir (flag), SLIPWAY_DATA_DIR (environment),
// data_dir (YAML file). Precedence: flag, then environment, then file, then
// the default.
type Config struct {
	Host           string        `yaml:"host"`
	Port           int           `yaml:"port"`
	DataDir        string        `yaml:"data_dir"`
	DB             string        `yaml:"db"`
	Artifacts      string        `yaml:"artifacts"`
	S3Endpoint     string        `yaml:"s3_endpoint"`
	S3Region       string        `yaml:"s3_region"`
	Auth           bool          `yaml:"auth"`
	InsecureNoAuth bool          `yaml:"insecure_no_auth"`
	MaxBodyBytes   int64         `yaml:"max_body_bytes"`
	LogLevel       string        `yaml:"log_level"`
	LogFormat      string        `yaml:"log_format"`
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`
}

// Defaults returns the zero-setup configuration: loopback only, SQLite and a
// local artifact folder under ./slipway-data.
func Defaults() Config {
	return Config{
		Host:          "127.0.0.1",
		Port:          5000,
		DataDir:       "./slipway-data",
		S3Region:      "us-east-1",
		MaxBodyBytes:  16 << 20,
		LogLevel:      "info",
		LogFormat:     "text",
		ShutdownGrace: 30 * time.Second,
	}
}

// Setting describes one configuration key for flags, env and help text.
type Setting struct {
	Name  string // flag name, e.g. "data-dir"
	Usage string
	set   func(*Config, string) error
	get   func(*Config) string
}

// Env is the environment variable for the setting.
func (s Setting) Env() string {
	return "SLIPWAY_" + strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
}

// Default renders the setting's default value for help text.
func (s Setting) Default() string { c := Defaults(); return s.get(&c) }

func strSetting(name, usage string, field func(*Config) *string) Setting {
	return Setting{Name: name, Usage: usage,
		set: func(c *Config, v string) error { *field(c) = v; return nil },
		get: func(c *Config) string { return *field(c) }}
}

func boolSetting(name, usage string, field func(*Config) *bool) Setting {
	return Setting{Name: name, Usage: usage,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", name, v)
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) }}
}

// Settings lists every key in help order.
var Settings = []Setting{
	strSetting("host", "address to listen on; anything but loopback requires API tokens unless --insecure-no-auth", func(c *Config) *string { return &c.Host }),
	{Name: "port", Usage: "port to listen on",
		set: func(c *Config, v string) error {
			p, err := strconv.Atoi(v)
			if err != nil || p < 0 || p > 65535 {
				return fmt.Errorf("port: %q is not a port number (0-65535)", v)
			}
			c.Port = p
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.Port) }},
	strSetting("data-dir", "folder for the SQLite database and local artifacts", func(c *Config) *string { return &c.DataDir }),
	strSetting("db", "metadata database: a SQLite file path or postgres://user@host/db (default <data-dir>/slipway.db)", func(c *Config) *string { return &c.DB }),
	strSetting("artifacts", "artifact store: a folder or s3://bucket/prefix (default <data-dir>/artifacts)", func(c *Config) *string { return &c.Artifacts }),
	strSetting("s3-endpoint", "S3 endpoint URL for MinIO and other S3-compatible servers", func(c *Config) *string { return &c.S3Endpoint }),
	strSetting("s3-region", "S3 region", func(c *Config) *string { return &c.S3Region }),
	boolSetting("auth", "require API tokens even on loopback", func(c *Config) *bool { return &c.Auth }),
	boolSetting("insecure-no-auth", "serve a non-loopback address without authentication", func(c *Config) *bool { return &c.InsecureNoAuth }),
	{Name: "max-body-bytes", Usage: "largest JSON request body accepted",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1024 {
				return fmt.Errorf("max-body-bytes: %q must be an integer of at least 1024", v)
			}
			c.MaxBodyBytes = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.MaxBodyBytes, 10) }},
	strSetting("log-level", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
	strSetting("log-format", "text or json", func(c *Config) *string { return &c.LogFormat }),
	{Name: "shutdown-grace", Usage: "how long shutdown waits for in-flight requests",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("shutdown-grace: %q is not a duration such as 30s", v)
			}
			c.ShutdownGrace = d
			return nil
		},
		get: func(c *Config) string { return c.ShutdownGrace.String() }},
}

// LoadConfig builds a Config from defaults, an optional YAML file, the
// environment and flags. flags holds only the flags the user actually set.
func LoadConfig(file string, env func(string) string, flags map[string]string) (Config, error) {
	c := Defaults()
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
			return c, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	for _, s := range Settings {
		if v := env(s.Env()); v != "" {
			if err := s.set(&c, v); err != nil {
				return c, fmt.Errorf("%s: %w", s.Env(), err)
			}
		}
	}
	for _, s := range Settings {
		if v, ok := flags[s.Name]; ok {
			if err := s.set(&c, v); err != nil {
				return c, fmt.Errorf("--%w", err)
			}
		}
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level: %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format: %q must be text or json", c.LogFormat)
	}
	if c.DataDir == "" && (c.DB == "" || c.Artifacts == "") {
		return fmt.Errorf("data-dir: must be set unless both db and artifacts are")
	}
	return nil
}

// DBLocation is the database the server opens.
func (c *Config) DBLocation() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.DataDir, "slipway.db")
}

// ArtifactLocation is the artifact store the server opens.
func (c *Config) ArtifactLocation() string {
	if c.Artifacts != "" {
		return c.Artifacts
	}
	return filepath.Join(c.DataDir, "artifacts")
}

// Loopback reports whether Host only accepts local connections.
func (c *Config) Loopback() bool {
	if c.Host == "localhost" {
		return true
	}
	ip := net.ParseIP(c.Host)
	return ip != nil && ip.IsLoopback()
}

// RequireAuth reports whether requests need an API token.
func (c *Config) RequireAuth() bool {
	return c.Auth || (!c.Loopback() && !c.InsecureNoAuth)
}
