package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addTumorData adds testdata/tumor.csv as version 1 of the dataset tumor
// and returns the folder it was added from.
func addTumorData(t *testing.T, cli func(int, ...string) (string, string)) string {
	t.Helper()
	dir := t.TempDir()
	rows, err := os.ReadFile("testdata/tumor.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tumor.csv"), rows, 0o644); err != nil {
		t.Fatal(err)
	}
	cli(0, "data", "add", "tumor", dir)
	return dir
}

// TestTrain trains on a data version with a text (categorical) column,
// registers the model, scores with it, and follows its lineage back to the
// data, all through the CLI, as a user would.
func TestTrain(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	dir := addTumorData(t, cli)

	out, _ := cli(0, "train", "--data", "data:tumor@latest", "--target", "benign", "--register", "tumor-gbdt",
		"-p", "num_boost_round=25", "-p", "max_depth=3", "-p", "early_stopping_rounds=10", "--seed", "7")
	for _, want := range []string{"trained gbdt (binary:logistic) on 120 rows, 5 features", "validation (24 rows): auc ", "registered models:/tumor-gbdt/1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("train output lacks %q:\n%s", want, out)
		}
	}
	i := strings.Index(out, "logged as run ")
	runID := strings.Fields(out[i+len("logged as run "):])[0]
	run := c.getRun(runID)
	params := map[string]string{}
	for _, p := range mfDig(run, "data.params").([]any) {
		pm := p.(map[string]any)
		params[pm["key"].(string)] = pm["value"].(string)
	}
	if params["max_depth"] != "3" || params["objective"] != "binary:logistic" || params["data"] != "data:tumor@v1" {
		t.Fatalf("run params: %v", params)
	}
	if h := c.metricHistory(runID, "valid_logloss"); len(h) < 10 || len(h) > 25 {
		t.Fatalf("valid_logloss has %d rounds; want one per round trained", len(h))
	}

	// The registered model reads the text column through the levels
	// training recorded, and scores every row.
	out, _ = cli(0, "predict", "--model", "models:/tumor-gbdt/1", "--data", filepath.Join(dir, "tumor.csv"))
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 121 || lines[0] != "prediction" {
		t.Fatalf("predict printed %d lines:\n%s", len(lines), out)
	}
	out, _ = cli(0, "lineage", "models:/tumor-gbdt/1")
	if !strings.Contains(out, "registered from runs:/"+runID) || !strings.Contains(out, "consumed data:tumor@v1") || !strings.Contains(out, "code:    slipway train") {
		t.Fatalf("lineage of the trained model:\n%s", out)
	}

	_, errOut := cli(2, "train", "--data", "data:tumor@latest", "--target", "malignant", "--no-track", "--out", t.TempDir())
	if !strings.Contains(errOut, `no target column "malignant"`) {
		t.Fatalf("unknown target: %s", errOut)
	}
	_, errOut = cli(2, "train", "--data", "data:tumor@latest", "--target", "benign", "-p", "max_depth=0")
	if !strings.Contains(errOut, "max_depth 0") {
		t.Fatalf("bad parameter: %s", errOut)
	}
}
