package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	db := storetest.SQLite(t)
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "artifacts")
	artifacts, err := blob.Open(ctx, root, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { artifacts.Close() })
	srv := httptest.NewServer(api.New(api.Config{Tracking: tr, Artifacts: artifacts, MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	return srv, root
}

// Dot and empty segments are refused rather than redirected: a client following
// ServeMux's redirect would write somewhere other than where it asked.
func TestUncleanPathsRefused(t *testing.T) {
	srv, root := newServer(t)
	for _, p := range []string{"a/../x", "a/%2e%2e/x", "./x", "a/./x", "a/%2E%2E/%2e%2e/x", "/x", "a//x"} {
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
