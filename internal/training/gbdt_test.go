package training

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"testing"
)

// TestGBDTRuntimeAgrees trains each objective and requires the runtime's
// predictions on the training rows to equal what training computed from
// bins: thresholds, default directions and category sets were written as
// the training split them.
func TestGBDTRuntimeAgrees(t *testing.T) {
	for _, obj := range []string{BinaryLogistic, MultiSoftprob, RegSquaredError, CountPoisson} {
		t.Run(obj, func(t *testing.T) {
			d := synth(3000, obj, 1)
			p := DefaultGBDTParams()
			p.Objective = obj
			p.Rounds = 20
			if obj == MultiSoftprob {
				p.NumClass = 3
			}
			res, margins := trainWithMargins(t, p, d)
			got, rt := runtimePredict(t, res.Model, d)
			k := max(1, p.NumClass)
			if rt.NumTrees() != 20*k {
				t.Fatalf("%d trees, want %d", rt.NumTrees(), 20*k)
			}
			want := make([]float32, len(got))
			for r := range d.Rows() {
				m := margins[r*k : (r+1)*k]
				switch obj {
				case BinaryLogistic:
					want[r] = float32(1 / (1 + math.Exp(-float64(m[0]))))
				case CountPoisson:
					want[r] = float32(math.Exp(float64(m[0])))
				case MultiSoftprob:
					softmax(m, want[r*k:(r+1)*k])
				default:
					want[r] = m[0]
				}
			}
			for i := range got {
				if diff := math.Abs(float64(got[i] - want[i])); diff > 1e-6*max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("row %d: runtime %v, training %v", i/k, got[i], want[i])
				}
			}
		})
	}
}

func trainOrFail(t *testing.T, p GBDTParams, train, valid *Dataset) *Result {
	t.Helper()
	res, err := TrainGBDT(context.Background(), p, train, valid)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestGBDTDeterministic: the same seed gives the same model byte for byte
// whatever the number of threads, including with row and column sampling;
// another seed gives another model.
func TestGBDTDeterministic(t *testing.T) {
	d := synth(70000, MultiSoftprob, 2) // more rows than one histogram chunk
	p := DefaultGBDTParams()
	p.Objective, p.NumClass, p.Rounds, p.Seed = MultiSoftprob, 3, 4, 42
	p.Subsample, p.ColsampleByTree, p.ColsampleByLevel, p.ColsampleByNode = 0.8, 0.9, 0.9, 0.8
	var first []byte
	for _, threads := range []int{1, 2, 5} {
		p.Threads = threads
		got := trainOrFail(t, p, d, nil).Model.JSON()
		if first == nil {
			first = got
		} else if !bytes.Equal(got, first) {
			t.Fatalf("%d threads gave a different model from 1 thread", threads)
		}
	}
	p.Seed = 43
	if bytes.Equal(trainOrFail(t, p, d, nil).Model.JSON(), first) {
		t.Fatal("seeds 42 and 43 gave the same model despite sampling")
	}
}

// TestGBDTEarlyStopping: with a validation set that the model starts to
// overfit, training stops EarlyStoppingRounds after the best round and
// keeps the rounds up to it, and the model file says which that was.
func TestGBDTEarlyStopping(t *testing.T) {
	train, valid := synth(600, BinaryLogistic, 3), synth(600, BinaryLogistic, 4)
	p := DefaultGBDTParams()
	p.Rounds, p.MaxDepth, p.LearningRate, p.MinChildWeight = 300, 8, 0.5, 0
	p.EarlyStoppingRounds = 5
	res := trainOrFail(t, p, train, valid)
	if res.Rounds == p.Rounds {
		t.Fatalf("trained all %d rounds; expected the validation logloss to stop it", p.Rounds)
	}
	if res.BestIteration != res.Rounds-1-p.EarlyStoppingRounds {
		t.Fatalf("stopped after %d rounds with best iteration %d; want %d rounds after it", res.Rounds, res.BestIteration, p.EarlyStoppingRounds)
	}
	for i, s := range res.History {
		if s < res.BestScore {
			t.Fatalf("round %d scored %v, better than the best %v", i, s, res.BestScore)
		}
	}
	if res.History[res.BestIteration] != res.BestScore {
		t.Fatalf("best score %v is not round %d's %v", res.BestScore, res.BestIteration, res.History[res.BestIteration])
	}
	m := res.Model
	if m.NumTrees() != res.BestIteration+1 {
		t.Fatalf("model has %d trees; early stopping should keep %d", m.NumTrees(), res.BestIteration+1)
	}
	_, rt := runtimePredict(t, m, valid)
	if got := rt.Attributes()["best_iteration"]; got != strconv.Itoa(res.BestIteration) {
		t.Fatalf("best_iteration attribute %q, want %d", got, res.BestIteration)
	}
	// The kept model scores what the best round scored.
	probs, _ := runtimePredict(t, m, valid)
	margins := make([]float32, len(probs))
	for i, pr := range probs {
		margins[i] = float32(math.Log(float64(pr) / (1 - float64(pr))))
	}
	if got := evaluate(MetricLogLoss, newObjective(BinaryLogistic, 0, 1, 0), margins, valid.Labels, nil); math.Abs(got-res.BestScore) > 1e-5 {
		t.Fatalf("kept model's validation logloss %v; best round's %v", got, res.BestScore)
	}

	// AUC is maximised.
	p.EvalMetric = MetricAUC
	res = trainOrFail(t, p, train, valid)
	for _, s := range res.History {
		if s > res.BestScore {
			t.Fatalf("AUC %v beats the best %v: AUC must be maximised", s, res.BestScore)
		}
	}
}

// TestGBDTCategorical: a feature whose categories' effects are not ordered
// by code is learnt better as categorical than as numbers.
func TestGBDTCategorical(t *testing.T) {
	train, test := synth(4000, BinaryLogistic, 5), synth(4000, BinaryLogistic, 6)
	p := DefaultGBDTParams()
	p.Rounds, p.MaxDepth, p.LearningRate = 30, 3, 0.2
	score := func(categorical bool) float64 {
		tr, te := *train, *test
		if !categorical {
			tr.Categorical, te.Categorical = nil, nil
		}
		res := trainOrFail(t, p, &tr, nil)
		probs, _ := runtimePredict(t, res.Model, &te)
		return auc(probs, te.Labels, nil)
	}
	cat, num := score(true), score(false)
	t.Logf("test AUC: categorical %.4f, codes as numbers %.4f", cat, num)
	if cat < num+0.01 {
		t.Fatalf("categorical AUC %.4f does not beat codes-as-numbers %.4f by 0.01", cat, num)
	}
	for _, onehot := range []int{1, 4, 16} {
		p.MaxCatToOnehot = onehot
		if a := score(true); a < num {
			t.Errorf("max_cat_to_onehot %d: AUC %.4f below codes-as-numbers %.4f", onehot, a, num)
		}
	}
}

// TestGBDTWeights: weighting a row 2 trains the model duplicating it does.
func TestGBDTWeights(t *testing.T) {
	d := synth(2000, RegSquaredError, 8)
	weighted := *d
	weighted.Weights = make([]float32, d.Rows())
	dup := &Dataset{Columns: make([][]float32, d.NumFeatures()), Names: d.Names, Categorical: d.Categorical}
	for r := range d.Rows() {
		copies := 1 + r%2
		weighted.Weights[r] = float32(copies)
		for range copies {
			for j := range d.Columns {
				dup.Columns[j] = append(dup.Columns[j], d.Columns[j][r])
			}
			dup.Labels = append(dup.Labels, d.Labels[r])
		}
	}
	p := DefaultGBDTParams()
	p.Objective, p.Rounds, p.MaxBin = RegSquaredError, 10, 4096
	a, _ := runtimePredict(t, trainOrFail(t, p, &weighted, nil).Model, d)
	b, _ := runtimePredict(t, trainOrFail(t, p, dup, nil).Model, d)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-3 {
			t.Fatalf("row %d: weighted %v, duplicated %v", i, a[i], b[i])
		}
	}
}

func TestGBDTCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TrainGBDT(ctx, DefaultGBDTParams(), synth(100, BinaryLogistic, 1), nil); err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
