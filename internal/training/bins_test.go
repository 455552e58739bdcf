package training

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBinOf: a value's bin is the number of cuts at or below it, so that
// x < cuts[b] exactly when x's bin is at most b, which is what makes the
// thresholds written into the model split as training did.
func TestBinOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 2, 3, 7, 255, 256} {
		cuts := make([]float32, n)
		for i := range cuts {
			cuts[i] = float32(rng.NormFloat64())
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		keys := make([]uint32, len(cuts))
		for i, c := range cuts {
			keys[i] = floatKey(c)
		}
		f := featureBins{cuts: cuts, cutKeys: keys, nbins: len(cuts)}
		probe := append(slices.Clone(cuts), -10, 10, 0, float32(math.Copysign(0, -1)))
		for range 200 {
			probe = append(probe, float32(rng.NormFloat64()))
		}
		for _, v := range probe {
			want := 0
			for _, c := range cuts {
				if c <= v {
					want++
				}
			}
			want = min(want, len(cuts)-1)
			if got := f.binOf(v); got != want {
				t.Fatalf("%d cuts: binOf(%v) = %d, want %d", len(cuts), v, got, want)
			}
		}
	}
}

// TestNumericBins: few distinct values get a bin each, cut at the values
// themselves as XGBoost cuts them; many get max_bin quantile bins; a
// missing value costs a bin when bins are bytes.
func TestNumericBins(t *testing.T) {
	col := []float32{3, 1, 2, 2, 4, float32(math.NaN())}
	f := numericBins(col, nil, 256, false)
	want := []float32{2, 3, 4, float32(4 + 4 + 1e-5)}
	if !slices.Equal(f.cuts, want) || f.nbins != 4 {
		t.Fatalf("cuts %v, want %v", f.cuts, want)
	}
	if f.below >= 1 {
		t.Fatalf("below %v is not below the smallest value 1", f.below)
	}
	many := make([]float32, 10000)
	for i := range many {
		many[i] = float32(i)
	}
	if f := numericBins(many, nil, 256, false); f.nbins != 256 {
		t.Fatalf("%d bins for 10000 distinct values, want 256", f.nbins)
	}
	many[0] = float32(math.NaN())
	if f := numericBins(many, nil, 256, false); f.nbins != 255 {
		t.Fatalf("%d bins with missing values in byte bins, want 255", f.nbins)
	}
	if f := numericBins(many, nil, 256, true); f.nbins != 256 {
		t.Fatalf("%d bins with missing values in 16-bit bins, want 256", f.nbins)
	}
	// Weighted quantiles put more cuts where the weight is.
	w := make([]float32, len(many))
	for i := range w {
		w[i] = 1
		if i >= 5000 {
			w[i] = 9
		}
	}
	f = numericBins(many, w, 16, false)
	above := 0
	for _, c := range f.cuts {
		if c >= 5000 {
			above++
		}
	}
	if above < 12 {
		t.Fatalf("%d of %d cuts in the heavier half; want most (cuts %v)", above, len(f.cuts), f.cuts)
	}
}

// TestWideBins: max_bin above 256, or a category code above 254, switches
// to 16-bit bins, and training still matches the runtime.
func TestWideBins(t *testing.T) {
	d := synth(3000, BinaryLogistic, 21)
	for r := range d.Rows() {
		if v := d.Columns[5][r]; v == v {
			d.Columns[5][r] = v * 40 // codes up to 440
		}
	}
	if _, wide := sketch(d, 256, 1); !wide {
		t.Fatal("category codes above 254 did not switch to 16-bit bins")
	}
	if _, wide := sketch(synth(100, BinaryLogistic, 1), 1024, 1); !wide {
		t.Fatal("max_bin 1024 did not switch to 16-bit bins")
	}
	p := DefaultGBDTParams()
	p.Rounds = 10
	p.MaxCatToOnehot = 1
	res, margins := trainWithMargins(t, p, d)
	got, _ := runtimePredict(t, res.Model, d)
	for r := range d.Rows() {
		want := float32(1 / (1 + math.Exp(-float64(margins[r]))))
		if math.Abs(float64(got[r]-want)) > 1e-6 {
			t.Fatalf("row %d: runtime %v, training %v", r, got[r], want)
		}
	}
}

func BenchmarkBinOf(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	vals := make([]float32, 1<<16)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	f := numericBins(vals, nil, 256, false)
	b.ResetTimer()
	s := 0
	for i := range b.N {
		s += f.binOf(vals[i&(len(vals)-1)])
	}
	_ = s
}
