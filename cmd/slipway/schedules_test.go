package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/server"
)

func startPipelineServer(t *testing.T) (string, *server.App) {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	app, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{
		Tracking: app.Tracking, Artifacts: app.Artifacts, Datasets: app.Datasets, Pipelines: app.Pipelines, Triggers: app.Triggers,
		MaxBodyBytes: 16 << 20, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return srv.URL, app
}

func TestSchedulesCommands(t *testing.T) {
	clearEnv(t)
	url, app := startPipelineServer(t)
	t.Setenv("SLIPWAY_URL", url)
	project := t.TempDir()
	spec := "name: nightly\nparams:\n  rows: 3\nsteps:\n  go:\n    command: echo ${params.rows}\n"
	if err := os.WriteFile(filepath.Join(project, "pipeline.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Pipelines.PutPipeline(context.Background(), "nightly", "pipeline.yaml", []byte(spec), project, ""); err != nil {
		t.Fatal(err)
	}

	out := run(t, "schedules", "create", "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "-p", "rows=5").ok(t).stdout
	if !strings.Contains(out, "created schedule ") || !strings.Contains(out, "nightly runs at 0 3 * * * Europe/Paris; next run ") {
		t.Fatalf("create: %s", out)
	}
	id := strings.TrimSuffix(strings.Fields(out)[2], ":")
	run(t, "schedules", "create", "nightly").fails(t, 2, "--cron")
	run(t, "schedules", "create", "nightly", "--cron", "@daily", "--on-data", "x").fails(t, 2, "one of the two")
	run(t, "schedules", "create", "nightly", "--cron", "@daily", "-p", "rows=lots").fails(t, 2, "params:")
	run(t, "schedules", "create", "nightly", "--cron", "@every 1ms").fails(t, 2, "at least 1s")
	run(t, "schedules", "create", "nightly", "--on-data", "absent").fails(t, 2, `dataset: "absent" does not exist`)
	run(t, "schedules", "create", "ghost", "--cron", "@daily").fails(t, 2, `"ghost"`)

	out = run(t, "schedules", "list").ok(t).stdout
	if !strings.Contains(out, id[:8]+"  nightly   schedule  0 3 * * * Europe/Paris  active") {
		t.Errorf("list:\n%s", out)
	}
	run(t, "schedules", "pause", id[:8]).ok(t)
	if s, err := mustClient(t, url).GetSchedule(context.Background(), id); err != nil || s.Enabled || s.Params["rows"] != "5" {
		t.Errorf("after pause: %+v %v", s, err)
	}
	out = run(t, "schedules", "resume", id).ok(t).stdout
	if !strings.Contains(out, "resumed schedule "+id) || !strings.Contains(out, "next run") {
		t.Errorf("resume: %s", out)
	}
	run(t, "schedules", "list", "ghost").fails(t, 2, `"ghost"`)
	run(t, "schedules", "delete", id).ok(t)
	run(t, "schedules", "delete", id).fails(t, 2, "does not exist")
	if out := run(t, "schedules", "list", "--json").ok(t).stdout; strings.TrimSpace(out) != "{\n  \"schedules\": []\n}" {
		t.Errorf("list --json with none: %q", out)
	}
}

// The webhook secret is read from the environment, never from argv, and
// never printed.
func TestPipelineWebhookCommand(t *testing.T) {
	clearEnv(t)
	url, app := startPipelineServer(t)
	if _, err := app.Pipelines.PutPipeline(context.Background(), "nightly", "pipeline.yaml", []byte("name: nightly\nsteps:\n  go:\n    command: true\n"), t.TempDir(), ""); err != nil {
		t.Fatal(err)
	}
	webhook := func(args ...string) result {
		t.Helper()
		cmd := newPipelineWebhookCmd()
		urlFlag(cmd.Flags())
		var out, errb bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		cmd.SetArgs(append(args, "--url", url))
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.ExecuteContext(context.Background())
		r := result{stdout: out.String(), stderr: errb.String(), err: err}
		if err != nil {
			r.code = exitCode(err)
		}
		return r
	}
	const secret = "the-secret-of-the-webhook"
	webhook("nightly").fails(t, 2, "--secret-env VAR is required")
	webhook("nightly", "--secret-env", "HOOK_UNSET_FOR_TEST").fails(t, 2, "not set or empty")
	t.Setenv("HOOK_SECRET", "short")
	webhook("nightly", "--secret-env", "HOOK_SECRET").fails(t, 2, "shorter than 16")
	t.Setenv("HOOK_SECRET", secret)
	webhook("nightly", "--secret-env", "HOOK_SECRET", "--branch", "[").fails(t, 2, "branch:")
	r := webhook("nightly", "--secret-env", "HOOK_SECRET", "--branch", "main").ok(t)
	if !strings.Contains(r.stdout, url+"/api/v1/pipelines/nightly/trigger") || strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatalf("webhook output: %s", r.stdout)
	}
	if got, _ := app.Pipelines.WebhookSecret(context.Background(), "nightly"); got != secret {
		t.Fatalf("the server holds secret %q", got)
	}
	webhook("nightly", "--remove").ok(t)
	if got, _ := app.Pipelines.WebhookSecret(context.Background(), "nightly"); got != "" {
		t.Fatalf("after --remove the server holds a secret")
	}
}

func mustClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
