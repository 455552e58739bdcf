// Package onnx runs ONNX models natively, without ONNX Runtime or Python,
// for the operators that tabular and small neural-network models use:
// from ai.onnx Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh,
// Softmax, Reshape, Flatten, Concat, Cast, Identity and Constant; from
// ai.onnx.ml TreeEnsembleClassifier/Regressor, LinearClassifier/Regressor,
// Scaler, Normalizer, OneHotEncoder and ZipMap.
//
// Load refuses, with an error naming the node and operator, any graph it
// could not run: unsupported operators or attributes, unknown opsets,
// values no node produces, cycles, inputs it cannot feed. The model's one
// input is a tensor of rows of numeric features, [N, F] (or [F], or a
// fixed batch of 1); see Model for which output is the prediction.
package onnx

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/slipwayml/slipway/internal/models"
)

// MaxFileSize bounds the model files Load reads.
const MaxFileSize = 1 << 30

// Model is a loaded ONNX model. It is immutable and safe for concurrent
// use.
//
// The prediction is one graph output: the first output that holds floats
// (a classifier's probabilities, ZipMap's output, a regressor's values), or
// if no output holds floats, the first that holds integers. A classifier
// exported with a label output and a probabilities output therefore
// predicts its probabilities, one column per class. Each row's output
// values, flattened, are its NumOutputs values.
type Model struct {
	numFeatures int
	numOutputs  int
	inputName   string
	inputKind   kind
	inputType   int32
	// inputShape is [F] or [1, F] for models that score one row at a time,
	// nil for [N, F].
	inputShape []int
	// batched is whether rows can be scored together in one run of the
	// graph (checked at load by comparing against single rows).
	batched    bool
	outputName string
	outputSlot int
	inputSlot  int
	nslots     int
	consts     []*tensor // by slot; nil where the value is computed
	plan       []*step   // the nodes the prediction needs, in order
	all        []*step   // every node, in order
	outputs    []string  // graph outputs
	slots      map[string]int
	labels     map[int][]string // class labels of probability outputs
	signature  models.Signature
	producer   string
	opsets     map[string]int64
	pool       sync.Pool
}

var _ models.Model = (*Model)(nil)

// step is one node, compiled.
type step struct {
	name, op, domain string
	run              operator
	in, out          []int // slots; -1 is an omitted optional input
	idx              int   // position in Model.all, which arenas follow
}

func (s *step) describe() string {
	return describeNode(s.name, s.op, s.domain)
}

func describeNode(name, op, domain string) string {
	if domain == "" {
		domain = domainONNX
	}
	return fmt.Sprintf("node %q (op %s, domain %s)", name, op, domain)
}

// LoadFile reads a model file; see Load.
func LoadFile(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes: larger than the %d bytes Slipway's ONNX runtime reads", path, st.Size(), MaxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load reads an ONNX model (a serialized ModelProto) and checks that
// Slipway can run every node of its graph. Errors name what is wrong.
func Load(data []byte) (m *Model, err error) {
	if len(data) == 0 {
		return nil, errors.New("onnx model: the file is empty")
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("onnx model: %d bytes: larger than %d", len(data), MaxFileSize)
	}
	p, err := parseModel(data)
	if err != nil {
		return nil, fmt.Errorf("onnx model: not a valid ONNX file: %w", err)
	}
	m, err = compile(p)
	if err != nil {
		return nil, fmt.Errorf("onnx model: %w", err)
	}
	return m, nil
}

func compile(p *modelProto) (*Model, error) {
	g := p.graph
	if g == nil {
		return nil, errors.New("no graph: not an ONNX model")
	}
	m := &Model{slots: map[string]int{}, labels: map[int][]string{}, opsets: map[string]int64{}, producer: strings.TrimSpace(p.producerName + " " + p.producerVersion)}
	for _, o := range p.opsets {
		d := o.domain
		if d == "" {
			d = domainONNX
		}
		if _, dup := m.opsets[d]; dup {
			return nil, fmt.Errorf("opset_import: domain %s imported twice", d)
		}
		m.opsets[d] = o.version
	}
	if len(m.opsets) == 0 {
		// IR version 2 and older import no opsets: opset 1.
		m.opsets[domainONNX] = 1
	}
	if g.sparseInits > 0 {
		return nil, errors.New("sparse initializers are not supported")
	}
	slot := m.slotOf
	isConst := map[string]bool{}
	for i, t := range g.initializers {
		if t.name == "" {
			return nil, fmt.Errorf("initializer %d: no name", i)
		}
		if isConst[t.name] {
			return nil, fmt.Errorf("initializer %q: two initializers have this name", t.name)
		}
		v, err := fromProto(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.name, err)
		}
		isConst[t.name] = true
		m.consts[slot(t.name)] = v
	}

	// The input: the one graph input that is not an initializer.
	var inputs []*valueInfo
	for _, in := range g.inputs {
		if !isConst[in.name] {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.name
		}
		return nil, fmt.Errorf("the graph has %d inputs (%s); Slipway feeds models one input tensor of feature rows", len(inputs), strings.Join(names, ", "))
	}
	if err := m.setInput(inputs[0]); err != nil {
		return nil, err
	}
	m.inputSlot = slot(m.inputName)
	produced := map[string]int{m.inputName: -1}
	for name := range isConst {
		if name == m.inputName {
			continue
		}
		produced[name] = -1
	}

	// Nodes: check and build each, in file order.
	type pending struct {
		s    *step
		ins  []string
		spec *opSpec
	}
	var nodes []pending
	for i, n := range g.nodes {
		name := n.name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		s, spec, err := m.compileNode(n, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describeNode(name, n.opType, n.domain), err)
		}
		if s == nil { // a Constant, folded into a constant value
			out := n.outputs[0]
			if _, dup := produced[out]; dup {
				return nil, fmt.Errorf("%s: output %q: the value is already a graph input, an initializer or another node's output", describeNode(name, n.opType, n.domain), out)
			}
			v, err := constant(mustAttrs(n))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", describeNode(name, n.opType, n.domain), err)
			}
			produced[out] = -1
			m.consts[m.slotOf(out)] = v
			continue
		}
		for j, out := range n.outputs {
			if out == "" {
				continue
			}
			if _, dup := produced[out]; dup {
				return nil, fmt.Errorf("%s: output %q: the value is already a graph input, an initializer or another node's output", s.describe(), out)
			}
			produced[out] = len(nodes)
			s.out[j] = m.slotOf(out)
		}
		for j := range s.out {
			if s.out[j] < 0 { // an output the node does not name
				s.out[j] = len(m.consts)
				m.consts = append(m.consts, nil)
			}
		}
		nodes = append(nodes, pending{s: s, ins: n.inputs, spec: spec})
	}
	// Inputs must name known values; order the nodes topologically.
	deps := make([][]int, len(nodes))
	indeg := make([]int, len(nodes))
	for i, nd := range nodes {
		nd.s.in = make([]int, len(nd.ins))
		for j, in := range nd.ins {
			if in == "" {
				nd.s.in[j] = -1
				if j < nd.spec.minIn {
					return nil, fmt.Errorf("%s: input %d is required", nd.s.describe(), j)
				}
				continue
			}
			from, ok := produced[in]
			if !ok {
				return nil, fmt.Errorf("%s: input %q is not a graph input, an initializer or any node's output", nd.s.describe(), in)
			}
			nd.s.in[j] = slot(in)
			if from >= 0 {
				deps[from] = append(deps[from], i)
				indeg[i]++
			}
		}
	}
	var order []int
	for i := range nodes {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, j := range deps[order[k]] {
			if indeg[j]--; indeg[j] == 0 {
				order = append(order, j)
			}
		}
	}
	if len(order) != len(nodes) {
		var cyc []string
		for i := range nodes {
			if indeg[i] > 0 {
				cyc = append(cyc, fmt.Sprintf("%q", nodes[i].s.name))
			}
		}
		return nil, fmt.Errorf("the graph has a cycle through nodes %s", strings.Join(cyc, ", "))
	}
	for _, i := range order {
		nodes[i].s.idx = len(m.all)
		m.all = append(m.all, nodes[i].s)
	}
	m.nslots = len(m.consts)

	if len(g.outputs) == 0 {
		return nil, errors.New("the graph has no outputs")
	}
	for _, o := range g.outputs {
		if _, ok := m.slots[o.name]; !ok {
			return nil, fmt.Errorf("graph output %q: no node produces it", o.name)
		}
		m.outputs = append(m.outputs, o.name)
	}
	if err := m.probe(g.outputs); err != nil {
		return nil, err
	}
	return m, nil
}

// mustAttrs are the attributes of a node already checked.
func mustAttrs(n *nodeProto) attrs {
	a := attrs{}
	for _, at := range n.attrs {
		a[at.name] = at
	}
	return a
}

// compileNode checks a node against its operator's spec and builds it; a
// Constant node returns a nil step, to be folded.
func (m *Model) compileNode(n *nodeProto, name string) (*step, *opSpec, error) {
	domain := n.domain
	if domain == "" {
		domain = domainONNX
	}
	spec := registry[domain][n.opType]
	if spec == nil {
		return nil, nil, fmt.Errorf("operator not supported by Slipway's ONNX runtime (supported: %s)", Supported())
	}
	opset, ok := m.opsets[domain]
	if !ok {
		return nil, nil, fmt.Errorf("the model imports no opset for domain %s", domain)
	}
	if opset < 1 || opset > maxOpset[domain] {
		return nil, nil, fmt.Errorf("opset %d of domain %s: Slipway's ONNX runtime knows opsets 1 to %d", opset, domain, maxOpset[domain])
	}
	if len(n.inputs) < spec.minIn || (spec.maxIn != anyInputs && len(n.inputs) > spec.maxIn) {
		return nil, nil, fmt.Errorf("%d inputs: %s takes %s", len(n.inputs), n.opType, countRange(spec.minIn, spec.maxIn))
	}
	if len(n.outputs) < spec.minOut || len(n.outputs) > spec.outs {
		return nil, nil, fmt.Errorf("%d outputs: %s has %s", len(n.outputs), n.opType, countRange(spec.minOut, spec.outs))
	}
	if len(n.outputs) == 0 || n.outputs[0] == "" {
		return nil, nil, errors.New("the node names no output")
	}
	a, err := checkAttrs(spec, n.opType, n.attrs)
	if err != nil {
		return nil, nil, err
	}
	if n.opType == "Constant" && domain == domainONNX {
		if _, err := constant(a); err != nil {
			return nil, nil, err
		}
		return nil, spec, nil
	}
	op, err := spec.build(a, opset)
	if err != nil {
		return nil, nil, err
	}
	s := &step{name: name, op: n.opType, domain: n.domain, run: op, out: make([]int, spec.outs)}
	for i := range s.out {
		s.out[i] = -1
	}
	switch o := op.(type) {
	case *treeEnsemble:
		if o.classifier && len(n.outputs) > 1 && n.outputs[1] != "" {
			m.labels[m.slotOf(n.outputs[1])] = o.classes.names()
		}
	case *linear:
		if o.classifier && len(n.outputs) > 1 && n.outputs[1] != "" {
			m.labels[m.slotOf(n.outputs[1])] = o.classes.names()
		}
	case zipMap:
		m.labels[m.slotOf(n.outputs[0])] = o.classes.names()
	}
	return s, spec, nil
}

func (m *Model) slotOf(name string) int {
	if s, ok := m.slots[name]; ok {
		return s
	}
	s := len(m.consts)
	m.slots[name] = s
	m.consts = append(m.consts, nil)
	return s
}

func countRange(lo, hi int) string {
	switch {
	case hi == anyInputs:
		return fmt.Sprintf("at least %d", lo)
	case lo == hi:
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// setInput checks the graph input's type and shape.
func (m *Model) setInput(v *valueInfo) error {
	m.inputName = v.name
	if v.name == "" {
		return errors.New("the graph input has no name")
	}
	if v.kind != "tensor" {
		kind := v.kind
		if kind == "" {
			kind = "untyped"
		}
		return fmt.Errorf("graph input %q is %s; Slipway feeds a tensor of feature rows", v.name, kind)
	}
	m.inputType = v.elemType
	switch v.elemType {
	case dtFloat, dtDouble:
		m.inputKind = kFloat
	case dtInt64, dtInt32:
		m.inputKind = kInt
	default:
		return fmt.Errorf("graph input %q has element type %s; Slipway feeds FLOAT, DOUBLE, INT64 or INT32 features", v.name, dataTypeName(v.elemType))
	}
	shape := make([]string, len(v.dims))
	for i, d := range v.dims {
		switch {
		case d.known:
			shape[i] = fmt.Sprint(d.value)
		case d.param != "":
			shape[i] = d.param
		default:
			shape[i] = "?"
		}
	}
	bad := func(why string) error {
		return fmt.Errorf("graph input %q of shape [%s]: %s; Slipway feeds rows of features as [N, F] (N dynamic, or 1) or [F]", v.name, strings.Join(shape, ", "), why)
	}
	if !v.hasShape {
		return fmt.Errorf("graph input %q has no shape; Slipway needs [N, F] or [F] with the number of features F known", v.name)
	}
	last := len(v.dims) - 1
	if last < 0 || last > 1 {
		return bad(fmt.Sprintf("rank %d", len(v.dims)))
	}
	f := v.dims[last]
	if !f.known || f.value < 1 || f.value > 1<<24 {
		return bad("the number of features is not a known positive number")
	}
	m.numFeatures = int(f.value)
	switch {
	case last == 0:
		m.inputShape = []int{m.numFeatures}
	case v.dims[0].known && v.dims[0].value == 1:
		m.inputShape = []int{1, m.numFeatures}
	case v.dims[0].known:
		return bad(fmt.Sprintf("a fixed batch of %d rows (export with a dynamic batch axis, e.g. torch.onnx.export(..., dynamic_axes={name: {0: \"N\"}}))", v.dims[0].value))
	}
	return nil
}

// probe runs the graph on sample rows: once to check that every node runs
// on the input the graph declares (so that shape and type mistakes are
// refused at load, not on the first request) and to size the outputs, and
// on several rows at once to learn whether rows can be batched.
func (m *Model) probe(outputs []*valueInfo) error {
	m.plan = m.all
	a := m.newArena()
	a.probe = true
	row := func(r int) []float32 {
		x := make([]float32, m.numFeatures)
		for j := range x {
			if m.inputKind == kInt {
				x[j] = float32((r + 2*j) % 3)
			} else {
				x[j] = float32(math.Sin(float64(1+r*m.numFeatures+j))) * 2
			}
		}
		return x
	}
	if err := m.execute(a, row(0), 1); err != nil {
		return err
	}
	// Choose the prediction: the first float output, else the first
	// integer one.
	chosen := -1
	for pass := 0; pass < 2 && chosen < 0; pass++ {
		for i, name := range m.outputs {
			t := a.vals[m.slots[name]]
			if (pass == 0 && t.k == kFloat) || (pass == 1 && t.k == kInt) {
				chosen = i
				break
			}
		}
	}
	if chosen < 0 {
		return fmt.Errorf("no graph output holds numbers (outputs: %s)", strings.Join(m.outputs, ", "))
	}
	m.outputName = m.outputs[chosen]
	m.outputSlot = m.slots[m.outputName]
	out := a.vals[m.outputSlot]
	m.numOutputs = out.size()
	if m.numOutputs == 0 {
		return fmt.Errorf("graph output %q is empty", m.outputName)
	}

	// Keep only the nodes the prediction needs.
	need := make([]bool, m.nslots)
	need[m.outputSlot] = true
	var plan []*step
	for i := len(m.all) - 1; i >= 0; i-- {
		s := m.all[i]
		used := false
		for _, o := range s.out {
			used = used || need[o]
		}
		if !used {
			continue
		}
		plan = append(plan, s)
		for _, in := range s.in {
			if in >= 0 {
				need[in] = true
			}
		}
	}
	slices.Reverse(plan)
	m.plan = plan
	m.signature = m.buildSignature(outputs[chosen], out)
	m.pool.New = func() any { return m.newArena() }

	// Batching: rows run together must score as they do alone.
	if m.inputShape != nil {
		return nil
	}
	const rows = 3
	x := make([]float32, 0, rows*m.numFeatures)
	for r := 0; r < rows; r++ {
		x = append(x, row(r)...)
	}
	if err := m.execute(a, x, rows); err != nil {
		return nil // the graph runs row by row only
	}
	batch := a.vals[m.outputSlot]
	if batch.size() != rows*m.numOutputs || batch.k != out.k {
		return nil
	}
	got := make([]float32, rows*m.numOutputs)
	copyOut(got, batch)
	want := make([]float32, rows*m.numOutputs)
	for r := 0; r < rows; r++ {
		if err := m.execute(a, row(r), 1); err != nil {
			return err
		}
		copyOut(want[r*m.numOutputs:], a.vals[m.outputSlot])
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*math.Max(1, math.Abs(float64(want[i]))) && !(got[i] != got[i] && want[i] != want[i]) {
			return nil
		}
	}
	m.batched = true
	return nil
}

func (m *Model) buildSignature(out *valueInfo, t *tensor) models.Signature {
	var sig models.Signature
	inType := map[int32]string{dtFloat: "float", dtDouble: "double", dtInt64: "long", dtInt32: "integer"}[m.inputType]
	for j := 0; j < m.numFeatures; j++ {
		name := m.inputName
		if m.numFeatures > 1 {
			name = fmt.Sprintf("%s_%d", m.inputName, j)
		}
		sig.Inputs = append(sig.Inputs, models.Column{Name: name, Type: inType})
	}
	outType := "float"
	if t.k == kInt {
		outType = "long"
	} else if out.kind == "tensor" && out.elemType == dtDouble {
		outType = "double"
	}
	labels := m.labels[m.outputSlot]
	for j := 0; j < m.numOutputs; j++ {
		name := m.outputName
		switch {
		case len(labels) == m.numOutputs:
			name = "probability_" + labels[j]
		case m.numOutputs > 1:
			name = fmt.Sprintf("%s_%d", m.outputName, j)
		}
		sig.Outputs = append(sig.Outputs, models.Column{Name: name, Type: outType})
	}
	return sig
}

// arena is one caller's working memory: a tensor per value, reused from
// call to call.
type arena struct {
	vals    []*tensor
	own     []tensor
	ins     [][]*tensor
	outs    [][]*tensor
	probe   bool
	scratch [3][]float64
	flags   []bool
}

func (m *Model) newArena() *arena {
	a := &arena{vals: make([]*tensor, m.nslots), own: make([]tensor, m.nslots)}
	for i := range a.vals {
		if m.consts[i] != nil {
			a.vals[i] = m.consts[i]
		} else {
			a.vals[i] = &a.own[i]
		}
	}
	for _, s := range m.all {
		in := make([]*tensor, len(s.in))
		for j, k := range s.in {
			if k >= 0 {
				in[j] = a.vals[k]
			}
		}
		out := make([]*tensor, len(s.out))
		for j, k := range s.out {
			out[j] = a.vals[k]
		}
		a.ins = append(a.ins, in)
		a.outs = append(a.outs, out)
	}
	return a
}

func (a *arena) f64(i, n int) []float64 {
	if cap(a.scratch[i]) < n {
		a.scratch[i] = make([]float64, n)
	}
	return a.scratch[i][:n]
}

func (a *arena) bools(n int) []bool {
	if cap(a.flags) < n {
		a.flags = make([]bool, n)
	}
	return a.flags[:n]
}

// execute runs the plan on rows rows of x.
func (m *Model) execute(a *arena, x []float32, rows int) (err error) {
	defer func() {
		// An operator that panics has a bug; the caller gets an error
		// rather than a crashed server.
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in Slipway's ONNX runtime: %v", r)
		}
	}()
	in := a.vals[m.inputSlot]
	if m.inputShape != nil {
		err = in.set(m.inputKind, m.inputShape)
	} else {
		err = in.set2(m.inputKind, rows, m.numFeatures)
	}
	if err != nil {
		return err
	}
	if m.inputKind == kFloat {
		copy(in.f, x)
	} else {
		for i, v := range x {
			if v != v || v != float32(math.Trunc(float64(v))) {
				return fmt.Errorf("feature %d of row %d is %v; the model's input %q takes integers", i%m.numFeatures, i/m.numFeatures, v, m.inputName)
			}
			in.i[i] = int64(v)
		}
	}
	for _, s := range m.plan {
		i := s.idx
		if err := s.run.run(a, a.ins[i], a.outs[i]); err != nil {
			return fmt.Errorf("%s: %w", s.describe(), err)
		}
	}
	return nil
}

func copyOut(dst []float32, t *tensor) {
	if t.k == kFloat {
		copy(dst, t.f)
		return
	}
	for i, v := range t.i {
		dst[i] = float32(v)
	}
}

// Signature implements models.Model: the input's F columns are named
// after the graph input (input_0, input_1, ...; the name alone when F is
// 1); the outputs after the chosen graph output, or probability_<label>
// for a classifier's probabilities.
func (m *Model) Signature() models.Signature { return m.signature }

// NumFeatures implements models.Model.
func (m *Model) NumFeatures() int { return m.numFeatures }

// NumOutputs implements models.Model.
func (m *Model) NumOutputs() int { return m.numOutputs }

// OutputName is the graph output the model predicts.
func (m *Model) OutputName() string { return m.outputName }

// InputName is the graph input the rows feed.
func (m *Model) InputName() string { return m.inputName }

// Producer is the tool that wrote the model, as the file says.
func (m *Model) Producer() string { return m.producer }

// Opsets are the operator sets the model imports, by domain.
func (m *Model) Opsets() map[string]int64 { return m.opsets }

// blockRows rows run through the graph together; larger batches are cut
// into blocks so that working memory stays small.
const blockRows = 256

// parallelRows is the smallest batch split across cores.
const parallelRows = 1024

// Predict implements models.Model.
func (m *Model) Predict(x, out []float32) error {
	nf := m.numFeatures
	if len(x)%nf != 0 {
		return fmt.Errorf("input has %d values, not a whole number of rows of %d features", len(x), nf)
	}
	rows := len(x) / nf
	if len(out) < rows*m.numOutputs {
		return fmt.Errorf("output has room for %d values; %d rows need %d", len(out), rows, rows*m.numOutputs)
	}
	workers := min(runtime.GOMAXPROCS(0), rows/parallelRows)
	if workers <= 1 {
		return m.predictRows(x, out, 0, rows)
	}
	per := (rows + workers - 1) / workers
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, rows)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = m.predictRows(x, out, lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// PredictRow implements models.Model; once warm it does not allocate.
func (m *Model) PredictRow(row, out []float32) error {
	if len(row) != m.numFeatures {
		return fmt.Errorf("row has %d values; the model has %d features", len(row), m.numFeatures)
	}
	if len(out) < m.numOutputs {
		return fmt.Errorf("output has room for %d values; the model predicts %d", len(out), m.numOutputs)
	}
	return m.predictRows(row, out, 0, 1)
}

func (m *Model) predictRows(x, out []float32, lo, hi int) error {
	a := m.pool.Get().(*arena)
	defer m.pool.Put(a)
	nf, no := m.numFeatures, m.numOutputs
	block := blockRows
	if !m.batched {
		block = 1
	}
	for b := lo; b < hi; b += block {
		e := min(b+block, hi)
		if err := m.execute(a, x[b*nf:e*nf], e-b); err != nil {
			if e-b == 1 {
				return fmt.Errorf("row %d: %w", b, err)
			}
			return fmt.Errorf("rows %d to %d: %w", b, e-1, err)
		}
		t := a.vals[m.outputSlot]
		if t.size() != (e-b)*no {
			return fmt.Errorf("graph output %q has %d values for %d rows; the model predicts %d per row", m.outputName, t.size(), e-b, no)
		}
		copyOut(out[b*no:e*no], t)
	}
	return nil
}
