package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
)

// With tokens required, the push webhook route takes no token (GitHub
// cannot send one) and is authenticated by its signature instead: a bad
// or missing signature is a 401 that queues nothing, a good one queues a
// run. Every other pipeline route still needs a token.
func TestWebhookBypassesTokensButNotSignatures(t *testing.T) {
	ctx := context.Background()
	srv, pipelines, secrets := pipelineServer(t, map[string]string{"ed": auth.RoleEditor})
	edToken := secrets["ed"]
	if _, err := pipelines.PutPipeline(ctx, "p", "pipeline.yaml", []byte("name: p\nsteps:\n  a:\n    command: true\n"), t.TempDir(), "ada"); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	const secret = "a-long-webhook-secret"
	const push = `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"acme/p"},"pusher":{"name":"octocat"}}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(push))
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	bearer := "Bearer " + edToken

	// Setting the secret needs a token, and the answer never holds it.
	if code, body := call("PUT", "/api/v1/pipelines/p/webhook", `{"secret":"`+secret+`"}`); code != http.StatusUnauthorized {
		t.Fatalf("setting a secret without a token: %d %s", code, body)
	}
	code, body := call("PUT", "/api/v1/pipelines/p/webhook", `{"secret":"`+secret+`"}`, "Authorization", bearer)
	if code != http.StatusOK || strings.Contains(body, secret) || !strings.Contains(body, `"has_secret":true`) {
		t.Fatalf("setting a secret: %d %s", code, body)
	}

	for _, c := range []struct {
		name   string
		header []string
	}{
		{"no signature", []string{"X-GitHub-Event", "push"}},
		{"bad signature", []string{"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256=" + strings.Repeat("0", 64)}},
		{"a token is no signature", []string{"X-GitHub-Event", "push", "Authorization", bearer}},
	} {
		code, body := call("POST", "/api/v1/pipelines/p/trigger", push, c.header...)
		if code != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
			t.Errorf("%s: %d %s, want 401", c.name, code, body)
		}
	}
	if list, _, _ := pipelines.ListRuns(ctx, runs.ListRunsRequest{}); len(list) != 0 {
		t.Fatalf("refused webhooks queued %d runs", len(list))
	}
	code, body = call("POST", "/api/v1/pipelines/p/trigger", push, "X-GitHub-Event", "push", "X-Hub-Signature-256", good)
	var res struct {
		Run runs.Run `json:"run"`
	}
	json.Unmarshal([]byte(body), &res)
	if code != http.StatusCreated || res.Run.Trigger.Kind != runs.TriggerWebhook || res.Run.Trigger.Detail["commit"] != "0123456789abcdef0123456789abcdef01234567" {
		t.Fatalf("signed push: %d %s", code, body)
	}

	// Only that route skips tokens: its neighbours, and the same path with
	// another method or an extra segment, still need one.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/pipelines/p/trigger"},
		{"POST", "/api/v1/pipelines/p/runs"},
		{"POST", "/api/v1/pipelines/p/trigger/x"},
		{"POST", "/api/v1/pipelines/p/schedules"},
		{"GET", "/api/v1/schedules"},
	} {
		if code, body := call(c.method, c.path, `{}`); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d %s, want 401", c.method, c.path, code, body)
		}
	}
	// With a token, schedules work as any other route.
	code, body = call("POST", "/api/v1/pipelines/p/schedules", `{"cron":"0 3 * * *","timezone":"Europe/Paris"}`, "Authorization", bearer)
	if code != http.StatusCreated || !strings.Contains(body, `"created_by":"ed"`) {
		t.Fatalf("creating a schedule: %d %s", code, body)
	}
	code, body = call("POST", "/api/v1/pipelines/p/schedules", `{"cron":"0 3 * *"}`, "Authorization", bearer)
	if code != http.StatusBadRequest || !strings.Contains(body, "cron:") {
		t.Fatalf("bad cron: %d %s", code, body)
	}
}
