package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// A user starts the server and logs a run with the MLflow API; the run and
// an artifact come back, and a graceful stop leaves a server that restarts
// with everything in place.
func TestServerSmoke(t *testing.T) {
	s := Start(t)
	exp := s.OK("POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": "smoke"})["experiment_id"].(string)
	run := s.OK("POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp})["run"].(map[string]any)
	id := run["info"].(map[string]any)["run_id"].(string)
	s.OK("POST", "/api/2.0/mlflow/runs/log-batch", map[string]any{"run_id": id,
		"metrics": []map[string]any{{"key": "loss", "value": 0.25, "timestamp": 1, "step": 3}}})
	if code, body := s.Do("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+exp+"/"+id+"/artifacts/model.json", `{"trees":[]}`); code != http.StatusOK {
		t.Fatalf("artifact upload: %d %s", code, body)
	}
	s.Stop()

	s = StartIn(t, s.DataDir)
	got := s.OK("GET", "/api/2.0/mlflow/runs/get?run_id="+id, nil)["run"].(map[string]any)
	m := got["data"].(map[string]any)["metrics"].([]any)[0].(map[string]any)
	if m["value"].(float64) != 0.25 || m["step"].(float64) != 3 {
		t.Fatalf("metric after restart = %v", m)
	}
	code, body := s.Do("GET", "/api/2.0/mlflow-artifacts/artifacts/"+exp+"/"+id+"/artifacts/model.json", nil)
	if code != http.StatusOK || string(body) != `{"trees":[]}` {
		t.Fatalf("artifact after restart: %d %q", code, body)
	}
	if code, body := s.Do("GET", "/readyz", nil); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	_, metrics := s.Do("GET", "/metrics", nil)
	if !strings.Contains(string(metrics), `slipway_http_requests_total{code="200",method="GET",route="/api/2.0/mlflow/runs/get"}`) {
		t.Fatalf("/metrics does not count requests by route:\n%.2000s", metrics)
	}
}

// Binding a non-loopback address without tokens is refused unless the user
// opts out; with a token, Bearer and basic auth both work.
func TestAuthRequiredOffLoopback(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := Cmd(t, nil, "tokens", "create", "ci-bot", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("tokens create: %d %s", code, errOut)
	}
	var secret string
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(line, "secret (shown once): "); ok {
			secret = s
		}
	}
	if !strings.HasPrefix(secret, "slw_") {
		t.Fatalf("no secret in output:\n%s", out)
	}
	s := StartIn(t, dir, "--auth")
	if code, _ := s.Do("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", code)
	}
	if code, _ := s.Do("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", nil, "Authorization", "Bearer slw_wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: status %d, want 401", code)
	}
	if code, body := s.Do("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", nil, "Authorization", "Bearer "+secret); code != http.StatusOK {
		t.Fatalf("bearer token: status %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", s.URL+"/api/2.0/mlflow/experiments/get?experiment_id=0", nil)
	req.SetBasicAuth("ci-bot", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("basic auth: status %d", resp.StatusCode)
	}
	if code, _ := s.Do("GET", "/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz must not need a token: %d", code)
	}
	s.Stop()
	if _, errOut, code := Cmd(t, nil, "tokens", "revoke", "ci-bot", "--data-dir", dir); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	s = StartIn(t, dir, "--host", "0.0.0.0")
	if code, _ := s.Do("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", nil, "Authorization", "Bearer "+secret); code != http.StatusUnauthorized {
		t.Fatalf("revoked token on 0.0.0.0: status %d, want 401", code)
	}
}
