package v1_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/slipwayml/slipway/internal/api/v1"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/lineage"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// TestLineageAPI checks the route, its parameters' errors and the JSON
// shape; internal/lineage tests the graph itself on both dialects.
func TestLineageAPI(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	b, err := blob.Open(ctx, t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	reg, data := registry.New(db, b, tr), datasets.New(db, b)
	mux := http.NewServeMux()
	(&v1.Handler{Datasets: data, Lineage: lineage.New(db, tr, reg, data)}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	content := "a,b\n1,2\n"
	if _, err := data.PutObject(ctx, sum(content), int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	dv, _, err := data.Commit(ctx, "credit", datasets.Commit{Files: []datasets.File{{Path: "t.csv", Digest: sum(content), Size: int64(len(content))}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	run, err := tr.CreateRun(ctx, tracking.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	runID := run.Info.RunID
	if err := tr.LogInputs(ctx, runID, []tracking.DatasetInput{{Dataset: tracking.Dataset{Name: "credit", Digest: dv.Digest[:32], SourceType: "slipway", Source: "credit@v1"}}}); err != nil {
		t.Fatal(err)
	}
	root, _ := blob.ResolveLocation(run.Info.ArtifactURI)
	if _, err := b.Put(ctx, root+"/model/MLmodel", strings.NewReader("flavors: {}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateRegisteredModel(ctx, "team/credit", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "team/credit", Source: "runs:/" + runID + "/model", RunID: runID}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetAlias(ctx, "team/credit", "champion", 1); err != nil {
		t.Fatal(err)
	}

	// A model name with a slash: the version is after the last one.
	status, out := do(t, srv, "GET", "/api/v1/lineage/model/team/credit/1", "")
	if status != 200 || out["direction"] != "up" || out["depth"] != float64(3) || out["truncated"] != false {
		t.Fatalf("model: %d %v", status, out)
	}
	nodes, _ := out["nodes"].([]any)
	edges, _ := out["edges"].([]any)
	if len(nodes) != 3 || len(edges) != 2 {
		t.Fatalf("model graph: %v", out)
	}
	first := nodes[0].(map[string]any)
	if first["kind"] != "model" || first["id"] != "team/credit/1" || first["model"].(map[string]any)["aliases"].([]any)[0] != "champion" {
		t.Fatalf("root node: %v", first)
	}
	e := edges[0].(map[string]any)
	if e["relation"] == nil || e["from"].(map[string]any)["kind"] == nil {
		t.Fatalf("edge shape: %v", e)
	}

	status, out = do(t, srv, "GET", "/api/v1/lineage/data/credit@v1?depth=1", "")
	if status != 200 || out["direction"] != "down" || len(out["nodes"].([]any)) != 2 {
		t.Fatalf("data depth 1: %d %v", status, out)
	}
	if status, out = do(t, srv, "GET", "/api/v1/lineage/model/team/credit@champion?direction=down", ""); status != 200 || out["root"].(map[string]any)["id"] != "team/credit/1" {
		t.Fatalf("alias: %d %v", status, out)
	}
	if status, out = do(t, srv, "GET", "/api/v1/lineage/run/"+runID, ""); status != 200 || len(out["nodes"].([]any)) != 3 {
		t.Fatalf("run: %d %v", status, out)
	}

	for _, c := range []struct {
		path, code, want string
		status           int
	}{
		{"/api/v1/lineage/pipeline/x", "invalid_argument", `kind "pipeline"`, 400},
		{"/api/v1/lineage/run/" + runID + "?direction=sideways", "invalid_argument", `direction "sideways": must be up, down or both`, 400},
		{"/api/v1/lineage/run/" + runID + "?depth=0", "invalid_argument", "depth 0: must be a whole number from 1 to 10", 400},
		{"/api/v1/lineage/run/" + runID + "?depth=11", "invalid_argument", "depth 11", 400},
		{"/api/v1/lineage/run/" + runID + "?depth=x", "invalid_argument", "depth x", 400},
		{"/api/v1/lineage/model/credit", "invalid_argument", "NAME/VERSION or NAME@ALIAS", 400},
		{"/api/v1/lineage/model/team/credit/9", "not_found", "not found", 404},
		{"/api/v1/lineage/model/team/credit@nope", "not_found", `no alias "nope"`, 404},
		{"/api/v1/lineage/data/credit@v2", "not_found", "credit@v2 not found", 404},
		{"/api/v1/lineage/run/0123456789abcdef0123456789abcdef", "not_found", "not found", 404},
	} {
		status, out := do(t, srv, "GET", c.path, "")
		wantError(t, status, out, c.status, c.code, c.want)
	}
}
