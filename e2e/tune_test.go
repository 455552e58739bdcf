package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTune searches GBDT parameters on a data version: every trial is a
// child run of the search's run, and the best model is registered.
func TestTune(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	dir := addTumorData(t, cli)

	out, _ := cli(0, "tune", "--data", "data:tumor@latest", "--target", "benign", "-s", "max_depth=1,3", "-s", "eta=0.1,0.3",
		"-p", "num_boost_round=15", "--parallel", "2", "--seed", "3", "--register", "tumor-tuned")
	for _, want := range []string{"best: trial ", "(4 trials in ", "registered models:/tumor-tuned/1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tune output lacks %q:\n%s", want, out)
		}
	}
	i := strings.Index(out, "logged as run ")
	parent := strings.Fields(out[i+len("logged as run "):])[0]
	children, _ := c.searchRuns([]string{mfStr(mfDig(c.getRun(parent), "info.experiment_id"))}, "tags.mlflow.parentRunId = '"+parent+"'", "", 100, nil, "")
	if len(children) != 4 {
		t.Fatalf("%d child runs of the search; want one per trial (4)", len(children))
	}
	for _, ch := range children {
		if status := mfStr(mfDig(ch, "info.status")); status != "FINISHED" {
			t.Fatalf("a trial run is %s", status)
		}
	}
	cli(0, "predict", "--model", "models:/tumor-tuned/1", "--data", filepath.Join(dir, "tumor.csv"))

	out, _ = cli(0, "tune", "--data", "data:tumor@latest", "--target", "benign", "--strategy", "halving", "--trials", "4",
		"--max-rounds", "18", "-s", "max_depth=1,2,3,4", "--seed", "1")
	if !strings.Contains(out, "best: trial ") {
		t.Fatalf("successive halving:\n%s", out)
	}
	_, errOut := cli(2, "tune", "--data", "data:tumor@latest", "--target", "benign", "-s", "eta=uniform(0.1,0.3)")
	if !strings.Contains(errOut, "eta") {
		t.Fatalf("a grid over a continuous parameter: %s", errOut)
	}
}
