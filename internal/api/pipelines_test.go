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
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/triggers"
	"github.com/slipwayml/slipway/internal/registry"
)

// Registering a pipeline puts commands on the server's machine: only an
// admin may; an editor may run it; bad specs are 400s that name the line.
func TestPipelineRoles(t *testing.T) {
	srv, _, secret := pipelineServer(t, map[string]string{"ed": auth.RoleEditor, "ada": auth.RoleAdmin})

	call := func(who, method, path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+secret[who])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	project := t.TempDir()
	spec := map[string]string{"spec": "name: p\nsteps:\n  a:\n    command: true\n", "project_dir": project}
	if code, body := call("ed", "PUT", "/api/v1/pipelines/p", spec); code != http.StatusForbidden || !strings.Contains(body, "admin") {
		t.Fatalf("editor registering a pipeline: %d %s", code, body)
	}
	bad := map[string]string{"spec": "name: p\nsteps:\n  a:\n    comand: true\n", "project_dir": project}
	if code, body := call("ada", "PUT", "/api/v1/pipelines/p", bad); code != http.StatusBadRequest || !strings.Contains(body, `pipeline.yaml:4:5`) {
		t.Fatalf("bad spec: %d %s", code, body)
	}
	if code, body := call("ada", "PUT", "/api/v1/pipelines/p", spec); code != http.StatusOK {
		t.Fatalf("admin registering a pipeline: %d %s", code, body)
	}
	if code, body := call("ed", "POST", "/api/v1/pipelines/p/runs", map[string]any{"params": map[string]string{"x": "1"}}); code != http.StatusBadRequest || !strings.Contains(body, `unknown param`) {
		t.Fatalf("unknown param: %d %s", code, body)
	}
	if code, body := call("ed", "POST", "/api/v1/pipelines/p/runs", map[string]any{}); code != http.StatusCreated || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("editor running a pipeline: %d %s", code, body)
	}
	if code, body := call("ed", "DELETE", "/api/v1/pipelines/p", nil); code != http.StatusForbidden {
		t.Fatalf("editor deleting a pipeline: %d %s", code, body)
	}
	if code, body := call("ed", "GET", "/api/v1/pipeline-runs/p%2399", nil); code != http.StatusNotFound || !strings.Contains(body, "no run #99") {
		t.Fatalf("missing run: %d %s", code, body)
	}
}

// pipelineServer serves the API over SQLite with tokens required, one
// token per user (name -> role), and the pipelines and triggers services.
func pipelineServer(t *testing.T, users map[string]string) (*httptest.Server, *runs.Service, map[string]string) {
	t.Helper()
	ctx := context.Background()
	db, tr, artifacts := newStores(t, t.TempDir())
	tokens := auth.New(db)
	secret := map[string]string{}
	for name, role := range users {
		_, s, err := tokens.Create(ctx, name, "", role)
		if err != nil {
			t.Fatal(err)
		}
		secret[name] = s
	}
	data := datasets.New(db, artifacts)
	pipelines := runs.New(db, artifacts, tr, data, registry.New(db, artifacts, tr), t.TempDir())
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, Auth: tokens, RequireAuth: true,
		Datasets: data, Pipelines: pipelines, Triggers: triggers.New(db, pipelines, data), MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	return srv, pipelines, secret
}
