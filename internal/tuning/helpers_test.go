package tuning

import (
	"math/rand/v2"

	"github.com/slipwayml/slipway/internal/training"
)

// xorData is a binary problem that only trees deeper than 1 can learn:
// the label is the sign of x0*x1 (flipped for 5% of rows), which no sum of
// single-feature stumps expresses. x2 is noise.
func xorData(n int, seed uint64) *training.Dataset {
	rng := rand.New(rand.NewPCG(seed, 2))
	d := &training.Dataset{Columns: make([][]float32, 3), Names: []string{"x0", "x1", "x2"}, Labels: make([]float32, n)}
	for j := range d.Columns {
		d.Columns[j] = make([]float32, n)
	}
	for r := range n {
		x0, x1 := rng.Float64()*2-1, rng.Float64()*2-1
		d.Columns[0][r], d.Columns[1][r], d.Columns[2][r] = float32(x0), float32(x1), float32(rng.NormFloat64())
		y := x0*x1 > 0
		if rng.Float64() < 0.05 {
			y = !y
		}
		if y {
			d.Labels[r] = 1
		}
	}
	return d
}
