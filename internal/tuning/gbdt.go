package tuning

import (
	"context"
	"slices"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/training"
)

// roundParams are the names GBDTParams.Set takes for the number of rounds,
// which successive halving owns.
var roundParams = []string{"num_boost_round", "n_estimators", "num_round", "rounds"}

// GBDTTrial is the trial function for the built-in GBDT trainer: it sets
// the trial's params on a copy of base by their XGBoost names, trains
// Resource rounds when the strategy sets them (base's otherwise) with the
// trial's share of the cores unless base or the space sets nthread, and
// scores the model on valid with the validation metric training watches
// (eval_metric, or the objective's default).
//
// The score is the returned model's: with early stopping that is the best
// round's, which the model is cut back to; without, the last round's,
// since the model keeps every round. Ranking by the best round of a model
// that kept more would choose settings by a score no model has.
//
// The result's Artifact is the *training.Result, model included; the
// metrics add best_iteration, best_score and rounds.
func GBDTTrial(train, valid *training.Dataset, base training.GBDTParams) TrialFunc {
	return func(ctx context.Context, t Trial) (TrialResult, error) {
		if valid == nil {
			return TrialResult{}, errs.Invalid("tuning: validation data is needed to score trials")
		}
		p := base
		names := make([]string, 0, len(t.Params))
		for name := range t.Params {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if t.Resource > 0 && slices.Contains(roundParams, name) {
				return TrialResult{}, errs.Invalid("%s: successive halving sets the number of rounds; leave it out of the search space and set max_resource", name)
			}
			if err := p.Set(name, t.Params[name]); err != nil {
				return TrialResult{}, err
			}
		}
		if t.Resource > 0 {
			p.Rounds = t.Resource
		}
		if p.Threads == 0 {
			p.Threads = t.Threads
		}
		res, err := training.TrainGBDT(ctx, p, train, valid)
		if err != nil {
			return TrialResult{}, err
		}
		score := res.History[len(res.History)-1]
		if p.EarlyStoppingRounds > 0 {
			score = res.BestScore
		}
		return TrialResult{
			Score: score, Metric: res.Metric, HigherIsBetter: HigherIsBetter(res.Metric),
			Metrics: map[string]float64{
				"best_iteration": float64(res.BestIteration), "best_score": res.BestScore, "rounds": float64(res.Rounds),
			},
			Artifact: res,
		}, nil
	}
}

// HigherIsBetter says whether a larger value of one of training's
// validation metrics is better. It mirrors the rule training's early
// stopping uses, which a test holds it to: only AUC grows as models
// improve; losses and error rates shrink.
func HigherIsBetter(metric string) bool { return metric == training.MetricAUC }
