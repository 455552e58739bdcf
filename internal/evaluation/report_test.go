package evaluation_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/evaluation"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func TestReportGolden(t *testing.T) {
	rep, err := evaluation.Evaluate(sliced())
	if err != nil {
		t.Fatal(err)
	}
	x, y := dataset(300)
	s, _ := evaluation.ScorerFor("auc")
	perm, err := evaluation.Permutation(context.Background(), &logistic{w: []float32{2, 0, 0.6}, names: []string{"a", "b", "c"}}, x, y, s,
		evaluation.PermutationOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	gain, err := evaluation.Gain([]evaluation.FeatureGain{{Feature: "a", TotalGain: 12.5, Splits: 5}, {Feature: "b"}, {Feature: "c", TotalGain: 3, Splits: 2}})
	if err != nil {
		t.Fatal(err)
	}
	rep.Importance = &evaluation.Importance{Gain: gain, Permutation: perm}
	golden(t, "binary_report.md", rep.Markdown())

	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "binary_report.json", string(raw)+"\n")
}

func TestReportMarkdownOtherTasks(t *testing.T) {
	rep, err := evaluation.Evaluate(evaluation.Spec{Task: evaluation.TaskMulticlass, Outputs: 3,
		Labels:      []float64{0, 1, 2, 1},
		Predictions: []float32{0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.5, 0.3, 0.2, 0.4, 0.4, 0.2},
		Slices:      []evaluation.Column{{Name: "shop|id", Codes: []int64{1, 1, 2, 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "multiclass_report.md", rep.Markdown())

	rep, err = evaluation.Evaluate(evaluation.Spec{Task: evaluation.TaskRegression, Outputs: 1,
		Labels: []float64{3, -0.5, 2, 7}, Predictions: []float32{2.5, 0, 2, 8}, Weights: []float64{1, 2, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	for _, want := range []string{"# Evaluation: regression", "4 rows, weighted.", "| rmse |", "| r2 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("regression report lacks %q:\n%s", want, md)
		}
	}
}
