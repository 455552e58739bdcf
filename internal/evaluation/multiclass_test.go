package evaluation_test

import (
	"math"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
)

func TestMulticlassByHand(t *testing.T) {
	// Row 3 ties classes 0 and 1: the first wins, as numpy's argmax.
	labels := []int{0, 1, 2, 1}
	probs := []float64{
		0.7, 0.2, 0.1,
		0.1, 0.8, 0.1,
		0.5, 0.3, 0.2,
		0.4, 0.4, 0.2,
	}
	m, err := evaluation.Multiclass(labels, probs, 3, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "accuracy", m.Accuracy, 0.5)
	eq(t, "log_loss", m.LogLoss, -(math.Log(0.7)+math.Log(0.8)+math.Log(0.2)+math.Log(0.4))/4)
	want := [][]float64{{1, 0, 0}, {1, 1, 0}, {1, 0, 0}}
	for i := range want {
		for j := range want[i] {
			if m.Confusion[i][j] != want[i][j] {
				t.Fatalf("confusion = %v; want %v", m.Confusion, want)
			}
		}
	}
	// Class 2 is never predicted: its precision is undefined and counts
	// as 0 in the averages, as sklearn's zero_division default.
	if c := m.PerClass[2]; c.Precision != nil || c.Undefined["precision"] == "" || *c.Recall != 0 || *c.F1 != 0 {
		t.Errorf("class 2 = %+v", c)
	}
	eq(t, "precision_macro", m.PrecisionMacro, (1.0/3+1+0)/3)
	eq(t, "recall_macro", m.RecallMacro, (1+0.5+0)/3)
	eq(t, "f1_weighted", m.F1Weighted, (1*0.5+2*(2.0/3)+1*0)/4)
	if m.AUCMacro == nil {
		t.Fatalf("auc_ovr_macro undefined: %v", m.Undefined)
	}
	// Top-label calibration: the top probabilities 0.4 and 0.5 (both
	// wrong) and 0.7 (right) fall in bins 3, 4 and 6 of ten; an inner edge
	// belongs to the bin below it.
	for _, c := range []struct {
		bin  int
		frac float64
	}{{3, 0}, {4, 0}, {6, 1}} {
		b := m.Calibration.Bins[c.bin]
		if b.Rows != 1 || *b.FractionPositive != c.frac {
			t.Errorf("bin %d = %+v; want 1 row, fraction %v", c.bin, b, c.frac)
		}
	}
}

func TestMulticlassAbsentClass(t *testing.T) {
	m, err := evaluation.Multiclass([]float64{0, 1, 0, 1}, []float32{
		0.6, 0.3, 0.1,
		0.2, 0.7, 0.1,
		0.5, 0.4, 0.1,
		0.3, 0.6, 0.1,
	}, 3, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Class 2 is neither a label nor a prediction, so the averages leave
	// it out, as sklearn's unique_labels does; its AUC is undefined and so
	// is the macro AUC.
	eq(t, "precision_macro", m.PrecisionMacro, 1)
	eq(t, "f1_macro", m.F1Macro, 1)
	if m.AUCMacro != nil || !strings.Contains(m.Undefined["auc_ovr_macro"], "class 2") {
		t.Errorf("auc_ovr_macro = %v, %q; want undefined naming class 2", val(m.AUCMacro), m.Undefined["auc_ovr_macro"])
	}
	eq(t, "class 0 auc", m.PerClass[0].AUC, 1)
}

func TestMulticlassErrors(t *testing.T) {
	good := []float64{0.5, 0.5, 0.5, 0.5}
	tests := []struct {
		name    string
		labels  []float64
		probs   []float64
		classes int
		want    string
	}{
		{"one class", []float64{0, 0}, []float64{1, 1}, 1, "classes is 1"},
		{"empty", nil, nil, 2, "labels is empty"},
		{"lengths", []float64{0, 1}, []float64{0.5, 0.5, 1}, 2, "labels has 2 rows, so probs needs 4 values (2 classes each) but has 3"},
		{"label out of range", []float64{0, 2}, good, 2, "labels[1] is 2; class labels must be integers in [0, 2)"},
		{"fractional label", []float64{0.5, 1}, good, 2, "labels[0] is 0.5"},
		{"NaN label", []float64{math.NaN(), 1}, good, 2, "labels[0] is NaN"},
		{"negative label", []float64{-1, 1}, good, 2, "labels[0] is -1"},
		{"prob outside", []float64{0, 1}, []float64{0.5, 0.5, 1.5, -0.5}, 2, "probs[2] is 1.5"},
		{"row sum", []float64{0, 1}, []float64{0.5, 0.5, 0.5, 0.4}, 2, "probs row 1 sums to 0.9; class probabilities must sum to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evaluation.Multiclass(tt.labels, tt.probs, tt.classes, evaluation.Options{})
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestRegressionByHand(t *testing.T) {
	// sklearn's docstring examples for r2_score and
	// mean_absolute_percentage_error.
	y := []float64{3, -0.5, 2, 7}
	pred := []float64{2.5, 0, 2, 8}
	m, err := evaluation.Regression(y, pred, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "mse", m.MSE, 0.375)
	eq(t, "rmse", m.RMSE, math.Sqrt(0.375))
	eq(t, "mae", m.MAE, 0.5)
	eq(t, "r2", m.R2, 0.9486081370449679)
	eq(t, "mape", m.MAPE, 0.3273809523809524)

	// A zero target divides by float64's epsilon, as sklearn does.
	m, err = evaluation.Regression([]float64{1, 0, 2.4, 7}, []float32{1.2, 0.1, 2.4, 8}, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.ZeroTargets != 1 || *m.MAPE < 1e14 {
		t.Errorf("zero target: mape %v, zero_targets %d", *m.MAPE, m.ZeroTargets)
	}
}

func TestRegressionUndefined(t *testing.T) {
	tests := []struct {
		name      string
		y, pred   []float64
		undefined []string
	}{
		{"constant targets", []float64{2, 2, 2}, []float64{1, 2, 3}, []string{"r2"}},
		{"one row", []float64{2}, []float64{1}, []string{"r2"}},
		{"overflow", []float64{1e200, -1e200}, []float64{-1e200, 1e200}, []string{"mse", "rmse", "r2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := evaluation.Regression(tt.y, tt.pred, evaluation.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Undefined) != len(tt.undefined) {
				t.Errorf("undefined = %v; want %v", m.Undefined, tt.undefined)
			}
			for _, k := range tt.undefined {
				if m.Undefined[k] == "" {
					t.Errorf("%s defined; undefined = %v", k, m.Undefined)
				}
			}
		})
	}
}

func TestRegressionErrors(t *testing.T) {
	tests := []struct {
		name    string
		y, pred []float64
		want    string
	}{
		{"empty", nil, []float64{1}, "y is empty"},
		{"lengths", []float64{1, 2}, []float64{1}, "y has 2 values, pred has 1"},
		{"NaN target", []float64{1, math.NaN()}, []float64{1, 2}, "y[1] is NaN; values must be finite"},
		{"Inf prediction", []float64{1, 2}, []float64{math.Inf(-1), 2}, "pred[0] is -Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evaluation.Regression(tt.y, tt.pred, evaluation.Options{})
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}
