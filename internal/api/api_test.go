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
