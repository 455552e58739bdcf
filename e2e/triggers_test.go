package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const hookedPipeline = `name: hooked
steps:
  build:
    command: echo "built"
`

type triggeredRun struct {
	ID      string `json:"run_id"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	Trigger struct {
		Kind   string            `json:"kind"`
		Detail map[string]string `json:"detail"`
	} `json:"trigger"`
}

func listRuns(t *testing.T, s *Server, pipeline string) []triggeredRun {
	t.Helper()
	code, body := s.Do("GET", "/api/v1/pipeline-runs?pipeline="+url.QueryEscape(pipeline), nil)
	var out struct {
		Runs []triggeredRun `json:"runs"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("listing runs: %d %s", code, body)
	}
	return out.Runs
}

// waitFor polls the pipeline's runs until one satisfies ok.
func waitFor(t *testing.T, s *Server, pipeline, what string, ok func(triggeredRun) bool) triggeredRun {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, r := range listRuns(t, s, pipeline) {
			if ok(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run %s after 60s: %+v\n%s", what, listRuns(t, s, pipeline), s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A signed push webhook starts a run that records the commit; a badly
// signed one is refused with 401 and starts nothing; a schedule set from
// the CLI starts runs whose trigger says so, until it is paused.
func TestTriggers(t *testing.T) {
	s := Start(t)
	cli := CLI(t, s)
	proj := writeProject(t, map[string]string{"pipeline.yaml": hookedPipeline})
	s.OK("PUT", "/api/v1/pipelines/hooked", map[string]string{"spec": hookedPipeline, "file": "pipeline.yaml", "project_dir": proj})

	const secret = "e2e-webhook-secret-0123456789"
	code, body := s.Do("PUT", "/api/v1/pipelines/hooked/webhook", map[string]string{"secret": secret})
	if code != http.StatusOK || strings.Contains(string(body), secret) {
		t.Fatalf("setting the webhook secret: %d %s", code, body)
	}

	push := `{"ref":"refs/heads/main","after":"9fceb02d0ae598e95dc970b74767f19372d61af8",` +
		`"repository":{"full_name":"acme/hooked"},"pusher":{"name":"octocat"}}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(push))
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))

	code, body = s.Do("POST", "/api/v1/pipelines/hooked/trigger", push,
		"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
	if code != http.StatusUnauthorized {
		t.Fatalf("badly signed push: %d %s, want 401", code, body)
	}
	code, body = s.Do("POST", "/api/v1/pipelines/hooked/trigger", push, "X-GitHub-Event", "push")
	if code != http.StatusUnauthorized {
		t.Fatalf("unsigned push: %d %s, want 401", code, body)
	}
	if runs := listRuns(t, s, "hooked"); len(runs) != 0 {
		t.Fatalf("refused pushes queued %d runs", len(runs))
	}
	ping := `{"zen":"Design for failure.","hook_id":7}`
	pmac := hmac.New(sha256.New, []byte(secret))
	pmac.Write([]byte(ping))
	if code, body := s.Do("POST", "/api/v1/pipelines/hooked/trigger", ping,
		"X-GitHub-Event", "ping", "X-Hub-Signature-256", "sha256="+hex.EncodeToString(pmac.Sum(nil))); code != http.StatusOK {
		t.Fatalf("ping: %d %s", code, body)
	}

	code, body = s.Do("POST", "/api/v1/pipelines/hooked/trigger", push,
		"X-GitHub-Event", "push", "X-Hub-Signature-256", good, "X-GitHub-Delivery", "d-1")
	if code != http.StatusCreated {
		t.Fatalf("signed push: %d %s", code, body)
	}
	pushed := waitFor(t, s, "hooked", "from the push to end", func(r triggeredRun) bool {
		return r.Trigger.Kind == "webhook" && r.Status != "queued" && r.Status != "running"
	})
	if pushed.Status != "succeeded" || pushed.Trigger.Detail["commit"] != "9fceb02d0ae598e95dc970b74767f19372d61af8" ||
		pushed.Trigger.Detail["repository"] != "acme/hooked" || pushed.Trigger.Detail["provider"] != "github" {
		t.Fatalf("webhook run: %+v", pushed)
	}

	out, _ := cli(0, "schedules", "create", "hooked", "--cron", "@every 1s")
	if !strings.Contains(out, "created schedule ") {
		t.Fatalf("schedules create: %s", out)
	}
	id := strings.TrimSuffix(strings.Fields(out)[2], ":")
	scheduled := waitFor(t, s, "hooked", "from the schedule to succeed", func(r triggeredRun) bool {
		return r.Trigger.Kind == "schedule" && r.Status == "succeeded"
	})
	if scheduled.Trigger.Detail["trigger_id"] != id || scheduled.Trigger.Detail["cron"] != "@every 1s" || scheduled.Trigger.Detail["scheduled_time"] == "" {
		t.Errorf("scheduled run's trigger: %+v (schedule %s)", scheduled.Trigger, id)
	}
	cli(0, "schedules", "pause", id[:8])
	out, _ = cli(0, "schedules", "list", "hooked")
	if !strings.Contains(out, id[:8]) || !strings.Contains(out, "paused") || !strings.Contains(out, "webhook") {
		t.Errorf("schedules list after pausing:\n%s", out)
	}
	out, _ = cli(0, "schedules", "list", "--json")
	var listed struct {
		Schedules []struct {
			ID      string `json:"trigger_id"`
			Kind    string `json:"kind"`
			Enabled bool   `json:"enabled"`
		} `json:"schedules"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Schedules) != 2 {
		t.Fatalf("schedules list --json: %v\n%s", err, out)
	}
	_, errOut := cli(2, "schedules", "create", "hooked", "--cron", "0 3 * *")
	if !strings.Contains(errOut, "cron:") {
		t.Errorf("bad cron: %s", errOut)
	}
	_, errOut = cli(2, "schedules", "create", "hooked", "--cron", "@daily", "--timezone", "Nowhere/Special")
	if !strings.Contains(errOut, "timezone:") {
		t.Errorf("bad timezone: %s", errOut)
	}
	cli(0, "schedules", "delete", id)
	cli(2, "schedules", "delete", id)
}
