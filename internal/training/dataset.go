// Package training holds Slipway's built-in trainers: gradient-boosted
// trees grown from feature histograms, as XGBoost's hist method grows them
// (TrainGBDT), and L2-regularised linear and logistic regression
// (TrainLinear). Both return a Model that writes XGBoost JSON (gbtree and
// gblinear), which XGBoost's own packages load and score exactly as
// Slipway's runtime (internal/models/xgboost) does.
//
// Training is deterministic: the same data, parameters and seed give the
// same model byte for byte, whatever the number of threads, because every
// parallel sum is cut into pieces by row count alone and added in a fixed
// order.
package training

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// MaxCategory is the largest category code a categorical feature may hold.
// Codes are bin numbers in training, and one more bin is kept for missing
// values in 16 bits.
const MaxCategory = 65534

// Dataset is training (or validation) data, held by column because that is
// how the CSV and Parquet readers produce it and how the quantile sketch
// reads it.
type Dataset struct {
	// Columns holds each feature's values: one slice per feature, each
	// with one value per row. NaN is a missing value; ±Inf is refused.
	Columns [][]float32
	// Names names the features, as XGBoost's feature_names. Nil leaves
	// the model's features unnamed (XGBoost then calls them f0, f1, ...).
	Names []string
	// Categorical marks the features whose values are category codes:
	// whole numbers from 0 to MaxCategory (or NaN). Nil means that every
	// feature is numeric.
	Categorical []bool
	// Labels holds one target per row: 0 or 1 for binary:logistic, a
	// class from 0 to num_class-1 for multi:softprob, a count (>= 0) for
	// count:poisson, any number for reg:squarederror.
	Labels []float32
	// Weights optionally weighs each row (>= 0); nil weighs all rows 1.
	Weights []float32
}

// Rows is the number of rows.
func (d *Dataset) Rows() int { return len(d.Labels) }

// NumFeatures is the number of feature columns.
func (d *Dataset) NumFeatures() int { return len(d.Columns) }

func (d *Dataset) isCategorical(j int) bool { return d.Categorical != nil && d.Categorical[j] }

// validate checks the shape and values of d. role is "training data" or
// "validation data" and starts every error. train, for validation data, is
// the training set whose features d must match.
func (d *Dataset) validate(role string, train *Dataset) error {
	if d == nil {
		return fmt.Errorf("%s: none given", role)
	}
	n := len(d.Labels)
	if n == 0 {
		return fmt.Errorf("%s: no rows (Labels is empty)", role)
	}
	if uint64(n) > math.MaxUint32 { // rows are numbered in 32 bits
		return fmt.Errorf("%s: %d rows; at most %d are supported", role, n, uint32(math.MaxUint32))
	}
	nf := len(d.Columns)
	if nf == 0 {
		return fmt.Errorf("%s: no feature columns", role)
	}
	if train != nil && nf != len(train.Columns) {
		return fmt.Errorf("%s: %d feature columns; the training data has %d", role, nf, len(train.Columns))
	}
	if d.Names != nil && len(d.Names) != nf {
		return fmt.Errorf("%s: %d names for %d feature columns", role, len(d.Names), nf)
	}
	if d.Categorical != nil && len(d.Categorical) != nf {
		return fmt.Errorf("%s: %d categorical flags for %d feature columns", role, len(d.Categorical), nf)
	}
	if train == nil {
		seen := make(map[string]bool, len(d.Names))
		for j, name := range d.Names {
			// XGBoost's Python package refuses these characters in
			// feature names; a model carrying them could not be used there.
			if name == "" || strings.ContainsAny(name, "[]<") {
				return fmt.Errorf("%s: feature %d name %q: must be non-empty and not contain [, ] or <", role, j, name)
			}
			if seen[name] {
				return fmt.Errorf("%s: feature name %q appears twice", role, name)
			}
			seen[name] = true
		}
	} else {
		for j := range nf {
			if d.isCategorical(j) != train.isCategorical(j) {
				return fmt.Errorf("%s: feature %s is categorical in one data set and numeric in the other", role, train.featureName(j))
			}
		}
	}
	for j, col := range d.Columns {
		if len(col) != n {
			return fmt.Errorf("%s: feature %s has %d values for %d rows", role, d.featureName(j), len(col), n)
		}
		cat := d.isCategorical(j)
		for r, v := range col {
			if v != v {
				continue
			}
			if math.IsInf(float64(v), 0) {
				return fmt.Errorf("%s: feature %s, row %d: %v is not allowed; use NaN for a missing value", role, d.featureName(j), r, v)
			}
			if cat && (v < 0 || v > MaxCategory || v != float32(math.Trunc(float64(v)))) {
				return fmt.Errorf("%s: feature %s, row %d: %v is not a category code (a whole number from 0 to %d)", role, d.featureName(j), r, v, MaxCategory)
			}
		}
	}
	for r, y := range d.Labels {
		if y != y || math.IsInf(float64(y), 0) {
			return fmt.Errorf("%s: label of row %d is %v; labels must be finite numbers", role, r, y)
		}
	}
	if d.Weights != nil {
		if len(d.Weights) != n {
			return fmt.Errorf("%s: %d weights for %d rows", role, len(d.Weights), n)
		}
		total := 0.0
		for r, w := range d.Weights {
			if !(w >= 0) || math.IsInf(float64(w), 0) {
				return fmt.Errorf("%s: weight of row %d is %v; weights must be finite and not negative", role, r, w)
			}
			total += float64(w)
		}
		if total == 0 {
			return errors.New(role + ": every weight is 0")
		}
	}
	return nil
}

func (d *Dataset) featureName(j int) string {
	if d.Names != nil {
		return fmt.Sprintf("%q", d.Names[j])
	}
	return fmt.Sprintf("%d", j)
}

func (d *Dataset) weight(r int) float32 {
	if d.Weights == nil {
		return 1
	}
	return d.Weights[r]
}

// featureTypes is XGBoost's feature_types for d: "c" for categorical and
// "float" for numeric features, or nil when there are no categorical
// features, as XGBoost writes for unnamed numeric data.
func (d *Dataset) featureTypes() []string {
	hasCat := false
	for j := range d.Columns {
		hasCat = hasCat || d.isCategorical(j)
	}
	if !hasCat && d.Names == nil {
		return nil
	}
	types := make([]string, len(d.Columns))
	for j := range types {
		types[j] = "float"
		if d.isCategorical(j) {
			types[j] = "c"
		}
	}
	return types
}
