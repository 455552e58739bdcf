package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file decodes the parts of onnx.proto (and onnx-ml.proto's type
// extensions) that inference needs, straight from the wire format. Field
// numbers are those of onnx/onnx.proto; unknown fields are skipped, as
// protobuf readers do, so that newer files still load.

// Bounds that keep a damaged or hostile file from making the loader
// allocate without limit.
const (
	maxNodes    = 1 << 20
	maxElements = 1 << 28 // elements in one tensor
	maxRank     = 16
)

// ONNX TensorProto.DataType values.
const (
	dtUndefined = 0
	dtFloat     = 1
	dtUint8     = 2
	dtInt8      = 3
	dtUint16    = 4
	dtInt16     = 5
	dtInt32     = 6
	dtInt64     = 7
	dtString    = 8
	dtBool      = 9
	dtFloat16   = 10
	dtDouble    = 11
	dtUint32    = 12
	dtUint64    = 13
)

var dataTypeNames = map[int32]string{
	0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
	8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
	15: "COMPLEX128", 16: "BFLOAT16",
}

func dataTypeName(t int32) string {
	if n, ok := dataTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("data type %d", t)
}

// AttributeProto.AttributeType values.
const (
	atUndefined = 0
	atFloat     = 1
	atInt       = 2
	atString    = 3
	atTensor    = 4
	atGraph     = 5
	atFloats    = 6
	atInts      = 7
	atStrings   = 8
	atTensors   = 9
	atGraphs    = 10
)

var attrTypeNames = map[int32]string{
	0: "UNDEFINED", 1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS", 7: "INTS",
	8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS", 13: "TYPE_PROTO", 14: "TYPE_PROTOS",
}

func attrTypeName(t int32) string {
	if n, ok := attrTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("attribute type %d", t)
}

type modelProto struct {
	irVersion       int64
	opsets          []opsetID
	producerName    string
	producerVersion string
	graph           *graphProto
	metadata        map[string]string
	functions       int
}

type opsetID struct {
	domain  string
	version int64
}

type graphProto struct {
	name         string
	nodes        []*nodeProto
	initializers []*tensorProto
	sparseInits  int
	inputs       []*valueInfo
	outputs      []*valueInfo
}

type nodeProto struct {
	inputs, outputs      []string
	name, opType, domain string
	attrs                []*attribute
}

type attribute struct {
	name    string
	typ     int32
	f       float32
	i       int64
	s       []byte
	t       *tensorProto
	floats  []float32
	ints    []int64
	strings [][]byte
	refAttr string
	// present records which value fields the message carried, by field
	// number, to infer the type of files older than IR version 2.
	present uint32
}

type tensorProto struct {
	name       string
	dims       []int64
	dataType   int32
	floatData  []float32
	int32Data  []int32
	stringData [][]byte
	int64Data  []int64
	doubleData []float64
	uint64Data []uint64
	raw        []byte
	hasRaw     bool
	external   bool
	segment    bool
}

// valueInfo is a ValueInfoProto: a name and, for tensors, an element type
// and a shape.
type valueInfo struct {
	name     string
	kind     string // "tensor", "sequence", "map", "optional", "sparse_tensor" or "" when absent
	elemType int32
	hasShape bool
	dims     []dimension
}

type dimension struct {
	value int64
	param string
	known bool
}

// field is one decoded protobuf field.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

var errTruncated = errors.New("truncated or malformed protobuf")

// fields calls fn for each field of the message b.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w (%v)", errTruncated, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w (%v)", num, errTruncated, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func wireErr(what string, f field) error {
	return fmt.Errorf("%s (field %d): unexpected wire type %d", what, f.num, f.typ)
}

func (f field) str(what string) (string, error) {
	if f.typ != protowire.BytesType {
		return "", wireErr(what, f)
	}
	return string(f.b), nil
}

func (f field) bytes(what string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, wireErr(what, f)
	}
	return append([]byte(nil), f.b...), nil
}

func (f field) int(what string) (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, wireErr(what, f)
	}
	return int64(f.v), nil
}

func (f field) message(what string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, wireErr(what, f)
	}
	return f.b, nil
}

// appendInts appends a repeated varint field, packed or not.
func appendInts(dst []int64, f field, what string) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%s: %w", what, errTruncated)
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, wireErr(what, f)
}

// appendFloats appends a repeated float field, packed or not.
func appendFloats(dst []float32, f field, what string) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.v))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("%s: packed floats of %d bytes", what, len(f.b))
		}
		for i := 0; i < len(f.b); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(f.b[i:])))
		}
		return dst, nil
	}
	return nil, wireErr(what, f)
}

// appendDoubles appends a repeated double field, packed or not.
func appendDoubles(dst []float64, f field, what string) ([]float64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, math.Float64frombits(f.v)), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return nil, fmt.Errorf("%s: packed doubles of %d bytes", what, len(f.b))
		}
		for i := 0; i < len(f.b); i += 8 {
			dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(f.b[i:])))
		}
		return dst, nil
	}
	return nil, wireErr(what, f)
}

func parseModel(b []byte) (*modelProto, error) {
	m := &modelProto{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			m.irVersion, err = f.int("ModelProto.ir_version")
		case 2:
			m.producerName, err = f.str("ModelProto.producer_name")
		case 3:
			m.producerVersion, err = f.str("ModelProto.producer_version")
		case 7:
			var mb []byte
			if mb, err = f.message("ModelProto.graph"); err != nil {
				return err
			}
			if m.graph != nil {
				return errors.New("ModelProto: more than one graph")
			}
			m.graph, err = parseGraph(mb)
		case 8:
			var mb []byte
			if mb, err = f.message("ModelProto.opset_import"); err != nil {
				return err
			}
			var o opsetID
			o, err = parseOpset(mb)
			m.opsets = append(m.opsets, o)
		case 14:
			var mb []byte
			if mb, err = f.message("ModelProto.metadata_props"); err != nil {
				return err
			}
			var k, v string
			if k, v, err = parseStringEntry(mb); err != nil {
				return err
			}
			if m.metadata == nil {
				m.metadata = map[string]string{}
			}
			m.metadata[k] = v
		case 25:
			m.functions++
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parseOpset(b []byte) (opsetID, error) {
	var o opsetID
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			o.domain, err = f.str("OperatorSetIdProto.domain")
		case 2:
			o.version, err = f.int("OperatorSetIdProto.version")
		}
		return err
	})
	return o, err
}

func parseStringEntry(b []byte) (string, string, error) {
	var k, v string
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			k, err = f.str("StringStringEntryProto.key")
		case 2:
			v, err = f.str("StringStringEntryProto.value")
		}
		return err
	})
	return k, v, err
}

func parseGraph(b []byte) (*graphProto, error) {
	g := &graphProto{}
	err := fields(b, func(f field) error {
		var err error
		var mb []byte
		switch f.num {
		case 1:
			if mb, err = f.message("GraphProto.node"); err != nil {
				return err
			}
			if len(g.nodes) >= maxNodes {
				return fmt.Errorf("GraphProto: more than %d nodes", maxNodes)
			}
			var n *nodeProto
			if n, err = parseNode(mb); err != nil {
				return fmt.Errorf("node %d: %w", len(g.nodes), err)
			}
			g.nodes = append(g.nodes, n)
		case 2:
			g.name, err = f.str("GraphProto.name")
		case 5:
			if mb, err = f.message("GraphProto.initializer"); err != nil {
				return err
			}
			var t *tensorProto
			if t, err = parseTensor(mb); err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.initializers), err)
			}
			g.initializers = append(g.initializers, t)
		case 15:
			g.sparseInits++
		case 11, 12:
			if mb, err = f.message("GraphProto.input/output"); err != nil {
				return err
			}
			var v *valueInfo
			if v, err = parseValueInfo(mb); err != nil {
				return err
			}
			if f.num == 11 {
				g.inputs = append(g.inputs, v)
			} else {
				g.outputs = append(g.outputs, v)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func parseNode(b []byte) (*nodeProto, error) {
	n := &nodeProto{}
	err := fields(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case 1:
			s, err = f.str("NodeProto.input")
			n.inputs = append(n.inputs, s)
		case 2:
			s, err = f.str("NodeProto.output")
			n.outputs = append(n.outputs, s)
		case 3:
			n.name, err = f.str("NodeProto.name")
		case 4:
			n.opType, err = f.str("NodeProto.op_type")
		case 7:
			n.domain, err = f.str("NodeProto.domain")
		case 5:
			var mb []byte
			if mb, err = f.message("NodeProto.attribute"); err != nil {
				return err
			}
			var a *attribute
			if a, err = parseAttribute(mb); err != nil {
				return fmt.Errorf("attribute %d: %w", len(n.attrs), err)
			}
			n.attrs = append(n.attrs, a)
		}
		return err
	})
	return n, err
}

func parseAttribute(b []byte) (*attribute, error) {
	a := &attribute{}
	err := fields(b, func(f field) error {
		var err error
		if f.num < 32 {
			a.present |= 1 << uint(f.num)
		}
		switch f.num {
		case 1:
			a.name, err = f.str("AttributeProto.name")
		case 20:
			var v int64
			v, err = f.int("AttributeProto.type")
			a.typ = int32(v)
		case 21:
			a.refAttr, err = f.str("AttributeProto.ref_attr_name")
		case 2:
			if f.typ != protowire.Fixed32Type {
				return wireErr("AttributeProto.f", f)
			}
			a.f = math.Float32frombits(uint32(f.v))
		case 3:
			a.i, err = f.int("AttributeProto.i")
		case 4:
			a.s, err = f.bytes("AttributeProto.s")
		case 5:
			var mb []byte
			if mb, err = f.message("AttributeProto.t"); err != nil {
				return err
			}
			a.t, err = parseTensor(mb)
		case 7:
			a.floats, err = appendFloats(a.floats, f, "AttributeProto.floats")
		case 8:
			a.ints, err = appendInts(a.ints, f, "AttributeProto.ints")
		case 9:
			var s []byte
			s, err = f.bytes("AttributeProto.strings")
			a.strings = append(a.strings, s)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if a.typ == atUndefined {
		// IR version 1 files carry no type: infer it from the field set.
		for _, c := range []struct {
			num int
			typ int32
		}{{2, atFloat}, {3, atInt}, {4, atString}, {5, atTensor}, {6, atGraph}, {7, atFloats}, {8, atInts}, {9, atStrings}, {10, atTensors}, {11, atGraphs}} {
			if a.present&(1<<uint(c.num)) != 0 {
				a.typ = c.typ
				break
			}
		}
	}
	return a, nil
}

func parseTensor(b []byte) (*tensorProto, error) {
	t := &tensorProto{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			if t.dims, err = appendInts(t.dims, f, "TensorProto.dims"); err == nil && len(t.dims) > maxRank {
				err = fmt.Errorf("TensorProto.dims: more than %d dimensions", maxRank)
			}
		case 2:
			var v int64
			v, err = f.int("TensorProto.data_type")
			t.dataType = int32(v)
		case 3:
			t.segment = true
		case 4:
			t.floatData, err = appendFloats(t.floatData, f, "TensorProto.float_data")
		case 5:
			var v []int64
			if v, err = appendInts(nil, f, "TensorProto.int32_data"); err == nil {
				for _, x := range v {
					t.int32Data = append(t.int32Data, int32(x))
				}
			}
		case 6:
			var s []byte
			s, err = f.bytes("TensorProto.string_data")
			t.stringData = append(t.stringData, s)
		case 7:
			t.int64Data, err = appendInts(t.int64Data, f, "TensorProto.int64_data")
		case 8:
			t.name, err = f.str("TensorProto.name")
		case 9:
			t.raw, err = f.bytes("TensorProto.raw_data")
			t.hasRaw = true
		case 10:
			t.doubleData, err = appendDoubles(t.doubleData, f, "TensorProto.double_data")
		case 11:
			var v []int64
			if v, err = appendInts(nil, f, "TensorProto.uint64_data"); err == nil {
				for _, x := range v {
					t.uint64Data = append(t.uint64Data, uint64(x))
				}
			}
		case 13:
			t.external = true
		case 14:
			var v int64
			v, err = f.int("TensorProto.data_location")
			if v == 1 {
				t.external = true
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func parseValueInfo(b []byte) (*valueInfo, error) {
	v := &valueInfo{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			v.name, err = f.str("ValueInfoProto.name")
		case 2:
			var mb []byte
			if mb, err = f.message("ValueInfoProto.type"); err != nil {
				return err
			}
			err = parseType(mb, v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("value %q: %w", v.name, err)
	}
	return v, nil
}

// parseType reads a TypeProto: tensor_type (1) in full; of the others
// (sequence_type 4, map_type 5, sparse_tensor_type 8, optional_type 9)
// only which one it is.
func parseType(b []byte, v *valueInfo) error {
	return fields(b, func(f field) error {
		switch f.num {
		case 1:
			mb, err := f.message("TypeProto.tensor_type")
			if err != nil {
				return err
			}
			v.kind = "tensor"
			return parseTensorType(mb, v)
		case 4:
			v.kind = "sequence"
		case 5:
			v.kind = "map"
		case 8:
			v.kind = "sparse_tensor"
		case 9:
			v.kind = "optional"
		}
		return nil
	})
}

func parseTensorType(b []byte, v *valueInfo) error {
	return fields(b, func(f field) error {
		switch f.num {
		case 1:
			e, err := f.int("TypeProto.Tensor.elem_type")
			v.elemType = int32(e)
			return err
		case 2:
			mb, err := f.message("TypeProto.Tensor.shape")
			if err != nil {
				return err
			}
			v.hasShape = true
			return fields(mb, func(f field) error {
				if f.num != 1 {
					return nil
				}
				db, err := f.message("TensorShapeProto.dim")
				if err != nil {
					return err
				}
				if len(v.dims) >= maxRank {
					return fmt.Errorf("shape: more than %d dimensions", maxRank)
				}
				var d dimension
				err = fields(db, func(f field) error {
					var err error
					switch f.num {
					case 1:
						d.value, err = f.int("Dimension.dim_value")
						d.known = true
					case 2:
						d.param, err = f.str("Dimension.dim_param")
					}
					return err
				})
				v.dims = append(v.dims, d)
				return err
			})
		}
		return nil
	})
}
