package evaluation

import (
	"math"
	"unsafe"

	"github.com/slipwayml/slipway/internal/errs"
)

// Float is the element type the metric functions accept: models score in
// float32, labels and targets often arrive as float64.
type Float interface{ ~float32 | ~float64 }

// Options are the settings every task shares.
type Options struct {
	// Weights, when set, hold one finite, non-negative weight per row. A
	// row of weight zero adds nothing to any metric, though it still
	// counts in Rows.
	Weights []float64
	// Bins is the number of uniform calibration bins on [0, 1]; zero
	// means DefaultBins. Regression ignores it.
	Bins int
}

// DefaultBins matches the ten bins most reliability diagrams and ECE
// figures in the literature use (sklearn's calibration_curve defaults to
// five, which hides miscalibration at the extremes).
const DefaultBins = 10

// MaxBins bounds Bins: more bins than this leaves most of them empty on
// any realistic evaluation set and bloats the report.
const MaxBins = 1000

// clipEps is the machine epsilon of a probability's type, the bound
// sklearn's log_loss clips to since 1.2 (np.finfo(y_pred.dtype).eps):
// a float32 probability cannot resolve anything closer to 0 or 1 anyway.
func clipEps[P Float]() float64 {
	var p P
	if unsafe.Sizeof(p) == 4 {
		return 0x1p-23
	}
	return 0x1p-52
}

// sumTolerance is how far a row of class probabilities may sum from 1:
// np.allclose's defaults (rtol 1e-5, atol 1e-8), which sklearn's
// multiclass roc_auc_score applies, and wide enough for float32 softmax.
const sumTolerance = 1e-5 + 1e-8

func checkLengths(aName string, a int, bName string, b int) error {
	if a == 0 {
		return errs.Invalid("%s is empty; metrics need at least one row", aName)
	}
	if a != b {
		return errs.Invalid("%s and %s differ in length: %s has %d values, %s has %d", aName, bName, aName, a, bName, b)
	}
	return nil
}

// weightsOf checks w against n rows and returns the weights to use (ones
// when w is nil) and their total.
func weightsOf(name string, w []float64, n int, rowsName string) ([]float64, float64, error) {
	if w == nil {
		ones := make([]float64, n)
		for i := range ones {
			ones[i] = 1
		}
		return ones, float64(n), nil
	}
	if len(w) != n {
		return nil, 0, errs.Invalid("%s has %d values; %s has %d rows", name, len(w), rowsName, n)
	}
	total := 0.0
	for i, v := range w {
		if !(v >= 0) || math.IsInf(v, 0) {
			return nil, 0, errs.Invalid("%s[%d] is %v; weights must be finite and non-negative", name, i, v)
		}
		total += v
	}
	if total == 0 {
		return nil, 0, errs.Invalid("%s sum to zero; at least one row needs a positive weight", name)
	}
	if math.IsInf(total, 0) {
		return nil, 0, errs.Invalid("%s sum to +Inf; scale them down", name)
	}
	return w, total, nil
}

func binsOf(bins int) (int, error) {
	if bins == 0 {
		return DefaultBins, nil
	}
	if bins < 1 || bins > MaxBins {
		return 0, errs.Invalid("bins is %d; it must be between 1 and %d", bins, MaxBins)
	}
	return bins, nil
}

// binaryLabels converts labels that must each be 0 or 1.
func binaryLabels[L Float](name string, labels []L) ([]float64, error) {
	out := make([]float64, len(labels))
	for i, v := range labels {
		f := float64(v)
		if f != 0 && f != 1 {
			return nil, errs.Invalid("%s[%d] is %v; binary labels must be 0 or 1", name, i, f)
		}
		out[i] = f
	}
	return out, nil
}

// probabilities converts values that must each lie in [0, 1].
func probabilities[P Float](name string, probs []P) ([]float64, error) {
	out := make([]float64, len(probs))
	for i, v := range probs {
		f := float64(v)
		if !(f >= 0 && f <= 1) {
			return nil, errs.Invalid("%s[%d] is %v; probabilities must be within [0, 1]", name, i, f)
		}
		out[i] = f
	}
	return out, nil
}

// finite converts values that must each be finite.
func finite[F Float](name string, v []F) ([]float64, error) {
	out := make([]float64, len(v))
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errs.Invalid("%s[%d] is %v; values must be finite", name, i, f)
		}
		out[i] = f
	}
	return out, nil
}

// classLabels converts labels that must each be an integer class in
// [0, classes).
func classLabels[L Float | ~int](name string, labels []L, classes int) ([]int, error) {
	out := make([]int, len(labels))
	for i, v := range labels {
		f := float64(v)
		if f != math.Trunc(f) || f < 0 || f >= float64(classes) {
			return nil, errs.Invalid("%s[%d] is %v; class labels must be integers in [0, %d)", name, i, f, classes)
		}
		out[i] = int(f)
	}
	return out, nil
}

// classProbabilities converts a row-major matrix of class probabilities
// whose rows must each sum to 1.
func classProbabilities[P Float](name string, probs []P, classes int) ([]float64, error) {
	out, err := probabilities(name, probs)
	if err != nil {
		return nil, err
	}
	for r := 0; r < len(out)/classes; r++ {
		s := 0.0
		for _, v := range out[r*classes : (r+1)*classes] {
			s += v
		}
		if math.Abs(s-1) > sumTolerance {
			return nil, errs.Invalid("%s row %d sums to %v; class probabilities must sum to 1", name, r, s)
		}
	}
	return out, nil
}

// setMetric stores v in *dst, or records why it is undefined: JSON has no
// NaN or Inf, and a report must always marshal.
func setMetric(dst **float64, undefined *map[string]string, key string, v float64, reason string) {
	if reason == "" && (math.IsNaN(v) || math.IsInf(v, 0)) {
		reason = "the value overflows float64"
	}
	if reason != "" {
		*dst = nil
		if *undefined == nil {
			*undefined = map[string]string{}
		}
		(*undefined)[key] = reason
		return
	}
	*dst = &v
}
