package xgboost_test

import (
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// small.json and small.ubj are one model (3 trees of depth 2 on four
// breast-cancer features), saved by XGBoost 1.7.4 in both formats; want
// is what XGBoost predicted for rows.
var (
	rows = []float32{
		17.99, 10.38, 122.8, 1001.0,
		20.57, 17.77, 132.9, 1326.0,
		19.69, 21.25, 130.0, 1203.0,
	}
	want = []float32{0.5655025839805603, 0.2104165256023407, 0.2104165256023407}
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSmallModel(t *testing.T) {
	for _, file := range []string{"small.json", "small.ubj"} {
		t.Run(file, func(t *testing.T) {
			m, err := xgboost.Load(readFile(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Objective() != "binary:logistic" || m.Booster() != "gbtree" || m.NumTrees() != 3 || m.NumFeatures() != 4 || m.NumOutputs() != 1 {
				t.Fatalf("loaded %s %s with %d trees, %d features, %d outputs", m.Objective(), m.Booster(), m.NumTrees(), m.NumFeatures(), m.NumOutputs())
			}
			sig := m.Signature()
			if len(sig.Inputs) != 4 || sig.Inputs[0].Name != "radius" || sig.Inputs[3].Name != "area" || sig.Outputs[0].Name != "prediction" {
				t.Fatalf("signature %+v", sig)
			}
			got := make([]float32, 3)
			if err := m.Predict(rows, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-6 {
					t.Fatalf("row %d: got %v, XGBoost %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestConcurrentAndParallel scores a batch large enough to be split across
// cores while other goroutines score single rows, and requires each row's
// answer to equal the single-row answer.
func TestConcurrentAndParallel(t *testing.T) {
	m, err := xgboost.Load(readFile(t, "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	x := make([]float32, n*4)
	for i := range x {
		x[i] = rows[i%len(rows)] * (1 + float32(i%97)/100)
		if i%13 == 0 {
			x[i] = float32(math.NaN())
		}
	}
	batch := make([]float32, n)
	var wg sync.WaitGroup
	single := make([]float32, n)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < n; r += 4 {
				if err := m.PredictRow(x[r*4:(r+1)*4], single[r:r+1]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	if err := m.Predict(x, batch); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for r := range batch {
		if batch[r] != single[r] {
			t.Fatalf("row %d: batch %v, single row %v", r, batch[r], single[r])
		}
	}
}

func TestPredictRowDoesNotAllocate(t *testing.T) {
	m, err := xgboost.Load(readFile(t, "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 1)
	allocs := testing.AllocsPerRun(100, func() { m.PredictRow(rows[:4], out) })
	if allocs != 0 {
		t.Fatalf("PredictRow allocates %v times per call; want 0", allocs)
	}
}

func TestShapeErrors(t *testing.T) {
	m, err := xgboost.Load(readFile(t, "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ragged batch", m.Predict(rows[:5], make([]float32, 2)), "not a whole number of rows of 4 features"},
		{"small output", m.Predict(rows, make([]float32, 2)), "3 rows need 3"},
		{"short row", m.PredictRow(rows[:3], make([]float32, 1)), "row has 3 values; the model has 4 features"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestBadFiles corrupts the small model in ways a damaged or hostile file
// would, and requires an error that names what is wrong.
func TestBadFiles(t *testing.T) {
	good := string(readFile(t, "small.json"))
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("small.json has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty", "", "the file is empty"},
		{"legacy binary", "binf\x00\x00\x00", "neither JSON nor UBJSON"},
		{"not a model", `{"hello": 1}`, `no "learner" object`},
		{"truncated", good[:len(good)/2], "unexpected end of JSON input"},
		{"objective", edit(`"name":"binary:logistic"`, `"name":"reg:quantum"`), `objective "reg:quantum": not supported`},
		{"booster", edit(`"name":"gbtree"`, `"name":"gbforest"`), `gradient_booster "gbforest": unsupported booster`},
		{"num_feature", edit(`"num_class":"0","num_feature":"4"`, `"num_class":"0","num_feature":"x"`), `num_feature "x": must be a whole number`},
		{"child out of range", edit(`"left_children":[1,3,5,-1,-1,-1,-1]`, `"left_children":[1,3,50,-1,-1,-1,-1]`), "trees[0]: node 2: children 50 and 6 must be nodes 0 to 6"},
		{"cycle", edit(`"left_children":[1,3,5,-1,-1,-1,-1]`, `"left_children":[1,0,5,-1,-1,-1,-1]`), "trees[0]: node 0 is reached twice"},
		{"split_indices length", edit(`"split_indices":[3,2,1,0,0,0,0]`, `"split_indices":[3,2,1,0,0,0,0,0]`), "split_indices has 8 entries for 7 nodes"},
		{"feature out of range", edit(`"split_indices":[3,2,1,0,0,0,0]`, `"split_indices":[3,2,9,0,0,0,0]`), "node 2: split feature 9: the model has 4 features"},
		{"leaf vector", edit(`"num_nodes":"7","size_leaf_vector":"0"`, `"num_nodes":"7","size_leaf_vector":"3"`), "vector leaves (multi-target trees) are not supported"},
		{"tree_info", edit(`"tree_info":[0,0,0]`, `"tree_info":[0,1,0]`), "tree_info[1] 1: must be an output group from 0 to 0"},
		{"num_trees", edit(`"num_trees":"3"`, `"num_trees":"4"`), "num_trees 4, 3 trees and 3 tree_info entries must agree"},
		{"base_score", edit(`"base_score":"5E-1"`, `"base_score":"1.5"`), "base_score 1.5: must be between 0 and 1 for binary:logistic"},
		{"wrong type", edit(`"tree_info":[0,0,0]`, `"tree_info":"all"`), "tree_info: must be an array of numbers"},
		{"feature names", edit(`"feature_names":["radius",`, `"feature_names":[`), "feature_names has 3 names for 4 features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xgboost.Load([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v; want an error containing %q", err, tc.want)
			}
		})
	}
	ubj := readFile(t, "small.ubj")
	for _, cut := range []int{1, 10, len(ubj) / 2, len(ubj) - 1} {
		if _, err := xgboost.Load(ubj[:cut]); err == nil {
			t.Errorf("UBJSON cut at %d of %d bytes loaded", cut, len(ubj))
		}
	}
}

// FuzzLoad feeds corrupted model files to the loader: it must return an
// error or a model that predicts without panicking, never crash or hang.
func FuzzLoad(f *testing.F) {
	f.Add(readFile(f, "small.json"))
	f.Add(readFile(f, "small.ubj"))
	f.Add([]byte(`{"learner":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := xgboost.Load(data)
		if err != nil || m.NumFeatures() > 1<<20 {
			return
		}
		row := make([]float32, m.NumFeatures())
		out := make([]float32, m.NumOutputs())
		for _, v := range []float32{0, float32(math.NaN()), -1, 1e30} {
			for i := range row {
				row[i] = v
			}
			if err := m.PredictRow(row, out); err != nil {
				t.Fatal(err)
			}
		}
	})
}
