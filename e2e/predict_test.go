package e2e

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// registerTumorModel registers the XGBoost model of the runtime's tests
// (four breast-cancer features, P(benign)) as tumor version 1, in an MLflow
// model directory logged to a run, with the alias champion.
func registerTumorModel(t *testing.T, c *mlflowClient) {
	t.Helper()
	model, err := os.ReadFile("../internal/models/xgboost/testdata/small.json")
	if err != nil {
		t.Fatal(err)
	}
	run := c.createRun("0")
	runID := mfRunID(run)
	root := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	c.putArtifact(root+"/model/MLmodel", "artifact_path: model\nflavors:\n  xgboost:\n    data: model.json\n    model_format: json\n", "")
	c.putArtifact(root+"/model/model.json", string(model), "application/json")
	c.createModel("tumor")
	c.createVersion("tumor", "runs:/"+runID+"/model", runID)
	c.ok("registered-models/alias", map[string]any{"name": "tumor", "alias": "champion", "version": "1"})
}

// TestPredict registers an XGBoost model (saved by XGBoost, in an MLflow
// model directory) and scores a CSV and a data version with it through
// `slipway predict`, as a user would; the expected values are XGBoost's own
// predictions for those rows.
func TestPredict(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c)

	dir := t.TempDir()
	rows := "radius,texture,perimeter,area\n17.99,10.38,122.8,1001\n20.57,17.77,132.9,1326\n19.69,21.25,130,1203\n"
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	// XGBoost's predictions for these rows (float32, as printed by Python).
	want := []float64{0.5655025839805603, 0.2104165256023407, 0.2104165256023407}
	check := func(what, out string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(want)+1 || lines[0] != "prediction" {
			t.Fatalf("%s printed\n%s\nwant a prediction header and %d rows", what, out, len(want))
		}
		for i, w := range want {
			got, err := strconv.ParseFloat(lines[i+1], 64)
			if err != nil || math.Abs(got-w) > 1e-6 {
				t.Fatalf("%s: row %d is %q; XGBoost predicted %v", what, i+1, lines[i+1], w)
			}
		}
	}
	out, _ := cli(0, "predict", "--model", "models:/tumor/1", "--data", in)
	check("predict models:/tumor/1", out)
	outFile := filepath.Join(t.TempDir(), "out.csv")
	cli(0, "predict", "--model", "models:/tumor@champion", "--data", in, "--out", outFile)
	got, _ := os.ReadFile(outFile)
	check("predict --out", string(got))

	cli(0, "data", "add", "patients", dir)
	out, errOut := cli(0, "predict", "--model", "models:/tumor/1", "--data", "data:patients@latest", "--experiment", "scoring")
	check("predict --data data:patients@latest", out)
	i := strings.Index(errOut, "logged as run ")
	if i < 0 {
		t.Fatalf("predict --experiment did not say which run it logged: %s", errOut)
	}
	runID := strings.Fields(errOut[i+len("logged as run "):])[0]
	root := mfArtifactPath(t, mfStr(mfDig(c.getRun(runID), "info.artifact_uri")))
	if _, _, body := c.download(root + "/predictions.csv"); !strings.HasPrefix(body, "prediction\n0.56550") {
		t.Fatalf("the scoring run's predictions.csv:\n%s", body)
	}
	if lin, _ := cli(0, "lineage", "data:patients@v1"); !strings.Contains(lin, "consumed by runs:/"+runID) {
		t.Fatalf("lineage does not show the scoring run:\n%s", lin)
	}

	if err := os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("radius,texture,perimeter,area\n17.99,10.38,122.8,1001\n20.57,n/a,big,1326\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut = cli(2, "predict", "--model", "models:/tumor/1", "--data", filepath.Join(dir, "bad.csv"))
	if !strings.Contains(errOut, `column "perimeter", row 2: "big" is not a number`) {
		t.Fatalf("text in a numeric column: %s", errOut)
	}
	cli(0, "data", "add", "patients", dir)
	if _, errOut = cli(2, "predict", "--model", "models:/tumor/1", "--data", "data:patients@latest"); !strings.Contains(errOut, "has 2 CSV or Parquet files") {
		t.Fatalf("a version with two tables: %s", errOut)
	}
}

// TestEvaluate evaluates the registered model on a versioned holdout set:
// the report's figures are scikit-learn's for the same predictions (AUC
// 0.9821875, log-loss 0.3302156, computed when tumor.csv was made), the
// run holds them as metrics with the report as artifacts, and lineage
// links the evaluation run to the data version.
func TestEvaluate(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c)
	dir := t.TempDir()
	holdout, err := os.ReadFile("testdata/tumor.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "holdout.csv"), holdout, 0o644); err != nil {
		t.Fatal(err)
	}
	cli(0, "data", "add", "holdout", dir)

	out, _ := cli(0, "evaluate", "--model", "models:/tumor@champion", "--data", "data:holdout@latest", "--target", "benign", "--slice", "size")
	for _, want := range []string{"| auc | 0.982187 |", "| log_loss | 0.330216 |", "| actual 1 | 3 | 77 |", "## Slices by size", "| large | 35 |", "## Gain importance", "## Permutation importance"} {
		if !strings.Contains(out, want) {
			t.Fatalf("evaluate output lacks %q:\n%s", want, out)
		}
	}
	i := strings.Index(out, "logged as run ")
	if i < 0 {
		t.Fatalf("evaluate did not say which run it logged:\n%s", out)
	}
	runID := strings.Fields(out[i+len("logged as run "):])[0]
	run := c.getRun(runID)
	if status := mfStr(mfDig(run, "info.status")); status != "FINISHED" {
		t.Fatalf("evaluation run is %s", status)
	}
	metrics := map[string]float64{}
	for _, m := range mfDig(run, "data.metrics").([]any) {
		mm := m.(map[string]any)
		metrics[mm["key"].(string)] = mm["value"].(float64)
	}
	if math.Abs(metrics["auc"]-0.9821875) > 1e-9 || math.Abs(metrics["log_loss"]-0.33021559745581885) > 1e-6 {
		t.Fatalf("run metrics auc %v, log_loss %v; want scikit-learn's 0.9821875 and 0.3302156", metrics["auc"], metrics["log_loss"])
	}
	if _, ok := metrics["slice.size.large.auc"]; !ok {
		t.Fatalf("no per-slice metrics in %v", metrics)
	}
	root := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	if _, _, body := c.download(root + "/evaluation/report.md"); !strings.Contains(body, "| auc | 0.982187 |") {
		t.Fatalf("evaluation/report.md:\n%s", body)
	}
	if out, _ := cli(0, "lineage", "data:holdout@v1"); !strings.Contains(out, "consumed by runs:/"+runID) {
		t.Fatalf("lineage of the holdout set does not show the evaluation run %s:\n%s", runID, out)
	}

	_, errOut := cli(2, "evaluate", "--model", "models:/tumor/1", "--data", "data:holdout@latest", "--target", "size", "--no-track")
	if !strings.Contains(errOut, `target column "size", row 1: "small" is not a number`) {
		t.Fatalf("a text target: %s", errOut)
	}
}
