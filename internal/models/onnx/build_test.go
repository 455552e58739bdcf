package onnx_test

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// A minimal ONNX protobuf writer, to build test models in Go. Field
// numbers are onnx.proto's.

type msg []byte

func (m msg) str(n protowire.Number, s string) msg {
	m = protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendString(m, s)
}

func (m msg) sub(n protowire.Number, b msg) msg {
	m = protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendBytes(m, b)
}

func (m msg) varint(n protowire.Number, v int64) msg {
	m = protowire.AppendTag(m, n, protowire.VarintType)
	return protowire.AppendVarint(m, uint64(v))
}

func (m msg) f32(n protowire.Number, v float32) msg {
	m = protowire.AppendTag(m, n, protowire.Fixed32Type)
	return protowire.AppendFixed32(m, math.Float32bits(v))
}

// Tensors.

func tensorF(name string, dims []int64, vals ...float32) msg {
	var m msg
	for _, d := range dims {
		m = m.varint(1, d)
	}
	m = m.varint(2, 1).str(8, name)
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return m.sub(9, raw)
}

// tensorFTyped stores floats in float_data (packed) rather than raw_data.
func tensorFTyped(name string, dims []int64, vals ...float32) msg {
	var m msg
	for _, d := range dims {
		m = m.varint(1, d)
	}
	m = m.varint(2, 1).str(8, name)
	var packed msg
	for _, v := range vals {
		packed = protowire.AppendFixed32(packed, math.Float32bits(v))
	}
	return m.sub(4, packed)
}

func tensorI(name string, dims []int64, vals ...int64) msg {
	var m msg
	for _, d := range dims {
		m = m.varint(1, d)
	}
	m = m.varint(2, 7).str(8, name)
	for _, v := range vals {
		m = m.varint(7, v)
	}
	return m
}

// valueInfo is a tensor ValueInfoProto; a dim is an int64 or a string
// (a dim_param).
func valueInfo(name string, elem int64, dims ...any) msg {
	var shape msg
	for _, d := range dims {
		var dim msg
		switch d := d.(type) {
		case int:
			dim = dim.varint(1, int64(d))
		case string:
			dim = dim.str(2, d)
		}
		shape = shape.sub(1, dim)
	}
	tt := msg{}.varint(1, elem).sub(2, shape)
	return msg{}.str(1, name).sub(2, msg{}.sub(1, tt))
}

// Attributes.

func attrF(name string, v float32) msg { return msg{}.str(1, name).varint(20, 1).f32(2, v) }
func attrI(name string, v int64) msg   { return msg{}.str(1, name).varint(20, 2).varint(3, v) }
func attrS(name, v string) msg         { return msg{}.str(1, name).varint(20, 3).str(4, v) }
func attrT(name string, t msg) msg     { return msg{}.str(1, name).varint(20, 4).sub(5, t) }

func attrFs(name string, vs ...float32) msg {
	m := msg{}.str(1, name).varint(20, 6)
	for _, v := range vs {
		m = m.f32(7, v)
	}
	return m
}

func attrIs(name string, vs ...int64) msg {
	m := msg{}.str(1, name).varint(20, 7)
	for _, v := range vs {
		m = m.varint(8, v)
	}
	return m
}

func attrSs(name string, vs ...string) msg {
	m := msg{}.str(1, name).varint(20, 8)
	for _, v := range vs {
		m = m.str(9, v)
	}
	return m
}

// Nodes, graphs, models.

type nodeSpec struct {
	op, domain, name string
	in, out          []string
	attrs            []msg
}

func node(op string, in, out []string, attrs ...msg) nodeSpec {
	return nodeSpec{op: op, name: op + "_" + out[0], in: in, out: out, attrs: attrs}
}

func mlNode(op string, in, out []string, attrs ...msg) nodeSpec {
	n := node(op, in, out, attrs...)
	n.domain = "ai.onnx.ml"
	return n
}

func (n nodeSpec) encode() msg {
	var m msg
	for _, s := range n.in {
		m = m.str(1, s)
	}
	for _, s := range n.out {
		m = m.str(2, s)
	}
	m = m.str(3, n.name).str(4, n.op)
	if n.domain != "" {
		m = m.str(7, n.domain)
	}
	for _, a := range n.attrs {
		m = m.sub(5, a)
	}
	return m
}

type graphSpec struct {
	nodes   []nodeSpec
	inits   []msg
	inputs  []msg
	outputs []msg
	opset   int64 // ai.onnx; 13 when zero
	mlOpset int64 // ai.onnx.ml; 3 when zero
}

func (g graphSpec) encode() []byte {
	var gm msg
	for _, n := range g.nodes {
		gm = gm.sub(1, n.encode())
	}
	gm = gm.str(2, "test")
	for _, t := range g.inits {
		gm = gm.sub(5, t)
	}
	for _, v := range g.inputs {
		gm = gm.sub(11, v)
	}
	for _, v := range g.outputs {
		gm = gm.sub(12, v)
	}
	opset, ml := g.opset, g.mlOpset
	if opset == 0 {
		opset = 13
	}
	if ml == 0 {
		ml = 3
	}
	m := msg{}.varint(1, 8).str(2, "slipway-test").sub(7, gm)
	m = m.sub(8, msg{}.str(1, "").varint(2, opset))
	m = m.sub(8, msg{}.str(1, "ai.onnx.ml").varint(2, ml))
	return m
}

// simple is a graph from X [N, f] float to the listed nodes' output Y.
func simple(f int, outDims []any, nodes ...nodeSpec) graphSpec {
	return graphSpec{
		nodes:   nodes,
		inputs:  []msg{valueInfo("X", 1, append([]any{"N"}, f)...)},
		outputs: []msg{valueInfo("Y", 1, outDims...)},
	}
}
