package training

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tabular"
)

// SetAttribute records a learner attribute that is written with the model.
func (m *Model) SetAttribute(key, value string) {
	if m.attributes == nil {
		m.attributes = map[string]string{}
	}
	m.attributes[key] = value
}

// Table is a training table turned into a Dataset: the features, the
// labels, and what turned text into numbers.
type Table struct {
	Data *Dataset
	// Levels holds each categorical feature's levels, by feature name.
	Levels map[string][]string
	// Classes are the target's text labels in class-index order, when the
	// target is text.
	Classes []string
}

// FromTable takes every column but target (and those in drop) as a
// feature, text columns as categorical, and target as the labels. A text
// target becomes class indices (its levels, sorted); a missing label is an
// error naming its row.
func FromTable(t *tabular.Table, target string, drop []string) (*Table, error) {
	ti := t.Index(target)
	if ti < 0 {
		return nil, errs.Invalid("no target column %q (the data has %d columns)", target, len(t.Columns))
	}
	skip := map[string]bool{target: true}
	for _, d := range drop {
		if t.Index(d) < 0 {
			return nil, errs.Invalid("--drop %s: the data has no such column", d)
		}
		skip[d] = true
	}
	out := &Table{Data: &Dataset{}, Levels: map[string][]string{}}
	tc := &t.Columns[ti]
	out.Data.Labels = make([]float32, t.Rows)
	for r, v := range tc.Values {
		if v != v {
			return nil, errs.Invalid("target column %q, row %d: the label is missing", target, r+1)
		}
		out.Data.Labels[r] = v
	}
	if tc.Kind == tabular.Categorical {
		out.Classes = tc.Levels
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		if skip[c.Name] {
			continue
		}
		out.Data.Names = append(out.Data.Names, c.Name)
		out.Data.Columns = append(out.Data.Columns, c.Values)
		out.Data.Categorical = append(out.Data.Categorical, c.Kind == tabular.Categorical)
		if c.Kind == tabular.Categorical {
			out.Levels[c.Name] = c.Levels
		}
	}
	if len(out.Data.Columns) == 0 {
		return nil, errs.Invalid("the data has no feature columns besides the target %q", target)
	}
	return out, nil
}

// Recode lays out another table (validation data) in this table's
// features, levels and classes: a level training never saw is missing; a
// class it never saw is an error naming the row.
func (tt *Table) Recode(t *tabular.Table, target string) (*Dataset, error) {
	features := make([]tabular.Feature, len(tt.Data.Names))
	for j, name := range tt.Data.Names {
		features[j] = tabular.Feature{Name: name, Categorical: tt.Data.Categorical[j], Levels: tt.Levels[name]}
	}
	x, err := t.Matrix(features)
	if err != nil {
		return nil, err
	}
	nf := len(features)
	d := &Dataset{Names: tt.Data.Names, Categorical: tt.Data.Categorical, Columns: make([][]float32, nf), Labels: make([]float32, t.Rows)}
	for j := range d.Columns {
		col := make([]float32, t.Rows)
		for r := range col {
			col[r] = x[r*nf+j]
		}
		d.Columns[j] = col
	}
	ti := t.Index(target)
	if ti < 0 {
		return nil, errs.Invalid("no target column %q", target)
	}
	tc := &t.Columns[ti]
	class := map[string]float32{}
	for i, c := range tt.Classes {
		class[c] = float32(i)
	}
	for r, v := range tc.Values {
		switch {
		case v != v:
			return nil, errs.Invalid("target column %q, row %d: the label is missing", target, r+1)
		case tt.Classes != nil && tc.Kind == tabular.Categorical:
			c, ok := class[tc.Levels[int(v)]]
			if !ok {
				return nil, errs.Invalid("target column %q, row %d: class %q does not occur in the training data", target, r+1, tc.Levels[int(v)])
			}
			d.Labels[r] = c
		case tt.Classes != nil:
			return nil, errs.Invalid("target column %q, row %d: %v is a number; the training labels are text", target, r+1, v)
		default:
			d.Labels[r] = v
		}
	}
	return d, nil
}

// Split moves a share of the rows, chosen with seed, into a second data
// set, for validation.
func (d *Dataset) Split(share float64, seed uint64) (train, valid *Dataset, err error) {
	n := d.Rows()
	k := int(math.Round(share * float64(n)))
	if share <= 0 || share >= 1 || k < 1 || k >= n {
		return nil, nil, errs.Invalid("validation share %v of %d rows: must leave at least one row on each side", share, n)
	}
	perm := rand.New(rand.NewPCG(seed, 0x5117)).Perm(n)
	validRows, trainRows := perm[:k], perm[k:]
	sort.Ints(validRows)
	sort.Ints(trainRows)
	return d.rows(trainRows), d.rows(validRows), nil
}

func (d *Dataset) rows(idx []int) *Dataset {
	out := &Dataset{Names: d.Names, Categorical: d.Categorical, Columns: make([][]float32, len(d.Columns)), Labels: make([]float32, len(idx))}
	for j, col := range d.Columns {
		c := make([]float32, len(idx))
		for i, r := range idx {
			c[i] = col[r]
		}
		out.Columns[j] = c
	}
	for i, r := range idx {
		out.Labels[i] = d.Labels[r]
	}
	if d.Weights != nil {
		out.Weights = make([]float32, len(idx))
		for i, r := range idx {
			out.Weights[i] = d.Weights[r]
		}
	}
	return out
}

// InferObjective picks an objective from the labels when none is given:
// text labels or whole numbers 0..k-1 with k > 2 are multiclass, 0/1 is
// binary, anything else regression. It returns the objective and, for
// multiclass, the number of classes.
func (tt *Table) InferObjective() (string, int) {
	if tt.Classes != nil {
		if len(tt.Classes) == 2 {
			return BinaryLogistic, 0
		}
		return MultiSoftprob, len(tt.Classes)
	}
	top := float32(0)
	for _, v := range tt.Data.Labels {
		if v < 0 || v != float32(math.Trunc(float64(v))) || v > 1000 {
			return RegSquaredError, 0
		}
		top = max(top, v)
	}
	switch {
	case top <= 1:
		return BinaryLogistic, 0
	case int(top)+1 <= 50:
		return MultiSoftprob, int(top) + 1
	}
	return RegSquaredError, 0
}
