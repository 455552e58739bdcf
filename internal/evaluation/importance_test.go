package evaluation_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// logistic scores sigmoid(w . x), or w . x when raw; failAfter > 0 makes
// every Predict call after that many fail.
type logistic struct {
	w         []float32
	raw       bool
	names     []string
	failAfter int64
	calls     atomic.Int64
}

func (m *logistic) Signature() models.Signature {
	var s models.Signature
	for _, n := range m.names {
		s.Inputs = append(s.Inputs, models.Column{Name: n, Type: "float"})
	}
	return s
}
func (m *logistic) NumFeatures() int { return len(m.w) }
func (m *logistic) NumOutputs() int  { return 1 }
func (m *logistic) Predict(x, out []float32) error {
	if c := m.calls.Add(1); m.failAfter > 0 && c > m.failAfter {
		return errors.New("model fell over")
	}
	nf := len(m.w)
	for r := range len(x) / nf {
		m.PredictRow(x[r*nf:(r+1)*nf], out[r:r+1])
	}
	return nil
}
func (m *logistic) PredictRow(row, out []float32) error {
	s := float32(0)
	for j, w := range m.w {
		s += w * row[j]
	}
	if m.raw {
		out[0] = s
	} else {
		out[0] = float32(1 / (1 + math.Exp(-float64(s))))
	}
	return nil
}

// dataset has a strong feature a, an unused feature b and a weak
// feature c; n is above the 1024-row chunk so that chunking is exercised.
func dataset(n int) ([]float32, []float64) {
	r := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 0, 3*n)
	y := make([]float64, n)
	for i := range n {
		a, b, c := r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
		x = append(x, float32(a), float32(b), float32(c))
		if a+0.3*c+0.5*r.NormFloat64() > 0 {
			y[i] = 1
		}
	}
	return x, y
}

func TestPermutation(t *testing.T) {
	x, y := dataset(2500)
	m := &logistic{w: []float32{2, 0, 0.6}, names: []string{"a", "b", "c"}}
	for _, metric := range []string{"auc", "log_loss", "accuracy"} {
		t.Run(metric, func(t *testing.T) {
			s, err := evaluation.ScorerFor(metric)
			if err != nil {
				t.Fatal(err)
			}
			res, err := evaluation.Permutation(context.Background(), m, x, y, s, evaluation.PermutationOptions{Seed: 1, Repeats: 4})
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, f := range res.Features {
				order = append(order, f.Feature)
				if len(f.Drops) != 4 {
					t.Errorf("%s: %d drops; want 4", f.Feature, len(f.Drops))
				}
			}
			if !reflect.DeepEqual(order, []string{"a", "c", "b"}) {
				t.Errorf("order = %v; want a, c, b (%+v)", order, res.Features)
			}
			// The model ignores b, so shuffling it changes nothing at all,
			// which also shows every chunk's predictions land on their rows.
			if b := res.Features[2]; b.Mean != 0 || b.Std != 0 || b.Index != 1 {
				t.Errorf("b = %+v; want exactly zero", b)
			}
			if a := res.Features[0]; !(a.Mean > 0) || a.Std < 0 {
				t.Errorf("a = %+v; want a positive drop", a)
			}
			if res.Metric != metric || res.Repeats != 4 || res.Seed != 1 {
				t.Errorf("result header = %+v", res)
			}
		})
	}
}

// The same seed gives the same result however many workers run; another
// seed gives another.
func TestPermutationDeterministic(t *testing.T) {
	x, y := dataset(1500)
	m := &logistic{w: []float32{2, 0.1, 0.6}}
	s, _ := evaluation.ScorerFor("log_loss")
	run := func(seed uint64, workers int) *evaluation.PermutationImportance {
		res, err := evaluation.Permutation(context.Background(), m, x, y, s, evaluation.PermutationOptions{Seed: seed, Workers: workers, Repeats: 3})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	one, three := run(7, 1), run(7, 3)
	if !reflect.DeepEqual(one, three) {
		t.Errorf("1 worker: %+v\n3 workers: %+v", one, three)
	}
	if other := run(8, 2); reflect.DeepEqual(one.Features, other.Features) {
		t.Error("seeds 7 and 8 gave identical shuffles")
	}
	if one.Features[0].Feature != "f0" {
		t.Errorf("unnamed features are %q...; want f0, f1, ...", one.Features[0].Feature)
	}
}

// On a real XGBoost model, the feature no tree splits on has exactly zero
// importance and the others do not.
func TestPermutationXGBoost(t *testing.T) {
	m, err := xgboost.LoadFile("../models/xgboost/testdata/small.json")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	n := 1200
	x := make([]float32, 0, 4*n)
	for range n {
		x = append(x, float32(10+r.Float64()*10), float32(12+r.Float64()*10), float32(80+r.Float64()*15), float32(600+r.Float64()*200))
	}
	pred := make([]float32, n)
	if err := m.Predict(x, pred); err != nil {
		t.Fatal(err)
	}
	y := make([]float64, n)
	for i, p := range pred {
		if float64(p) > r.Float64() {
			y[i] = 1
		}
	}
	s, _ := evaluation.ScorerFor("auc")
	res, err := evaluation.Permutation(context.Background(), m, x, y, s, evaluation.PermutationOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Features {
		if (f.Feature == "radius") != (f.Mean == 0 && f.Std == 0) {
			t.Errorf("%s: mean %v, std %v; only radius, which no tree uses, should be exactly zero", f.Feature, f.Mean, f.Std)
		}
	}
}

func TestPermutationErrors(t *testing.T) {
	x, y := dataset(10)
	auc, _ := evaluation.ScorerFor("auc")
	ok := func() *logistic { return &logistic{w: []float32{1, 1, 1}} }
	tests := []struct {
		name   string
		model  *logistic
		x      []float32
		y      []float64
		scorer evaluation.Scorer
		opt    evaluation.PermutationOptions
		want   string
		code   errs.Code
	}{
		{"no labels", ok(), x, nil, auc, evaluation.PermutationOptions{}, "labels is empty", errs.InvalidArgument},
		{"x length", ok(), x[:29], y, auc, evaluation.PermutationOptions{}, "labels has 10 rows, so x needs 30 values (3 features each) but has 29", errs.InvalidArgument},
		{"repeats", ok(), x, y, auc, evaluation.PermutationOptions{Repeats: -2}, "repeats is -2", errs.InvalidArgument},
		{"workers", ok(), x, y, auc, evaluation.PermutationOptions{Workers: -1}, "workers is -1", errs.InvalidArgument},
		{"names", ok(), x, y, auc, evaluation.PermutationOptions{Features: []string{"a"}}, "features has 1 names; the model has 3 features", errs.InvalidArgument},
		{"no scorer", ok(), x, y, evaluation.Scorer{Name: "mine"}, evaluation.PermutationOptions{}, `scorer "mine" has no Score function`, errs.InvalidArgument},
		{"single class", ok(), x, make([]float64, 10), auc, evaluation.PermutationOptions{}, "auc is undefined on this data: no positive row", errs.FailedPrecondition},
		{"probabilities", &logistic{w: []float32{1, 1, 1}, raw: true}, x, y, func() evaluation.Scorer { s, _ := evaluation.ScorerFor("log_loss"); return s }(),
			evaluation.PermutationOptions{}, "probabilities must be within [0, 1]", errs.InvalidArgument},
		{"predict fails", &logistic{w: []float32{1, 1, 1}, failAfter: 3}, x, y, auc, evaluation.PermutationOptions{Workers: 1}, "feature f0: predict: model fell over", errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evaluation.Permutation(context.Background(), tt.model, tt.x, tt.y, tt.scorer, tt.opt)
			if err == nil || errs.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (%v); want %v containing %q", err, errs.CodeOf(err), tt.code, tt.want)
			}
		})
	}
}

func TestPermutationCancelled(t *testing.T) {
	x, y := dataset(100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := evaluation.ScorerFor("auc")
	_, err := evaluation.Permutation(ctx, &logistic{w: []float32{1, 1, 1}}, x, y, s, evaluation.PermutationOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

func TestScorers(t *testing.T) {
	if _, err := evaluation.ScorerFor("bleu"); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), `metric "bleu" has no scorer`) {
		t.Errorf("unknown metric: %v", err)
	}
	for _, name := range evaluation.ScorerNames {
		if s, err := evaluation.ScorerFor(name); err != nil || s.Name != name {
			t.Errorf("ScorerFor(%q) = %+v, %v", name, s, err)
		}
	}
	labels := []float64{0, 1, 2, 1}
	probs := []float32{0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.5, 0.3, 0.2, 0.4, 0.4, 0.2}
	tests := []struct {
		name    string
		labels  []float64
		pred    []float32
		outputs int
		want    float64
		err     string
	}{
		{"accuracy", labels, probs, 3, 0.5, ""},
		{"f1", []float64{0, 1, 1}, []float32{0.2, 0.6, 0.4}, 1, 2.0 / 3, ""},
		{"auc", []float64{0, 0, 1, 1}, []float32{0.1, 0.4, 0.35, 0.8}, 1, 0.75, ""},
		// AUC ranks, so margins do as well as probabilities.
		{"auc", []float64{0, 0, 1, 1}, []float32{-3, 4, 3.5, 8}, 1, 0.75, ""},
		{"auc", []float64{0, 0, 1, 2}, []float32{-3, 4, 3.5, 8}, 1, 0, "labels[3] is 2; binary labels must be 0 or 1"},
		{"average_precision", labels, probs, 3, 0, "average_precision is for binary classifiers"},
		{"accuracy", labels, probs[:11], 3, 0, "pred has 11 values; labels has 4 rows of 3 outputs"},
		{"mae", []float64{1, 2}, []float32{1.5, 2}, 1, 0.25, ""},
		{"r2", []float64{1, 2}, []float32{1, 2, 3, 4}, 2, 0, "r2 needs one output per row; the model has 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := evaluation.ScorerFor(tt.name)
			got, err := s.Score(tt.labels, tt.pred, tt.outputs, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil || math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("= %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestGain(t *testing.T) {
	got, err := evaluation.Gain([]evaluation.FeatureGain{
		{Feature: "a", TotalGain: 10, Splits: 4},
		{Feature: "b", TotalGain: 0, Splits: 0},
		{Feature: "c", TotalGain: 30, Splits: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []evaluation.GainImportance{
		{Feature: "c", Gain: 10, TotalGain: 30, Splits: 3, Share: 0.75},
		{Feature: "a", Gain: 2.5, TotalGain: 10, Splits: 4, Share: 0.25},
		{Feature: "b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Gain = %+v; want %+v", got, want)
	}

	tests := []struct {
		name  string
		stats []evaluation.FeatureGain
		want  string
	}{
		{"no name", []evaluation.FeatureGain{{TotalGain: 1, Splits: 1}}, "gain[0] has no feature name"},
		{"twice", []evaluation.FeatureGain{{Feature: "a"}, {Feature: "a"}}, `gain[1]: feature "a" is listed twice`},
		{"NaN", []evaluation.FeatureGain{{Feature: "a", TotalGain: math.NaN(), Splits: 1}}, "gain[0] (a): total gain is NaN"},
		{"negative splits", []evaluation.FeatureGain{{Feature: "a", Splits: -1}}, "splits is -1"},
		{"gain without splits", []evaluation.FeatureGain{{Feature: "a", TotalGain: 2}}, "total gain is 2 over zero splits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := evaluation.Gain(tt.stats)
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want %q", err, tt.want)
			}
		})
	}
}
