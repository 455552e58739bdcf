package training

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// GBDTParams are the parameters of gradient-boosted trees, with XGBoost's
// meanings; Set takes them by XGBoost's names. Start from
// DefaultGBDTParams: a zero field is a value, not a request for the
// default.
type GBDTParams struct {
	// Objective is binary:logistic, multi:softprob, reg:squarederror or
	// count:poisson.
	Objective string
	// NumClass is the number of classes for multi:softprob (labels 0 to
	// NumClass-1); 0 otherwise.
	NumClass int
	// Rounds is the number of boosting rounds (num_boost_round); each adds
	// one tree per class.
	Rounds int
	// MaxDepth bounds each tree's depth (max_depth).
	MaxDepth int
	// LearningRate shrinks each tree's leaves (eta).
	LearningRate float64
	// MinChildWeight is the least hessian sum a child may have
	// (min_child_weight).
	MinChildWeight float64
	// Lambda and Alpha are the L2 and L1 penalties on leaf weights
	// (lambda, alpha).
	Lambda, Alpha float64
	// Gamma is the least loss reduction a split must make (gamma,
	// min_split_loss).
	Gamma float64
	// MaxDeltaStep bounds each leaf's weight (max_delta_step); 0 is no
	// bound. Nil means XGBoost's default: 0.7 for count:poisson, else 0.
	MaxDeltaStep *float64
	// Subsample is the share of rows each tree is grown on.
	Subsample float64
	// ColsampleByTree, ColsampleByLevel and ColsampleByNode are the shares
	// of features sampled for each tree, then each level of it, then each
	// node.
	ColsampleByTree, ColsampleByLevel, ColsampleByNode float64
	// MaxBin is the most bins a numeric feature is cut into (max_bin). A
	// numeric feature with missing values gets at most 255 bins when
	// MaxBin is 256, so that its bins and missing fit in a byte.
	MaxBin int
	// MaxCatToOnehot: a categorical feature with fewer categories than
	// this is split one category against the rest; others are split by
	// partitioning their categories (max_cat_to_onehot).
	MaxCatToOnehot int
	// MaxCatThreshold bounds the categories a partition split sends right
	// (max_cat_threshold).
	MaxCatThreshold int
	// ScalePosWeight multiplies the weight of positive rows
	// (binary:logistic).
	ScalePosWeight float64
	// BaseScore is the initial prediction (base_score). Nil means the
	// weighted mean label (0.5 for multi:softprob); it is written into
	// the model either way, so XGBoost starts from the same place.
	BaseScore *float64
	// EvalMetric is the validation metric early stopping watches; "" is
	// the objective's default (logloss, mlogloss, rmse, poisson-nloglik).
	EvalMetric string
	// EarlyStoppingRounds stops training when the validation metric has
	// not improved for this many rounds; 0 never stops early. It needs
	// validation data.
	EarlyStoppingRounds int
	// Seed seeds row and column sampling.
	Seed uint64
	// Threads is the number of goroutines to train with; 0 is GOMAXPROCS.
	// The model does not depend on it.
	Threads int
}

// DefaultGBDTParams are XGBoost's defaults for the hist tree method, with
// 100 rounds of binary:logistic.
func DefaultGBDTParams() GBDTParams {
	return GBDTParams{
		Objective:        BinaryLogistic,
		Rounds:           100,
		MaxDepth:         6,
		LearningRate:     0.3,
		MinChildWeight:   1,
		Lambda:           1,
		Subsample:        1,
		ColsampleByTree:  1,
		ColsampleByLevel: 1,
		ColsampleByNode:  1,
		MaxBin:           256,
		MaxCatToOnehot:   4,
		MaxCatThreshold:  64,
		ScalePosWeight:   1,
	}
}

// maxDepthLimit bounds max_depth: a depth-wise tree of depth 30 could have
// a billion leaves, more than any data set here has rows.
const maxDepthLimit = 30

// Set sets one parameter by its XGBoost name (or an alias XGBoost's
// scikit-learn interface uses), from its text form, so that parameters
// logged as strings (MLflow params, pipeline specs) train the same model.
func (p *GBDTParams) Set(name, value string) error {
	if err := p.set(name, value); err != nil {
		return invalid(err)
	}
	return nil
}

func (p *GBDTParams) set(name, value string) error {
	value = strings.TrimSpace(value)
	var err error
	switch name {
	case "objective":
		p.Objective = value
	case "num_class":
		p.NumClass, err = parseInt(name, value)
	case "num_boost_round", "n_estimators", "num_round", "rounds":
		p.Rounds, err = parseInt(name, value)
	case "max_depth":
		p.MaxDepth, err = parseInt(name, value)
	case "eta", "learning_rate":
		p.LearningRate, err = parseFloat(name, value)
	case "min_child_weight":
		p.MinChildWeight, err = parseFloat(name, value)
	case "lambda", "reg_lambda":
		p.Lambda, err = parseFloat(name, value)
	case "alpha", "reg_alpha":
		p.Alpha, err = parseFloat(name, value)
	case "gamma", "min_split_loss":
		p.Gamma, err = parseFloat(name, value)
	case "max_delta_step":
		p.MaxDeltaStep, err = parseOptional(name, value)
	case "subsample":
		p.Subsample, err = parseFloat(name, value)
	case "colsample_bytree":
		p.ColsampleByTree, err = parseFloat(name, value)
	case "colsample_bylevel":
		p.ColsampleByLevel, err = parseFloat(name, value)
	case "colsample_bynode":
		p.ColsampleByNode, err = parseFloat(name, value)
	case "max_bin":
		p.MaxBin, err = parseInt(name, value)
	case "max_cat_to_onehot":
		p.MaxCatToOnehot, err = parseInt(name, value)
	case "max_cat_threshold":
		p.MaxCatThreshold, err = parseInt(name, value)
	case "scale_pos_weight":
		p.ScalePosWeight, err = parseFloat(name, value)
	case "base_score":
		p.BaseScore, err = parseOptional(name, value)
	case "eval_metric":
		p.EvalMetric = value
	case "early_stopping_rounds":
		p.EarlyStoppingRounds, err = parseInt(name, value)
	case "seed", "random_state":
		var v uint64
		v, err = strconv.ParseUint(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: must be a whole number from 0", name, value)
		}
		p.Seed = v
	case "nthread", "n_jobs", "threads":
		p.Threads, err = parseInt(name, value)
	case "tree_method":
		if value != "hist" {
			return fmt.Errorf("tree_method %q: only hist is supported", value)
		}
	case "booster":
		if value != "gbtree" {
			return fmt.Errorf("booster %q: TrainGBDT grows gbtree models; use TrainLinear for gblinear", value)
		}
	case "grow_policy":
		if value != "depthwise" {
			return fmt.Errorf("grow_policy %q: only depthwise is supported", value)
		}
	case "verbosity", "silent", "disable_default_eval_metric", "validate_parameters", "enable_categorical":
		// Accepted for compatibility with XGBoost parameter sets; they do
		// not change the model.
	default:
		return fmt.Errorf("parameter %q: unknown (known: %s)", name, strings.Join(gbdtParamNames, ", "))
	}
	return err
}

var gbdtParamNames = []string{"objective", "num_class", "num_boost_round", "max_depth", "eta", "min_child_weight",
	"lambda", "alpha", "gamma", "max_delta_step", "subsample", "colsample_bytree", "colsample_bylevel",
	"colsample_bynode", "max_bin", "max_cat_to_onehot", "max_cat_threshold", "scale_pos_weight", "base_score",
	"eval_metric", "early_stopping_rounds", "seed", "nthread", "tree_method", "booster", "grow_policy"}

func parseInt(name, value string) (int, error) {
	v, err := strconv.Atoi(value)
	if err != nil {
		return 0, fmt.Errorf("%s %q: must be a whole number", name, value)
	}
	return v, nil
}

func parseOptional(name, value string) (*float64, error) {
	v, err := parseFloat(name, value)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func parseFloat(name, value string) (float64, error) {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: must be a number", name, value)
	}
	return v, nil
}

// Validate checks every parameter; the error names the first parameter
// that breaks a rule, and the rule.
func (p GBDTParams) Validate() error {
	switch p.Objective {
	case BinaryLogistic, RegSquaredError, CountPoisson:
		if p.NumClass != 0 && p.NumClass != 1 {
			return fmt.Errorf("num_class %d: only multi:softprob has classes; leave it 0 for %s", p.NumClass, p.Objective)
		}
	case MultiSoftprob:
		if p.NumClass < 2 || p.NumClass > 1<<16 {
			return fmt.Errorf("num_class %d: must be from 2 to %d for %s", p.NumClass, 1<<16, p.Objective)
		}
	default:
		return fmt.Errorf("objective %q: must be one of %s, %s, %s, %s", p.Objective, BinaryLogistic, MultiSoftprob, RegSquaredError, CountPoisson)
	}
	if p.Rounds < 1 || p.Rounds > 1_000_000 {
		return fmt.Errorf("num_boost_round %d: must be from 1 to 1000000", p.Rounds)
	}
	if p.MaxDepth < 1 || p.MaxDepth > maxDepthLimit {
		return fmt.Errorf("max_depth %d: must be from 1 to %d", p.MaxDepth, maxDepthLimit)
	}
	if err := positive("eta", p.LearningRate); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"min_child_weight", p.MinChildWeight}, {"lambda", p.Lambda}, {"alpha", p.Alpha}, {"gamma", p.Gamma}} {
		if err := notNegative(c.name, c.v); err != nil {
			return err
		}
	}
	if p.MaxDeltaStep != nil {
		if err := notNegative("max_delta_step", *p.MaxDeltaStep); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"subsample", p.Subsample}, {"colsample_bytree", p.ColsampleByTree}, {"colsample_bylevel", p.ColsampleByLevel}, {"colsample_bynode", p.ColsampleByNode}} {
		if !(c.v > 0 && c.v <= 1) {
			return fmt.Errorf("%s %v: must be greater than 0 and at most 1", c.name, c.v)
		}
	}
	if p.MaxBin < 2 || p.MaxBin > 65535 {
		return fmt.Errorf("max_bin %d: must be from 2 to 65535", p.MaxBin)
	}
	if p.MaxCatToOnehot < 1 {
		return fmt.Errorf("max_cat_to_onehot %d: must be at least 1", p.MaxCatToOnehot)
	}
	if p.MaxCatThreshold < 1 {
		return fmt.Errorf("max_cat_threshold %d: must be at least 1", p.MaxCatThreshold)
	}
	if err := positive("scale_pos_weight", p.ScalePosWeight); err != nil {
		return err
	}
	obj := newObjective(p.Objective, p.NumClass, p.ScalePosWeight, 0)
	if p.BaseScore != nil {
		if err := obj.checkBaseScore(*p.BaseScore); err != nil {
			return err
		}
	}
	if p.EvalMetric != "" && !slices.Contains(metricsFor(p.Objective), p.EvalMetric) {
		return fmt.Errorf("eval_metric %q: must be one of %s for %s", p.EvalMetric, strings.Join(metricsFor(p.Objective), ", "), p.Objective)
	}
	if p.EarlyStoppingRounds < 0 {
		return fmt.Errorf("early_stopping_rounds %d: must not be negative", p.EarlyStoppingRounds)
	}
	if p.Threads < 0 {
		return fmt.Errorf("nthread %d: must not be negative (0 uses every core)", p.Threads)
	}
	return nil
}

func positive(name string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%s %v: must be a finite number greater than 0", name, v)
	}
	return nil
}

func notNegative(name string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%s %v: must be a finite number, not negative", name, v)
	}
	return nil
}

// maxDeltaStep resolves the default.
func (p GBDTParams) maxDeltaStep() float64 {
	if p.MaxDeltaStep != nil {
		return *p.MaxDeltaStep
	}
	if p.Objective == CountPoisson {
		return poissonDeltaStep
	}
	return 0
}

// Values are the parameters by their XGBoost names, as text: what to log
// as a run's params, and what Set reads back. base_score is left out
// unless set, since its default comes from the data.
func (p GBDTParams) Values() map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	v := map[string]string{
		"objective": p.Objective, "num_boost_round": strconv.Itoa(p.Rounds), "max_depth": strconv.Itoa(p.MaxDepth),
		"eta": f(p.LearningRate), "min_child_weight": f(p.MinChildWeight), "lambda": f(p.Lambda), "alpha": f(p.Alpha),
		"gamma": f(p.Gamma), "max_delta_step": f(p.maxDeltaStep()), "subsample": f(p.Subsample),
		"colsample_bytree": f(p.ColsampleByTree), "colsample_bylevel": f(p.ColsampleByLevel),
		"colsample_bynode": f(p.ColsampleByNode), "max_bin": strconv.Itoa(p.MaxBin),
		"max_cat_to_onehot": strconv.Itoa(p.MaxCatToOnehot), "max_cat_threshold": strconv.Itoa(p.MaxCatThreshold),
		"eval_metric": p.metric(), "seed": strconv.FormatUint(p.Seed, 10), "tree_method": "hist",
	}
	if p.Objective == MultiSoftprob {
		v["num_class"] = strconv.Itoa(p.NumClass)
	}
	if p.Objective == BinaryLogistic {
		v["scale_pos_weight"] = f(p.ScalePosWeight)
	}
	if p.BaseScore != nil {
		v["base_score"] = f(*p.BaseScore)
	}
	if p.EarlyStoppingRounds > 0 {
		v["early_stopping_rounds"] = strconv.Itoa(p.EarlyStoppingRounds)
	}
	return v
}

func (p GBDTParams) metric() string {
	if p.EvalMetric != "" {
		return p.EvalMetric
	}
	return metricsFor(p.Objective)[0]
}
