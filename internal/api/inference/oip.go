package inference

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/tabular"
)

// maxDims bounds a tensor's rank.
const maxDims = 8

// dtype is an Open Inference Protocol tensor datatype.
type dtype struct {
	name     string
	class    uint8
	min, max float64 // integer range
}

const (
	classBool uint8 = iota + 1
	classInt
	classFloat
	classBytes
)

var dtypes = []dtype{
	{"FP32", classFloat, 0, 0},
	{"FP64", classFloat, 0, 0},
	{"INT64", classInt, math.MinInt64, math.MaxInt64},
	{"BYTES", classBytes, 0, 0},
	{"BOOL", classBool, 0, 1},
	{"UINT8", classInt, 0, math.MaxUint8},
	{"UINT16", classInt, 0, math.MaxUint16},
	{"UINT32", classInt, 0, math.MaxUint32},
	{"UINT64", classInt, 0, math.MaxUint64},
	{"INT8", classInt, math.MinInt8, math.MaxInt8},
	{"INT16", classInt, math.MinInt16, math.MaxInt16},
	{"INT32", classInt, math.MinInt32, math.MaxInt32},
	{"FP16", classFloat, 0, 0},
}

const dtypeList = "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES"

func lookupDtype(name []byte) *dtype {
	for i := range dtypes {
		if dtypes[i].name == string(name) {
			return &dtypes[i]
		}
	}
	return nil
}

// check reports whether v suits the datatype; null (missing) suits all.
func (d *dtype) check(v value) bool {
	switch v.kind {
	case kindNull:
		return true
	case kindBool:
		return d.class == classBool
	case kindString:
		return d.class == classBytes
	}
	switch d.class {
	case classFloat:
		return true
	case classInt:
		return v.num == math.Trunc(v.num) && v.num >= d.min && v.num <= d.max
	}
	return false
}

// mismatch explains why v, element i, does not suit the datatype.
func (d *dtype) mismatch(v value, i int) string {
	switch d.class {
	case classBool:
		return fmt.Sprintf("datatype BOOL holds true or false; element %d is %s", i, describe(v))
	case classInt:
		if v.kind == kindNumber && v.num == math.Trunc(v.num) {
			return fmt.Sprintf("element %d is %s, outside %s's range %.0f to %.0f", i, describe(v), d.name, d.min, d.max)
		}
		return fmt.Sprintf("datatype %s holds whole numbers; element %d is %s", d.name, i, describe(v))
	case classFloat:
		return fmt.Sprintf("datatype %s holds numbers; element %d is %s", d.name, i, describe(v))
	}
	return fmt.Sprintf("datatype BYTES holds strings; element %d is %s", i, describe(v))
}

// datatypeOf is the OIP datatype of a signature column type.
func datatypeOf(typ string) string {
	switch typ {
	case "double":
		return "FP64"
	case "long":
		return "INT64"
	case "integer":
		return "INT32"
	case "boolean":
		return "BOOL"
	case "string", "binary":
		return "BYTES"
	}
	return "FP32"
}

// inputDatatype is the datatype model metadata declares for feature f.
func inputDatatype(sig models.Signature, f *tabular.Feature) string {
	if f.Categorical {
		if f.Levels != nil {
			return "BYTES"
		}
		return "INT64"
	}
	return datatypeOf(columnType(sig, f))
}

// tensorIn is one decoded request input. Its data lives in
// oipRequest.vals[start:start+n], flattened.
type tensorIn struct {
	name, datatype                          []byte
	hasName, hasDatatype, hasShape, hasData bool
	shape                                   [maxDims]int64
	ndims                                   int
	badShape                                bool // a dimension that is not a whole number >= 0, or too many
	start, n                                int
	// Structure of nested data: leafDepth is how many arrays enclose the
	// values (1 = flat), lens[k] the length of the arrays at depth k.
	leafDepth int
	lens      [maxDims]int
	ragged    bool // arrays at one depth differ in length
	mixed     bool // values at different depths
	tooDeep   bool
	params    []byte
}

// oipRequest is a decoded inference request.
type oipRequest struct {
	id, params []byte
	hasID      bool
	inputs     []tensorIn
	outputs    [][]byte
	vals       []value
}

func (o *oipRequest) reset() {
	*o = oipRequest{inputs: o.inputs[:0], outputs: o.outputs[:0], vals: o.vals[:0]}
}

// decodeOIP reads an inference request body.
func decodeOIP(sc *scanner, o *oipRequest, body []byte) error {
	o.reset()
	sc.reset(body)
	if sc.peek() != '{' {
		return errs.Invalid("request body: must be a JSON object with \"inputs\"")
	}
	var semantic error
	sc.object(func(key []byte) {
		switch string(key) {
		case "id":
			if sc.peek() != '"' {
				semantic = errs.Invalid(`request body: "id" must be a string`)
				sc.skip()
				return
			}
			o.id, _ = sc.str()
			o.hasID = true
		case "parameters":
			if sc.peek() != '{' {
				semantic = errs.Invalid(`request body: "parameters" must be an object`)
			}
			o.params = sc.raw()
		case "inputs":
			if sc.peek() != '[' {
				semantic = errs.Invalid(`request body: "inputs" must be an array of tensors`)
				sc.skip()
				return
			}
			sc.array(func(int) {
				o.inputs = append(o.inputs, tensorIn{})
				if err := decodeTensor(sc, o, len(o.inputs)-1); err != nil && semantic == nil {
					semantic = err
				}
			})
		case "outputs":
			if sc.peek() != '[' {
				semantic = errs.Invalid(`request body: "outputs" must be an array`)
				sc.skip()
				return
			}
			sc.array(func(i int) {
				if sc.peek() != '{' {
					semantic = errs.Invalid(`request body: outputs[%d] must be an object with "name"`, i)
					sc.skip()
					return
				}
				var name []byte
				has := false
				sc.object(func(k []byte) {
					switch string(k) {
					case "name":
						if sc.peek() != '"' {
							semantic = errs.Invalid(`request body: outputs[%d].name must be a string`, i)
							sc.skip()
							return
						}
						name, _ = sc.str()
						has = true
					case "parameters":
						sc.skip()
					default:
						semantic = errs.Invalid(`request body: outputs[%d]: unknown field %q`, i, k)
						sc.skip()
					}
				})
				if !has && sc.err == nil && semantic == nil {
					semantic = errs.Invalid(`request body: outputs[%d]: "name" is required`, i)
				}
				o.outputs = append(o.outputs, name)
			})
		default:
			if semantic == nil {
				semantic = errs.Invalid("request body: unknown field %q (an inference request has id, parameters, inputs, outputs)", key)
			}
			sc.skip()
		}
	})
	if sc.err == nil && !sc.end() {
		sc.fail("data after the request object")
	}
	if sc.err != nil {
		return errs.Invalid("request body: %v", sc.err)
	}
	return semantic
}

// decodeTensor reads inputs[k].
func decodeTensor(sc *scanner, o *oipRequest, k int) error {
	if sc.peek() != '{' {
		sc.skip()
		return errs.Invalid("request body: inputs[%d] must be an object", k)
	}
	var semantic error
	sc.object(func(key []byte) {
		t := &o.inputs[k]
		switch string(key) {
		case "name":
			if sc.peek() != '"' {
				semantic = errs.Invalid("request body: inputs[%d].name must be a string", k)
				sc.skip()
				return
			}
			t.name, _ = sc.str()
			t.hasName = true
		case "datatype":
			if sc.peek() != '"' {
				semantic = errs.Invalid("request body: inputs[%d].datatype must be a string", k)
				sc.skip()
				return
			}
			t.datatype, _ = sc.str()
			t.hasDatatype = true
		case "shape":
			t.hasShape = true
			if sc.peek() != '[' {
				t.badShape = true
				sc.skip()
				return
			}
			sc.array(func(i int) {
				v, ok := sc.scalar()
				if !ok {
					sc.skip()
					t.badShape = true
					return
				}
				if v.kind != kindNumber || v.num < 0 || v.num != math.Trunc(v.num) || v.num > math.MaxInt64/2 || i >= maxDims {
					t.badShape = true
					return
				}
				t.shape[i] = int64(v.num)
				t.ndims = i + 1
			})
		case "data":
			t.hasData = true
			if sc.peek() != '[' {
				// A single value: a tensor of one element.
				t.start = len(o.vals)
				if v, ok := sc.scalar(); ok {
					o.vals = append(o.vals, v)
					t.leafDepth = 1
					t.n = 1
				} else {
					semantic = errs.Invalid("request body: inputs[%d].data must be an array", k)
					sc.skip()
				}
				return
			}
			t.start = len(o.vals)
			for d := range t.lens {
				t.lens[d] = -1
			}
			decodeData(sc, o, k, 1)
			t = &o.inputs[k]
			t.n = len(o.vals) - t.start
		case "parameters":
			if sc.peek() != '{' {
				semantic = errs.Invalid("request body: inputs[%d].parameters must be an object", k)
			}
			t.params = sc.raw()
		default:
			semantic = errs.Invalid("request body: inputs[%d]: unknown field %q (an input has name, shape, datatype, parameters, data)", k, key)
			sc.skip()
		}
	})
	return semantic
}

// decodeData reads an array at depth (1 = the data array itself),
// flattening its values into o.vals and noting its structure.
func decodeData(sc *scanner, o *oipRequest, k, depth int) {
	if depth > maxDims {
		o.inputs[k].tooDeep = true
		sc.skip()
		return
	}
	n := 0
	sc.array(func(int) {
		n++
		if sc.peek() == '[' {
			decodeData(sc, o, k, depth+1)
			return
		}
		v, ok := sc.scalar()
		if !ok {
			if sc.err == nil {
				o.inputs[k].mixed = true // an object
				sc.skip()
			}
			return
		}
		o.vals = append(o.vals, v)
		t := &o.inputs[k]
		if t.leafDepth == 0 {
			t.leafDepth = depth
		} else if t.leafDepth != depth {
			t.mixed = true
		}
	})
	t := &o.inputs[k]
	if l := t.lens[depth-1]; l == -1 {
		t.lens[depth-1] = n
	} else if l != n {
		t.ragged = true
	}
}

// shapeString renders a shape as [2, 30].
func (t *tensorIn) shapeString() string {
	b := []byte{'['}
	for i := 0; i < t.ndims; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, t.shape[i], 10)
	}
	return string(append(b, ']'))
}

// checkStructure validates a tensor's fields, shape and data layout.
func (t *tensorIn) checkStructure(k int) (*dtype, error) {
	if !t.hasName {
		return nil, errs.Invalid(`inputs[%d]: "name" is required`, k)
	}
	for _, f := range [...]struct {
		has  bool
		name string
	}{{t.hasShape, "shape"}, {t.hasDatatype, "datatype"}, {t.hasData, "data"}} {
		if !f.has {
			return nil, errs.Invalid("input %q: %q is required", t.name, f.name)
		}
	}
	dt := lookupDtype(t.datatype)
	if dt == nil {
		return nil, errs.Invalid("input %q: datatype %q is not an Open Inference Protocol datatype (%s)", t.name, t.datatype, dtypeList)
	}
	if t.badShape || t.ndims == 0 {
		return nil, errs.Invalid("input %q: shape must list 1 to %d dimensions, each a whole number from 0", t.name, maxDims)
	}
	switch {
	case t.tooDeep:
		return nil, errs.Invalid("input %q: data is nested more than %d levels deep", t.name, maxDims)
	case t.mixed:
		return nil, errs.Invalid("input %q: data mixes values and arrays at one level; send it flat, or nested as the shape", t.name)
	case t.ragged:
		return nil, errs.Invalid("input %q: data has arrays of different lengths at one level; send it flat, or nested as the shape %s", t.name, t.shapeString())
	}
	if t.leafDepth > 1 {
		ok := t.leafDepth == t.ndims
		for d := 0; ok && d < t.ndims; d++ {
			ok = int64(t.lens[d]) == t.shape[d]
		}
		if !ok {
			b := []byte{'['}
			for d := 0; d < t.leafDepth; d++ {
				if d > 0 {
					b = append(b, ", "...)
				}
				b = strconv.AppendInt(b, int64(t.lens[d]), 10)
			}
			return nil, errs.Invalid("input %q: data is nested as %s, but shape is %s", t.name, append(b, ']'), t.shapeString())
		}
	}
	want := int64(1)
	for d := 0; d < t.ndims; d++ {
		if t.shape[d] != 0 && want > math.MaxInt64/t.shape[d] {
			return nil, errs.Invalid("input %q: shape %s is too large", t.name, t.shapeString())
		}
		want *= t.shape[d]
	}
	if want != int64(t.n) {
		return nil, errs.Invalid("input %q: shape %s needs %d %s, but data has %d", t.name, t.shapeString(), want, plural(want, "value"), t.n)
	}
	return dt, nil
}

// matrix checks the decoded request against the endpoint and lays the
// inputs out as c.req.X.
func (s *Server) oipMatrix(c *call, sig models.Signature, features []tabular.Feature) error {
	o := &c.oip
	nf := len(features)
	if len(o.inputs) == 0 {
		return errs.Invalid(`request body: "inputs" must hold at least one input`)
	}
	dtl := c.dtypes[:0]
	for k := range o.inputs {
		dt, err := o.inputs[k].checkStructure(k)
		if err != nil {
			return err
		}
		dtl = append(dtl, dt)
	}
	c.dtypes = dtl
	// One [N, F] tensor whose name is not a column: the whole matrix.
	if t := &o.inputs[0]; len(o.inputs) == 1 && t.ndims == 2 && featureIndex(features, t.name, 0) < 0 {
		return s.oipWhole(c, sig, features, t, dtl[0])
	}
	if cap(c.idx) < len(o.inputs) {
		c.idx = make([]int, len(o.inputs))
	}
	idx := c.idx[:len(o.inputs)]
	if cap(c.seen) < nf {
		c.seen = make([]bool, nf)
	}
	seen := c.seen[:nf]
	clear(seen)
	rows, rowsFrom := int64(-1), -1
	for k := range o.inputs {
		t := &o.inputs[k]
		j := featureIndex(features, t.name, k)
		if j < 0 {
			if len(o.inputs) == 1 {
				return errs.Invalid("input %q: the model has no column %q; send one input per column (%s) or one [N, %d] tensor", t.name, t.name, quoteList(featureNames(features)), nf)
			}
			return errs.Invalid("input %q: the model has no such column (its columns are %s)", t.name, quoteList(featureNames(features)))
		}
		if seen[j] {
			return errs.Invalid("input %q appears twice", t.name)
		}
		seen[j] = true
		idx[k] = j
		if t.ndims > 2 || (t.ndims == 2 && t.shape[1] != 1) {
			return errs.Invalid("input %q: shape %s, but an input for one column has shape [N] or [N, 1]", t.name, t.shapeString())
		}
		if rowsFrom < 0 {
			rows, rowsFrom = t.shape[0], k
		} else if t.shape[0] != rows {
			return errs.Invalid("input %q: %d rows, but input %q has %d", t.name, t.shape[0], o.inputs[rowsFrom].name, rows)
		}
	}
	if len(o.inputs) < nf {
		return errs.Invalid("%s", missingMessage("input", features, seen))
	}
	if err := s.checkRows(rows, o.inputs[rowsFrom].name); err != nil {
		return err
	}
	n := int(rows)
	x := c.matrixBuf(n * nf)
	for k := range o.inputs {
		t := &o.inputs[k]
		j := idx[k]
		f := &features[j]
		dt := dtl[k]
		if err := typeFits(t, dt, sig, f); err != nil {
			return err
		}
		var li levelIndex
		vals := o.vals[t.start : t.start+t.n]
		for r, v := range vals {
			if !dt.check(v) {
				return errs.Invalid("input %q: %s", t.name, dt.mismatch(v, r))
			}
			var p problem
			if x[r*nf+j], p = cell(f, &li, v); p != fine {
				return errs.Invalid("%s", problemMessage(p, fmt.Sprintf("input %q, element %d", t.name, r), f, v, sig))
			}
		}
	}
	c.req.Rows = n
	c.req.Format = "tensors"
	return nil
}

// oipWhole lays out a single [N, F] tensor.
func (s *Server) oipWhole(c *call, sig models.Signature, features []tabular.Feature, t *tensorIn, dt *dtype) error {
	nf := len(features)
	if t.shape[1] != int64(nf) {
		return errs.Invalid("input %q: shape %s, but the model takes %d features", t.name, t.shapeString(), nf)
	}
	if err := s.checkRows(t.shape[0], t.name); err != nil {
		return err
	}
	for j := range features {
		if err := typeFits(t, dt, sig, &features[j]); err != nil {
			return err
		}
	}
	n := int(t.shape[0])
	x := c.matrixBuf(n * nf)
	if cap(c.levels) < nf {
		c.levels = make([]levelIndex, nf)
	}
	li := c.levels[:nf]
	clear(li)
	vals := c.oip.vals[t.start : t.start+t.n]
	for i, v := range vals {
		if !dt.check(v) {
			return errs.Invalid("input %q: %s", t.name, dt.mismatch(v, i))
		}
		j := i % nf
		f := &features[j]
		var p problem
		if f.Categorical {
			x[i], p = cell(f, &li[j], v)
		} else {
			x[i], p = cell(f, nil, v)
		}
		if p != fine {
			return errs.Invalid("%s", problemMessage(p, fmt.Sprintf("input %q, row %d, column %q", t.name, i/nf, f.Name), f, v, sig))
		}
	}
	c.req.Rows = n
	c.req.Format = "matrix"
	return nil
}

// typeFits checks that datatype dt can feed feature f.
func typeFits(t *tensorIn, dt *dtype, sig models.Signature, f *tabular.Feature) error {
	switch {
	case dt.class == classBytes && !f.Categorical:
		return errs.Invalid("input %q: datatype BYTES, but the model's column %q is %s", t.name, f.Name, columnType(sig, f))
	case dt.class == classBytes && f.Levels == nil:
		return errs.Invalid("input %q: datatype BYTES, but the model knows the categories of column %q only by code; send them as INT64", t.name, f.Name)
	case dt.class == classBool && f.Categorical:
		return errs.Invalid("input %q: datatype BOOL, but the model's column %q is categorical; send its categories as BYTES or INT64 codes", t.name, f.Name)
	}
	return nil
}

func (s *Server) checkRows(rows int64, name []byte) error {
	if rows == 0 {
		return errs.Invalid("input %q: no rows; a request needs at least one", name)
	}
	if rows > int64(s.opts.MaxRows) {
		return errs.Invalid("input %q: %d rows; at most %d in one request", name, rows, s.opts.MaxRows)
	}
	return nil
}

// matrixBuf returns c.req.X sized to n.
func (c *call) matrixBuf(n int) []float32 {
	if cap(c.req.X) < n {
		c.req.X = make([]float32, n)
	}
	c.req.X = c.req.X[:n]
	return c.req.X
}

// parameters decodes raw "parameters" (or MLflow "params").
func parameters(raw []byte, field string) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errs.Invalid("request body: %q must be an object", field)
	}
	return m, nil
}

// Register mounts the Open Inference Protocol routes on mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2/health/live", s.live)
	mux.HandleFunc("GET /v2/health/ready", s.ready)
	mux.HandleFunc("GET /v2", s.serverMetadata)
	mux.HandleFunc("GET /v2/{$}", s.serverMetadata)
	mux.HandleFunc("GET /v2/models/{model}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{model}/versions/{version}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{model}/ready", s.modelReady)
	mux.HandleFunc("GET /v2/models/{model}/versions/{version}/ready", s.modelReady)
	mux.HandleFunc("POST /v2/models/{model}/infer", s.Infer)
	mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", s.Infer)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		s.oipError(w, r, errs.NotFoundf("no endpoint %s %s (or the method is not allowed there)", r.Method, r.URL.Path))
	})
}

func (s *Server) oipError(w http.ResponseWriter, r *http.Request, err error) {
	status, _, msg := s.classify(r, err)
	b := append(make([]byte, 0, len(msg)+16), `{"error":`...)
	b = appendString(b, msg)
	writeBody(w, status, append(b, "}\n"...))
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, []byte(`{"live":true}`+"\n"))
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.res.Ready(r.Context()) {
		writeBody(w, http.StatusOK, []byte(`{"ready":true}`+"\n"))
		return
	}
	writeBody(w, http.StatusServiceUnavailable, []byte(`{"ready":false}`+"\n"))
}

func (s *Server) serverMetadata(w http.ResponseWriter, r *http.Request) {
	b := appendString([]byte(`{"name":"slipway","version":`), s.opts.ServerVersion)
	writeBody(w, http.StatusOK, append(b, `,"extensions":[]}`+"\n"...))
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	ep, err := s.endpoint(r, r.PathValue("model"), r.PathValue("version"))
	if err != nil {
		s.oipError(w, r, err)
		return
	}
	b := appendString([]byte(`{"name":`), ep.Name())
	if ep.Ready() {
		writeBody(w, http.StatusOK, append(b, `,"ready":true}`+"\n"...))
		return
	}
	writeBody(w, http.StatusServiceUnavailable, append(b, `,"ready":false}`+"\n"...))
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	ep, err := s.endpoint(r, r.PathValue("model"), r.PathValue("version"))
	if err != nil {
		s.oipError(w, r, err)
		return
	}
	sig := ep.Signature()
	b := appendString([]byte(`{"name":`), ep.Name())
	if vs := ep.Versions(); len(vs) > 0 {
		b = append(b, `,"versions":[`...)
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, `,"platform":`...)
	b = appendString(b, ep.Platform())
	b = append(b, `,"inputs":[`...)
	features := ep.Features()
	for j := range features {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, features[j].Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, inputDatatype(sig, &features[j])...)
		b = append(b, `","shape":[-1]}`...)
	}
	b = append(b, `],"outputs":[`...)
	for i, o := range sig.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, o.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, datatypeOf(o.Type)...)
		b = append(b, `","shape":[-1]}`...)
	}
	writeBody(w, http.StatusOK, append(b, "]}\n"...))
}

// Infer serves POST /v2/models/{model}[/versions/{version}]/infer.
func (s *Server) Infer(w http.ResponseWriter, r *http.Request) {
	c := s.get()
	defer s.put(c)
	if err := s.infer1(c, w, r); err != nil {
		s.oipError(w, r, err)
	}
}

func (s *Server) infer1(c *call, w http.ResponseWriter, r *http.Request) error {
	if headerValue(r.Header, "Inference-Header-Content-Length") != "" {
		return errs.Invalid("the binary tensor data extension is not supported; send tensors as JSON")
	}
	ep, err := s.endpoint(r, r.PathValue("model"), r.PathValue("version"))
	if err != nil {
		return err
	}
	if !ep.Ready() {
		return notReady(ep)
	}
	if err := s.readBody(c, r); err != nil {
		return err
	}
	if err := decodeOIP(&c.sc, &c.oip, c.body); err != nil {
		return err
	}
	sig := ep.Signature()
	// Requested outputs, as indexes into sig.Outputs.
	var sel [8]int
	outs := sel[:0]
	for _, name := range c.oip.outputs {
		i := -1
		for k := range sig.Outputs {
			if sig.Outputs[k].Name == string(name) {
				i = k
				break
			}
		}
		if i < 0 {
			names := make([]string, len(sig.Outputs))
			for k, o := range sig.Outputs {
				names[k] = o.Name
			}
			return errs.Invalid("output %q: the model has no such output (its outputs are %s)", name, quoteList(names))
		}
		outs = append(outs, i)
	}
	if len(c.oip.outputs) == 0 {
		for k := range sig.Outputs {
			outs = append(outs, k)
		}
	}
	for k := range c.oip.inputs {
		if t := &c.oip.inputs[k]; t.params != nil && jsonHasKey(t.params, "binary_data_size") {
			return errs.Invalid("input %q: the binary tensor data extension is not supported; send tensors as JSON", t.name)
		}
	}
	if err := s.oipMatrix(c, sig, ep.Features()); err != nil {
		return err
	}
	c.req.Protocol = ProtocolOIP
	if c.oip.hasID {
		c.req.ID = string(c.oip.id)
	}
	if c.req.Parameters, err = parameters(c.oip.params, "parameters"); err != nil {
		return err
	}
	nout := len(sig.Outputs)
	if err := s.infer(r, ep, c, nout); err != nil {
		return err
	}
	// Encode the response.
	b := append(c.out[:0], `{"model_name":`...)
	b = appendString(b, ep.Name())
	if v := c.version(ep); v != "" {
		b = append(b, `,"model_version":`...)
		b = appendString(b, v)
	}
	if c.oip.hasID {
		b = append(b, `,"id":`...)
		b = appendString(b, c.req.ID)
	}
	if c.res.Parameters != nil {
		p, err := json.Marshal(c.res.Parameters)
		if err != nil {
			return errs.Wrap(err, "internal error")
		}
		b = append(b, `,"parameters":`...)
		b = append(b, p...)
	}
	b = append(b, `,"outputs":[`...)
	rows := c.req.Rows
	for n, k := range outs {
		if n > 0 {
			b = append(b, ',')
		}
		col := sig.Outputs[k]
		b = append(b, `{"name":`...)
		b = appendString(b, col.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, datatypeOf(col.Type)...)
		b = append(b, `","shape":[`...)
		b = strconv.AppendInt(b, int64(rows), 10)
		b = append(b, `],"data":[`...)
		for r := 0; r < rows; r++ {
			if r > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, c.res.Outputs[r*nout+k], col.Type)
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}\n"...)
	c.out = b
	writeBody(w, http.StatusOK, b)
	return nil
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// jsonHasKey reports whether the JSON object raw has key.
func jsonHasKey(raw []byte, key string) bool {
	var sc scanner
	sc.reset(raw)
	found := false
	sc.object(func(k []byte) {
		if string(k) == key {
			found = true
		}
		sc.skip()
	})
	return found
}
