package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/server"
)

// startServer runs the real server in process on a temp dir.
func startServer(t *testing.T, requireAuth bool) (string, *server.App) {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	app, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{
		Tracking: app.Tracking, Artifacts: app.Artifacts, Auth: app.Auth, RequireAuth: requireAuth,
		MaxBodyBytes: 16 << 20, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return srv.URL, app
}

// clearEnv keeps the developer's own server settings out of the tests.
func clearEnv(t *testing.T) {
	for _, v := range []string{"SLIPWAY_URL", "MLFLOW_TRACKING_URI", "SLIPWAY_TOKEN", "MLFLOW_TRACKING_TOKEN",
		"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "COLUMNS"} {
		t.Setenv(v, "")
	}
}

type result struct {
	stdout, stderr string
	err            error
	code           int
}

// run executes the CLI as main does, returning what it printed and the
// exit code main would use.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	r := result{stdout: out.String(), stderr: errb.String(), err: err}
	if err != nil {
		r.code = exitCode(err)
	}
	return r
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed (exit %d): %s\nstdout:\n%s", r.code, errs.Message(r.err), r.stdout)
	}
	return r
}

// fails checks the exit code and that the one-line message contains want.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("command succeeded, want exit %d\nstdout:\n%s", code, r.stdout)
	}
	if msg := errs.Message(r.err); r.code != code || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Fatalf("exit %d, message %q; want exit %d and a one-line message containing %q", r.code, msg, code, want)
	}
}

func TestExperimentsCommands(t *testing.T) {
	clearEnv(t)
	url, _ := startServer(t, false)

	r := run(t, "experiments", "create", "churn", "--tag", "team=risk", "--tag", "owner=ana", "--url", url).ok(t)
	if r.stdout != "1\n" {
		t.Fatalf("create printed %q, want the id", r.stdout)
	}
	run(t, "experiments", "create", "fraud", "--url", url).ok(t)
	run(t, "experiments", "create", "churn", "--url", url).fails(t, 2, "already exists")
	run(t, "experiments", "create", "x", "--tag", "novalue", "--url", url).fails(t, 2, "KEY=VALUE")

	// The environment finds the server when --url is not given.
	t.Setenv("SLIPWAY_URL", url)
	r = run(t, "experiments", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^ID\s+NAME\s+CREATED\s+UPDATED\s+TAGS$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`^1\s+churn\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+owner=ana,team=risk$`).MatchString(lines[2]) {
		t.Fatalf("churn row = %q", lines[2])
	}
	// An empty last cell leaves no padding behind.
	if !regexp.MustCompile(`^2\s+fraud\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d$`).MatchString(lines[1]) {
		t.Fatalf("fraud row = %q", lines[1])
	}

	r = run(t, "experiments", "list", "--filter", "name LIKE 'ch%'", "--json").ok(t)
	var listed struct {
		Experiments []client.Experiment `json:"experiments"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r.stdout)
	}
	if len(listed.Experiments) != 1 || listed.Experiments[0].Name != "churn" || len(listed.Experiments[0].Tags) != 2 {
		t.Fatalf("--json = %+v", listed)
	}
	r = run(t, "experiments", "list", "--max", "2").ok(t)
	if n := strings.Count(r.stdout, "\n"); n != 3 || !strings.Contains(r.stderr, "than --max 2 shows") {
		t.Fatalf("--max 2: %d lines, stderr %q", n, r.stderr)
	}

	r = run(t, "experiments", "delete", "churn").ok(t)
	if r.stdout != "deleted experiment 1 (churn)\n" {
		t.Fatalf("delete printed %q", r.stdout)
	}
	run(t, "experiments", "delete", "2").ok(t)
	r = run(t, "experiments", "list", "--view", "deleted").ok(t)
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+STAGE`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^1\s+churn\s+deleted`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "fraud") {
		t.Fatalf("deleted list:\n%s", r.stdout)
	}
	r = run(t, "experiments", "list", "--json").ok(t)
	if !strings.Contains(r.stdout, `"name": "Default"`) || strings.Contains(r.stdout, "churn") {
		t.Fatalf("active list after delete:\n%s", r.stdout)
	}
	run(t, "experiments", "delete", "nope").fails(t, 2, `no experiment with id or name "nope"`)
	run(t, "experiments", "list", "--view", "gone").fails(t, 2, "--view")
	run(t, "experiments", "lst").fails(t, 2, `unknown command "lst" for "slipway experiments"; did you mean "list"?`)
	if r := run(t, "experiments").ok(t); !strings.Contains(r.stdout, "Available Commands:") {
		t.Fatalf("bare group printed %q", r.stdout)
	}
	run(t, "experiments", "list", "--filter", "name ~ 'x'").fails(t, 2, "")
}

func TestClientErrors(t *testing.T) {
	clearEnv(t)

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	run(t, "runs", "list", "--url", dead).fails(t, 1, "cannot connect to a Slipway server at "+dead+" (connection refused; URL from --url)")
	t.Setenv("MLFLOW_TRACKING_URI", dead)
	r := run(t, "experiments", "list")
	r.fails(t, 1, "URL from MLFLOW_TRACKING_URI")
	if msg := errs.Message(r.err); !strings.Contains(msg, "SLIPWAY_URL") || !strings.Contains(msg, "slipway server") {
		t.Fatalf("message does not say how to fix it: %s", msg)
	}

	t.Setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")
	run(t, "experiments", "list").fails(t, 2, `MLFLOW_TRACKING_URI "file:///tmp/mlruns" is a local path`)
	run(t, "experiments", "list", "--url", "databricks").fails(t, 2, "--url: server URL \"databricks\" is a Databricks URI")
	t.Setenv("MLFLOW_TRACKING_URI", "")

	url, app := startServer(t, true)
	run(t, "experiments", "list", "--url", url).fails(t, 3, "authentication required")
	_, secret, err := app.Auth.Create(context.Background(), "cli", "", "editor")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TRACKING_TOKEN", secret)
	run(t, "experiments", "list", "--url", url).ok(t)
	t.Setenv("MLFLOW_TRACKING_TOKEN", "")
	t.Setenv("SLIPWAY_TOKEN", "swt_wrong")
	run(t, "experiments", "list", "--url", url).fails(t, 3, "invalid or revoked API token")
}
