package training

import (
	"context"
	"math"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
)

// Result is a trained model and how training went.
type Result struct {
	Model *Model
	// Rounds is the number of rounds trained, counting any that early
	// stopping then dropped.
	Rounds int
	// BestIteration is the 0-based round with the best validation score
	// (-1 without validation data). With early stopping it is the
	// model's last round: later rounds are dropped.
	BestIteration int
	BestScore     float64
	// Metric names the validation metric, and History holds its value
	// after each round.
	Metric  string
	History []float64
}

// gradChunk rows have their gradients computed by one task.
const gradChunk = 16384

// TrainGBDT grows gradient-boosted trees on train as XGBoost's hist method
// does with the same parameters, and returns an XGBoost gbtree model.
// valid, which may be nil, is scored after every round; with
// EarlyStoppingRounds set, training stops when its metric has not improved
// for that many rounds and the model keeps the rounds up to the best.
func TrainGBDT(ctx context.Context, p GBDTParams, train, valid *Dataset) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, invalid(err)
	}
	obj := newObjective(p.Objective, p.NumClass, p.ScalePosWeight, p.maxDeltaStep())
	if err := train.validate("training data", nil); err != nil {
		return nil, invalid(err)
	}
	if err := obj.checkLabels("training data", train.Labels); err != nil {
		return nil, invalid(err)
	}
	if valid != nil {
		if err := valid.validate("validation data", train); err != nil {
			return nil, invalid(err)
		}
		if err := obj.checkLabels("validation data", valid.Labels); err != nil {
			return nil, invalid(err)
		}
	} else if p.EarlyStoppingRounds > 0 {
		return nil, errs.Invalid("early_stopping_rounds %d: needs validation data to watch", p.EarlyStoppingRounds)
	}
	base := obj.defaultBaseScore(train)
	if p.BaseScore != nil {
		base = *p.BaseScore
	}
	workers := threadCount(p.Threads)
	feats, wide := sketch(train, p.MaxBin, workers)
	if wide {
		return trainGBDT(ctx, p, obj, float32(base), quantize[uint16](train, feats, workers), train, valid, workers)
	}
	return trainGBDT(ctx, p, obj, float32(base), quantize[uint8](train, feats, workers), train, valid, workers)
}

func trainGBDT[B binType](ctx context.Context, p GBDTParams, obj objective, base float32, q *quantized[B], train, valid *Dataset, workers int) (*Result, error) {
	tp := treeParams{
		maxDepth: p.MaxDepth, eta: float32(p.LearningRate),
		minChildWeight: p.MinChildWeight, lambda: p.Lambda, alpha: p.Alpha, gamma: p.Gamma,
		maxDeltaStep: p.maxDeltaStep(), maxCatToOnehot: p.MaxCatToOnehot, maxCatThreshold: p.MaxCatThreshold,
	}
	g := newGrower(q, tp, workers, p.Seed, [3]float64{p.ColsampleByTree, p.ColsampleByLevel, p.ColsampleByNode})
	k := obj.groups
	n := train.Rows()
	baseMargin := obj.baseMargin(base)
	margins := make([]float32, n*k)
	for i := range margins {
		margins[i] = baseMargin
	}
	gpair := make([][]float32, k)
	for i := range gpair {
		gpair[i] = make([]float32, 2*n)
	}
	var vmargins []float32
	if valid != nil {
		vmargins = make([]float32, valid.Rows()*k)
		for i := range vmargins {
			vmargins[i] = baseMargin
		}
	}
	res := &Result{BestIteration: -1, Metric: p.metric()}
	var trees []*tree
	bestRound := -1
	for round := 0; round < p.Rounds; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		forEach(workers, chunks(n, gradChunk), func(c int) {
			obj.gradients(margins, train.Labels, train.Weights, gpair, c*gradChunk, min((c+1)*gradChunk, n))
		})
		for group := range k {
			g.sampleRows(p.Subsample)
			t := g.grow(gpair[group], margins, k, group)
			trees = append(trees, t)
			if valid != nil {
				vn := valid.Rows()
				forEach(workers, chunks(vn, gradChunk), func(c int) {
					for r := c * gradChunk; r < min((c+1)*gradChunk, vn); r++ {
						vmargins[r*k+group] += t.predict(valid, r)
					}
				})
			}
		}
		res.Rounds = round + 1
		if valid == nil {
			continue
		}
		score := evaluate(res.Metric, obj, vmargins, valid.Labels, valid.Weights)
		res.History = append(res.History, score)
		if bestRound < 0 || better(res.Metric, score, res.BestScore) {
			bestRound, res.BestScore = round, score
		}
		if p.EarlyStoppingRounds > 0 && round-bestRound >= p.EarlyStoppingRounds {
			break
		}
	}
	last := res.Rounds - 1
	if valid != nil {
		res.BestIteration = bestRound
	}
	if p.EarlyStoppingRounds > 0 {
		last = bestRound
		trees = trees[:(bestRound+1)*k]
	}
	// XGBoost's scikit-learn interface predicts with the rounds up to
	// best_iteration, so it must name the model's last round.
	attrs := map[string]string{
		"best_iteration":   strconv.Itoa(last),
		"best_ntree_limit": strconv.Itoa(last + 1),
	}
	if valid != nil {
		attrs["best_score"] = strconv.FormatFloat(res.BestScore, 'g', -1, 64)
	}
	if trainingMargins != nil {
		trainingMargins(margins)
	}
	res.Model = &Model{
		objective: obj, booster: "gbtree", numFeat: train.NumFeatures(),
		names: train.Names, types: train.featureTypes(), baseScore: base,
		trees: trees, rounds: last + 1, attributes: attrs,
	}
	return res, nil
}

// trainingMargins, when set (by tests), sees the training rows' final
// margins as training computed them from bins.
var trainingMargins func([]float32)

// invalid codes a parameter or data error as the caller's to fix.
func invalid(err error) error { return errs.New(errs.InvalidArgument, "%s", err.Error()) }

// better says whether score beats best for metric; NaN never does.
func better(metric string, score, best float64) bool {
	if math.IsNaN(score) {
		return false
	}
	if math.IsNaN(best) {
		return true
	}
	if maximize(metric) {
		return score > best
	}
	return score < best
}
