package xgboost

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

type transform uint8

const (
	identity transform = iota
	sigmoid
	exponent
	hinge
	softmax
	argmax
)

// blockRows rows are scored tree by tree together, as XGBoost's CPU
// predictor does: a tree stays in cache while it scores the whole block.
const blockRows = 64

// stackGroups output groups fit the scratch arrays kept on the stack;
// models with more classes allocate theirs.
const stackGroups = 16

// parallelRows is the smallest batch split across cores; below it the
// cost of starting goroutines outweighs the work.
const parallelRows = 1024

// Predict implements models.Model: x holds rows of NumFeatures values
// (NaN is missing) and out receives NumOutputs values per row. Batches of
// parallelRows rows or more use every core.
func (m *Model) Predict(x, out []float32) error {
	nf := m.numFeature
	if len(x)%nf != 0 {
		return fmt.Errorf("input has %d values, not a whole number of rows of %d features", len(x), nf)
	}
	rows := len(x) / nf
	if len(out) < rows*m.numOutputs {
		return fmt.Errorf("output has room for %d values; %d rows need %d", len(out), rows, rows*m.numOutputs)
	}
	workers := min(runtime.GOMAXPROCS(0), rows/parallelRows)
	if workers <= 1 {
		m.predictRows(x, out, 0, rows)
		return nil
	}
	// Whole blocks per worker, so that no block is split.
	blocks := (rows + blockRows - 1) / blockRows
	per := (blocks + workers - 1) / workers * blockRows
	var wg sync.WaitGroup
	for lo := 0; lo < rows; lo += per {
		hi := min(lo+per, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.predictRows(x, out, lo, hi)
		}()
	}
	wg.Wait()
	return nil
}

// PredictRow implements models.Model; it does not allocate for models of
// up to 16 classes.
func (m *Model) PredictRow(row, out []float32) error {
	if len(row) != m.numFeature {
		return fmt.Errorf("row has %d values; the model has %d features", len(row), m.numFeature)
	}
	if len(out) < m.numOutputs {
		return fmt.Errorf("output has room for %d values; the model predicts %d", len(out), m.numOutputs)
	}
	var stack [stackGroups]float32
	margins := stack[:]
	if m.numGroup > stackGroups {
		margins = make([]float32, m.numGroup)
	}
	margins = margins[:m.numGroup]
	copy(margins, m.baseMargin)
	if m.linear != nil {
		m.linearMargins(row, margins)
	} else {
		m.forest.rowMargins(row, margins)
	}
	m.finish(margins, out[:m.numOutputs])
	return nil
}

// predictRows scores rows lo to hi of x into out.
func (m *Model) predictRows(x, out []float32, lo, hi int) {
	ng, nf := m.numGroup, m.numFeature
	var stack [blockRows * stackGroups]float32
	var acc []float32
	if ng <= stackGroups {
		acc = stack[:]
	} else {
		acc = make([]float32, blockRows*ng)
	}
	for b := lo; b < hi; b += blockRows {
		e := min(b+blockRows, hi)
		n := e - b
		margins := acc[:n*ng]
		for r := 0; r < n; r++ {
			copy(margins[r*ng:(r+1)*ng], m.baseMargin)
		}
		if m.linear != nil {
			m.linearMargins(x[b*nf:e*nf], margins)
		} else {
			m.treeMargins(x[b*nf:e*nf], margins)
		}
		m.finish(margins, out[b*m.numOutputs:e*m.numOutputs])
	}
}

// treeMargins adds every tree's leaf to the margins of a block of rows,
// tree by tree and in the trees' order, in float32 as XGBoost does, so the
// sums round the same way. Rows short of a whole set of lanes are scored
// one at a time.
func (m *Model) treeMargins(x, margins []float32) {
	f := &m.forest
	ng, nf := m.numGroup, m.numFeature
	n := len(x) / nf
	whole := n / lanes * lanes
	weighted := f.weight != nil
	for t, root := range f.roots {
		g := int(f.group[t])
		var w float32
		if weighted {
			w = f.weight[t]
		}
		for r := 0; r < whole; r += lanes {
			f.leafValues(root, x[r*nf:(r+lanes)*nf], nf, margins[r*ng+g:], ng, w, weighted)
		}
	}
	for r := whole; r < n; r++ {
		f.rowMargins(x[r*nf:(r+1)*nf], margins[r*ng:(r+1)*ng])
	}
}

// linearMargins adds gblinear's bias and weighted features, skipping
// missing values as XGBoost's sparse rows do.
func (m *Model) linearMargins(x, margins []float32) {
	ng, nf := m.numGroup, m.numFeature
	w := m.linear
	bias := w[nf*ng:]
	n := len(x) / nf
	for r := 0; r < n; r++ {
		row := x[r*nf : (r+1)*nf]
		for g := 0; g < ng; g++ {
			sum := bias[g] + margins[r*ng+g]
			for j, v := range row {
				if v == v {
					sum += v * w[j*ng+g]
				}
			}
			margins[r*ng+g] = sum
		}
	}
}

// finish turns margins into predictions.
func (m *Model) finish(margins, out []float32) {
	switch m.transform {
	case identity:
		copy(out, margins)
	case sigmoid:
		for i, v := range margins {
			out[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case exponent:
		for i, v := range margins {
			out[i] = float32(math.Exp(float64(v)))
		}
	case hinge:
		for i, v := range margins {
			out[i] = 0
			if v > 0 {
				out[i] = 1
			}
		}
	case softmax:
		ng := m.numGroup
		for r := 0; r < len(margins)/ng; r++ {
			row, dst := margins[r*ng:(r+1)*ng], out[r*ng:(r+1)*ng]
			top := row[0]
			for _, v := range row[1:] {
				top = max(top, v)
			}
			var sum float32
			for g, v := range row {
				dst[g] = float32(math.Exp(float64(v - top)))
				sum += dst[g]
			}
			for g := range dst {
				dst[g] /= sum
			}
		}
	case argmax:
		ng := m.numGroup
		for r := 0; r < len(margins)/ng; r++ {
			row := margins[r*ng : (r+1)*ng]
			best := 0
			for g, v := range row {
				if v > row[best] {
					best = g
				}
			}
			out[r] = float32(best)
		}
	}
}
