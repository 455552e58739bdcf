package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// kind is how a tensor holds its elements: float tensors (ONNX float and
// double) in f as float32, integer tensors (int64, int32) in i, and
// class-label tensors of a classifier with string labels in i as indexes
// into labels.
type kind uint8

const (
	kFloat kind = iota
	kInt
	kLabel
)

func (k kind) String() string {
	switch k {
	case kFloat:
		return "float"
	case kInt:
		return "int64"
	}
	return "string"
}

// tensor is a dense row-major tensor.
type tensor struct {
	k      kind
	shape  []int
	f      []float32
	i      []int64
	labels []string
}

func (t *tensor) size() int { return len(t.f) + len(t.i) }

// elements is the product of dims, or an error when it exceeds
// maxElements or a dim is negative.
func elements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension", slices.Clone(shape))
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v: more than %d elements", slices.Clone(shape), maxElements)
		}
		n *= d
	}
	return n, nil
}

// set makes t a tensor of kind k and the given shape, reusing its buffers;
// the elements are not cleared.
func (t *tensor) set(k kind, shape []int) error {
	n, err := elements(shape)
	if err != nil {
		return err
	}
	t.k = k
	t.labels = nil
	t.shape = append(t.shape[:0], shape...)
	if k == kFloat {
		if cap(t.f) < n {
			t.f = make([]float32, n)
		}
		t.f, t.i = t.f[:n], t.i[:0]
	} else {
		if cap(t.i) < n {
			t.i = make([]int64, n)
		}
		t.i, t.f = t.i[:n], t.f[:0]
	}
	return nil
}

// set2 is set for a matrix, without building a shape slice.
func (t *tensor) set2(k kind, rows, cols int) error {
	var s [2]int
	s[0], s[1] = rows, cols
	return t.set(k, s[:])
}

// copyFrom makes t a copy of u.
func (t *tensor) copyFrom(u *tensor) error {
	if err := t.set(u.k, u.shape); err != nil {
		return err
	}
	copy(t.f, u.f)
	copy(t.i, u.i)
	t.labels = u.labels
	return nil
}

// matrix views t as rows x cols, a 1-D tensor as one row.
func (t *tensor) matrix() (rows, cols int, err error) {
	switch len(t.shape) {
	case 1:
		return 1, t.shape[0], nil
	case 2:
		return t.shape[0], t.shape[1], nil
	}
	return 0, 0, fmt.Errorf("input of shape %v: must be a matrix [N, C] or a vector [C]", t.shape)
}

// floatAt reads element i of a float or integer tensor as float64.
func (t *tensor) floatAt(i int) float64 {
	if t.k == kFloat {
		return float64(t.f[i])
	}
	return float64(t.i[i])
}

// errType is a tensor of the wrong kind for an operator.
func errType(what string, t *tensor, want string) error {
	return fmt.Errorf("%s is a %s tensor; the operator takes %s", what, t.k, want)
}

func needFloat(what string, t *tensor) error {
	if t.k != kFloat {
		return errType(what, t, "float or double")
	}
	return nil
}

func needNumeric(what string, t *tensor) error {
	if t.k == kLabel {
		return errType(what, t, "numbers")
	}
	return nil
}

// fromProto decodes an initializer or Constant value.
func fromProto(p *tensorProto) (*tensor, error) {
	if p.external {
		return nil, errors.New("data in an external file is not supported (save the model with its weights inside: onnx.save(model, path, save_as_external_data=False))")
	}
	if p.segment {
		return nil, errors.New("segmented tensors are not supported")
	}
	shape := make([]int, len(p.dims))
	for i, d := range p.dims {
		if d < 0 || d > maxElements {
			return nil, fmt.Errorf("dims %v: dimension %d out of range", p.dims, d)
		}
		shape[i] = int(d)
	}
	n, err := elements(shape)
	if err != nil {
		return nil, err
	}
	t := &tensor{shape: shape}
	count := func(have int) error {
		if have != n {
			return fmt.Errorf("%s tensor of shape %v holds %d values, not %d", dataTypeName(p.dataType), shape, have, n)
		}
		return nil
	}
	rawCount := func(width int) error {
		if len(p.raw)%width != 0 {
			return fmt.Errorf("%s tensor: raw_data of %d bytes is not a whole number of %d-byte values", dataTypeName(p.dataType), len(p.raw), width)
		}
		return count(len(p.raw) / width)
	}
	switch p.dataType {
	case dtFloat, dtDouble, dtFloat16:
		t.k = kFloat
		t.f = make([]float32, 0, n)
		switch {
		case p.hasRaw && p.dataType == dtFloat:
			if err := rawCount(4); err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				t.f = append(t.f, math.Float32frombits(binary.LittleEndian.Uint32(p.raw[4*i:])))
			}
		case p.hasRaw && p.dataType == dtDouble:
			if err := rawCount(8); err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				t.f = append(t.f, float32(math.Float64frombits(binary.LittleEndian.Uint64(p.raw[8*i:]))))
			}
		case p.hasRaw:
			if err := rawCount(2); err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				t.f = append(t.f, half(binary.LittleEndian.Uint16(p.raw[2*i:])))
			}
		case p.dataType == dtFloat:
			if err := count(len(p.floatData)); err != nil {
				return nil, err
			}
			t.f = append(t.f, p.floatData...)
		case p.dataType == dtDouble:
			if err := count(len(p.doubleData)); err != nil {
				return nil, err
			}
			for _, v := range p.doubleData {
				t.f = append(t.f, float32(v))
			}
		default:
			if err := count(len(p.int32Data)); err != nil {
				return nil, err
			}
			for _, v := range p.int32Data {
				t.f = append(t.f, half(uint16(v)))
			}
		}
	case dtInt64, dtInt32, dtInt16, dtInt8, dtUint8, dtUint16, dtUint32, dtBool:
		t.k = kInt
		t.i = make([]int64, 0, n)
		if p.hasRaw {
			width := map[int32]int{dtInt64: 8, dtInt32: 4, dtUint32: 4, dtInt16: 2, dtUint16: 2, dtInt8: 1, dtUint8: 1, dtBool: 1}[p.dataType]
			if err := rawCount(width); err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				b := p.raw[width*i:]
				var v int64
				switch p.dataType {
				case dtInt64:
					v = int64(binary.LittleEndian.Uint64(b))
				case dtInt32:
					v = int64(int32(binary.LittleEndian.Uint32(b)))
				case dtUint32:
					v = int64(binary.LittleEndian.Uint32(b))
				case dtInt16:
					v = int64(int16(binary.LittleEndian.Uint16(b)))
				case dtUint16:
					v = int64(binary.LittleEndian.Uint16(b))
				case dtInt8:
					v = int64(int8(b[0]))
				default:
					v = int64(b[0])
				}
				t.i = append(t.i, v)
			}
		} else if p.dataType == dtInt64 {
			if err := count(len(p.int64Data)); err != nil {
				return nil, err
			}
			t.i = append(t.i, p.int64Data...)
		} else if p.dataType == dtUint32 {
			if err := count(len(p.uint64Data)); err != nil {
				return nil, err
			}
			for _, v := range p.uint64Data {
				t.i = append(t.i, int64(v))
			}
		} else {
			if err := count(len(p.int32Data)); err != nil {
				return nil, err
			}
			for _, v := range p.int32Data {
				t.i = append(t.i, int64(v))
			}
		}
	default:
		return nil, fmt.Errorf("%s tensors are not supported (supported: FLOAT, DOUBLE, FLOAT16, INT64, INT32, INT16, INT8, UINT8, UINT16, UINT32, BOOL)", dataTypeName(p.dataType))
	}
	return t, nil
}

// half converts an IEEE 754 half-precision value.
func half(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch exp {
	case 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(frac) / 1024 / 16384
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
