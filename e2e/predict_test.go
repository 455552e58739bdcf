package e2e

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPredict registers an XGBoost model (saved by XGBoost, in an MLflow
// model directory) and scores a CSV and a data version with it through
// `slipway predict`, as a user would; the expected values are XGBoost's own
// predictions for those rows.
func TestPredict(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	env := []string{"SLIPWAY_URL=" + s.URL, "SLIPWAY_CACHE_DIR=" + t.TempDir()}
	cli := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := Cmd(t, env, args...)
		if code != wantCode {
			t.Fatalf("slipway %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out, errOut
	}
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
	out, _ = cli(0, "predict", "--model", "models:/tumor/1", "--data", "data:patients@latest")
	check("predict --data data:patients@latest", out)

	if err := os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("radius,texture,perimeter,area\n17.99,10.38,122.8,1001\n20.57,n/a,big,1326\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut := cli(2, "predict", "--model", "models:/tumor/1", "--data", filepath.Join(dir, "bad.csv"))
	if !strings.Contains(errOut, `column "perimeter", row 2: "big" is not a number`) {
		t.Fatalf("text in a numeric column: %s", errOut)
	}
	cli(0, "data", "add", "patients", dir)
	if _, errOut = cli(2, "predict", "--model", "models:/tumor/1", "--data", "data:patients@latest"); !strings.Contains(errOut, "has 2 CSV or Parquet files") {
		t.Fatalf("a version with two tables: %s", errOut)
	}
}
