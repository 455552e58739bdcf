package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Governed promotion as a team runs it, with role tokens: an admin sets the
// policy, an editor registers and tries to promote (refused, every unmet
// gate named), an approver approves, the promotion passes, and `slipway
// audit` shows who did what.
func TestGovernedPromotion(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{}
	for _, u := range []struct{ name, role string }{{"ed", "editor"}, {"april", "approver"}, {"ada", "admin"}} {
		out, errOut, code := Cmd(t, nil, "tokens", "create", u.name, "--role", u.role, "--data-dir", dir)
		if code != 0 {
			t.Fatalf("tokens create %s: %d %s", u.name, code, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(line, "secret (shown once): "); ok {
				secrets[u.name] = s
			}
		}
	}
	s := StartIn(t, dir, "--auth")
	as := func(who string) []string { return []string{"Authorization", "Bearer " + secrets[who]} }
	mlflow := func(who, method, endpoint string, body any) map[string]any {
		t.Helper()
		status, out := s.JSON(method, "/api/2.0/mlflow/"+endpoint, body, as(who)...)
		if status != http.StatusOK {
			t.Fatalf("%s %s as %s: %d %v", method, endpoint, who, status, out)
		}
		return out
	}
	cli := func(who string, wantCode int, args ...string) string {
		t.Helper()
		out, errOut, code := Cmd(t, []string{"SLIPWAY_URL=" + s.URL, "SLIPWAY_TOKEN=" + secrets[who], "TZ=UTC"}, args...)
		if code != wantCode {
			t.Fatalf("slipway %s as %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), who, code, wantCode, out, errOut)
		}
		return out + errOut
	}

	// The editor trains and registers credit version 1.
	run := mlflow("ed", "POST", "runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)
	runID := run["run_id"].(string)
	root := strings.TrimPrefix(run["artifact_uri"].(string), "mlflow-artifacts:/")
	if code, body := s.Do("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+root+"/model/model.pkl", "weights", as("ed")...); code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, body)
	}
	mlflow("ed", "POST", "runs/log-metric", map[string]any{"run_id": runID, "key": "auc", "value": 0.91, "timestamp": 1})
	mlflow("ed", "POST", "registered-models/create", map[string]any{"name": "credit"})
	mlflow("ed", "POST", "model-versions/create", map[string]any{"name": "credit", "source": "runs:/" + runID + "/model", "run_id": runID})

	policy := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policy, []byte(`aliases:
  production:
    metrics:
      - {metric: auc, op: ">=", value: 0.8}
    tags:
      validation: passed
    approvals: 1
`), 0o644)
	if out := cli("ed", 3, "models", "policy", "set", "credit", "-f", policy); !strings.Contains(out, "needs admin") {
		t.Fatalf("editor setting the policy: %s", out)
	}
	if out := cli("ada", 0, "models", "policy", "set", "credit", "-f", policy); !strings.Contains(out, `governs alias production`) {
		t.Fatalf("policy set: %s", out)
	}
	if out := cli("ed", 0, "models", "policy", "show", "credit"); !strings.Contains(out, "set by ada") || !strings.Contains(out, "validation: passed") {
		t.Fatalf("policy show: %s", out)
	}

	out := cli("ed", 2, "models", "promote", "credit", "1", "--to", "production")
	for _, want := range []string{"met    metric", "UNMET  tag", "UNMET  approvals", "tag validation=passed is missing; needs 1 approval from an approver, has 0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("refused promotion does not show %q:\n%s", want, out)
		}
	}
	mlflow("ed", "POST", "model-versions/set-tag", map[string]any{"name": "credit", "version": "1", "key": "validation", "value": "passed"})
	if out := cli("ed", 3, "models", "approve", "credit", "1", "--to", "production"); !strings.Contains(out, "needs approver") {
		t.Fatalf("editor approving: %s", out)
	}
	if out := cli("april", 0, "models", "approve", "credit", "1", "--to", "production", "--comment", "backtest reviewed"); !strings.Contains(out, "as april") {
		t.Fatalf("approve: %s", out)
	}
	if out := cli("ed", 0, "models", "promote", "credit", "1", "--to", "production"); !strings.Contains(out, `promoted credit version 1 to alias "production"`) {
		t.Fatalf("promote: %s", out)
	}
	if v := mlflow("ed", "GET", "registered-models/alias?name=credit&alias=production", nil); v["model_version"].(map[string]any)["version"] != "1" {
		t.Fatalf("alias: %v", v)
	}

	out = cli("ed", 0, "audit", "--target", "models:/credit")
	for _, want := range []string{"ed     registered_model.set_alias", "april  model_version.approve", "ada    registered_model.set_policy",
		"ed     model_version.set_tag", `{"alias":"production","version":1}`} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit does not show %q:\n%s", want, out)
		}
	}
	var page struct {
		Entries []struct {
			Actor, Action, Target string
			Time                  int64
			Before, After         json.RawMessage
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(cli("ed", 0, "audit", "--action", "registered_model.set_alias", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	var after bytes.Buffer
	if len(page.Entries) == 1 {
		json.Compact(&after, page.Entries[0].After)
	}
	if len(page.Entries) != 1 || page.Entries[0].Actor != "ed" || page.Entries[0].Target != "models:/credit" || page.Entries[0].Time == 0 ||
		string(page.Entries[0].Before) != "null" || after.String() != `{"alias":"production","version":1}` {
		t.Fatalf("audit --json: %+v", page)
	}
}
