package evaluation_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
)

func val(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func eq(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-12 {
		t.Errorf("%s = %v; want %v", what, val(got), want)
	}
}

func TestBinaryByHand(t *testing.T) {
	tests := []struct {
		name      string
		labels    []float64
		probs     []float64
		weights   []float64
		threshold float64
		want      map[string]float64
		undefined []string
	}{
		{
			// sklearn's docstring examples for roc_auc_score and
			// average_precision_score.
			name: "sklearn docstring", labels: []float64{0, 0, 1, 1}, probs: []float64{0.1, 0.4, 0.35, 0.8}, threshold: 0.5,
			want: map[string]float64{"auc": 0.75, "average_precision": 0.8333333333333333, "accuracy": 0.75, "precision": 1, "recall": 0.5, "f1": 2.0 / 3},
		},
		{
			// A tie between a positive and a negative counts half.
			name: "tie", labels: []float64{0, 1}, probs: []float64{0.5, 0.5}, threshold: 0.5,
			want: map[string]float64{"auc": 0.5, "average_precision": 0.5, "accuracy": 0.5, "precision": 0.5, "recall": 1},
		},
		{
			// The threshold is inclusive.
			name: "at threshold", labels: []float64{1, 0}, probs: []float64{0.7, 0.69}, threshold: 0.7,
			want: map[string]float64{"accuracy": 1, "precision": 1, "recall": 1, "f1": 1},
		},
		{
			// Weights scale rows; a zero weight removes one.
			name: "weights", labels: []float64{0, 0, 1, 1}, probs: []float64{0.9, 0.1, 0.8, 0.2}, weights: []float64{0, 1, 3, 1}, threshold: 0.5,
			want: map[string]float64{"auc": 1, "accuracy": 0.8, "precision": 1, "recall": 0.75},
		},
		{
			name: "nothing predicted positive", labels: []float64{0, 1, 1}, probs: []float64{0.1, 0.2, 0.3}, threshold: 0.9,
			want: map[string]float64{"auc": 1, "recall": 0, "f1": 0}, undefined: []string{"precision"},
		},
		{
			name: "all negative", labels: []float64{0, 0, 0}, probs: []float64{0.1, 0.2, 0.3}, threshold: 0.25,
			want:      map[string]float64{"accuracy": 2.0 / 3, "precision": 0, "f1": 0},
			undefined: []string{"auc", "average_precision", "recall"},
		},
		{
			name: "all negative, nothing predicted", labels: []float64{0, 0}, probs: []float64{0.1, 0.2}, threshold: 0.5,
			want: map[string]float64{"accuracy": 1}, undefined: []string{"auc", "average_precision", "recall", "precision", "f1"},
		},
		{
			name: "all positive", labels: []float64{1, 1}, probs: []float64{0.1, 0.9}, threshold: 0.5,
			want: map[string]float64{"average_precision": 1, "precision": 1, "recall": 0.5}, undefined: []string{"auc"},
		},
		{
			// Positives whose weights are all zero do not count as present.
			name: "positives weigh nothing", labels: []float64{0, 1}, probs: []float64{0.1, 0.9}, weights: []float64{1, 0}, threshold: 0.5,
			want: map[string]float64{"accuracy": 1}, undefined: []string{"auc", "average_precision", "recall", "precision", "f1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := evaluation.Binary(tt.labels, tt.probs, tt.threshold, evaluation.Options{Weights: tt.weights})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*float64{"auc": m.AUC, "average_precision": m.AveragePrecision, "accuracy": m.Accuracy,
				"precision": m.Precision, "recall": m.Recall, "f1": m.F1}
			for k, w := range tt.want {
				eq(t, k, got[k], w)
			}
			for _, k := range tt.undefined {
				if got[k] != nil {
					t.Errorf("%s = %v; want undefined", k, *got[k])
				}
				if m.Undefined[k] == "" {
					t.Errorf("%s is undefined without a reason", k)
				}
			}
			if len(m.Undefined) != len(tt.undefined) {
				t.Errorf("undefined = %v; want only %v", m.Undefined, tt.undefined)
			}
		})
	}
}

// Log-loss clips at the machine epsilon of the probabilities' type, so a
// confident miss costs -log(2^-52) in float64 and -log(2^-23) in float32,
// as sklearn's log_loss on arrays of each type.
func TestBinaryLogLossClipsByType(t *testing.T) {
	labels := []float64{0, 1}
	m64, err := evaluation.Binary(labels, []float64{1, 0}, 0.5, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "float64 log_loss", m64.LogLoss, 52*math.Ln2)
	m32, err := evaluation.Binary(labels, []float32{1, 0}, 0.5, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "float32 log_loss", m32.LogLoss, 23*math.Ln2)
	eq(t, "brier", m32.Brier, 1)
}

// The calibration_curve docstring example, three bins.
func TestCalibrationByHand(t *testing.T) {
	labels := []float64{0, 0, 0, 0, 1, 1, 1, 1, 1}
	probs := []float64{0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1}
	m, err := evaluation.Binary(labels, probs, 0.5, evaluation.Options{Bins: 3})
	if err != nil {
		t.Fatal(err)
	}
	bins := m.Calibration.Bins
	if len(bins) != 3 || bins[0].Lower != 0 || bins[2].Upper != 1 {
		t.Fatalf("bins = %+v", bins)
	}
	// 0.1 to 0.3 fall in [0, 1/3], 0.4 and 0.65 in (1/3, 2/3], the rest
	// in (2/3, 1]; sklearn: prob_true [0, 0.5, 1], prob_pred [0.2, 0.525,
	// 0.85].
	wantRows := []int{3, 2, 4}
	wantFrac := []float64{0, 0.5, 1}
	wantMean := []float64{0.2, 0.525, 0.85}
	for i, b := range bins {
		if b.Rows != wantRows[i] {
			t.Errorf("bin %d rows = %d; want %d", i, b.Rows, wantRows[i])
		}
		eq(t, "fraction_positive", b.FractionPositive, wantFrac[i])
		eq(t, "mean_predicted", b.MeanPredicted, wantMean[i])
	}
	eq(t, "ece", m.Calibration.ECE, 3.0/9*0.2+2.0/9*0.025+4.0/9*0.15)
	if m, err = evaluation.Binary(labels, probs, 0.5, evaluation.Options{Bins: 10}); err != nil {
		t.Fatal(err)
	}
	if b := m.Calibration.Bins[5]; b.Rows != 0 || b.MeanPredicted != nil || b.FractionPositive != nil {
		t.Errorf("empty bin = %+v; want nil means", b)
	}
}

func TestBinaryErrors(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		labels    []float64
		probs     []float64
		weights   []float64
		threshold float64
		bins      int
		want      string
	}{
		{"empty", nil, nil, nil, 0.5, 0, "labels is empty"},
		{"lengths", []float64{0, 1, 1}, []float64{0.5, 0.5}, nil, 0.5, 0, "labels has 3 values, probs has 2"},
		{"NaN label", []float64{0, nan}, []float64{0.5, 0.5}, nil, 0.5, 0, "labels[1] is NaN; binary labels must be 0 or 1"},
		{"label 2", []float64{2, 1}, []float64{0.5, 0.5}, nil, 0.5, 0, "labels[0] is 2"},
		{"prob above 1", []float64{0, 1, 1}, []float64{0.5, 0.5, 1.5}, nil, 0.5, 0, "probs[2] is 1.5; probabilities must be within [0, 1]"},
		{"negative prob", []float64{0, 1}, []float64{-0.1, 0.5}, nil, 0.5, 0, "probs[0] is -0.1"},
		{"NaN prob", []float64{0, 1}, []float64{0.1, nan}, nil, 0.5, 0, "probs[1] is NaN"},
		{"threshold", []float64{0, 1}, []float64{0.1, 0.2}, nil, 1.5, 0, "threshold is 1.5"},
		{"NaN threshold", []float64{0, 1}, []float64{0.1, 0.2}, nil, nan, 0, "threshold is NaN"},
		{"bins", []float64{0, 1}, []float64{0.1, 0.2}, nil, 0.5, -1, "bins is -1"},
		{"too many bins", []float64{0, 1}, []float64{0.1, 0.2}, nil, 0.5, 1001, "bins is 1001"},
		{"weights length", []float64{0, 1}, []float64{0.1, 0.2}, []float64{1}, 0.5, 0, "weights has 1 values; labels has 2 rows"},
		{"negative weight", []float64{0, 1}, []float64{0.1, 0.2}, []float64{1, -1}, 0.5, 0, "weights[1] is -1"},
		{"NaN weight", []float64{0, 1}, []float64{0.1, 0.2}, []float64{nan, 1}, 0.5, 0, "weights[0] is NaN"},
		{"Inf weight", []float64{0, 1}, []float64{0.1, 0.2}, []float64{math.Inf(1), 1}, 0.5, 0, "weights[0] is +Inf"},
		{"zero weights", []float64{0, 1}, []float64{0.1, 0.2}, []float64{0, 0}, 0.5, 0, "weights sum to zero"},
		{"weights overflow", []float64{0, 1}, []float64{0.1, 0.2}, []float64{math.MaxFloat64, math.MaxFloat64}, 0.5, 0, "weights sum to +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evaluation.Binary(tt.labels, tt.probs, tt.threshold, evaluation.Options{Weights: tt.weights, Bins: tt.bins})
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

// A report with undefined metrics marshals with nulls and reasons, never
// NaN (which encoding/json refuses).
func TestBinaryJSONHasNullsNotNaN(t *testing.T) {
	m, err := evaluation.Binary([]float64{1, 1}, []float32{0.2, 0.3}, 0.5, evaluation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := back["auc"]; !ok || v != nil {
		t.Errorf("auc = %v (present %v); want null", v, ok)
	}
	if v, ok := back["precision"]; !ok || v != nil {
		t.Errorf("precision = %v (present %v); want null", v, ok)
	}
	reasons, _ := back["undefined"].(map[string]any)
	if !strings.Contains(reasons["auc"].(string), "AUC needs both classes") {
		t.Errorf("undefined = %v", reasons)
	}
}
