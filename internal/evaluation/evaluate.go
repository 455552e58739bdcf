package evaluation

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
)

// Task is the kind of model being evaluated.
type Task string

const (
	TaskBinary     Task = "binary"
	TaskMulticlass Task = "multiclass"
	TaskRegression Task = "regression"
)

// DefaultThreshold is the decision threshold when a Spec sets none.
const DefaultThreshold = 0.5

// DefaultMinSliceRows is the fewest rows a slice needs for its metrics
// to be reported: below ten, one row moves accuracy by more than ten
// points, and such numbers mislead more than they inform.
const DefaultMinSliceRows = 10

// MaxSliceValues bounds the distinct values of a slice column: more
// usually means an identifier was passed by mistake, and the report would
// be unreadable.
const MaxSliceValues = 1000

// Spec is one evaluation: a model's predictions on a labelled set, and
// the columns to slice it by.
type Spec struct {
	Task Task
	// Labels are 0 or 1 for TaskBinary, class indices for TaskMulticlass
	// and targets for TaskRegression.
	Labels []float64
	// Predictions hold Outputs values per row, as models.Model.Predict
	// writes them: the positive class's probability for TaskBinary (with
	// Outputs 2, the second column), one probability per class for
	// TaskMulticlass, the prediction for TaskRegression. Being float32,
	// they are clipped for log-loss at float32's epsilon, as sklearn clips
	// a float32 predict_proba.
	Predictions []float32
	Outputs     int
	// Weights, when set, hold one finite, non-negative weight per row.
	Weights []float64
	// Threshold decides the class for TaskBinary; nil means
	// DefaultThreshold.
	Threshold *float64
	// Bins is the number of calibration bins; zero means DefaultBins.
	Bins int
	// Slices are categorical columns to compute the metrics per value of.
	Slices []Column
	// MinSliceRows is the fewest rows a slice needs for metrics; zero
	// means DefaultMinSliceRows.
	MinSliceRows int
}

// Column is a categorical column, one value per row, in exactly one of
// Strings and Codes. Its slices are ordered by string, or numerically by
// code.
type Column struct {
	Name    string
	Strings []string
	Codes   []int64
}

// TaskMetrics holds the metrics of the Spec's task; the other two are nil.
type TaskMetrics struct {
	Binary     *BinaryMetrics     `json:"binary,omitempty"`
	Multiclass *MulticlassMetrics `json:"multiclass,omitempty"`
	Regression *RegressionMetrics `json:"regression,omitempty"`
}

// SliceReport is the metrics of each value of one column.
type SliceReport struct {
	Column string  `json:"column"`
	Slices []Slice `json:"slices"`
}

// Slice is the rows holding one value of a column. When Skipped is set
// it says why no metrics were computed and TaskMetrics is empty.
type Slice struct {
	Value  string  `json:"value"`
	Rows   int     `json:"rows"`
	Weight float64 `json:"weight"`
	TaskMetrics
	Skipped string `json:"skipped,omitempty"`
}

// Evaluate computes the metrics of s's task on all rows and on each
// slice. Importance is left for the caller to add: it needs the model.
func Evaluate(s Spec) (*Report, error) {
	d, err := prepare(s)
	if err != nil {
		return nil, err
	}
	minRows := s.MinSliceRows
	if minRows == 0 {
		minRows = DefaultMinSliceRows
	}
	if minRows < 1 {
		return nil, errs.Invalid("min_slice_rows is %d; it must be at least 1", minRows)
	}
	seen := map[string]bool{}
	columns := make([][]group, len(s.Slices))
	for ci, c := range s.Slices {
		if c.Name == "" {
			return nil, errs.Invalid("slices[%d] has no name", ci)
		}
		if seen[c.Name] {
			return nil, errs.Invalid("slices[%d]: column %q is named twice", ci, c.Name)
		}
		seen[c.Name] = true
		if columns[ci], err = groupRows(ci, c, len(s.Labels)); err != nil {
			return nil, err
		}
	}
	r := &Report{Task: s.Task, Rows: len(s.Labels), Weighted: s.Weights != nil}
	r.TaskMetrics = d.metrics(nil)
	for ci, groups := range columns {
		sr := SliceReport{Column: s.Slices[ci].Name, Slices: make([]Slice, len(groups))}
		for gi, g := range groups {
			sl := Slice{Value: g.value, Rows: len(g.rows)}
			for _, i := range g.rows {
				sl.Weight += d.w[i]
			}
			switch {
			case len(g.rows) < minRows:
				sl.Skipped = fmt.Sprintf("%d rows, fewer than the minimum of %d", len(g.rows), minRows)
			case sl.Weight == 0:
				sl.Skipped = "every row has weight zero"
			default:
				sl.TaskMetrics = d.metrics(g.rows)
			}
			sr.Slices[gi] = sl
		}
		r.Slices = append(r.Slices, sr)
	}
	return r, nil
}

// prepared is a checked Spec in the form the metric functions take.
type prepared struct {
	task      Task
	y         []float64 // binary labels, regression targets
	cls       []int     // multiclass labels
	p         []float64 // one value per row; classes per row for multiclass
	k         int
	w         []float64
	threshold float64
	bins      int
}

func prepare(s Spec) (*prepared, error) {
	n := len(s.Labels)
	if n == 0 {
		return nil, errs.Invalid("labels is empty; metrics need at least one row")
	}
	d := &prepared{task: s.Task, threshold: DefaultThreshold}
	var want string
	switch s.Task {
	case TaskBinary:
		want = "1 or 2"
		if s.Outputs == 1 || s.Outputs == 2 {
			d.k = s.Outputs
		}
	case TaskMulticlass:
		want = "at least 2 (one per class)"
		if s.Outputs >= 2 {
			d.k = s.Outputs
		}
	case TaskRegression:
		want = "1"
		if s.Outputs == 1 {
			d.k = 1
		}
	default:
		return nil, errs.Invalid("task is %q; it must be %q, %q or %q", s.Task, TaskBinary, TaskMulticlass, TaskRegression)
	}
	if d.k == 0 {
		return nil, errs.Invalid("outputs is %d; a %s task needs %s", s.Outputs, s.Task, want)
	}
	if len(s.Predictions) != n*d.k {
		return nil, errs.Invalid("labels and predictions differ in length: labels has %d rows, so predictions needs %d values (%d per row) but has %d",
			n, n*d.k, d.k, len(s.Predictions))
	}
	var err error
	if d.bins, err = binsOf(s.Bins); err != nil {
		return nil, err
	}
	if d.w, _, err = weightsOf("weights", s.Weights, n, "labels"); err != nil {
		return nil, err
	}
	switch s.Task {
	case TaskBinary:
		if s.Threshold != nil {
			d.threshold = *s.Threshold
			if !(d.threshold >= 0 && d.threshold <= 1) {
				return nil, errs.Invalid("threshold is %v; it must be within [0, 1]", d.threshold)
			}
		}
		if d.y, err = binaryLabels("labels", s.Labels); err != nil {
			return nil, err
		}
		pos := s.Predictions
		if d.k == 2 {
			pos = make([]float32, n)
			for i := range pos {
				pos[i] = s.Predictions[2*i+1]
			}
		}
		if d.p, err = probabilities("predictions", pos); err != nil {
			return nil, err
		}
	case TaskMulticlass:
		if d.cls, err = classLabels("labels", s.Labels, d.k); err != nil {
			return nil, err
		}
		if d.p, err = classProbabilities("predictions", s.Predictions, d.k); err != nil {
			return nil, err
		}
	case TaskRegression:
		if d.y, err = finite("labels", s.Labels); err != nil {
			return nil, err
		}
		if d.p, err = finite("predictions", s.Predictions); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// metrics computes on the rows in idx, or on all rows when idx is nil.
func (d *prepared) metrics(idx []int) TaskMetrics {
	y, cls, p, w := d.y, d.cls, d.p, d.w
	if idx != nil {
		w = gather(d.w, idx, 1)
		if d.task == TaskMulticlass {
			cls = gather(d.cls, idx, 1)
			p = gather(d.p, idx, d.k)
		} else {
			y = gather(d.y, idx, 1)
			p = gather(d.p, idx, 1)
		}
	}
	// Spec predictions are float32, and log-loss clips as sklearn does
	// for a float32 predict_proba.
	eps := clipEps[float32]()
	switch d.task {
	case TaskBinary:
		return TaskMetrics{Binary: binaryMetrics(y, p, w, d.threshold, d.bins, eps)}
	case TaskMulticlass:
		return TaskMetrics{Multiclass: multiclassMetrics(cls, p, d.k, w, d.bins, eps)}
	default:
		return TaskMetrics{Regression: regressionMetrics(y, p, w)}
	}
}

// gather returns the rows in idx of a row-major matrix of width columns.
func gather[T any](v []T, idx []int, width int) []T {
	out := make([]T, 0, len(idx)*width)
	for _, i := range idx {
		out = append(out, v[i*width:(i+1)*width]...)
	}
	return out
}

type group struct {
	value string
	rows  []int
}

// groupRows splits row indices by the value of column c, in the order of
// the values.
func groupRows(ci int, c Column, n int) ([]group, error) {
	switch {
	case (c.Strings == nil) == (c.Codes == nil):
		return nil, errs.Invalid("slices[%d] (%s) must set exactly one of strings and codes", ci, c.Name)
	case c.Strings != nil:
		return groupBy(ci, c.Name, "strings", c.Strings, n, func(s string) string { return s })
	default:
		return groupBy(ci, c.Name, "codes", c.Codes, n, func(v int64) string { return strconv.FormatInt(v, 10) })
	}
}

func groupBy[K cmp.Ordered](ci int, name, field string, values []K, n int, format func(K) string) ([]group, error) {
	if len(values) != n {
		return nil, errs.Invalid("slices[%d] (%s) has %d %s; labels has %d rows", ci, name, len(values), field, n)
	}
	byValue := map[K][]int{}
	for i, v := range values {
		byValue[v] = append(byValue[v], i)
		if len(byValue) > MaxSliceValues {
			return nil, errs.Invalid("slices[%d] (%s) has more than %d distinct values; slice by a categorical column, not an identifier", ci, name, MaxSliceValues)
		}
	}
	keys := make([]K, 0, len(byValue))
	for k := range byValue {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]group, len(keys))
	for i, k := range keys {
		out[i] = group{value: format(k), rows: byValue[k]}
	}
	return out, nil
}
