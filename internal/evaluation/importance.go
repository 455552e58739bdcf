package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
)

// Importance holds the feature importances a report carries.
type Importance struct {
	Gain        []GainImportance       `json:"gain,omitempty"`
	Permutation *PermutationImportance `json:"permutation,omitempty"`
}

// GainImporter is what a tree model exposes for gain importance; the
// XGBoost runtime implements it. Features no tree splits on are listed
// with zeros.
type GainImporter interface {
	FeatureGain() []FeatureGain
}

// FeatureGain is one feature's split statistics summed over a model's
// trees.
type FeatureGain = models.FeatureGain

// GainImportance is one feature's gain importance.
type GainImportance struct {
	Feature string `json:"feature"`
	// Gain is the mean loss reduction per split on the feature,
	// XGBoost's default importance_type "gain"; zero when unused.
	Gain      float64 `json:"gain"`
	TotalGain float64 `json:"total_gain"`
	Splits    int     `json:"splits"`
	// Share is TotalGain over all features' total: comparable across
	// models, unlike raw gains, whose scale follows the loss.
	Share float64 `json:"share"`
}

// Gain turns split statistics into importances ordered by total gain,
// largest first (ties keep their input order).
func Gain(stats []FeatureGain) ([]GainImportance, error) {
	seen := map[string]bool{}
	sum := 0.0
	for i, s := range stats {
		switch {
		case s.Feature == "":
			return nil, errs.Invalid("gain[%d] has no feature name", i)
		case seen[s.Feature]:
			return nil, errs.Invalid("gain[%d]: feature %q is listed twice", i, s.Feature)
		case math.IsNaN(s.TotalGain) || math.IsInf(s.TotalGain, 0):
			return nil, errs.Invalid("gain[%d] (%s): total gain is %v; it must be finite", i, s.Feature, s.TotalGain)
		case s.Splits < 0:
			return nil, errs.Invalid("gain[%d] (%s): splits is %d; it must not be negative", i, s.Feature, s.Splits)
		case s.Splits == 0 && s.TotalGain != 0:
			return nil, errs.Invalid("gain[%d] (%s): total gain is %v over zero splits", i, s.Feature, s.TotalGain)
		}
		seen[s.Feature] = true
		sum += s.TotalGain
	}
	out := make([]GainImportance, len(stats))
	for i, s := range stats {
		g := GainImportance{Feature: s.Feature, TotalGain: s.TotalGain, Splits: s.Splits}
		if s.Splits > 0 {
			g.Gain = s.TotalGain / float64(s.Splits)
		}
		if sum > 0 {
			g.Share = s.TotalGain / sum
		}
		out[i] = g
	}
	slices.SortStableFunc(out, func(a, b GainImportance) int { return -cmpFloat(a.TotalGain, b.TotalGain) })
	return out, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Scorer rates a model's predictions, outputs values per row, against
// labels with optional weights.
type Scorer struct {
	Name           string
	HigherIsBetter bool
	Score          func(labels []float64, pred []float32, outputs int, weights []float64) (float64, error)
}

// ScorerNames are the names ScorerFor knows, which are also the report's
// metric keys.
var ScorerNames = []string{"auc", "average_precision", "log_loss", "accuracy", "f1", "mse", "rmse", "mae", "r2"}

// ScorerFor returns the built-in scorer of a metric name. Classification
// scorers read one output per row as the positive class's probability
// (deciding at DefaultThreshold) and two or more as class probabilities.
func ScorerFor(name string) (Scorer, error) {
	classify := func(key string, higher bool) Scorer {
		return Scorer{Name: key, HigherIsBetter: higher, Score: func(labels []float64, pred []float32, outputs int, weights []float64) (float64, error) {
			opt := Options{Weights: weights}
			if outputs == 1 && key == "auc" {
				return binaryAUC(labels, pred, weights)
			}
			if outputs == 1 {
				m, err := Binary(labels, pred, DefaultThreshold, opt)
				if err != nil {
					return 0, err
				}
				return pick(key, m.namedMetrics(), m.Undefined)
			}
			if outputs < 1 || len(pred) != len(labels)*outputs {
				return 0, errs.Invalid("pred has %d values; labels has %d rows of %d outputs", len(pred), len(labels), outputs)
			}
			m, err := Multiclass(labels, pred, outputs, opt)
			if err != nil {
				return 0, err
			}
			mk := key
			switch key {
			case "auc":
				mk = "auc_ovr_macro"
			case "f1":
				mk = "f1_macro"
			case "average_precision":
				return 0, errs.Invalid("average_precision is for binary classifiers; the model has %d outputs", outputs)
			}
			return pick(mk, m.namedMetrics(), m.Undefined)
		}}
	}
	regress := func(key string, higher bool) Scorer {
		return Scorer{Name: key, HigherIsBetter: higher, Score: func(labels []float64, pred []float32, outputs int, weights []float64) (float64, error) {
			if outputs != 1 {
				return 0, errs.Invalid("%s needs one output per row; the model has %d", key, outputs)
			}
			m, err := Regression(labels, pred, Options{Weights: weights})
			if err != nil {
				return 0, err
			}
			return pick(key, m.namedMetrics(), m.Undefined)
		}}
	}
	higher, _ := HigherIsBetter(name)
	switch name {
	case "auc", "average_precision", "accuracy", "f1", "log_loss":
		return classify(name, higher), nil
	case "mse", "rmse", "mae", "r2":
		return regress(name, higher), nil
	}
	return Scorer{}, errs.Invalid("metric %q has no scorer; use one of %v", name, ScorerNames)
}

// binaryAUC scores without Binary's check that pred holds
// probabilities: AUC only ranks, so margins (binary:logitraw) do as well.
func binaryAUC(labels []float64, pred []float32, weights []float64) (float64, error) {
	if err := checkLengths("labels", len(labels), "pred", len(pred)); err != nil {
		return 0, err
	}
	y, err := binaryLabels("labels", labels)
	if err != nil {
		return 0, err
	}
	p, err := finite("pred", pred)
	if err != nil {
		return 0, err
	}
	w, _, err := weightsOf("weights", weights, len(y), "labels")
	if err != nil {
		return 0, err
	}
	var pos, neg float64
	for i, label := range y {
		if label == 1 {
			pos += w[i]
		} else {
			neg += w[i]
		}
	}
	switch {
	case pos == 0:
		return 0, errs.New(errs.FailedPrecondition, "auc is undefined on this data: %s; AUC needs both classes", noClass(len(y), "positive", "1"))
	case neg == 0:
		return 0, errs.New(errs.FailedPrecondition, "auc is undefined on this data: %s; AUC needs both classes", noClass(len(y), "negative", "0"))
	}
	auc, _ := rankMetrics(y, p, w)
	return auc, nil
}

func pick(key string, named []namedMetric, undefined map[string]string) (float64, error) {
	for _, nm := range named {
		if nm.key == key {
			if nm.v == nil {
				return 0, errs.New(errs.FailedPrecondition, "%s is undefined on this data: %s", key, undefined[key])
			}
			return *nm.v, nil
		}
	}
	return 0, errs.Invalid("metric %q does not apply to this task", key)
}

// DefaultRepeats matches sklearn's permutation_importance n_repeats.
const DefaultRepeats = 5

// MaxRepeats bounds Repeats; the standard error of the mean shrinks as
// 1/sqrt(repeats), so beyond this it stops paying for the predictions.
const MaxRepeats = 1000

// permutationChunk rows are predicted at a time, so each worker copies
// a chunk of the matrix rather than all of it.
const permutationChunk = 1024

// PermutationOptions configure Permutation.
type PermutationOptions struct {
	// Repeats is how many shuffles per feature; zero means DefaultRepeats.
	Repeats int
	// Seed fixes the shuffles: the same seed gives the same result
	// whatever Workers is.
	Seed uint64
	// Workers score features in parallel; zero means GOMAXPROCS.
	Workers int
	// Weights, when set, weight the rows in the scorer.
	Weights []float64
	// Features name the model's features; nil takes the model's
	// signature, or f0, f1, ... when it names a different number.
	Features []string
}

// PermutationImportance is how much a metric worsens when each feature's
// column is shuffled, breaking its link to the labels.
type PermutationImportance struct {
	Metric         string  `json:"metric"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Baseline       float64 `json:"baseline"`
	Repeats        int     `json:"repeats"`
	Seed           uint64  `json:"seed"`
	// Features are ordered by Mean, largest first (ties by index).
	Features []FeatureImportance `json:"features"`
}

// FeatureImportance is one feature's permutation importance.
type FeatureImportance struct {
	Feature string `json:"feature"`
	Index   int    `json:"index"`
	// Drops are how much worse the metric is than Baseline after each
	// shuffle (positive when the feature matters, whichever way the metric
	// points); Mean and Std (population, as sklearn's) summarise them.
	Mean  float64   `json:"mean"`
	Std   float64   `json:"std"`
	Drops []float64 `json:"drops"`
}

// Permutation computes permutation importance on an evaluation set: x is
// row-major with m.NumFeatures() columns (NaN missing), one row per label.
func Permutation(ctx context.Context, m models.Model, x []float32, labels []float64, s Scorer, opt PermutationOptions) (*PermutationImportance, error) {
	nf, no, n := m.NumFeatures(), m.NumOutputs(), len(labels)
	switch {
	case n == 0:
		return nil, errs.Invalid("labels is empty; permutation importance needs at least one row")
	case nf < 1 || no < 1:
		return nil, errs.Invalid("the model has %d features and %d outputs; permutation importance needs at least one of each", nf, no)
	case len(x) != n*nf:
		return nil, errs.Invalid("x and labels differ in length: labels has %d rows, so x needs %d values (%d features each) but has %d", n, n*nf, nf, len(x))
	case s.Score == nil:
		return nil, errs.Invalid("scorer %q has no Score function", s.Name)
	}
	repeats := opt.Repeats
	if repeats == 0 {
		repeats = DefaultRepeats
	}
	if repeats < 1 || repeats > MaxRepeats {
		return nil, errs.Invalid("repeats is %d; it must be between 1 and %d", repeats, MaxRepeats)
	}
	names, err := featureNames(m, opt.Features, nf)
	if err != nil {
		return nil, err
	}
	workers := opt.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers < 1 {
		return nil, errs.Invalid("workers is %d; it must be at least 1", workers)
	}
	workers = min(workers, nf)

	out := make([]float32, n*no)
	if err := m.Predict(x, out); err != nil {
		return nil, fmt.Errorf("predict the evaluation set: %w", err)
	}
	base, err := score(s, labels, out, no, opt.Weights)
	if err != nil {
		return nil, err
	}

	res := &PermutationImportance{Metric: s.Name, HigherIsBetter: s.HigherIsBetter, Baseline: base, Repeats: repeats, Seed: opt.Seed,
		Features: make([]FeatureImportance, nf)}
	failed := make([]error, nf)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := permuter{m: m, x: x, labels: labels, s: s, weights: opt.Weights, nf: nf, no: no, base: base,
				buf: make([]float32, min(n, permutationChunk)*nf), out: make([]float32, n*no), col: make([]float32, n)}
			for j := range jobs {
				fi, err := p.feature(wctx, j, repeats, opt.Seed)
				if err != nil {
					failed[j] = err
					cancel()
					continue
				}
				fi.Feature = names[j]
				res.Features[j] = fi
			}
		}()
	}
	for j := range nf {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The lowest-numbered failure that is not a cancellation another
	// failure caused.
	for j, err := range failed {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("feature %s: %w", names[j], err)
		}
	}
	slices.SortStableFunc(res.Features, func(a, b FeatureImportance) int { return -cmpFloat(a.Mean, b.Mean) })
	return res, nil
}

func featureNames(m models.Model, given []string, nf int) ([]string, error) {
	if given != nil {
		if len(given) != nf {
			return nil, errs.Invalid("features has %d names; the model has %d features", len(given), nf)
		}
		return given, nil
	}
	if in := m.Signature().Inputs; len(in) == nf {
		names := make([]string, nf)
		for i, c := range in {
			names[i] = c.Name
		}
		return names, nil
	}
	names := make([]string, nf)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	return names, nil
}

func score(s Scorer, labels []float64, pred []float32, outputs int, weights []float64) (float64, error) {
	v, err := s.Score(labels, pred, outputs, weights)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errs.New(errs.FailedPrecondition, "%s scored %v; permutation importance needs a finite score", s.Name, v)
	}
	return v, nil
}

// permuter holds one worker's scratch buffers.
type permuter struct {
	m        models.Model
	x        []float32
	labels   []float64
	s        Scorer
	weights  []float64
	nf, no   int
	base     float64
	buf, out []float32
	col      []float32
}

// feature shuffles column j repeats times. Its random stream depends only
// on the seed and j, so results do not depend on which worker runs it.
func (p *permuter) feature(ctx context.Context, j, repeats int, seed uint64) (FeatureImportance, error) {
	n := len(p.labels)
	rng := rand.New(rand.NewPCG(seed, uint64(j)))
	for i := range n {
		p.col[i] = p.x[i*p.nf+j]
	}
	fi := FeatureImportance{Index: j, Drops: make([]float64, repeats)}
	for r := range repeats {
		if err := ctx.Err(); err != nil {
			return fi, err
		}
		rng.Shuffle(n, func(a, b int) { p.col[a], p.col[b] = p.col[b], p.col[a] })
		for lo := 0; lo < n; lo += permutationChunk {
			hi := min(lo+permutationChunk, n)
			b := p.buf[:(hi-lo)*p.nf]
			copy(b, p.x[lo*p.nf:hi*p.nf])
			for i := lo; i < hi; i++ {
				b[(i-lo)*p.nf+j] = p.col[i]
			}
			if err := p.m.Predict(b, p.out[lo*p.no:hi*p.no]); err != nil {
				return fi, fmt.Errorf("predict: %w", err)
			}
		}
		v, err := score(p.s, p.labels, p.out, p.no, p.weights)
		if err != nil {
			return fi, err
		}
		if p.s.HigherIsBetter {
			fi.Drops[r] = p.base - v
		} else {
			fi.Drops[r] = v - p.base
		}
	}
	for _, d := range fi.Drops {
		fi.Mean += d
	}
	fi.Mean /= float64(repeats)
	for _, d := range fi.Drops {
		fi.Std += (d - fi.Mean) * (d - fi.Mean)
	}
	fi.Std = math.Sqrt(fi.Std / float64(repeats))
	return fi, nil
}
