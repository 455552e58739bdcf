package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// This file holds the ai.onnx.ml operators: tree ensembles, linear
// models, Scaler, Normalizer, OneHotEncoder and ZipMap, with the
// semantics of Operators-ml.md and, where that is silent (two classes
// scored by one set of weights), of ONNX Runtime, which converters such
// as skl2onnx rely on.

type postTransform uint8

const (
	ptNone postTransform = iota
	ptLogistic
	ptSoftmax
	ptSoftmaxZero
	ptProbit
)

func parsePost(s string) (postTransform, error) {
	switch s {
	case "", "NONE":
		return ptNone, nil
	case "LOGISTIC":
		return ptLogistic, nil
	case "SOFTMAX":
		return ptSoftmax, nil
	case "SOFTMAX_ZERO":
		return ptSoftmaxZero, nil
	case "PROBIT":
		return ptProbit, nil
	}
	return 0, fmt.Errorf("attribute post_transform %q: must be NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or PROBIT", s)
}

func logistic(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// apply transforms one row of scores in place.
func (p postTransform) apply(s []float64) {
	switch p {
	case ptLogistic:
		for i, v := range s {
			s[i] = logistic(v)
		}
	case ptProbit:
		for i, v := range s {
			s[i] = math.Sqrt2 * math.Erfinv(2*v-1)
		}
	case ptSoftmax:
		top := math.Inf(-1)
		for _, v := range s {
			top = math.Max(top, v)
		}
		var sum float64
		for i, v := range s {
			s[i] = math.Exp(v - top)
			sum += s[i]
		}
		for i := range s {
			s[i] /= sum
		}
	case ptSoftmaxZero:
		// Softmax over the non-zero scores; zeros stay zero.
		top := math.Inf(-1)
		for _, v := range s {
			top = math.Max(top, v)
		}
		var sum float64
		for i, v := range s {
			if v != 0 {
				s[i] = math.Exp(v - top)
				sum += s[i]
			}
		}
		if sum > 0 {
			for i := range s {
				s[i] /= sum
			}
		}
	}
}

// classes are a classifier's labels: int64s or strings.
type classes struct {
	ints    []int64
	strings []string
}

func classLabels(a attrs) (classes, error) {
	c := classes{ints: a.ints("classlabels_int64s"), strings: a.strs("classlabels_strings")}
	if c.ints == nil {
		c.ints = a.ints("classlabels_ints")
	}
	switch {
	case len(c.ints) > 0 && len(c.strings) > 0:
		return c, errors.New("attributes classlabels_int64s and classlabels_strings: give one, not both")
	case len(c.ints) == 0 && len(c.strings) == 0:
		return c, errors.New("no class labels: classlabels_int64s or classlabels_strings is required")
	}
	return c, nil
}

func (c classes) n() int { return len(c.ints) + len(c.strings) }

// names are the labels as text, for output column names.
func (c classes) names() []string {
	if c.strings != nil {
		return c.strings
	}
	out := make([]string, len(c.ints))
	for i, v := range c.ints {
		out[i] = fmt.Sprint(v)
	}
	return out
}

// setLabels shapes the label output Y for rows rows.
func (c classes) setLabels(y *tensor, rows int) error {
	var s [1]int
	s[0] = rows
	if c.strings != nil {
		if err := y.set(kLabel, s[:]); err != nil {
			return err
		}
		y.labels = c.strings
		return nil
	}
	return y.set(kInt, s[:])
}

func (c classes) label(i int) int64 {
	if c.strings != nil {
		return int64(i)
	}
	return c.ints[i]
}

// features reads the input matrix of an ml operator.
func features(x *tensor) (rows, cols int, err error) {
	if err := needNumeric("input X", x); err != nil {
		return 0, 0, err
	}
	return x.matrix()
}

// ---- tree ensembles ----

type branchMode uint8

const (
	modeLeaf branchMode = iota
	modeLEQ
	modeLT
	modeGTE
	modeGT
	modeEQ
	modeNEQ
)

var modes = map[string]branchMode{"LEAF": modeLeaf, "BRANCH_LEQ": modeLEQ, "BRANCH_LT": modeLT, "BRANCH_GTE": modeGTE, "BRANCH_GT": modeGT, "BRANCH_EQ": modeEQ, "BRANCH_NEQ": modeNEQ}

type aggregate uint8

const (
	aggSum aggregate = iota
	aggAverage
	aggMin
	aggMax
)

type treeEnsemble struct {
	classifier bool
	classes    classes
	nOut       int // classes, or targets
	post       postTransform
	agg        aggregate
	base       []float64

	// Nodes, flattened over trees.
	feature   []int
	value     []float64
	mode      []branchMode
	missing   []bool
	yes, no   []int32
	leafStart []int32 // weights of leaf i: w[leafStart[i]:leafStart[i+1]]
	wOut      []int32
	wValue    []float64
	roots     []int32
	maxFeat   int

	// The two-class case scored by a single set of weights (ONNX
	// Runtime's "binary case"): the score s of that class becomes the
	// pair (1-s, s) when all weights are non-negative, else (-s, s).
	binary      bool
	allPositive bool
}

func buildTrees(a attrs, classifier bool) (*treeEnsemble, error) {
	te := &treeEnsemble{classifier: classifier}
	var err error
	if te.post, err = parsePost(a.str("post_transform", "NONE")); err != nil {
		return nil, err
	}
	prefix := "target_"
	if classifier {
		prefix = "class_"
		if te.classes, err = classLabels(a); err != nil {
			return nil, err
		}
		te.nOut = te.classes.n()
	} else {
		n := a.int("n_targets", 1)
		if n < 1 || n > 1<<16 {
			return nil, fmt.Errorf("attribute n_targets %d: must be from 1 to %d", n, 1<<16)
		}
		te.nOut = int(n)
		switch s := a.str("aggregate_function", "SUM"); s {
		case "SUM":
		case "AVERAGE":
			te.agg = aggAverage
		case "MIN":
			te.agg = aggMin
		case "MAX":
			te.agg = aggMax
		default:
			return nil, fmt.Errorf("attribute aggregate_function %q: must be SUM, AVERAGE, MIN or MAX", s)
		}
	}
	if te.base, err = a.doubles("base_values"); err != nil {
		return nil, err
	}
	if len(te.base) != 0 && len(te.base) != te.nOut && !(classifier && te.nOut == 2 && len(te.base) == 1) {
		return nil, fmt.Errorf("attribute base_values: %d values for %d outputs", len(te.base), te.nOut)
	}

	treeIDs, nodeIDs := a.ints("nodes_treeids"), a.ints("nodes_nodeids")
	feats, modeNames := a.ints("nodes_featureids"), a.strs("nodes_modes")
	yes, no := a.ints("nodes_truenodeids"), a.ints("nodes_falsenodeids")
	missing := a.ints("nodes_missing_value_tracks_true")
	values, err := a.doubles("nodes_values")
	if err != nil {
		return nil, err
	}
	n := len(nodeIDs)
	if n == 0 {
		return nil, errors.New("attribute nodes_nodeids: the ensemble has no nodes")
	}
	for _, c := range []struct {
		name string
		len  int
	}{{"nodes_treeids", len(treeIDs)}, {"nodes_featureids", len(feats)}, {"nodes_modes", len(modeNames)},
		{"nodes_truenodeids", len(yes)}, {"nodes_falsenodeids", len(no)}, {"nodes_values", len(values)}} {
		if c.len != n {
			return nil, fmt.Errorf("attribute %s: %d values for %d nodes", c.name, c.len, n)
		}
	}
	if len(missing) != 0 && len(missing) != n {
		return nil, fmt.Errorf("attribute nodes_missing_value_tracks_true: %d values for %d nodes", len(missing), n)
	}
	type key struct{ tree, node int64 }
	index := make(map[key]int32, n)
	te.feature, te.value, te.mode = make([]int, n), values, make([]branchMode, n)
	te.missing, te.yes, te.no = make([]bool, n), make([]int32, n), make([]int32, n)
	for i := 0; i < n; i++ {
		k := key{treeIDs[i], nodeIDs[i]}
		if _, dup := index[k]; dup {
			return nil, fmt.Errorf("nodes %d: tree %d has two nodes with id %d", i, k.tree, k.node)
		}
		index[k] = int32(i)
		m, ok := modes[modeNames[i]]
		if !ok {
			return nil, fmt.Errorf("nodes_modes[%d] %q: must be LEAF, BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ or BRANCH_NEQ", i, modeNames[i])
		}
		te.mode[i] = m
		if len(missing) > 0 {
			te.missing[i] = missing[i] != 0
		}
		if m != modeLeaf {
			if feats[i] < 0 || feats[i] >= 1<<24 {
				return nil, fmt.Errorf("nodes_featureids[%d] %d: out of range", i, feats[i])
			}
			te.feature[i] = int(feats[i])
			te.maxFeat = max(te.maxFeat, int(feats[i])+1)
		}
	}
	child := make([]bool, n)
	for i := 0; i < n; i++ {
		if te.mode[i] == modeLeaf {
			continue
		}
		for _, c := range []struct {
			name string
			id   int64
			dst  *int32
		}{{"nodes_truenodeids", yes[i], &te.yes[i]}, {"nodes_falsenodeids", no[i], &te.no[i]}} {
			j, ok := index[key{treeIDs[i], c.id}]
			if !ok {
				return nil, fmt.Errorf("%s[%d]: tree %d has no node %d", c.name, i, treeIDs[i], c.id)
			}
			if child[j] {
				return nil, fmt.Errorf("%s[%d]: node %d of tree %d has two parents", c.name, i, c.id, treeIDs[i])
			}
			child[j] = true
			*c.dst = j
		}
	}
	// Roots are the nodes no node points to, one per tree, in order of
	// first appearance; a walk from each must reach every node of its
	// tree once, or the tree has a cycle.
	seenTree := map[int64]bool{}
	for i := 0; i < n; i++ {
		if !child[i] {
			if seenTree[treeIDs[i]] {
				return nil, fmt.Errorf("tree %d has more than one root (nodes that no node points to)", treeIDs[i])
			}
			seenTree[treeIDs[i]] = true
			te.roots = append(te.roots, int32(i))
		}
	}
	reached := 0
	stack := []int32{}
	for _, r := range te.roots {
		stack = append(stack[:0], r)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			reached++
			if te.mode[i] != modeLeaf {
				stack = append(stack, te.yes[i], te.no[i])
			}
		}
	}
	if reached != n {
		return nil, errors.New("the nodes do not form trees: some tree has a cycle")
	}

	// Leaf weights.
	wTree, wNode, wID := a.ints(prefix+"treeids"), a.ints(prefix+"nodeids"), a.ints(prefix+"ids")
	wVal, err := a.doubles(prefix + "weights")
	if err != nil {
		return nil, err
	}
	nw := len(wNode)
	if len(wTree) != nw || len(wID) != nw || len(wVal) != nw {
		return nil, fmt.Errorf("attributes %streeids, %snodeids, %sids and %sweights: %d, %d, %d and %d values; they must agree", prefix, prefix, prefix, prefix, len(wTree), nw, len(wID), len(wVal))
	}
	perLeaf := make([][]int, n)
	ids := map[int64]bool{}
	te.allPositive = true
	for w := 0; w < nw; w++ {
		j, ok := index[key{wTree[w], wNode[w]}]
		if !ok {
			return nil, fmt.Errorf("%snodeids[%d]: tree %d has no node %d", prefix, w, wTree[w], wNode[w])
		}
		if te.mode[j] != modeLeaf {
			return nil, fmt.Errorf("%snodeids[%d]: node %d of tree %d is a branch, not a leaf", prefix, w, wNode[w], wTree[w])
		}
		if wID[w] < 0 || wID[w] >= int64(te.nOut) {
			return nil, fmt.Errorf("%sids[%d] %d: the ensemble has %d outputs", prefix, w, wID[w], te.nOut)
		}
		ids[wID[w]] = true
		if wVal[w] < 0 {
			te.allPositive = false
		}
		perLeaf[j] = append(perLeaf[j], w)
	}
	te.leafStart = make([]int32, n+1)
	for i := 0; i < n; i++ {
		te.leafStart[i] = int32(len(te.wOut))
		for _, w := range perLeaf[i] {
			te.wOut = append(te.wOut, int32(wID[w]))
			te.wValue = append(te.wValue, wVal[w])
		}
	}
	te.leafStart[n] = int32(len(te.wOut))
	if classifier && te.nOut == 2 && len(ids) == 1 {
		te.binary = true
		if te.post == ptProbit {
			return nil, errors.New("post_transform PROBIT with two classes scored by one set of weights is not supported")
		}
	} else if len(te.base) == 1 && te.nOut != 1 {
		return nil, fmt.Errorf("attribute base_values: 1 value for %d classes", te.nOut)
	}
	return te, nil
}

// leaf walks tree root for row x to its leaf.
func (te *treeEnsemble) leaf(root int32, x []float64) int32 {
	i := root
	for {
		m := te.mode[i]
		if m == modeLeaf {
			return i
		}
		v, t := x[te.feature[i]], te.value[i]
		var yes bool
		if v != v {
			yes = te.missing[i] || m == modeNEQ
		} else {
			switch m {
			case modeLEQ:
				yes = v <= t
			case modeLT:
				yes = v < t
			case modeGTE:
				yes = v >= t
			case modeGT:
				yes = v > t
			case modeEQ:
				yes = v == t
			case modeNEQ:
				yes = v != t
			}
		}
		if yes {
			i = te.yes[i]
		} else {
			i = te.no[i]
		}
	}
}

func (te *treeEnsemble) run(a *arena, in, out []*tensor) error {
	x := in[0]
	rows, cols, err := features(x)
	if err != nil {
		return err
	}
	if cols < te.maxFeat {
		return fmt.Errorf("input X has %d features; the trees read feature %d", cols, te.maxFeat-1)
	}
	var Y, Z *tensor
	if te.classifier {
		Y, Z = out[0], out[1]
		if err := te.classes.setLabels(Y, rows); err != nil {
			return err
		}
	} else {
		Z = out[0]
	}
	if err := Z.set2(kFloat, rows, te.nOut); err != nil {
		return err
	}
	row := a.f64(0, cols)
	score := a.f64(1, te.nOut)
	has := a.bools(te.nOut)
	pair := a.f64(2, 2)
	for r := 0; r < rows; r++ {
		for j := range row {
			row[j] = x.floatAt(r*cols + j)
		}
		clear(score)
		clear(has)
		for _, root := range te.roots {
			l := te.leaf(root, row)
			for w := te.leafStart[l]; w < te.leafStart[l+1]; w++ {
				o, v := te.wOut[w], te.wValue[w]
				switch {
				case !has[o] || te.agg == aggSum || te.agg == aggAverage:
					if has[o] {
						score[o] += v
					} else {
						score[o] = v
					}
				case te.agg == aggMin:
					score[o] = math.Min(score[o], v)
				case te.agg == aggMax:
					score[o] = math.Max(score[o], v)
				}
				has[o] = true
			}
		}
		if te.agg == aggAverage {
			for o := range score {
				score[o] /= float64(len(te.roots))
			}
		}
		z := Z.f[r*te.nOut : (r+1)*te.nOut]
		if te.binary {
			// One class scored: s, plus the base value.
			var s float64
			for o := range score {
				if has[o] {
					s = score[o]
					if len(te.base) == 2 {
						s += te.base[o]
					}
				}
			}
			if len(te.base) == 1 {
				s += te.base[0]
			}
			positive := s > 0
			if te.allPositive {
				pair[0], pair[1] = 1-s, s
				positive = s > 0.5
			} else {
				pair[0], pair[1] = -s, s
			}
			te.post.apply(pair)
			z[0], z[1] = float32(pair[0]), float32(pair[1])
			lbl := 0
			if positive {
				lbl = 1
			}
			if te.classifier {
				Y.i[r] = te.classes.label(lbl)
			}
			continue
		}
		for o := range score {
			if len(te.base) > 0 {
				score[o] += te.base[o]
			}
		}
		if te.classifier {
			Y.i[r] = te.classes.label(argmax(score))
		}
		te.post.apply(score)
		for o, v := range score {
			z[o] = float32(v)
		}
	}
	return nil
}

func argmax(s []float64) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

// ---- linear models ----

type linear struct {
	classifier bool
	classes    classes
	coef       []float64
	intercepts []float64
	targets    int // regressor
	post       postTransform
}

func buildLinear(a attrs, classifier bool) (*linear, error) {
	l := &linear{classifier: classifier}
	var err error
	if l.post, err = parsePost(a.str("post_transform", "NONE")); err != nil {
		return nil, err
	}
	l.coef, _ = a.doubles("coefficients")
	l.intercepts, _ = a.doubles("intercepts")
	if len(l.coef) == 0 {
		return nil, errors.New("attribute coefficients: required")
	}
	if classifier {
		if l.classes, err = classLabels(a); err != nil {
			return nil, err
		}
	} else {
		t := a.int("targets", 1)
		if t < 1 || t > int64(len(l.coef)) {
			return nil, fmt.Errorf("attribute targets %d: must be from 1 to the number of coefficients", t)
		}
		l.targets = int(t)
		if len(l.coef)%l.targets != 0 {
			return nil, fmt.Errorf("attribute coefficients: %d values are not a whole number per target for %d targets", len(l.coef), l.targets)
		}
	}
	return l, nil
}

func (l *linear) run(a *arena, in, out []*tensor) error {
	x := in[0]
	rows, cols, err := features(x)
	if err != nil {
		return err
	}
	if cols == 0 || len(l.coef)%cols != 0 {
		return fmt.Errorf("%d coefficients are not a whole number of rows of the input's %d features", len(l.coef), cols)
	}
	sets := len(l.coef) / cols
	if len(l.intercepts) != 0 && len(l.intercepts) != sets {
		return fmt.Errorf("%d intercepts for %d sets of coefficients", len(l.intercepts), sets)
	}
	nOut := sets
	binary := false
	var Y, Z *tensor
	if l.classifier {
		nc := l.classes.n()
		switch {
		case sets == nc:
		case sets == 1 && nc == 2:
			binary, nOut = true, 2
		default:
			return fmt.Errorf("%d sets of coefficients for %d classes", sets, nc)
		}
		Y, Z = out[0], out[1]
		if err := l.classes.setLabels(Y, rows); err != nil {
			return err
		}
	} else {
		if sets != l.targets {
			return fmt.Errorf("%d coefficients for %d targets of %d features", len(l.coef), l.targets, cols)
		}
		Z = out[0]
	}
	if err := Z.set2(kFloat, rows, nOut); err != nil {
		return err
	}
	score := a.f64(1, max(nOut, sets))
	for r := 0; r < rows; r++ {
		for s := 0; s < sets; s++ {
			var sum float64
			if len(l.intercepts) > 0 {
				sum = l.intercepts[s]
			}
			c := l.coef[s*cols : (s+1)*cols]
			for j, w := range c {
				sum += w * x.floatAt(r*cols+j)
			}
			score[s] = sum
		}
		sc := score[:nOut]
		if binary {
			s := score[0]
			sc[0], sc[1] = -s, s
		}
		if l.classifier {
			Y.i[r] = l.classes.label(argmax(sc))
		}
		l.post.apply(sc)
		z := Z.f[r*nOut : (r+1)*nOut]
		for o, v := range sc {
			z[o] = float32(v)
		}
	}
	return nil
}

// ---- preprocessing ----

type scaler struct{ offset, scale []float32 }

func (s scaler) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	rows, cols, err := features(x)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"offset", len(s.offset)}, {"scale", len(s.scale)}} {
		if c.n > 1 && c.n != cols {
			return fmt.Errorf("attribute %s has %d values for %d features", c.name, c.n, cols)
		}
	}
	if err := out[0].set(kFloat, x.shape); err != nil {
		return err
	}
	y := out[0].f
	for r := 0; r < rows; r++ {
		for j := 0; j < cols; j++ {
			v := float32(x.floatAt(r*cols + j))
			if len(s.offset) == 1 {
				v -= s.offset[0]
			} else if len(s.offset) > 1 {
				v -= s.offset[j]
			}
			if len(s.scale) == 1 {
				v *= s.scale[0]
			} else if len(s.scale) > 1 {
				v *= s.scale[j]
			}
			y[r*cols+j] = v
		}
	}
	return nil
}

type normalizer uint8

const (
	normMax normalizer = iota
	normL1
	normL2
)

func (n normalizer) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	rows, cols, err := features(x)
	if err != nil {
		return err
	}
	if err := out[0].set(kFloat, x.shape); err != nil {
		return err
	}
	y := out[0].f
	for r := 0; r < rows; r++ {
		var norm float64
		switch n {
		case normMax:
			norm = math.Inf(-1)
			for j := 0; j < cols; j++ {
				norm = math.Max(norm, x.floatAt(r*cols+j))
			}
		case normL1:
			for j := 0; j < cols; j++ {
				norm += math.Abs(x.floatAt(r*cols + j))
			}
		case normL2:
			for j := 0; j < cols; j++ {
				v := x.floatAt(r*cols + j)
				norm += v * v
			}
			norm = math.Sqrt(norm)
		}
		for j := 0; j < cols; j++ {
			v := x.floatAt(r*cols + j)
			if norm != 0 && !math.IsInf(norm, -1) {
				v /= norm
			}
			y[r*cols+j] = float32(v)
		}
	}
	return nil
}

type oneHot struct {
	cats  map[int64]int
	n     int
	zeros bool // unknown categories encode as all zeros (else an error)
}

func (o oneHot) run(a *arena, in, out []*tensor) error {
	x := in[0]
	if err := needNumeric("input X", x); err != nil {
		return err
	}
	if len(x.shape) >= maxRank {
		return fmt.Errorf("input of rank %d", len(x.shape))
	}
	var sbuf [maxRank]int
	shape := append(append(sbuf[:0], x.shape...), o.n)
	y := out[0]
	if err := y.set(kFloat, shape); err != nil {
		return err
	}
	clear(y.f)
	for i, m := 0, x.size(); i < m; i++ {
		var v int64
		if x.k == kFloat {
			v = floatToInt(x.f[i])
		} else {
			v = x.i[i]
		}
		c, ok := o.cats[v]
		if !ok {
			if !o.zeros && !a.probe {
				return fmt.Errorf("value %d is not one of the categories (cats_int64s) and zeros is 0", v)
			}
			continue
		}
		y.f[i*o.n+c] = 1
	}
	return nil
}

// zipMap passes the probabilities through as a tensor: Slipway reads a
// classifier's probabilities as columns, which the class labels name.
type zipMap struct{ classes classes }

func (z zipMap) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	if err := needFloat("input X", x); err != nil {
		return err
	}
	_, cols, err := x.matrix()
	if err != nil {
		return err
	}
	if cols != z.classes.n() {
		return fmt.Errorf("input has %d columns for %d class labels", cols, z.classes.n())
	}
	return out[0].copyFrom(x)
}

func buildOneHot(a attrs) (operator, error) {
	if a.has("cats_strings") {
		return nil, errors.New("attribute cats_strings: string categories are not supported (Slipway's inputs are numbers); use cats_int64s")
	}
	cats := a.ints("cats_int64s")
	if len(cats) == 0 {
		return nil, errors.New("attribute cats_int64s: required")
	}
	o := oneHot{cats: make(map[int64]int, len(cats)), n: len(cats), zeros: a.int("zeros", 1) != 0}
	for i, c := range cats {
		if _, dup := o.cats[c]; dup {
			return nil, fmt.Errorf("attribute cats_int64s: %d appears twice", c)
		}
		o.cats[c] = i
	}
	return o, nil
}

func buildNormalizer(a attrs) (operator, error) {
	switch s := a.str("norm", "MAX"); s {
	case "MAX":
		return normMax, nil
	case "L1":
		return normL1, nil
	case "L2":
		return normL2, nil
	default:
		return nil, fmt.Errorf("attribute norm %q: must be MAX, L1 or L2", s)
	}
}

func buildScaler(a attrs) (operator, error) {
	return scaler{offset: slices.Clone(a.floats("offset")), scale: slices.Clone(a.floats("scale"))}, nil
}
