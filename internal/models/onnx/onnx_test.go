package onnx_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/models/onnx"
)

func load(t *testing.T, g graphSpec) *onnx.Model {
	t.Helper()
	m, err := onnx.Load(g.encode())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func nan() float32 { return float32(math.NaN()) }

// tree is one single-split tree for treeAttrs: node 0 splits feature f
// by mode at value v into leaves 1 (true) and 2 (false).
type tree struct {
	mode      string
	f         int64
	v         float32
	yes, no   float32
	tracksNaN bool
}

// treeAttrs are the attributes of an ensemble of single-split trees, with
// weights for output 0 (prefix "target_" or "class_").
func treeAttrs(prefix string, trees ...tree) []msg {
	var tids, nids, feats, yes, no, missing, wt, wn, wid []int64
	var modes []string
	var vals, w []float32
	for i, tr := range trees {
		id := int64(i)
		tids = append(tids, id, id, id)
		nids = append(nids, 0, 1, 2)
		feats = append(feats, tr.f, 0, 0)
		modes = append(modes, tr.mode, "LEAF", "LEAF")
		vals = append(vals, tr.v, 0, 0)
		yes = append(yes, 1, 0, 0)
		no = append(no, 2, 0, 0)
		m := int64(0)
		if tr.tracksNaN {
			m = 1
		}
		missing = append(missing, m, 0, 0)
		wt = append(wt, id, id)
		wn = append(wn, 1, 2)
		wid = append(wid, 0, 0)
		w = append(w, tr.yes, tr.no)
	}
	return []msg{
		attrIs("nodes_treeids", tids...), attrIs("nodes_nodeids", nids...), attrIs("nodes_featureids", feats...),
		attrSs("nodes_modes", modes...), attrFs("nodes_values", vals...), attrIs("nodes_truenodeids", yes...),
		attrIs("nodes_falsenodeids", no...), attrIs("nodes_missing_value_tracks_true", missing...),
		attrIs(prefix+"treeids", wt...), attrIs(prefix+"nodeids", wn...), attrIs(prefix+"ids", wid...), attrFs(prefix+"weights", w...),
	}
}

var modeTrees = []tree{
	{mode: "BRANCH_LT", f: 0, v: 1, yes: 10, no: 20, tracksNaN: true},
	{mode: "BRANCH_EQ", f: 1, v: 2, yes: 1, no: 2},
	{mode: "BRANCH_NEQ", f: 1, v: 2, yes: 100, no: 200},
	{mode: "BRANCH_GTE", f: 0, v: 1, yes: 1000, no: 2000},
	{mode: "BRANCH_GT", f: 0, v: 1, yes: 10000, no: 20000},
}

func regressor(agg string, extra ...msg) nodeSpec {
	a := append(treeAttrs("target_", modeTrees...), attrF("base_values", 0.5))
	a[len(a)-1] = attrFs("base_values", 0.5)
	if agg != "" {
		a = append(a, attrS("aggregate_function", agg))
	}
	return mlNode("TreeEnsembleRegressor", []string{"X"}, []string{"Y"}, append(a, extra...)...)
}

func TestOperators(t *testing.T) {
	reshapeSoftmax := func(opset int64) graphSpec {
		g := simple(4, []any{"N", 4},
			node("Reshape", []string{"X", "shape"}, []string{"r"}),
			node("Softmax", []string{"r"}, []string{"s"}, attrI("axis", 1)),
			node("Flatten", []string{"s"}, []string{"Y"}))
		g.inits = []msg{tensorI("shape", []int64{3}, 0, 2, 2)}
		g.opset = opset
		return g
	}
	arith := simple(2, []any{"N", 2},
		node("Add", []string{"X", "B"}, []string{"a"}),
		node("Mul", []string{"a", "S"}, []string{"m"}),
		node("Sub", []string{"m", "one"}, []string{"s"}),
		node("Constant", nil, []string{"two"}, attrT("value", tensorF("", nil, 2))),
		node("Div", []string{"s", "two"}, []string{"Y"}))
	arith.inits = []msg{tensorF("B", []int64{1, 2}, 1, 2), tensorFTyped("S", nil, 3), tensorF("one", nil, 1)}
	gemm := simple(2, []any{"N", 3}, node("Gemm", []string{"X", "W", "C"}, []string{"Y"}, attrF("alpha", 2), attrF("beta", 0.5), attrI("transB", 1)))
	gemm.inits = []msg{tensorF("W", []int64{3, 2}, 1, 0, 0, 1, 1, 1), tensorF("C", []int64{3}, 10, 20, 30)}
	matmul := simple(2, []any{"N"}, node("MatMul", []string{"X", "w"}, []string{"Y"}))
	matmul.inits = []msg{tensorF("w", []int64{2}, 3, 4)}
	zipStrings := graphSpec{
		nodes: []nodeSpec{
			mlNode("LinearClassifier", []string{"X"}, []string{"label", "scores"}, attrSs("classlabels_strings", "a", "b"),
				attrFs("coefficients", 1, 0, 0, 1), attrS("post_transform", "SOFTMAX")),
			mlNode("ZipMap", []string{"scores"}, []string{"probabilities"}, attrSs("classlabels_strings", "a", "b")),
		},
		inputs:  []msg{valueInfo("X", 1, "N", 2)},
		outputs: []msg{valueInfo("label", 8, "N"), msg{}.str(1, "probabilities").sub(2, msg{}.sub(4, msg{}))},
	}
	binaryPositive := graphSpec{
		nodes: []nodeSpec{mlNode("TreeEnsembleClassifier", []string{"X"}, []string{"label", "P"},
			append(treeAttrs("class_", tree{mode: "BRANCH_LEQ", f: 0, v: 0, yes: 0.25, no: 0.75}), attrIs("classlabels_int64s", 0, 1))...)},
		inputs:  []msg{valueInfo("X", 1, "N", 1)},
		outputs: []msg{valueInfo("label", 7, "N"), valueInfo("P", 1, "N", 2)},
	}
	// Three classes, class 0 never scored: SOFTMAX_ZERO leaves it at 0.
	softmaxZeroAttrs := treeAttrs("class_", tree{mode: "BRANCH_LEQ", f: 0, v: 0, yes: 1, no: 1})
	softmaxZeroAttrs[len(softmaxZeroAttrs)-2] = attrIs("class_ids", 1, 1)
	softmaxZeroAttrs = append(softmaxZeroAttrs, attrIs("classlabels_int64s", 7, 8, 9), attrS("post_transform", "SOFTMAX_ZERO"), attrFs("base_values", 0, 0, 2))
	softmaxZero := graphSpec{
		nodes:   []nodeSpec{mlNode("TreeEnsembleClassifier", []string{"X"}, []string{"label", "P"}, softmaxZeroAttrs...)},
		inputs:  []msg{valueInfo("X", 1, "N", 1)},
		outputs: []msg{valueInfo("label", 7, "N"), valueInfo("P", 1, "N", 3)},
	}
	probit := simple(1, []any{"N", 1}, mlNode("TreeEnsembleRegressor", []string{"X"}, []string{"Y"},
		append(treeAttrs("target_", tree{mode: "BRANCH_LEQ", f: 0, v: 0, yes: 0.975, no: 0.5}), attrS("post_transform", "PROBIT"))...))
	oneHot := graphSpec{
		nodes:  []nodeSpec{mlNode("OneHotEncoder", []string{"X"}, []string{"Y"}, attrIs("cats_int64s", 4, 2))},
		inputs: []msg{valueInfo("X", 7, "N", 2)}, outputs: []msg{valueInfo("Y", 1, "N", 2, 2)},
	}

	for _, tc := range []struct {
		name    string
		g       graphSpec
		x, want []float32
		outputs []string // signature output names, when checked
	}{
		{"gemm alpha beta transB, C broadcast", gemm, []float32{1, 2}, []float32{7, 14, 21}, []string{"Y_0", "Y_1", "Y_2"}},
		{"matmul by a vector", matmul, []float32{1, 2, 0, 1}, []float32{11, 4}, []string{"Y"}},
		{"add sub mul div broadcast, Constant", arith, []float32{1, 1, -1, 0}, []float32{2.5, 4, -0.5, 2.5}, nil},
		{"reshape 0, softmax axis 1 (opset 13), flatten", reshapeSoftmax(13), []float32{0, 1, 2, 3}, []float32{0.11920292, 0.11920292, 0.8807971, 0.8807971}, nil},
		{"softmax axis 1 coerces to 2-D (opset 11)", reshapeSoftmax(11), []float32{0, 1, 2, 3}, []float32{0.032058604, 0.08714432, 0.23688282, 0.6439142}, nil},
		{"relu, concat axis -1", simple(2, []any{"N", 4}, node("Relu", []string{"X"}, []string{"r"}), node("Concat", []string{"X", "r"}, []string{"Y"}, attrI("axis", -1))),
			[]float32{-1, 2}, []float32{-1, 2, 0, 2}, nil},
		{"sigmoid", simple(2, []any{"N", 2}, node("Sigmoid", []string{"X"}, []string{"Y"})), []float32{0, 1}, []float32{0.5, 0.7310586}, nil},
		{"tanh", simple(2, []any{"N", 2}, node("Tanh", []string{"X"}, []string{"Y"})), []float32{0, 1}, []float32{0, 0.7615942}, nil},
		{"cast truncates", simple(2, []any{"N", 2}, node("Cast", []string{"X"}, []string{"i"}, attrI("to", 7)), node("Cast", []string{"i"}, []string{"Y"}, attrI("to", 1))),
			[]float32{1.7, -1.7}, []float32{1, -1}, nil},
		{"identity", simple(2, []any{"N", 2}, node("Identity", []string{"X"}, []string{"Y"})), []float32{3, 4}, []float32{3, 4}, nil},
		{"tree modes, missing values, SUM", simple(2, []any{"N", 1}, regressor("")), []float32{1, 2, nan(), 3}, []float32{21221.5, 22112.5}, nil},
		{"tree MIN", simple(2, []any{"N", 1}, regressor("MIN")), []float32{1, 2}, []float32{1.5}, nil},
		{"tree MAX", simple(2, []any{"N", 1}, regressor("MAX")), []float32{1, 2}, []float32{20000.5}, nil},
		{"tree AVERAGE", simple(2, []any{"N", 1}, regressor("AVERAGE")), []float32{1, 2}, []float32{4244.7}, nil},
		{"tree PROBIT", probit, []float32{-1}, []float32{1.959964}, nil},
		{"binary classifier, positive weights", binaryPositive, []float32{-1, 1}, []float32{0.75, 0.25, 0.25, 0.75}, []string{"probability_0", "probability_1"}},
		{"SOFTMAX_ZERO", softmaxZero, []float32{0}, []float32{0, 0.26894143, 0.7310586}, []string{"probability_7", "probability_8", "probability_9"}},
		{"string labels through ZipMap", zipStrings, []float32{1, 2}, []float32{0.26894143, 0.7310586}, []string{"probability_a", "probability_b"}},
		{"normalizer MAX", simple(2, []any{"N", 2}, mlNode("Normalizer", []string{"X"}, []string{"Y"}, attrS("norm", "MAX"))), []float32{1, 4}, []float32{0.25, 1}, nil},
		{"scaler", simple(2, []any{"N", 2}, mlNode("Scaler", []string{"X"}, []string{"Y"}, attrFs("offset", 1, 2), attrFs("scale", 2))), []float32{1, 4}, []float32{0, 4}, nil},
		{"one-hot int64 input", oneHot, []float32{2, 5}, []float32{0, 1, 0, 0}, nil},
		{"softmax over the batch axis runs row by row", simple(2, []any{"N", 2}, node("Softmax", []string{"X"}, []string{"Y"}, attrI("axis", 0))),
			[]float32{1, 2, 3, 4, 5, 6}, []float32{1, 1, 1, 1, 1, 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, tc.g)
			got := make([]float32, len(tc.want))
			if err := m.Predict(tc.x, got); err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if d := math.Abs(float64(got[i] - tc.want[i])); d > 1e-5*math.Max(1, math.Abs(float64(tc.want[i]))) {
					t.Fatalf("got %v; want %v", got, tc.want)
				}
			}
			if tc.outputs != nil {
				var names []string
				for _, c := range m.Signature().Outputs {
					names = append(names, c.Name)
				}
				if fmt.Sprint(names) != fmt.Sprint(tc.outputs) {
					t.Fatalf("signature outputs %v; want %v", names, tc.outputs)
				}
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	strict := graphSpec{
		nodes:  []nodeSpec{mlNode("OneHotEncoder", []string{"X"}, []string{"Y"}, attrIs("cats_int64s", 4, 2), attrI("zeros", 0))},
		inputs: []msg{valueInfo("X", 7, "N", 1)}, outputs: []msg{valueInfo("Y", 1, "N", 1, 2)},
	}
	m := load(t, strict)
	out := make([]float32, 2)
	if err := m.PredictRow([]float32{3}, out); err == nil || !strings.Contains(err.Error(), "value 3 is not one of the categories") {
		t.Fatalf("unknown category: %v", err)
	}
	if err := m.PredictRow([]float32{2.5}, out); err == nil || !strings.Contains(err.Error(), `takes integers`) {
		t.Fatalf("fractional value for an int64 input: %v", err)
	}
	if err := m.PredictRow([]float32{1, 2}, out); err == nil {
		t.Fatal("a row of the wrong width was scored")
	}
	if err := m.Predict([]float32{4, 2}, out); err == nil || !strings.Contains(err.Error(), "room for 2 values; 2 rows need 4") {
		t.Fatalf("short output: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	withInits := func(g graphSpec, inits ...msg) graphSpec { g.inits = inits; return g }
	conv := simple(2, []any{"N", 2}, nodeSpec{op: "Conv", name: "fc3", in: []string{"X"}, out: []string{"Y"}})
	custom := simple(2, []any{"N", 2}, nodeSpec{op: "FusedGemm", domain: "com.microsoft", name: "f", in: []string{"X"}, out: []string{"Y"}})
	cycle := simple(2, []any{"N", 2},
		nodeSpec{op: "Relu", name: "a", in: []string{"b"}, out: []string{"a"}},
		nodeSpec{op: "Relu", name: "b", in: []string{"a"}, out: []string{"b"}},
		node("Add", []string{"X", "a"}, []string{"Y"}))
	twoInputs := simple(2, []any{"N", 2}, node("Add", []string{"X", "Z"}, []string{"Y"}))
	twoInputs.inputs = append(twoInputs.inputs, valueInfo("Z", 1, "N", 2))
	rank3 := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"Y"}))
	rank3.inputs = []msg{valueInfo("X", 1, "N", 2, 2)}
	fixed := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"Y"}))
	fixed.inputs = []msg{valueInfo("X", 1, 8, 2)}
	strIn := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"Y"}))
	strIn.inputs = []msg{valueInfo("X", 8, "N", 2)}
	newOpset := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"Y"}))
	newOpset.opset = 30
	badGemm := withInits(simple(2, []any{"N", 3}, node("Gemm", []string{"X", "W"}, []string{"Y"}, attrI("transB", 1))), tensorF("W", []int64{3, 5}, make([]float32, 15)...))
	shortInit := withInits(simple(2, []any{"N", 2}, node("Add", []string{"X", "W"}, []string{"Y"})), tensorF("W", []int64{2, 2}, 1, 2, 3))
	external := withInits(simple(2, []any{"N", 2}, node("Add", []string{"X", "W"}, []string{"Y"})), msg{}.varint(1, 2).varint(2, 1).str(8, "W").varint(14, 1))
	unproduced := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"R"}))
	dupOut := simple(2, []any{"N", 2}, node("Relu", []string{"X"}, []string{"Y"}), node("Tanh", []string{"X"}, []string{"Y"}))
	badTree := simple(2, []any{"N", 1}, mlNode("TreeEnsembleRegressor", []string{"X"}, []string{"Y"},
		append(treeAttrs("target_", tree{mode: "BRANCH_LEQ"})[:5], attrIs("nodes_truenodeids", 1, 0, 0), attrIs("nodes_falsenodeids", 7, 0, 0),
			attrIs("target_treeids", 0), attrIs("target_nodeids", 1), attrIs("target_ids", 0), attrFs("target_weights", 1))...))
	treeMode := simple(2, []any{"N", 1}, mlNode("TreeEnsembleRegressor", []string{"X"}, []string{"Y"}, treeAttrs("target_", tree{mode: "BRANCH_SOMETIMES"})...))

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"unsupported operator", conv.encode(), `node "fc3" (op Conv, domain ai.onnx): operator not supported by Slipway's ONNX runtime (supported: ai.onnx: Add, Cast, Concat, Constant, Div, Flatten, Gemm, Identity, MatMul, Mul, Relu, Reshape, Sigmoid, Softmax, Sub, Tanh; ai.onnx.ml: LinearClassifier, LinearRegressor, Normalizer, OneHotEncoder, Scaler, TreeEnsembleClassifier, TreeEnsembleRegressor, ZipMap)`},
		{"other domain", custom.encode(), `node "f" (op FusedGemm, domain com.microsoft): operator not supported`},
		{"cycle", cycle.encode(), `the graph has a cycle through nodes "a", "b"`},
		{"missing initializer", simple(2, []any{"N", 3}, node("Gemm", []string{"X", "W"}, []string{"Y"})).encode(), `node "Gemm_Y" (op Gemm, domain ai.onnx): input "W" is not a graph input, an initializer or any node's output`},
		{"attribute type", simple(2, []any{"N", 2}, node("Gemm", []string{"X", "X"}, []string{"Y"}, attrI("alpha", 2))).encode(), `attribute "alpha": must be FLOAT, is INT`},
		{"unknown attribute", simple(2, []any{"N", 2}, node("Softmax", []string{"X"}, []string{"Y"}, attrI("dim", 2))).encode(), `attribute "dim": not an attribute of Softmax that Slipway knows (known: axis)`},
		{"required attribute", simple(2, []any{"N", 2}, node("Cast", []string{"X"}, []string{"Y"})).encode(), `(op Cast, domain ai.onnx): attribute "to": required`},
		{"cast to string", simple(2, []any{"N", 2}, node("Cast", []string{"X"}, []string{"Y"}, attrI("to", 8))).encode(), `Cast to STRING is not supported`},
		{"too many inputs", simple(2, []any{"N", 2}, node("Relu", []string{"X", "X"}, []string{"Y"})).encode(), `2 inputs: Relu takes 1`},
		{"two graph inputs", twoInputs.encode(), `the graph has 2 inputs (X, Z)`},
		{"rank 3 input", rank3.encode(), `graph input "X" of shape [N, 2, 2]: rank 3`},
		{"fixed batch", fixed.encode(), `a fixed batch of 8 rows`},
		{"string input", strIn.encode(), `element type STRING`},
		{"opset too new", newOpset.encode(), `opset 30 of domain ai.onnx: Slipway's ONNX runtime knows opsets 1 to 22`},
		{"shapes that do not fit", badGemm.encode(), `node "Gemm_Y" (op Gemm, domain ai.onnx): input A of shape [1 2] and B of shape [3 5] (transA=false, transB=true): inner dimensions 2 and 5 differ`},
		{"initializer size", shortInit.encode(), `initializer "W": FLOAT tensor of shape [2 2] holds 3 values, not 4`},
		{"external data", external.encode(), `initializer "W": data in an external file is not supported`},
		{"output nobody produces", unproduced.encode(), `graph output "Y": no node produces it`},
		{"duplicate output", dupOut.encode(), `output "Y": the value is already`},
		{"tree child", badTree.encode(), `nodes_falsenodeids[0]: tree 0 has no node 7`},
		{"tree mode", treeMode.encode(), `nodes_modes[0] "BRANCH_SOMETIMES": must be LEAF, BRANCH_LEQ`},
		{"empty", nil, "the file is empty"},
		{"not protobuf", []byte("hello, world"), "not a valid ONNX file"},
		{"no graph", msg{}.varint(1, 8), "no graph"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onnx.Load(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// mlp is a small network: 4 -> 8 (ReLU) -> 3 (softmax).
func mlp() graphSpec {
	w1 := make([]float32, 8*4)
	for i := range w1 {
		w1[i] = float32(math.Sin(float64(i)))
	}
	w2 := make([]float32, 3*8)
	for i := range w2 {
		w2[i] = float32(math.Cos(float64(i)))
	}
	g := simple(4, []any{"N", 3},
		node("Gemm", []string{"X", "W1", "B1"}, []string{"h"}, attrI("transB", 1)),
		node("Relu", []string{"h"}, []string{"r"}),
		node("Gemm", []string{"r", "W2"}, []string{"z"}, attrI("transB", 1)),
		node("Softmax", []string{"z"}, []string{"Y"}, attrI("axis", 1)))
	g.inits = []msg{tensorF("W1", []int64{8, 4}, w1...), tensorF("B1", []int64{8}, 1, 2, 3, 4, 5, 6, 7, 8), tensorF("W2", []int64{3, 8}, w2...)}
	return g
}

func TestPredictRowDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	for name, g := range map[string]graphSpec{"mlp": mlp(), "trees": simple(2, []any{"N", 1}, regressor(""))} {
		m := load(t, g)
		row := make([]float32, m.NumFeatures())
		out := make([]float32, m.NumOutputs())
		if err := m.PredictRow(row, out); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = m.PredictRow(row, out) }); n > 0 {
			t.Errorf("%s: PredictRow allocates %v times per call", name, n)
		}
	}
}

// TestConcurrentUse scores the same rows from many goroutines, in batches
// large enough to be split across cores, and row by row.
func TestConcurrentUse(t *testing.T) {
	m := load(t, mlp())
	const rows = 3000
	x := make([]float32, rows*4)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	want := make([]float32, rows*3)
	for r := 0; r < rows; r++ {
		if err := m.PredictRow(x[r*4:(r+1)*4], want[r*3:(r+1)*3]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float32, len(want))
			if err := m.Predict(x, got); err != nil {
				errs <- err
				return
			}
			for i := range want {
				if got[i] != want[i] {
					errs <- fmt.Errorf("value %d: batch %v, row by row %v", i, got[i], want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkPredictMLP(b *testing.B) {
	m, err := onnx.Load(mlp().encode())
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, 1024*4)
	out := make([]float32, 1024*3)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Predict(x, out); err != nil {
			b.Fatal(err)
		}
	}
}
