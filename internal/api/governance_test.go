package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Promotion policies need an admin, approvals an approver, and the MLflow
// API refuses a promotion the policy does not allow, naming the unmet
// gates; the audit log shows the promotion that passed.
func TestGovernanceOverHTTP(t *testing.T) {
	ctx := context.Background()
	db, tr, artifacts := newStores(t, t.TempDir())
	tokens := auth.New(db)
	secret := map[string]string{}
	for _, u := range []struct{ name, role string }{
		{"vera", auth.RoleViewer}, {"ed", auth.RoleEditor}, {"april", auth.RoleApprover}, {"ada", auth.RoleAdmin},
	} {
		_, s, err := tokens.Create(ctx, u.name, "", u.role)
		if err != nil {
			t.Fatal(err)
		}
		secret[u.name] = s
	}
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, Auth: tokens, RequireAuth: true,
		Models: registry.New(db, artifacts, tr), Audit: audit.New(db), MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)

	call := func(who, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret[who])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	expect := func(who, method, path, body string, status int, contains string) string {
		t.Helper()
		got, raw := call(who, method, path, body)
		if got != status || !strings.Contains(raw, contains) {
			t.Fatalf("%s %s as %s: %d %s, want %d with %q", method, path, who, got, raw, status, contains)
		}
		return raw
	}

	run, err := tr.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: tracking.DefaultExperimentID})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := blob.ResolveLocation(run.Info.ArtifactURI)
	if _, err := artifacts.Put(ctx, root+"/model/model.pkl", strings.NewReader("w")); err != nil {
		t.Fatal(err)
	}
	const mlflow = "/api/2.0/mlflow/"
	expect("ed", "POST", mlflow+"registered-models/create", `{"name":"credit"}`, 200, "")
	expect("ed", "POST", mlflow+"model-versions/create", `{"name":"credit","source":"runs:/`+run.Info.RunID+`/model","run_id":"`+run.Info.RunID+`"}`, 200, `"user_id":"ed"`)

	const policy = `{"aliases":{"production":{"tags":{"validation":"passed"},"approvals":1}}}`
	for _, who := range []string{"ed", "april"} {
		expect(who, "PUT", "/api/v1/models/credit/policy", policy, 403, `"code":"permission_denied"`)
	}
	expect("ada", "PUT", "/api/v1/models/credit/policy", `{"aliases":{"production":{"approval":1}}}`, 400, `unknown field \"approval\"`)
	expect("ada", "PUT", "/api/v1/models/credit/policy", policy, 200, `"updated_by":"ada"`)
	expect("vera", "GET", "/api/v1/models/credit/policy", "", 200, `"approvals":1`)
	expect("ed", "DELETE", "/api/v1/models/credit/policy", "", 403, "permission_denied")

	raw := expect("ed", "POST", mlflow+"registered-models/alias", `{"name":"credit","alias":"production","version":"1"}`, 400, `"error_code":"INVALID_STATE"`)
	if !strings.Contains(raw, "tag validation=passed is missing; needs 1 approval from an approver, has 0") {
		t.Fatalf("refusal does not name every gate: %s", raw)
	}
	expect("vera", "GET", "/api/v1/models/credit/versions/1/gates?alias=production", "", 200, `"passed":false`)
	expect("vera", "GET", "/api/v1/models/credit/versions/1/gates", "", 400, "a target is required")

	for _, who := range []string{"vera", "ed"} {
		expect(who, "POST", "/api/v1/models/credit/versions/1/approvals", `{"alias":"production"}`, 403, "permission_denied")
	}
	expect("april", "POST", "/api/v1/models/credit/versions/1/approvals", `{"alias":"production","comment":"reviewed"}`, 201, `"approver":"april"`)
	expect("ed", "POST", mlflow+"model-versions/set-tag", `{"name":"credit","version":"1","key":"validation","value":"passed"}`, 200, "")
	expect("vera", "GET", "/api/v1/models/credit/versions/1/approvals", "", 200, `"comment":"reviewed"`)
	expect("vera", "GET", "/api/v1/models/credit/versions/1/gates?alias=production", "", 200, `"passed":true`)
	expect("ed", "POST", mlflow+"registered-models/alias", `{"name":"credit","alias":"production","version":"1"}`, 200, "")

	raw = expect("vera", "GET", "/api/v1/audit?target=models:/credit&action=registered_model.set_alias", "", 200, "")
	var page struct {
		Entries []struct {
			Actor, Action, Target string
			Time                  int64
			Before, After         json.RawMessage
		} `json:"entries"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(raw), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].Actor != "ed" || page.Entries[0].Target != "models:/credit" || page.Entries[0].Time == 0 ||
		string(page.Entries[0].Before) != "null" || string(page.Entries[0].After) != `{"alias":"production","version":1}` {
		t.Fatalf("audit: %s", raw)
	}
	expect("vera", "GET", "/api/v1/audit?actor=april", "", 200, `"action":"model_version.approve"`)
	expect("vera", "GET", "/api/v1/audit?target=credit", "", 400, "want models:/NAME")
	expect("vera", "GET", "/api/v1/audit?since=yesterday", "", 400, "RFC 3339")
}
