package evaluation

import (
	"slices"
	"testing"
)

func TestHigherIsBetter(t *testing.T) {
	cases := []struct {
		metric        string
		higher, known bool
	}{
		{"auc", true, true},
		{"average_precision", true, true},
		{"accuracy", true, true},
		{"precision", true, true},
		{"recall", true, true},
		{"f1", true, true},
		{"auc_ovr_macro", true, true},
		{"f1_weighted", true, true},
		{"r2", true, true},
		{"log_loss", false, true},
		{"brier", false, true},
		{"ece", false, true},
		{"rmse", false, true},
		{"mse", false, true},
		{"mae", false, true},
		{"mape", false, true},
		{"slice.region.EU.auc", true, true},
		{"slice.region.north_east.rmse", false, true},
		{"slice.size.large", false, false},
		{"latency_ms", false, false},
		{"", false, false},
	}
	for _, tc := range cases {
		higher, known := HigherIsBetter(tc.metric)
		if higher != tc.higher || known != tc.known {
			t.Errorf("HigherIsBetter(%q) = %v, %v; want %v, %v", tc.metric, higher, known, tc.higher, tc.known)
		}
	}
}

// Every metric a report can hold has a direction, and the scorers agree
// with it.
func TestDirectionsCoverReports(t *testing.T) {
	for _, task := range []Task{TaskBinary, TaskMulticlass, TaskRegression} {
		names := MetricNames(task)
		if len(names) == 0 {
			t.Fatalf("%s: no metric names", task)
		}
		for _, n := range names {
			if _, known := HigherIsBetter(n); !known {
				t.Errorf("%s: metric %q has no direction", task, n)
			}
		}
	}
	if !slices.Contains(MetricNames(TaskRegression), "rmse") || slices.Contains(MetricNames(TaskRegression), "auc") {
		t.Errorf("regression metrics: %v", MetricNames(TaskRegression))
	}
	for _, n := range ScorerNames {
		s, err := ScorerFor(n)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := HigherIsBetter(n); s.HigherIsBetter != want {
			t.Errorf("scorer %s: higher is better %v, want %v", n, s.HigherIsBetter, want)
		}
	}
}
