package xgboost_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// synth describes a random forest written in XGBoost's JSON format, so
// that tests and benchmarks can have models of any shape without Python.
type synth struct {
	objective string
	trees     int
	depth     int
	features  int
	classes   int  // num_class; 0 for one output group
	dart      bool // weight each tree, as dart does
	cats      int  // the first cats features are categorical, codes 0 to 11
	ragged    bool // end branches at random depths, not all at depth
}

const synthCategories = 12

// model builds the forest from seed and loads it.
func (s synth) model(t testing.TB, seed uint64) *xgboost.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	groups := max(s.classes, 1)
	trees := make([]any, s.trees)
	info := make([]int, s.trees)
	weights := make([]float32, s.trees)
	for i := range trees {
		trees[i] = s.tree(rng, i)
		info[i] = i % groups
		weights[i] = float32(0.2 + rng.Float64())
	}
	model := map[string]any{
		"gbtree_model_param": map[string]string{"num_trees": fmt.Sprint(s.trees), "num_parallel_tree": "1"},
		"tree_info":          info,
		"trees":              trees,
	}
	booster := map[string]any{"name": "gbtree", "model": model}
	if s.dart {
		booster = map[string]any{"name": "dart", "gbtree": map[string]any{"name": "gbtree", "model": model}, "weight_drop": weights}
	}
	types := make([]string, s.features)
	for j := range types {
		types[j] = "float"
		if j < s.cats {
			types[j] = "c"
		}
	}
	file := map[string]any{
		"version": []int{2, 0, 3},
		"learner": map[string]any{
			"feature_types":    types,
			"gradient_booster": booster,
			"learner_model_param": map[string]string{"base_score": "5E-1", "num_class": fmt.Sprint(s.classes),
				"num_feature": fmt.Sprint(s.features), "num_target": "1"},
			"objective": map[string]string{"name": s.objective},
		},
	}
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := xgboost.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tree numbers nodes as XGBoost does, giving an expanded node's two
// children the next two numbers, but expands depth first, so that the
// file's order is not the breadth-first order the loader lays trees out in.
func (s synth) tree(rng *rand.Rand, id int) map[string]any {
	var left, right, feature, defLeft, splitType []int
	var cond []float32
	var cats, catNodes, catSegs, catSizes []int
	add := func() int {
		left, right, feature, defLeft, splitType = append(left, -1), append(right, -1), append(feature, 0), append(defLeft, 0), append(splitType, 0)
		cond = append(cond, 0)
		return len(left) - 1
	}
	var grow func(n, depth int)
	grow = func(n, depth int) {
		if depth == s.depth || (s.ragged && depth > 0 && rng.IntN(4) == 0) {
			// Leaves of mixed magnitudes, so that adding them in
			// another order would round differently.
			cond[n] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(4)-3)))
			return
		}
		f := rng.IntN(s.features)
		feature[n] = f
		defLeft[n] = rng.IntN(2)
		if f < s.cats {
			splitType[n] = 1
			catNodes = append(catNodes, n)
			catSegs = append(catSegs, len(cats))
			size := 0
			for c := 0; c < synthCategories; c++ {
				if rng.IntN(2) == 0 {
					cats = append(cats, c)
					size++
				}
			}
			catSizes = append(catSizes, size)
			cond[n] = float32(math.NaN())
		} else {
			cond[n] = float32(rng.NormFloat64() * 0.7)
		}
		l, r := add(), add()
		left[n], right[n] = l, r
		grow(l, depth+1)
		grow(r, depth+1)
	}
	grow(add(), 0)
	// NaN is not JSON; XGBoost writes it bare, which the loader accepts,
	// but encoding/json will not, so categorical conditions become 0.
	for i, v := range cond {
		if v != v {
			cond[i] = 0
		}
	}
	return map[string]any{
		"id":                  id,
		"tree_param":          map[string]string{"num_nodes": fmt.Sprint(len(left)), "num_feature": fmt.Sprint(s.features), "size_leaf_vector": "1"},
		"left_children":       left,
		"right_children":      right,
		"split_indices":       feature,
		"split_conditions":    cond,
		"default_left":        defLeft,
		"split_type":          splitType,
		"categories":          cats,
		"categories_nodes":    catNodes,
		"categories_segments": catSegs,
		"categories_sizes":    catSizes,
	}
}

// rows returns n rows with about 5% missing values; categorical features
// hold codes, now and then one the splits have never seen or a negative
// one.
func (s synth) rows(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, n*s.features)
	for i := range x {
		switch j := i % s.features; {
		case rng.IntN(20) == 0:
			x[i] = float32(math.NaN())
		case j < s.cats:
			x[i] = float32(rng.IntN(synthCategories+2) - 1)
		default:
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

// TestPredictRowMatchesBatch requires PredictRow to give, bit for bit,
// what Predict gives for the same rows in a batch, whose blocks walk each
// tree for many rows at once: two ways of walking the trees that must add
// the same leaves in the same order.
func TestPredictRowMatchesBatch(t *testing.T) {
	for name, s := range map[string]synth{
		"regression":               {objective: "reg:squarederror", trees: 37, depth: 7, features: 9, ragged: true},
		"binary":                   {objective: "binary:logistic", trees: 100, depth: 6, features: 30},
		"one tree":                 {objective: "reg:squarederror", trees: 1, depth: 3, features: 2},
		"categorical dart":         {objective: "reg:squarederror", trees: 45, depth: 6, features: 5, dart: true, cats: 2, ragged: true},
		"multi-class":              {objective: "multi:softprob", trees: 3 * 21, depth: 5, features: 6, classes: 3, ragged: true},
		"multi-class dart":         {objective: "multi:softprob", trees: 5 * 13, depth: 6, features: 8, classes: 5, dart: true, cats: 3, ragged: true},
		"many classes":             {objective: "multi:softprob", trees: 20 * 3, depth: 3, features: 4, classes: 20, ragged: true},
		"multi-class argmax dart":  {objective: "multi:softmax", trees: 4 * 9, depth: 4, features: 4, classes: 4, dart: true, cats: 1},
		"categorical only, ragged": {objective: "binary:logitraw", trees: 30, depth: 8, features: 3, cats: 3, ragged: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := s.model(t, 11)
			const n = 32 * 16 // whole blocks of rows, all walked many rows at a time
			x := s.rows(n, 12)
			nf, no := m.NumFeatures(), m.NumOutputs()
			batch := make([]float32, n*no)
			if err := m.Predict(x, batch); err != nil {
				t.Fatal(err)
			}
			row := make([]float32, no)
			for r := 0; r < n; r++ {
				if err := m.PredictRow(x[r*nf:(r+1)*nf], row); err != nil {
					t.Fatal(err)
				}
				for o, v := range row {
					if want := batch[r*no+o]; math.Float32bits(v) != math.Float32bits(want) {
						t.Fatalf("row %d output %d: PredictRow %v (%#x), Predict %v (%#x)", r, o, v, math.Float32bits(v), want, math.Float32bits(want))
					}
				}
			}
			if s.classes <= 16 {
				if allocs := testing.AllocsPerRun(20, func() { m.PredictRow(x[:nf], row) }); allocs != 0 {
					t.Fatalf("PredictRow allocates %v times per call; want 0", allocs)
				}
			}
		})
	}
}

// BenchmarkPredictRow scores one row at a time with a model the size of a
// typical served one: 100 trees of depth 6 on 30 features.
func BenchmarkPredictRow(b *testing.B) {
	benchmarkPredictRow(b, synth{objective: "binary:logistic", trees: 100, depth: 6, features: 30})
}

// BenchmarkPredictRowCategorical is BenchmarkPredictRow with three of the
// features categorical, which take the walk that is not inlined.
func BenchmarkPredictRowCategorical(b *testing.B) {
	benchmarkPredictRow(b, synth{objective: "binary:logistic", trees: 100, depth: 6, features: 30, cats: 3})
}

func benchmarkPredictRow(b *testing.B, s synth) {
	m := s.model(b, 1)
	const n = 1024
	x := s.rows(n, 2)
	nf := s.features
	out := make([]float32, m.NumOutputs())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := i % n
		if err := m.PredictRow(x[r*nf:(r+1)*nf], out); err != nil {
			b.Fatal(err)
		}
	}
}
