package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLineage drives what a user does: version data with the CLI, log a
// run that consumed it through MLflow's REST API (log-inputs with the
// version's digest), register a model and a copy of it, then ask where the
// model came from and what came from the data, with the CLI and the API.
func TestLineage(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	slipway := CLI(t, s)
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		out, errOut := slipway(wantCode, args...)
		return out + errOut
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "train.csv"), []byte("income,default\n100,0\n20,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var added struct {
		Version struct {
			Digest string `json:"digest"`
		} `json:"version"`
	}
	if err := json.Unmarshal([]byte(cli(0, "data", "add", "credit", src, "--json")), &added); err != nil || len(added.Version.Digest) != 64 {
		t.Fatalf("data add --json: %v %+v", err, added)
	}

	// MLflow caps a dataset digest at 36 characters: the first 32 hex
	// digits of the version digest name it.
	runID, source := c.logModel("0", "weights")
	c.ok("runs/log-inputs", map[string]any{"run_id": runID, "datasets": []any{map[string]any{
		"tags":    []any{map[string]any{"key": "mlflow.data.context", "value": "training"}},
		"dataset": map[string]any{"name": "credit", "digest": added.Version.Digest[:32], "source_type": "slipway", "source": "data:credit@v1"},
	}}})
	c.logParam(runID, "max_depth", "6")
	c.logMetric(runID, "auc", 0.87, 1, 0)
	c.setTag(runID, "mlflow.source.git.commit", "9f8e7d6c5b4a")
	c.setTag(runID, "mlflow.source.name", "train.py")
	c.setTerminated(runID, "FINISHED")
	c.createModel("credit")
	c.createVersion("credit", source, runID)
	c.createModel("credit-prod")
	c.createVersion("credit-prod", "models:/credit/1", "")

	out := cli(0, "lineage", "models:/credit/1")
	for _, want := range []string{
		"models:/credit/1  READY, stage None, digest ",
		"└─ registered from runs:/" + runID,
		"FINISHED, experiment 0",
		"code:    commit 9f8e7d6c5b4a, train.py",
		"params:  max_depth=6",
		"metrics: auc=0.87",
		"└─ consumed data:credit@v1  1 file, 26 B, digest " + added.Version.Digest[:12],
		"1 data version behind models:/credit/1: data:credit@v1",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("lineage models:/credit/1: missing %q in\n%s", want, out)
		}
	}
	out = cli(0, "lineage", "data:credit@v1")
	for _, want := range []string{
		"data:credit@v1  1 file, 26 B",
		"└─ consumed by runs:/" + runID,
		"└─ registered as models:/credit/1",
		"└─ copied as models:/credit-prod/1",
		"2 model versions trained on data:credit@v1: models:/credit/1, models:/credit-prod/1",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("lineage data:credit@v1: missing %q in\n%s", want, out)
		}
	}
	// A run prefix works as in the runs commands, and a run reads both ways.
	out = cli(0, "lineage", "runs:/"+runID[:8])
	if !strings.Contains(out, "upstream:") || !strings.Contains(out, "consumed data:credit@v1") || !strings.Contains(out, "registered as models:/credit/1") {
		t.Fatalf("lineage runs:/: \n%s", out)
	}

	var g struct {
		Root  map[string]string `json:"root"`
		Nodes []struct {
			Kind string         `json:"kind"`
			ID   string         `json:"id"`
			Run  map[string]any `json:"run"`
		} `json:"nodes"`
		Edges []struct {
			From, To map[string]string
			Relation string
		} `json:"edges"`
	}
	if err := json.Unmarshal([]byte(cli(0, "lineage", "models:/credit-prod/1", "--depth", "3", "--json")), &g); err != nil {
		t.Fatal(err)
	}
	if g.Root["id"] != "credit-prod/1" || len(g.Nodes) != 4 || len(g.Edges) != 3 {
		t.Fatalf("--json: %+v", g)
	}

	// The API answers the same graph.
	api := s.OK("GET", "/api/v1/lineage/model/credit/1", nil)
	nodes, _ := api["nodes"].([]any)
	if api["direction"] != "up" || len(nodes) != 3 {
		t.Fatalf("API: %v", api)
	}
	var run map[string]any
	for _, n := range nodes {
		if n := n.(map[string]any); n["kind"] == "run" {
			run, _ = n["run"].(map[string]any)
		}
	}
	if run == nil || run["git_commit"] != "9f8e7d6c5b4a" || run["source_name"] != "train.py" || run["status"] != "FINISHED" {
		t.Fatalf("API run node: %v", nodes)
	}
	if status, body := s.JSON("GET", "/api/v1/lineage/model/credit/1?depth=11", nil); status != 400 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "depth 11") {
		t.Fatalf("depth 11: %d %v", status, body)
	}

	// Clear errors.
	if out := cli(2, "lineage", "models:/nope/1"); !strings.Contains(out, "not found") {
		t.Fatalf("unknown model:\n%s", out)
	}
	if out := cli(2, "lineage", "credit/1"); !strings.Contains(out, "want models:/NAME/VERSION") {
		t.Fatalf("bad ref:\n%s", out)
	}
	if out := cli(2, "lineage", "data:credit@v1", "--direction", "sideways"); !strings.Contains(out, "--direction") {
		t.Fatalf("bad direction:\n%s", out)
	}
}
