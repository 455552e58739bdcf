package training

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

// TestGBDTParamErrors: each bad parameter is refused with an error that
// names it and the rule it breaks.
func TestGBDTParamErrors(t *testing.T) {
	d := synth(200, BinaryLogistic, 1)
	cases := []struct {
		name, value string
		want        string
	}{
		{"objective", "reg:gamma", `objective "reg:gamma": must be one of`},
		{"num_class", "3", "num_class 3: only multi:softprob has classes"},
		{"num_boost_round", "0", "num_boost_round 0: must be from 1"},
		{"max_depth", "0", "max_depth 0: must be from 1 to 30"},
		{"max_depth", "31", "max_depth 31: must be from 1 to 30"},
		{"eta", "0", "eta 0: must be a finite number greater than 0"},
		{"eta", "abc", `eta "abc": must be a number`},
		{"min_child_weight", "-1", "min_child_weight -1: must be a finite number, not negative"},
		{"lambda", "-0.5", "lambda -0.5: must be a finite number, not negative"},
		{"alpha", "NaN", "alpha NaN: must be a finite number, not negative"},
		{"gamma", "-1", "gamma -1: must be"},
		{"max_delta_step", "-1", "max_delta_step -1: must be"},
		{"subsample", "0", "subsample 0: must be greater than 0 and at most 1"},
		{"subsample", "1.5", "subsample 1.5: must be greater than 0 and at most 1"},
		{"colsample_bytree", "0", "colsample_bytree 0: must be greater than 0"},
		{"colsample_bylevel", "2", "colsample_bylevel 2: must be greater than 0"},
		{"colsample_bynode", "-1", "colsample_bynode -1: must be greater than 0"},
		{"max_bin", "1", "max_bin 1: must be from 2 to 65535"},
		{"max_cat_to_onehot", "0", "max_cat_to_onehot 0: must be at least 1"},
		{"max_cat_threshold", "0", "max_cat_threshold 0: must be at least 1"},
		{"scale_pos_weight", "0", "scale_pos_weight 0: must be a finite number greater than 0"},
		{"base_score", "1", "base_score 1: must be between 0 and 1 (exclusive) for binary:logistic"},
		{"eval_metric", "mlogloss", `eval_metric "mlogloss": must be one of logloss, auc, error, rmse for binary:logistic`},
		{"early_stopping_rounds", "-1", "early_stopping_rounds -1: must not be negative"},
		{"early_stopping_rounds", "5", "early_stopping_rounds 5: needs validation data"},
		{"nthread", "-2", "nthread -2: must not be negative"},
		{"seed", "-1", `seed "-1": must be a whole number from 0`},
		{"tree_method", "exact", `tree_method "exact": only hist is supported`},
		{"booster", "gblinear", `booster "gblinear": TrainGBDT grows gbtree models; use TrainLinear`},
		{"max_leaves", "8", `parameter "max_leaves": unknown`},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			p := DefaultGBDTParams()
			err := p.Set(c.name, c.value)
			if err == nil {
				_, err = TrainGBDT(context.Background(), p, d, nil)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
			if !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("error %v is not coded InvalidArgument", err)
			}
		})
	}
	p := DefaultGBDTParams()
	p.Objective = MultiSoftprob
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "num_class 0: must be from 2") {
		t.Fatalf("multi:softprob without num_class: %v", err)
	}
}

// TestDataErrors: bad data is refused with an error that names the data
// set, the feature or row, and the rule.
func TestDataErrors(t *testing.T) {
	nan := float32(math.NaN())
	good := func() *Dataset {
		return &Dataset{Columns: [][]float32{{1, 2, nan}, {0, 1, 2}}, Names: []string{"x", "color"},
			Categorical: []bool{false, true}, Labels: []float32{0, 1, 1}}
	}
	cases := []struct {
		name   string
		mutate func(d *Dataset)
		valid  func(d *Dataset) // mutates a copy used as validation data
		want   string
	}{
		{"no rows", func(d *Dataset) { d.Labels = nil }, nil, "training data: no rows"},
		{"no features", func(d *Dataset) { d.Columns, d.Names, d.Categorical = nil, nil, nil }, nil, "training data: no feature columns"},
		{"short column", func(d *Dataset) { d.Columns[0] = d.Columns[0][:2] }, nil, `feature "x" has 2 values for 3 rows`},
		{"infinity", func(d *Dataset) { d.Columns[0][1] = float32(math.Inf(1)) }, nil, `feature "x", row 1: +Inf is not allowed; use NaN`},
		{"fractional category", func(d *Dataset) { d.Columns[1][2] = 1.5 }, nil, `feature "color", row 2: 1.5 is not a category code (a whole number from 0 to 65534)`},
		{"negative category", func(d *Dataset) { d.Columns[1][0] = -1 }, nil, "is not a category code"},
		{"duplicate names", func(d *Dataset) { d.Names[1] = "x" }, nil, `feature name "x" appears twice`},
		{"bad name", func(d *Dataset) { d.Names[0] = "x[0]" }, nil, `name "x[0]": must be non-empty and not contain [, ] or <`},
		{"names count", func(d *Dataset) { d.Names = d.Names[:1] }, nil, "1 names for 2 feature columns"},
		{"NaN label", func(d *Dataset) { d.Labels[0] = nan }, nil, "label of row 0 is NaN; labels must be finite"},
		{"label out of range", func(d *Dataset) { d.Labels[2] = 2 }, nil, "label of row 2 is 2; binary:logistic needs labels from 0 to 1"},
		{"negative weight", func(d *Dataset) { d.Weights = []float32{1, -1, 1} }, nil, "weight of row 1 is -1; weights must be finite and not negative"},
		{"zero weights", func(d *Dataset) { d.Weights = []float32{0, 0, 0} }, nil, "every weight is 0"},
		{"validation width", nil, func(v *Dataset) { v.Columns = v.Columns[:1]; v.Names = nil; v.Categorical = nil }, "validation data: 1 feature columns; the training data has 2"},
		{"validation kinds", nil, func(v *Dataset) { v.Categorical = nil }, `validation data: feature "color" is categorical in one data set and numeric in the other`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			train := good()
			var valid *Dataset
			if c.mutate != nil {
				c.mutate(train)
			}
			if c.valid != nil {
				valid = good()
				c.valid(valid)
			}
			p := DefaultGBDTParams()
			p.Rounds = 1
			_, err := TrainGBDT(context.Background(), p, train, valid)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLinearParamErrors(t *testing.T) {
	d := synth(200, BinaryLogistic, 1)
	if _, err := TrainLinear(context.Background(), DefaultLinearParams(), d); err == nil ||
		!strings.Contains(err.Error(), `feature "color" is categorical; the linear trainer reads numbers only`) {
		t.Fatalf("categorical feature: %v", err)
	}
	d.Categorical = nil
	cases := []struct{ name, value, want string }{
		{"objective", "rank:ndcg", `objective "rank:ndcg": must be one of`},
		{"lambda", "-1", "lambda -1: must be a finite number, not negative"},
		{"alpha", "1", "alpha: the linear trainer has no L1 penalty"},
		{"max_iter", "0", "max_iter 0: must be at least 1"},
		{"tol", "0", "tol 0: must be greater than 0 and less than 1"},
		{"standardize", "maybe", `standardize "maybe": must be true or false`},
		{"booster", "gbtree", `booster "gbtree": TrainLinear writes gblinear models`},
		{"num_class", "2", "num_class 2: only multi:softprob has classes"},
		{"eta", "0.1", `parameter "eta": unknown`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultLinearParams()
			err := p.Set(c.name, c.value)
			if err == nil {
				_, err = TrainLinear(context.Background(), p, d)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestGBDTValuesRoundTrip: Values, read back through Set, gives the same
// parameters, so that logged params retrain the same model.
func TestGBDTValuesRoundTrip(t *testing.T) {
	p := DefaultGBDTParams()
	p.Objective, p.NumClass, p.Subsample, p.Seed, p.EarlyStoppingRounds = MultiSoftprob, 4, 0.7, 9, 3
	base, mds := 0.25, 0.5
	p.BaseScore, p.MaxDeltaStep = &base, &mds
	q := DefaultGBDTParams()
	for k, v := range p.Values() {
		if err := q.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(p.Values(), q.Values()) {
		t.Fatalf("round trip changed the parameters:\n%v\n%v", p.Values(), q.Values())
	}
	if *q.BaseScore != base || *q.MaxDeltaStep != mds || q.Seed != 9 || q.NumClass != 4 {
		t.Fatalf("round trip lost values: %+v", q)
	}
}
