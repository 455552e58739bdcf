package onnx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Domains, as the model names them; "ai.onnx" is also written "".
const (
	domainONNX = "ai.onnx"
	domainML   = "ai.onnx.ml"
)

// maxOpset is the newest opset of each domain whose semantics, for the
// operators here, Slipway implements.
var maxOpset = map[string]int64{domainONNX: 22, domainML: 5}

// opSpec says what a supported operator takes and builds it.
type opSpec struct {
	minIn, maxIn int // maxIn -1: any number
	minOut       int
	outs         int // outputs the operator produces (a node may list fewer)
	attrs        map[string]int32
	required     []string
	build        func(a attrs, opset int64) (operator, error)
}

const anyInputs = -1

var (
	treeNodeAttrs = map[string]int32{
		"base_values": atFloats, "base_values_as_tensor": atTensor,
		"nodes_falsenodeids": atInts, "nodes_featureids": atInts, "nodes_hitrates": atFloats, "nodes_hitrates_as_tensor": atTensor,
		"nodes_missing_value_tracks_true": atInts, "nodes_modes": atStrings, "nodes_nodeids": atInts, "nodes_treeids": atInts,
		"nodes_truenodeids": atInts, "nodes_values": atFloats, "nodes_values_as_tensor": atTensor, "post_transform": atString,
	}
	treeRequired = []string{"nodes_falsenodeids", "nodes_featureids", "nodes_modes", "nodes_nodeids", "nodes_treeids", "nodes_truenodeids"}
)

func with(base map[string]int32, extra map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func fixed(op operator) func(attrs, int64) (operator, error) {
	return func(attrs, int64) (operator, error) { return op, nil }
}

var registry = map[string]map[string]*opSpec{
	domainONNX: {
		"Add":     {minIn: 2, maxIn: 2, minOut: 1, outs: 1, attrs: map[string]int32{"broadcast": atInt}, build: fixed(opAdd)},
		"Sub":     {minIn: 2, maxIn: 2, minOut: 1, outs: 1, attrs: map[string]int32{"broadcast": atInt}, build: fixed(opSub)},
		"Mul":     {minIn: 2, maxIn: 2, minOut: 1, outs: 1, attrs: map[string]int32{"broadcast": atInt}, build: fixed(opMul)},
		"Div":     {minIn: 2, maxIn: 2, minOut: 1, outs: 1, attrs: map[string]int32{"broadcast": atInt}, build: fixed(opDiv)},
		"Relu":    {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"consumed_inputs": atInts}, build: fixed(opRelu)},
		"Sigmoid": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"consumed_inputs": atInts}, build: fixed(opSigmoid)},
		"Tanh":    {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"consumed_inputs": atInts}, build: fixed(opTanh)},
		"Gemm": {minIn: 2, maxIn: 3, minOut: 1, outs: 1,
			attrs: map[string]int32{"alpha": atFloat, "beta": atFloat, "transA": atInt, "transB": atInt, "broadcast": atInt},
			build: func(a attrs, _ int64) (operator, error) {
				return gemm{alpha: a.float("alpha", 1), beta: a.float("beta", 1), transA: a.int("transA", 0) != 0, transB: a.int("transB", 0) != 0}, nil
			}},
		"MatMul": {minIn: 2, maxIn: 2, minOut: 1, outs: 1, build: fixed(matmul{})},
		"Softmax": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"axis": atInt},
			build: func(a attrs, opset int64) (operator, error) {
				if opset < 13 {
					return softmax{axis: a.int("axis", 1), legacy: true}, nil
				}
				return softmax{axis: a.int("axis", -1)}, nil
			}},
		"Reshape": {minIn: 2, maxIn: 2, minOut: 1, outs: 1, attrs: map[string]int32{"allowzero": atInt},
			build: func(a attrs, opset int64) (operator, error) {
				if opset < 5 {
					return nil, errors.New("opset 1 to 4 Reshape (the shape as an attribute) is not supported")
				}
				return reshape{allowZero: a.int("allowzero", 0) != 0}, nil
			}},
		"Flatten": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"axis": atInt},
			build: func(a attrs, _ int64) (operator, error) { return flatten{axis: a.int("axis", 1)}, nil }},
		"Concat": {minIn: 1, maxIn: anyInputs, minOut: 1, outs: 1, attrs: map[string]int32{"axis": atInt},
			build: func(a attrs, opset int64) (operator, error) {
				if !a.has("axis") && opset >= 4 {
					return nil, errors.New("attribute axis: required")
				}
				return concat{axis: a.int("axis", 1)}, nil
			}},
		"Cast": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"to": atInt, "saturate": atInt}, required: []string{"to"},
			build: func(a attrs, _ int64) (operator, error) {
				to := int32(a.int("to", 0))
				switch to {
				case dtFloat, dtDouble, dtInt64, dtInt32, dtBool:
					return cast{to: to}, nil
				}
				return nil, fmt.Errorf("attribute to: Cast to %s is not supported (supported: FLOAT, DOUBLE, INT64, INT32, BOOL)", dataTypeName(to))
			}},
		"Identity": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, build: fixed(identity{})},
		// Constant nodes are folded into constants at load; see constant.
		"Constant": {minIn: 0, maxIn: 0, minOut: 1, outs: 1,
			attrs: map[string]int32{"value": atTensor, "value_float": atFloat, "value_floats": atFloats, "value_int": atInt, "value_ints": atInts}},
	},
	domainML: {
		"TreeEnsembleClassifier": {minIn: 1, maxIn: 1, minOut: 1, outs: 2,
			attrs: with(treeNodeAttrs, map[string]int32{"class_ids": atInts, "class_nodeids": atInts, "class_treeids": atInts,
				"class_weights": atFloats, "class_weights_as_tensor": atTensor, "classlabels_int64s": atInts, "classlabels_strings": atStrings}),
			required: treeRequired,
			build:    func(a attrs, _ int64) (operator, error) { return buildTrees(a, true) }},
		"TreeEnsembleRegressor": {minIn: 1, maxIn: 1, minOut: 1, outs: 1,
			attrs: with(treeNodeAttrs, map[string]int32{"aggregate_function": atString, "n_targets": atInt, "target_ids": atInts,
				"target_nodeids": atInts, "target_treeids": atInts, "target_weights": atFloats, "target_weights_as_tensor": atTensor}),
			required: treeRequired,
			build:    func(a attrs, _ int64) (operator, error) { return buildTrees(a, false) }},
		"LinearClassifier": {minIn: 1, maxIn: 1, minOut: 1, outs: 2,
			attrs: map[string]int32{"classlabels_ints": atInts, "classlabels_strings": atStrings, "coefficients": atFloats,
				"intercepts": atFloats, "multi_class": atInt, "post_transform": atString},
			required: []string{"coefficients"},
			build:    func(a attrs, _ int64) (operator, error) { return buildLinear(a, true) }},
		"LinearRegressor": {minIn: 1, maxIn: 1, minOut: 1, outs: 1,
			attrs:    map[string]int32{"coefficients": atFloats, "intercepts": atFloats, "post_transform": atString, "targets": atInt},
			required: []string{"coefficients"},
			build:    func(a attrs, _ int64) (operator, error) { return buildLinear(a, false) }},
		"Scaler": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"offset": atFloats, "scale": atFloats},
			build: func(a attrs, _ int64) (operator, error) { return buildScaler(a) }},
		"Normalizer": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"norm": atString},
			build: func(a attrs, _ int64) (operator, error) { return buildNormalizer(a) }},
		"OneHotEncoder": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"cats_int64s": atInts, "cats_strings": atStrings, "zeros": atInt},
			build: func(a attrs, _ int64) (operator, error) { return buildOneHot(a) }},
		"ZipMap": {minIn: 1, maxIn: 1, minOut: 1, outs: 1, attrs: map[string]int32{"classlabels_int64s": atInts, "classlabels_strings": atStrings},
			build: func(a attrs, _ int64) (operator, error) {
				c, err := classLabels(a)
				return zipMap{classes: c}, err
			}},
	},
}

// Supported lists the supported operators, by domain, for messages and
// docs: "ai.onnx: Add, ...; ai.onnx.ml: LinearClassifier, ...".
func Supported() string {
	var parts []string
	for _, d := range []string{domainONNX, domainML} {
		names := make([]string, 0, len(registry[d]))
		for n := range registry[d] {
			names = append(names, n)
		}
		slices.Sort(names)
		parts = append(parts, d+": "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}

// checkAttrs checks a node's attributes against the spec: known names,
// right types, no duplicates, required ones present.
func checkAttrs(spec *opSpec, op string, list []*attribute) (attrs, error) {
	a := make(attrs, len(list))
	for _, at := range list {
		if at.refAttr != "" {
			return nil, fmt.Errorf("attribute %q: references a function attribute (ref_attr_name), which only functions may", at.name)
		}
		want, ok := spec.attrs[at.name]
		if !ok {
			known := make([]string, 0, len(spec.attrs))
			for k := range spec.attrs {
				known = append(known, k)
			}
			slices.Sort(known)
			if len(known) == 0 {
				return nil, fmt.Errorf("attribute %q: %s takes no attributes", at.name, op)
			}
			return nil, fmt.Errorf("attribute %q: not an attribute of %s that Slipway knows (known: %s)", at.name, op, strings.Join(known, ", "))
		}
		if at.typ != want {
			return nil, fmt.Errorf("attribute %q: must be %s, is %s", at.name, attrTypeName(want), attrTypeName(at.typ))
		}
		if a[at.name] != nil {
			return nil, fmt.Errorf("attribute %q: given twice", at.name)
		}
		a[at.name] = at
	}
	for _, r := range spec.required {
		if a[r] == nil {
			return nil, fmt.Errorf("attribute %q: required", r)
		}
	}
	return a, nil
}

// constant folds a Constant node into its value.
func constant(a attrs) (*tensor, error) {
	if len(a) != 1 {
		return nil, errors.New("a Constant node takes exactly one of value, value_float, value_floats, value_int, value_ints")
	}
	switch {
	case a.has("value"):
		if a["value"].t == nil {
			return nil, errors.New("attribute value: no tensor")
		}
		return fromProto(a["value"].t)
	case a.has("value_float"):
		return &tensor{k: kFloat, shape: []int{}, f: []float32{a.float("value_float", 0)}}, nil
	case a.has("value_floats"):
		f := slices.Clone(a.floats("value_floats"))
		return &tensor{k: kFloat, shape: []int{len(f)}, f: f}, nil
	case a.has("value_int"):
		return &tensor{k: kInt, shape: []int{}, i: []int64{a.int("value_int", 0)}}, nil
	default:
		i := slices.Clone(a.ints("value_ints"))
		return &tensor{k: kInt, shape: []int{len(i)}, i: i}, nil
	}
}
