package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// operator is one compiled node. run reads in (nil for an omitted optional
// input) and writes out; it must not modify its inputs, which may be the
// model's constants.
type operator interface {
	run(a *arena, in, out []*tensor) error
}

// attrs are a node's attributes by name; their types were checked against
// the operator's spec before the operator was built.
type attrs map[string]*attribute

func (a attrs) has(name string) bool { return a[name] != nil }

func (a attrs) int(name string, def int64) int64 {
	if v := a[name]; v != nil {
		return v.i
	}
	return def
}

func (a attrs) float(name string, def float32) float32 {
	if v := a[name]; v != nil {
		return v.f
	}
	return def
}

func (a attrs) str(name, def string) string {
	if v := a[name]; v != nil {
		return string(v.s)
	}
	return def
}

func (a attrs) ints(name string) []int64 {
	if v := a[name]; v != nil {
		return v.ints
	}
	return nil
}

func (a attrs) floats(name string) []float32 {
	if v := a[name]; v != nil {
		return v.floats
	}
	return nil
}

func (a attrs) strs(name string) []string {
	v := a[name]
	if v == nil {
		return nil
	}
	out := make([]string, len(v.strings))
	for i, s := range v.strings {
		out[i] = string(s)
	}
	return out
}

// doubles reads a FLOATS attribute, or its TENSOR twin name+"_as_tensor"
// (ai.onnx.ml opset 3), as float64.
func (a attrs) doubles(name string) ([]float64, error) {
	if t := a[name+"_as_tensor"]; t != nil {
		if a.has(name) {
			return nil, fmt.Errorf("attributes %s and %s_as_tensor: give one, not both", name, name)
		}
		p := t.t
		if p == nil {
			return nil, fmt.Errorf("attribute %s_as_tensor: no tensor", name)
		}
		switch {
		case p.dataType == dtDouble && p.hasRaw:
			if len(p.raw)%8 != 0 {
				return nil, fmt.Errorf("attribute %s_as_tensor: raw_data of %d bytes", name, len(p.raw))
			}
			out := make([]float64, len(p.raw)/8)
			for i := range out {
				out[i] = math.Float64frombits(leUint64(p.raw[8*i:]))
			}
			return out, nil
		case p.dataType == dtDouble:
			return p.doubleData, nil
		}
		v, err := fromProto(p)
		if err != nil {
			return nil, fmt.Errorf("attribute %s_as_tensor: %w", name, err)
		}
		out := make([]float64, v.size())
		for i := range out {
			out[i] = v.floatAt(i)
		}
		return out, nil
	}
	f := a.floats(name)
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

func leUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// normAxis resolves a possibly negative axis against rank r, allowing
// -r..r-1 (or -r..r when end is set).
func normAxis(axis int64, r int, end bool) (int, error) {
	hi := int64(r)
	if !end {
		hi--
	}
	if axis < -int64(r) || axis > hi {
		return 0, fmt.Errorf("axis %d is out of range for a tensor of rank %d", axis, r)
	}
	if axis < 0 {
		axis += int64(r)
	}
	return int(axis), nil
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// ---- elementwise ----

type unary uint8

const (
	opRelu unary = iota
	opSigmoid
	opTanh
)

func (u unary) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	if err := needFloat("input", x); err != nil {
		return err
	}
	if err := out[0].set(kFloat, x.shape); err != nil {
		return err
	}
	y := out[0].f
	switch u {
	case opRelu:
		for i, v := range x.f {
			if v < 0 {
				v = 0
			}
			y[i] = v
		}
	case opSigmoid:
		for i, v := range x.f {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case opTanh:
		for i, v := range x.f {
			y[i] = float32(math.Tanh(float64(v)))
		}
	}
	return nil
}

type binop uint8

const (
	opAdd binop = iota
	opSub
	opMul
	opDiv
)

var binaryNames = [...]string{"Add", "Sub", "Mul", "Div"}

// broadcastShape is the multidirectional (numpy) broadcast of a and b,
// written into dst.
func broadcastShape(dst *[maxRank]int, a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	if r > maxRank {
		return nil, fmt.Errorf("rank %d exceeds %d", r, maxRank)
	}
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			dst[i] = da
		case da == 1:
			dst[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", slices.Clone(a), slices.Clone(b))
		}
	}
	return dst[:r], nil
}

// bstrides are the strides of in within the broadcast shape out: 0 along
// dimensions in repeats.
func bstrides(dst *[maxRank]int, in, out []int) {
	stride := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(in) - len(out) + i
		if j < 0 || in[j] == 1 {
			dst[i] = 0
		} else {
			dst[i] = stride
		}
		if j >= 0 {
			stride *= in[j]
		}
	}
}

// broadcastOffsets calls fn with the offsets in x and y of each element of
// the broadcast shape, in row-major order.
func broadcastOffsets(shape []int, sx, sy *[maxRank]int, fn func(o, ix, iy int)) {
	n := prod(shape)
	var idx [maxRank]int
	r := len(shape)
	ix, iy := 0, 0
	for o := 0; o < n; o++ {
		fn(o, ix, iy)
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			ix += sx[d]
			iy += sy[d]
			if idx[d] < shape[d] {
				break
			}
			ix -= sx[d] * shape[d]
			iy -= sy[d] * shape[d]
			idx[d] = 0
		}
	}
}

func (b binop) run(a *arena, in, out []*tensor) error {
	x, y := in[0], in[1]
	if err := needNumeric("input A", x); err != nil {
		return err
	}
	if x.k != y.k {
		return fmt.Errorf("%s of a %s and a %s tensor: the inputs must have one type", binaryNames[b], x.k, y.k)
	}
	var sbuf [maxRank]int
	shape, err := broadcastShape(&sbuf, x.shape, y.shape)
	if err != nil {
		return err
	}
	z := out[0]
	if err := z.set(x.k, shape); err != nil {
		return err
	}
	var sx, sy [maxRank]int
	bstrides(&sx, x.shape, shape)
	bstrides(&sy, y.shape, shape)
	if x.k == kFloat {
		xf, yf, zf := x.f, y.f, z.f
		if len(xf) == len(zf) && len(yf) == len(zf) {
			switch b {
			case opAdd:
				for i := range zf {
					zf[i] = xf[i] + yf[i]
				}
			case opSub:
				for i := range zf {
					zf[i] = xf[i] - yf[i]
				}
			case opMul:
				for i := range zf {
					zf[i] = xf[i] * yf[i]
				}
			case opDiv:
				for i := range zf {
					zf[i] = xf[i] / yf[i]
				}
			}
			return nil
		}
		broadcastOffsets(shape, &sx, &sy, func(o, ix, iy int) {
			switch b {
			case opAdd:
				zf[o] = xf[ix] + yf[iy]
			case opSub:
				zf[o] = xf[ix] - yf[iy]
			case opMul:
				zf[o] = xf[ix] * yf[iy]
			case opDiv:
				zf[o] = xf[ix] / yf[iy]
			}
		})
		return nil
	}
	xi, yi, zi := x.i, y.i, z.i
	divZero := false
	broadcastOffsets(shape, &sx, &sy, func(o, ix, iy int) {
		switch b {
		case opAdd:
			zi[o] = xi[ix] + yi[iy]
		case opSub:
			zi[o] = xi[ix] - yi[iy]
		case opMul:
			zi[o] = xi[ix] * yi[iy]
		case opDiv:
			if yi[iy] == 0 {
				divZero = true
				zi[o] = 0
				return
			}
			zi[o] = xi[ix] / yi[iy]
		}
	})
	if divZero && !a.probe {
		return errors.New("integer division by zero")
	}
	return nil
}

// ---- linear algebra ----

type gemm struct {
	alpha, beta    float32
	transA, transB bool
}

func (g gemm) run(_ *arena, in, out []*tensor) error {
	A, B := in[0], in[1]
	var C *tensor
	if len(in) > 2 {
		C = in[2]
	}
	if err := needFloat("input A", A); err != nil {
		return err
	}
	if err := needFloat("input B", B); err != nil {
		return err
	}
	if len(A.shape) != 2 || len(B.shape) != 2 {
		return fmt.Errorf("inputs of shapes %v and %v: A and B must be matrices", A.shape, B.shape)
	}
	m, k := A.shape[0], A.shape[1]
	sam, sak := k, 1
	if g.transA {
		m, k = k, m
		sam, sak = 1, m
	}
	k2, n := B.shape[0], B.shape[1]
	sbk, sbn := n, 1
	if g.transB {
		k2, n = n, k2
		sbk, sbn = 1, k2
	}
	if k != k2 {
		return fmt.Errorf("input A of shape %v and B of shape %v (transA=%v, transB=%v): inner dimensions %d and %d differ", A.shape, B.shape, g.transA, g.transB, k, k2)
	}
	Y := out[0]
	if err := Y.set2(kFloat, m, n); err != nil {
		return err
	}
	var sc [maxRank]int
	cs := 0
	if C != nil {
		if err := needFloat("input C", C); err != nil {
			return err
		}
		var tmp [maxRank]int
		want := [2]int{m, n}
		if len(C.shape) > 2 {
			return fmt.Errorf("input C of shape %v does not broadcast to [%d %d]", C.shape, m, n)
		}
		bs, err := broadcastShape(&tmp, want[:], C.shape)
		if err != nil || bs[0] != m || bs[1] != n {
			return fmt.Errorf("input C of shape %v does not broadcast to [%d %d]", C.shape, m, n)
		}
		bstrides(&sc, C.shape, want[:])
		cs = 1
	}
	alpha, beta := float64(g.alpha), float64(g.beta)
	af, bf := A.f, B.f
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum float64
			ai, bj := i*sam, j*sbn
			for p := 0; p < k; p++ {
				sum += float64(af[ai+p*sak]) * float64(bf[bj+p*sbk])
			}
			v := alpha * sum
			if cs != 0 {
				v += beta * float64(C.f[i*sc[0]+j*sc[1]])
			}
			Y.f[i*n+j] = float32(v)
		}
	}
	return nil
}

type matmul struct{}

func (matmul) run(_ *arena, in, out []*tensor) error {
	A, B := in[0], in[1]
	if err := needFloat("input A", A); err != nil {
		return err
	}
	if err := needFloat("input B", B); err != nil {
		return err
	}
	ra, rb := len(A.shape), len(B.shape)
	if ra == 0 || rb == 0 {
		return errors.New("MatMul of a scalar")
	}
	// Promote vectors as numpy.matmul does.
	var as, bs [maxRank + 1]int
	ash := as[:0]
	if ra == 1 {
		ash = append(ash, 1)
	}
	ash = append(ash, A.shape...)
	bsh := bs[:0]
	bsh = append(bsh, B.shape...)
	if rb == 1 {
		bsh = append(bsh, 1)
	}
	m, k := ash[len(ash)-2], ash[len(ash)-1]
	k2, n := bsh[len(bsh)-2], bsh[len(bsh)-1]
	if k != k2 {
		return fmt.Errorf("shapes %v and %v: inner dimensions %d and %d differ", A.shape, B.shape, k, k2)
	}
	batchA, batchB := ash[:len(ash)-2], bsh[:len(bsh)-2]
	var os [maxRank]int
	batch, err := broadcastShape(&os, batchA, batchB)
	if err != nil {
		return fmt.Errorf("shapes %v and %v: %w", A.shape, B.shape, err)
	}
	var oshape [maxRank + 2]int
	osh := append(oshape[:0], batch...)
	if ra != 1 {
		osh = append(osh, m)
	}
	if rb != 1 {
		osh = append(osh, n)
	}
	Y := out[0]
	if err := Y.set(kFloat, osh); err != nil {
		return err
	}
	var sa, sb [maxRank]int
	bstrides(&sa, batchA, batch)
	bstrides(&sb, batchB, batch)
	mk, kn, mn := m*k, k*n, m*n
	broadcastOffsets(batch, &sa, &sb, func(o, ia, ib int) {
		a := A.f[ia*mk : (ia+1)*mk]
		b := B.f[ib*kn : (ib+1)*kn]
		y := Y.f[o*mn : (o+1)*mn]
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var sum float64
				for p := 0; p < k; p++ {
					sum += float64(a[i*k+p]) * float64(b[p*n+j])
				}
				y[i*n+j] = float32(sum)
			}
		}
	})
	return nil
}

// ---- shape ----

type softmax struct {
	axis int64
	// legacy is opset < 13: the input is coerced to a matrix at axis and
	// softmax runs over its rows.
	legacy bool
}

func (s softmax) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	if err := needFloat("input", x); err != nil {
		return err
	}
	r := len(x.shape)
	ax, err := normAxis(s.axis, r, false)
	if err != nil {
		return err
	}
	if err := out[0].set(kFloat, x.shape); err != nil {
		return err
	}
	y := out[0].f
	outer := prod(x.shape[:ax])
	dim, inner := x.shape[ax], prod(x.shape[ax+1:])
	if s.legacy {
		dim, inner = prod(x.shape[ax:]), 1
	}
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*dim*inner + in
			top := math.Inf(-1)
			for d := 0; d < dim; d++ {
				top = math.Max(top, float64(x.f[base+d*inner]))
			}
			var sum float64
			for d := 0; d < dim; d++ {
				sum += math.Exp(float64(x.f[base+d*inner]) - top)
			}
			for d := 0; d < dim; d++ {
				y[base+d*inner] = float32(math.Exp(float64(x.f[base+d*inner])-top) / sum)
			}
		}
	}
	return nil
}

type reshape struct{ allowZero bool }

func (rs reshape) run(_ *arena, in, out []*tensor) error {
	x, s := in[0], in[1]
	if s.k != kInt || len(s.shape) != 1 {
		return fmt.Errorf("shape input: must be a 1-D int64 tensor, is a %s tensor of shape %v", s.k, s.shape)
	}
	if len(s.i) > maxRank {
		return fmt.Errorf("shape %v: more than %d dimensions", s.i, maxRank)
	}
	var buf [maxRank]int
	shape := buf[:len(s.i)]
	infer, known := -1, 1
	for i, d := range s.i {
		switch {
		case d == -1:
			if infer >= 0 {
				return fmt.Errorf("shape %v: more than one -1", s.i)
			}
			infer = i
			continue
		case d == 0 && !rs.allowZero:
			if i >= len(x.shape) {
				return fmt.Errorf("shape %v: 0 at position %d copies a dimension the input of shape %v lacks", s.i, i, x.shape)
			}
			shape[i] = x.shape[i]
		case d < 0 || d > maxElements:
			return fmt.Errorf("shape %v: dimension %d is invalid", s.i, d)
		default:
			shape[i] = int(d)
		}
		known *= shape[i]
		if known > maxElements {
			return fmt.Errorf("shape %v: too many elements", s.i)
		}
	}
	n := x.size()
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return fmt.Errorf("cannot reshape %v (%d elements) to %v", x.shape, n, s.i)
		}
		shape[infer] = n / known
	} else if known != n {
		return fmt.Errorf("cannot reshape %v (%d elements) to %v", x.shape, n, s.i)
	}
	return copyAs(out[0], x, shape)
}

// copyAs makes t a copy of u with another shape of as many elements.
func copyAs(t, u *tensor, shape []int) error {
	if err := t.set(u.k, shape); err != nil {
		return err
	}
	copy(t.f, u.f)
	copy(t.i, u.i)
	t.labels = u.labels
	return nil
}

type flatten struct{ axis int64 }

func (f flatten) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	ax, err := normAxis(f.axis, len(x.shape), true)
	if err != nil {
		return err
	}
	s := [2]int{prod(x.shape[:ax]), prod(x.shape[ax:])}
	return copyAs(out[0], x, s[:])
}

type identity struct{}

func (identity) run(_ *arena, in, out []*tensor) error { return out[0].copyFrom(in[0]) }

type concat struct{ axis int64 }

func (c concat) run(_ *arena, in, out []*tensor) error {
	first := in[0]
	r := len(first.shape)
	if r == 0 {
		return errors.New("cannot concatenate scalars")
	}
	ax, err := normAxis(c.axis, r, false)
	if err != nil {
		return err
	}
	var sbuf [maxRank]int
	shape := append(sbuf[:0], first.shape...)
	shape[ax] = 0
	for i, t := range in {
		if t == nil {
			return fmt.Errorf("input %d is empty", i)
		}
		if t.k != first.k {
			return fmt.Errorf("inputs 0 and %d are %s and %s tensors: Concat takes one type", i, first.k, t.k)
		}
		if len(t.shape) != r {
			return fmt.Errorf("inputs of shapes %v and %v: ranks differ", first.shape, t.shape)
		}
		for d := range t.shape {
			if d != ax && t.shape[d] != first.shape[d] {
				return fmt.Errorf("inputs of shapes %v and %v differ outside axis %d", first.shape, t.shape, ax)
			}
		}
		shape[ax] += t.shape[ax]
	}
	y := out[0]
	if err := y.set(first.k, shape); err != nil {
		return err
	}
	y.labels = first.labels
	outer, inner := prod(shape[:ax]), prod(shape[ax+1:])
	pos := 0
	for o := 0; o < outer; o++ {
		for _, t := range in {
			w := t.shape[ax] * inner
			if t.k == kFloat {
				copy(y.f[pos:pos+w], t.f[o*w:(o+1)*w])
			} else {
				copy(y.i[pos:pos+w], t.i[o*w:(o+1)*w])
			}
			pos += w
		}
	}
	return nil
}

type cast struct{ to int32 }

func (c cast) run(_ *arena, in, out []*tensor) error {
	x := in[0]
	if err := needNumeric("input", x); err != nil {
		return err
	}
	y := out[0]
	switch c.to {
	case dtFloat, dtDouble:
		if err := y.set(kFloat, x.shape); err != nil {
			return err
		}
		if x.k == kFloat {
			copy(y.f, x.f)
		} else {
			for i, v := range x.i {
				y.f[i] = float32(v)
			}
		}
		return nil
	}
	if err := y.set(kInt, x.shape); err != nil {
		return err
	}
	if x.k == kFloat {
		for i, v := range x.f {
			y.i[i] = floatToInt(v)
		}
	} else {
		copy(y.i, x.i)
	}
	switch c.to {
	case dtInt32:
		for i, v := range y.i {
			y.i[i] = int64(int32(v))
		}
	case dtBool:
		for i, v := range y.i {
			if v != 0 || (x.k == kFloat && x.f[i] != 0) {
				y.i[i] = 1
			}
		}
	}
	return nil
}

// floatToInt truncates toward zero; NaN and values out of int64's range
// become math.MinInt64, as x86's conversion (and so ONNX Runtime) does.
func floatToInt(v float32) int64 {
	f := float64(v)
	if f != f || f >= 9.223372036854775807e18 || f < -9.223372036854775808e18 {
		return math.MinInt64
	}
	return int64(f)
}
