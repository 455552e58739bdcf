package training

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
)

// Model is a trained model, ready to be written as XGBoost JSON.
type Model struct {
	objective objective
	booster   string // gbtree or gblinear
	numFeat   int
	names     []string
	types     []string
	baseScore float32
	trees     []*tree
	// linear holds gblinear's weights: (numFeat+1) x groups,
	// feature-major, the bias row last.
	linear     []float32
	rounds     int
	attributes map[string]string
}

// Objective is the model's XGBoost objective.
func (m *Model) Objective() string { return m.objective.name }

// Booster is gbtree or gblinear.
func (m *Model) Booster() string { return m.booster }

// NumTrees is the number of trees (0 for gblinear).
func (m *Model) NumTrees() int { return len(m.trees) }

// NumFeatures is the number of input features.
func (m *Model) NumFeatures() int { return m.numFeat }

// BaseScore is the model's base_score.
func (m *Model) BaseScore() float32 { return m.baseScore }

// Attributes are the learner attributes written into the model, such as
// best_iteration.
func (m *Model) Attributes() map[string]string { return m.attributes }

// tree is one regression tree in XGBoost's own layout: parallel arrays
// indexed by node id, the root 0, children numbered in the order nodes are
// split.
type tree struct {
	group       int
	left, right []int32
	parent      []int32
	feature     []int32
	// cond is a numeric split's threshold (x < cond goes left) or a
	// leaf's value, already multiplied by the learning rate.
	cond        []float32
	defaultLeft []bool
	categorical []bool
	// cats holds, for each categorical split, the categories that go
	// right, sorted.
	cats       map[int32][]int32
	baseWeight []float32
	lossChange []float32
	sumHess    []float32
}

// noParent is what XGBoost writes as the root's parent.
const noParent = math.MaxInt32

func (t *tree) addNode(parent int32, weight float64, hess float64) int32 {
	id := int32(len(t.left))
	t.left = append(t.left, -1)
	t.right = append(t.right, -1)
	t.parent = append(t.parent, parent)
	t.feature = append(t.feature, 0)
	t.cond = append(t.cond, 0)
	t.defaultLeft = append(t.defaultLeft, false)
	t.categorical = append(t.categorical, false)
	t.baseWeight = append(t.baseWeight, float32(weight))
	t.lossChange = append(t.lossChange, 0)
	t.sumHess = append(t.sumHess, float32(hess))
	return id
}

// predict walks the tree for row r of d, as XGBoost does with the raw
// value: NaN takes the default direction; a category in a split's set
// goes right, any other value left.
func (t *tree) predict(d *Dataset, r int) float32 {
	i := int32(0)
	for t.left[i] >= 0 {
		v := d.Columns[t.feature[i]][r]
		var right bool
		switch {
		case v != v:
			right = !t.defaultLeft[i]
		case t.categorical[i]:
			_, right = slices.BinarySearch(t.cats[i], int32(v))
		default:
			right = !(v < t.cond[i])
		}
		if right {
			i = t.right[i]
		} else {
			i = t.left[i]
		}
	}
	return t.cond[i]
}

// JSON is the model in XGBoost's JSON model format, as XGBoost 1.7.4
// saves it, with every field XGBoost's loader reads.
func (m *Model) JSON() []byte {
	w := &jsonWriter{}
	w.raw(`{"learner":{"attributes":{`)
	keys := make([]string, 0, len(m.attributes))
	for k := range m.attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		w.comma(i)
		w.str(k)
		w.raw(":")
		w.str(m.attributes[k])
	}
	w.raw(`},"feature_names":`)
	w.strs(m.names)
	w.raw(`,"feature_types":`)
	w.strs(m.types)
	w.raw(`,"gradient_booster":`)
	if m.booster == "gblinear" {
		w.raw(`{"model":{"boosted_rounds":`)
		w.int(m.rounds)
		w.raw(`,"weights":`)
		w.floats(m.linear)
		w.raw(`},"name":"gblinear"}`)
	} else {
		m.writeTrees(w)
	}
	w.raw(`,"learner_model_param":{"base_score":`)
	w.str(formatFloat(m.baseScore))
	w.raw(`,"boost_from_average":"1","num_class":`)
	numClass := 0
	if m.objective.name == MultiSoftprob {
		numClass = m.objective.groups
	}
	w.str(strconv.Itoa(numClass))
	w.raw(`,"num_feature":`)
	w.str(strconv.Itoa(m.numFeat))
	w.raw(`,"num_target":"1"},"objective":{"name":`)
	w.str(m.objective.name)
	switch m.objective.name {
	case MultiSoftprob:
		w.raw(`,"softmax_multiclass_param":{"num_class":`)
		w.str(strconv.Itoa(numClass))
		w.raw(`}`)
	case CountPoisson:
		w.raw(`,"poisson_regression_param":{"max_delta_step":`)
		w.str(formatFloat(m.objective.maxDeltaStep))
		w.raw(`}`)
	default:
		w.raw(`,"reg_loss_param":{"scale_pos_weight":`)
		w.str(formatFloat(m.objective.scalePosWeight))
		w.raw(`}`)
	}
	w.raw(`}},"version":[1,7,4]}`)
	return w.buf.Bytes()
}

// WriteFile writes the model's XGBoost JSON to path.
func (m *Model) WriteFile(path string) error {
	return os.WriteFile(path, m.JSON(), 0o644)
}

func (m *Model) writeTrees(w *jsonWriter) {
	w.raw(`{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":`)
	w.str(strconv.Itoa(len(m.trees)))
	w.raw(`,"size_leaf_vector":"0"},"tree_info":[`)
	for i, t := range m.trees {
		w.comma(i)
		w.int(t.group)
	}
	w.raw(`],"trees":[`)
	for i, t := range m.trees {
		w.comma(i)
		t.writeJSON(w, i, m.numFeat)
	}
	w.raw(`]},"name":"gbtree"}`)
}

func (t *tree) writeJSON(w *jsonWriter, id, numFeat int) {
	n := len(t.left)
	w.raw(`{"base_weights":`)
	w.floats(t.baseWeight)
	var catNodes, catSegments, catSizes, cats []int32
	for i := range n {
		if set, ok := t.cats[int32(i)]; ok {
			catNodes = append(catNodes, int32(i))
			catSegments = append(catSegments, int32(len(cats)))
			catSizes = append(catSizes, int32(len(set)))
			cats = append(cats, set...)
		}
	}
	w.raw(`,"categories":`)
	w.ints(cats)
	w.raw(`,"categories_nodes":`)
	w.ints(catNodes)
	w.raw(`,"categories_segments":`)
	w.ints(catSegments)
	w.raw(`,"categories_sizes":`)
	w.ints(catSizes)
	w.raw(`,"default_left":[`)
	for i, d := range t.defaultLeft {
		w.comma(i)
		if d {
			w.raw("1")
		} else {
			w.raw("0")
		}
	}
	w.raw(`],"id":`)
	w.int(id)
	w.raw(`,"left_children":`)
	w.ints(t.left)
	w.raw(`,"loss_changes":`)
	w.floats(t.lossChange)
	w.raw(`,"parents":`)
	w.ints(t.parent)
	w.raw(`,"right_children":`)
	w.ints(t.right)
	// XGBoost writes NaN as a categorical split's condition, which is not
	// JSON; it never reads the value, so 0 keeps the file valid JSON.
	w.raw(`,"split_conditions":`)
	w.floats(t.cond)
	w.raw(`,"split_indices":[`)
	for i, f := range t.feature {
		w.comma(i)
		w.int(int(f))
	}
	w.raw(`],"split_type":[`)
	for i, c := range t.categorical {
		w.comma(i)
		if c {
			w.raw("1")
		} else {
			w.raw("0")
		}
	}
	w.raw(`],"sum_hessian":`)
	w.floats(t.sumHess)
	w.raw(`,"tree_param":{"num_deleted":"0","num_feature":`)
	w.str(strconv.Itoa(numFeat))
	w.raw(`,"num_nodes":`)
	w.str(strconv.Itoa(n))
	w.raw(`,"size_leaf_vector":"0"}}`)
}

type jsonWriter struct{ buf bytes.Buffer }

func (w *jsonWriter) raw(s string) { w.buf.WriteString(s) }

func (w *jsonWriter) comma(i int) {
	if i > 0 {
		w.buf.WriteByte(',')
	}
}

func (w *jsonWriter) int(v int) {
	w.buf.Write(strconv.AppendInt(w.buf.AvailableBuffer(), int64(v), 10))
}

// str writes a JSON string; HTML characters stay as they are, since
// XGBoost's reader may not know the \u escapes the default would use.
func (w *jsonWriter) str(s string) {
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)               // a string always encodes
	w.buf.Truncate(w.buf.Len() - 1) // Encode ends with a newline
}

func (w *jsonWriter) strs(ss []string) {
	w.raw("[")
	for i, s := range ss {
		w.comma(i)
		w.str(s)
	}
	w.raw("]")
}

func (w *jsonWriter) ints(vs []int32) {
	w.raw("[")
	for i, v := range vs {
		w.comma(i)
		w.int(int(v))
	}
	w.raw("]")
}

func (w *jsonWriter) floats(vs []float32) {
	w.raw("[")
	for i, v := range vs {
		w.comma(i)
		w.buf.WriteString(formatFloat(v))
	}
	w.raw("]")
}

// formatFloat writes the shortest text that reads back as the same
// float32, always with an exponent: XGBoost's JSON reader takes a number
// without '.', 'e' or 'E' for an integer and refuses it where a float is
// expected.
func formatFloat(v float32) string {
	if v != v || math.IsInf(float64(v), 0) {
		return "0E0" // not reached: trees hold finite values only
	}
	return strconv.FormatFloat(float64(v), 'E', -1, 32)
}
