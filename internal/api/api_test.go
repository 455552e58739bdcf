package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "artifacts")
	_, tr, artifacts := newStores(t, root)
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	return srv, root
}

// newStores opens a SQLite database with the tracking service on it, and
// an artifact store at root.
func newStores(t *testing.T, root string) (*store.DB, *tracking.Service, *blob.Store) {
	t.Helper()
	db := storetest.SQLite(t)
	tr, err := tracking.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	artifacts, err := blob.Open(context.Background(), root, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { artifacts.Close() })
	return db, tr, artifacts
}

// Dot and empty segments are refused rather than redirected: a client following
// ServeMux's redirect would write somewhere other than where it asked.
func TestUncleanPathsRefused(t *testing.T) {
	srv, root := newServer(t)
	for _, p := range []string{"a/../x", "a/%2e%2e/x", "./x", "a/./x", "a/%2E%2E/%2e%2e/x", "/x", "a//x", "a/..", "a/."} {
		req, _ := http.NewRequest("PUT", srv.URL+"/api/2.0/mlflow-artifacts/artifacts/"+p, strings.NewReader("hi"))
		req.URL.Opaque = "//" + req.URL.Host + "/api/2.0/mlflow-artifacts/artifacts/" + p // send the path as written
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: status %d, want 400", p, resp.StatusCode)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !os.IsNotExist(err) {
		t.Fatalf("a refused upload was written: %v", err)
	}
}

// Registry storage and data-version objects are written only by their
// services; the proxy refuses every write there, in any letter case.
func TestReadOnlyFolders(t *testing.T) {
	srv, root := newServer(t)
	for _, c := range []struct{ method, path string }{
		{"PUT", "/api/2.0/mlflow-artifacts/artifacts/registry/1/1/files/model.pkl"},
		{"PUT", "/api/2.0/mlflow-artifacts/artifacts/Registry/1/1/files/model.pkl"},
		{"DELETE", "/api/2.0/mlflow-artifacts/artifacts/registry/1"},
		{"PUT", "/api/2.0/mlflow-artifacts/artifacts/objects/sha256/ab/abcd"},
		{"PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/OBJECTS/sha256/ab/abcd"},
		{"POST", "/api/2.0/mlflow-artifacts/mpu/create/rEgIsTrY/1/x"},
		{"PUT", "/api/2.0/mlflow-artifacts/mpu/part/objects/x?upload_id=u&part_number=1"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(`{"num_parts":1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s: status %d, want 403", c.method, c.path, resp.StatusCode)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("refused writes left %d entries in the store", len(entries))
	}
	// Ordinary run artifacts stay writable.
	req, _ := http.NewRequest("PUT", srv.URL+"/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/registry.txt", strings.NewReader("ok"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ordinary upload: %d", resp.StatusCode)
	}
}

// Roles are checked for every route in one place: viewers read (including
// MLflow's POST searches), editors write, and each API answers in its own
// error envelope.
func TestRoles(t *testing.T) {
	ctx := context.Background()
	db, tr, artifacts := newStores(t, t.TempDir())
	tokens := auth.New(db)
	_, viewer, err := tokens.Create(ctx, "reader", "", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	_, editor, err := tokens.Create(ctx, "writer", "", auth.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, Auth: tokens, RequireAuth: true,
		Datasets: datasets.New(db, artifacts), MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		token, method, path, body string
		status                    int
		envelope                  string
	}{
		{viewer, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", "", 200, ""},
		{viewer, "POST", "/api/2.0/mlflow/runs/search", `{"experiment_ids":["0"]}`, 200, ""},
		{viewer, "POST", "/api/2.0/mlflow/experiments/search", `{}`, 200, ""},
		{viewer, "POST", "/api/2.0/mlflow/experiments/create", `{"name":"x"}`, 403, `"error_code":"PERMISSION_DENIED"`},
		{viewer, "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt", "a", 403, `"error_code":"PERMISSION_DENIED"`},
		{viewer, "GET", "/api/v1/datasets", "", 200, ""},
		{viewer, "POST", "/api/v1/datasets/ds/versions", `{"files":[]}`, 403, `"code":"permission_denied"`},
		{editor, "POST", "/api/2.0/mlflow/experiments/create", `{"name":"x"}`, 200, ""},
		{editor, "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt", "a", 200, ""},
		{"not-a-token", "POST", "/v2/models/credit/infer", `{}`, 401, `{"error":"`},
		{"not-a-token", "POST", "/api/v1/deployments/credit/canary", `{}`, 401, `"code":"unauthenticated"`},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(raw), c.envelope) {
			t.Errorf("%s %s as %s: %d %s, want %d with %s", c.method, c.path, c.token[:8], resp.StatusCode, raw, c.status, c.envelope)
		}
	}
}

// Requests are counted by the route ServeMux matched, also when
// authentication derived a new request on the way in.
func TestMetricsByRoute(t *testing.T) {
	ctx := context.Background()
	db, tr, artifacts := newStores(t, t.TempDir())
	tokens := auth.New(db)
	_, viewer, err := tokens.Create(ctx, "reader", "", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, Auth: tokens, Registry: reg, MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	for _, token := range []string{"", viewer} {
		for _, path := range []string{"/api/2.0/mlflow/experiments/get?experiment_id=0", "/nope"} {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "slipway_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["method"]+" "+labels["route"]+" "+labels["code"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"GET /api/2.0/mlflow/experiments/get 200": 2, "GET unmatched 404": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests by route: %v, want %v", got, want)
	}
}
