package training

import (
	"bytes"
	"context"
	"math"
	"testing"
)

// linearCrossCases are the linear models TestXGBoostCrossCheck trains:
// each must score the same in XGBoost and predict what scikit-learn's
// estimator with the same objective predicts.
func linearCrossCases() []crossCase {
	return []crossCase{
		{name: "linear_logistic", data: "cancer_missing", linear: true, sklearn: "logistic",
			params: map[string]string{"objective": BinaryLogistic, "lambda": "0.001"}},
		{name: "linear_ridge", data: "diabetes", linear: true, sklearn: "ridge",
			params: map[string]string{"objective": RegSquaredError, "lambda": "0.01"}},
		{name: "linear_ridge_raw", data: "friedman", linear: true, sklearn: "ridge",
			params: map[string]string{"objective": RegSquaredError, "lambda": "0.1", "standardize": "false"}},
		{name: "linear_multinomial", data: "wine", linear: true, sklearn: "logistic",
			params: map[string]string{"objective": MultiSoftprob, "num_class": "3", "lambda": "0.01"}},
		{name: "linear_poisson", data: "poisson_numeric", linear: true, sklearn: "poisson",
			params: map[string]string{"objective": CountPoisson, "lambda": "0.001"}},
	}
}

// TestLinearRecovers: without noise or penalty, least squares finds the
// weights the labels were made with, whichever way weights are penalised,
// and the runtime predicts the labels back, missing values adding nothing.
func TestLinearRecovers(t *testing.T) {
	d := synth(5000, RegSquaredError, 12)
	d.Categorical = nil
	for r := range d.Rows() {
		y := float32(2)
		for j, w := range []float32{3, -1, 0.5, 0, 2, 0.25} {
			if v := d.Columns[j][r]; v == v {
				y += w * v
			}
		}
		d.Labels[r] = y
	}
	for _, standardize := range []bool{true, false} {
		p := DefaultLinearParams()
		p.Objective, p.Lambda, p.Standardize, p.Tolerance = RegSquaredError, 0, standardize, 1e-10
		res, err := TrainLinear(context.Background(), p, d)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Converged {
			t.Fatalf("standardize=%v: not converged in %d iterations", standardize, res.Iterations)
		}
		want := []float32{3, -1, 0.5, 0, 2, 0.25, 2}
		for i, w := range res.Model.linear {
			if math.Abs(float64(w-want[i])) > 1e-4 {
				t.Fatalf("standardize=%v: weight %d is %v, want %v (all %v)", standardize, i, w, want[i], res.Model.linear)
			}
		}
		pred, _ := runtimePredict(t, res.Model, d)
		for r, y := range d.Labels {
			if math.Abs(float64(pred[r]-y)) > 1e-3 {
				t.Fatalf("row %d: predicted %v, label %v", r, pred[r], y)
			}
		}
	}
}

// TestLinearDeterministic: the same model whatever the number of threads.
func TestLinearDeterministic(t *testing.T) {
	d := synth(40000, MultiSoftprob, 13)
	d.Categorical = nil
	p := DefaultLinearParams()
	p.Objective, p.NumClass = MultiSoftprob, 3
	var first []byte
	for _, threads := range []int{1, 2, 3} {
		p.Threads = threads
		res, err := TrainLinear(context.Background(), p, d)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Model.JSON(); first == nil {
			first = got
		} else if !bytes.Equal(got, first) {
			t.Fatalf("%d threads gave a different model from 1 thread", threads)
		}
	}
}

// TestLinearPenalty: a larger lambda shrinks the weights.
func TestLinearPenalty(t *testing.T) {
	d := synth(3000, BinaryLogistic, 14)
	d.Categorical = nil
	norm := func(lambda float64) float64 {
		p := DefaultLinearParams()
		p.Lambda = lambda
		res, err := TrainLinear(context.Background(), p, d)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, w := range res.Model.linear[:d.NumFeatures()] {
			s += float64(w) * float64(w)
		}
		return s
	}
	if a, b := norm(0.001), norm(0.1); b >= a {
		t.Fatalf("lambda 0.1 left weights of squared norm %v, not below lambda 0.001's %v", b, a)
	}
}
