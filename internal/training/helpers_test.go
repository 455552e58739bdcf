package training

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// synth makes a data set with numeric features (some missing), one
// categorical feature whose effect is not monotone in its code, and labels
// for the objective.
func synth(n int, objective string, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 1))
	const nf = 6
	d := &Dataset{Columns: make([][]float32, nf), Names: []string{"a", "b", "c", "d", "e", "color"},
		Categorical: []bool{false, false, false, false, false, true}, Labels: make([]float32, n)}
	for j := range d.Columns {
		d.Columns[j] = make([]float32, n)
	}
	effect := []float64{2, -1, 0.5, 3, -2, 0, 1, -0.5, 2.5, -3, 1.5, 0.2}
	for r := range n {
		x := make([]float64, nf)
		for j := range 5 {
			x[j] = rng.NormFloat64()
			d.Columns[j][r] = float32(x[j])
			if rng.Float64() < 0.1 {
				d.Columns[j][r] = float32(math.NaN())
				x[j] = 0
			}
		}
		d.Columns[3][r] = float32(math.Round(x[3] * 3)) // few distinct values
		c := rng.IntN(len(effect))
		d.Columns[5][r] = float32(c)
		if rng.Float64() < 0.05 {
			d.Columns[5][r] = float32(math.NaN())
			c = 5
		}
		f := x[0] + 0.5*x[1]*x[1] - x[2]*x[4] + math.Sin(3*x[3]) + effect[c]
		switch objective {
		case BinaryLogistic:
			if f+rng.NormFloat64() > 0.5 {
				d.Labels[r] = 1
			}
		case MultiSoftprob:
			switch {
			case f < -0.5:
				d.Labels[r] = 0
			case f < 1.5:
				d.Labels[r] = 1
			default:
				d.Labels[r] = 2
			}
		case CountPoisson:
			d.Labels[r] = float32(poisson(rng, math.Exp(0.3*f)))
		default:
			d.Labels[r] = float32(3*f + rng.NormFloat64())
		}
	}
	return d
}

func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// trainWithMargins trains and also returns the training rows' margins as
// training computed them.
func trainWithMargins(t *testing.T, p GBDTParams, d *Dataset) (*Result, []float32) {
	t.Helper()
	var margins []float32
	trainingMargins = func(m []float32) { margins = m }
	defer func() { trainingMargins = nil }()
	res, err := TrainGBDT(context.Background(), p, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, margins
}

// rowMajor lays d out as the runtime reads rows.
func rowMajor(d *Dataset) []float32 {
	n, nf := d.Rows(), d.NumFeatures()
	x := make([]float32, n*nf)
	for j, col := range d.Columns {
		for r, v := range col {
			x[r*nf+j] = v
		}
	}
	return x
}

// runtimePredict loads m's JSON in Slipway's XGBoost runtime and scores d.
func runtimePredict(t *testing.T, m *Model, d *Dataset) ([]float32, *xgboost.Model) {
	t.Helper()
	rt, err := xgboost.Load(m.JSON())
	if err != nil {
		t.Fatalf("runtime cannot load the model: %v", err)
	}
	out := make([]float32, d.Rows()*rt.NumOutputs())
	if err := rt.Predict(rowMajor(d), out); err != nil {
		t.Fatal(err)
	}
	return out, rt
}
