package serving

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// A segment is the predictions one write group holds for one deployment,
// stored as one row of prediction_segments. The encoding is binary, in
// write order:
//
//	byte     format (1)
//	uvarint  count
//	count times:
//	  uvarint length, bytes   request id
//	  uvarint length, bytes   model name
//	  varint                  model version
//	  byte                    1 for a shadow's answer
//	  varint                  time (ms), latency (µs)
//	  uvarint                 rows
//	  uvarint n, n x float32  inputs (little-endian bits; NaN is missing)
//	  uvarint n, n x float32  outputs
//
// Values keep the float32 the model saw, and cost 4 bytes each instead of
// their decimal text.
const segmentFormat = 1

// appendSegment appends the segment of ps to b.
func appendSegment(b []byte, ps []*Prediction) []byte {
	size := 16
	for _, p := range ps {
		size += 48 + len(p.RequestID) + len(p.ModelName) + 4*(len(p.Inputs)+len(p.Outputs))
	}
	b = slices.Grow(b, size)
	b = append(b, segmentFormat)
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.RequestID)
		b = appendString(b, p.ModelName)
		b = binary.AppendVarint(b, p.Version)
		shadow := byte(0)
		if p.Shadow {
			shadow = 1
		}
		b = append(b, shadow)
		b = binary.AppendVarint(b, p.Time)
		b = binary.AppendVarint(b, p.LatencyUS)
		b = binary.AppendUvarint(b, uint64(p.Rows))
		b = appendFloat32s(b, p.Inputs)
		b = appendFloat32s(b, p.Outputs)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat32s(b []byte, vs []float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

var errSegment = errors.New("corrupt prediction log segment")

// segmentReader decodes a segment one prediction at a time.
type segmentReader struct {
	b   []byte
	n   int // predictions left
	err error
}

func newSegmentReader(b []byte) (*segmentReader, error) {
	if len(b) == 0 || b[0] != segmentFormat {
		return nil, fmt.Errorf("%w: unknown format", errSegment)
	}
	r := &segmentReader{b: b[1:]}
	r.n = int(r.uvarint())
	return r, r.err
}

func (r *segmentReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *segmentReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *segmentReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated", errSegment)
	}
	r.b = nil
}

func (r *segmentReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *segmentReader) floats() []float32 {
	n := r.uvarint()
	if n > uint64(len(r.b))/4 {
		r.fail()
		return nil
	}
	raw := r.bytes(4 * n)
	if raw == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// next decodes the next prediction into p; false at the end or on a
// corrupt segment (Err says which).
func (r *segmentReader) next(p *Prediction) bool {
	if r.n == 0 || r.err != nil {
		return false
	}
	r.n--
	p.RequestID = string(r.bytes(r.uvarint()))
	p.ModelName = string(r.bytes(r.uvarint()))
	p.Version = r.varint()
	if shadow := r.bytes(1); shadow != nil {
		p.Shadow = shadow[0] == 1
	}
	p.Time = r.varint()
	p.LatencyUS = r.varint()
	p.Rows = int(r.uvarint())
	p.Inputs = r.floats()
	p.Outputs = r.floats()
	return r.err == nil
}
