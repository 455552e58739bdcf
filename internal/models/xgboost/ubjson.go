package xgboost

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// ubjsonToJSON transcodes Universal Binary JSON (draft 12, the format
// XGBoost writes to .ubj files and, since 2.1, by default) into JSON text,
// so that one decoder reads both formats. Float32 values are written in
// their shortest float32 form, which parsing with bitSize 32 recovers
// exactly.
func ubjsonToJSON(data []byte) ([]byte, error) {
	d := &ubjDecoder{in: data, out: make([]byte, 0, len(data)*2)}
	if err := d.value(0); err != nil {
		return nil, err
	}
	if d.pos != len(d.in) {
		return nil, fmt.Errorf("UBJSON: %d bytes after the end of the top-level value", len(d.in)-d.pos)
	}
	return d.out, nil
}

// maxDepth bounds nesting, so a crafted file cannot exhaust the stack; an
// XGBoost model nests about six levels.
const maxDepth = 64

type ubjDecoder struct {
	in  []byte
	pos int
	out []byte
}

func (d *ubjDecoder) fail(format string, args ...any) error {
	return fmt.Errorf("UBJSON at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *ubjDecoder) byte() (byte, error) {
	if d.pos >= len(d.in) {
		return 0, d.fail("unexpected end of data")
	}
	b := d.in[d.pos]
	d.pos++
	return b, nil
}

func (d *ubjDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.in)-d.pos {
		return nil, d.fail("length %d runs past the end of the data", n)
	}
	b := d.in[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// value reads one value. A marker of 'N' (no-op) is skipped.
func (d *ubjDecoder) value(depth int) error {
	m, err := d.byte()
	if err != nil {
		return err
	}
	for m == 'N' {
		if m, err = d.byte(); err != nil {
			return err
		}
	}
	return d.typed(m, depth)
}

// typed reads a value whose marker m has been read.
func (d *ubjDecoder) typed(m byte, depth int) error {
	switch m {
	case 'Z':
		d.out = append(d.out, "null"...)
	case 'T':
		d.out = append(d.out, "true"...)
	case 'F':
		d.out = append(d.out, "false"...)
	case 'i', 'U', 'I', 'l', 'L':
		n, err := d.integer(m)
		if err != nil {
			return err
		}
		d.out = strconv.AppendInt(d.out, n, 10)
	case 'd':
		b, err := d.take(4)
		if err != nil {
			return err
		}
		return d.float(float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32)
	case 'D':
		b, err := d.take(8)
		if err != nil {
			return err
		}
		return d.float(math.Float64frombits(binary.BigEndian.Uint64(b)), 64)
	case 'H':
		s, err := d.str()
		if err != nil {
			return err
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return d.fail("high-precision number %q is not a number", s)
		}
		d.out = append(d.out, s...)
	case 'C':
		b, err := d.byte()
		if err != nil {
			return err
		}
		d.quote(string([]byte{b}))
	case 'S':
		s, err := d.str()
		if err != nil {
			return err
		}
		d.quote(s)
	case '[':
		return d.array(depth + 1)
	case '{':
		return d.object(depth + 1)
	default:
		return d.fail("unknown type marker %q", m)
	}
	return nil
}

func (d *ubjDecoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		// JSON has no NaN or infinity (XGBoost stores NaN as the split
		// condition of categorical splits); they become strings, which the
		// model's number parsers accept.
		d.quote(strconv.FormatFloat(f, 'g', -1, bits))
		return nil
	}
	d.out = strconv.AppendFloat(d.out, f, 'g', -1, bits)
	return nil
}

func (d *ubjDecoder) integer(m byte) (int64, error) {
	var size int
	switch m {
	case 'i', 'U':
		size = 1
	case 'I':
		size = 2
	case 'l':
		size = 4
	case 'L':
		size = 8
	default:
		return 0, d.fail("expected an integer type marker, found %q", m)
	}
	b, err := d.take(size)
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i':
		return int64(int8(b[0])), nil
	case 'U':
		return int64(b[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// length reads a length or count: an integer marker and its value.
func (d *ubjDecoder) length() (int, error) {
	m, err := d.byte()
	if err != nil {
		return 0, err
	}
	n, err := d.integer(m)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(d.in)) {
		return 0, d.fail("length %d is impossible in %d bytes", n, len(d.in))
	}
	return int(n), nil
}

func (d *ubjDecoder) str() (string, error) {
	n, err := d.length()
	if err != nil {
		return "", err
	}
	b, err := d.take(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.fail("string is not valid UTF-8")
	}
	return string(b), nil
}

func (d *ubjDecoder) quote(s string) {
	b, _ := json.Marshal(s) // a valid UTF-8 string always marshals
	d.out = append(d.out, b...)
}

// container reads the optional "$type" and "#count" that follow '[' or
// '{'. count is -1 when the container ends with a closing marker instead.
func (d *ubjDecoder) container() (elem byte, count int, err error) {
	count = -1
	if d.pos < len(d.in) && d.in[d.pos] == '$' {
		d.pos++
		if elem, err = d.byte(); err != nil {
			return 0, 0, err
		}
		// Elements of these types take no bytes, so a count alone could
		// ask for any amount of output.
		if elem == 'Z' || elem == 'T' || elem == 'F' || elem == 'N' {
			return 0, 0, d.fail("typed container of %q is not supported", elem)
		}
		if d.pos >= len(d.in) || d.in[d.pos] != '#' {
			return 0, 0, d.fail("a typed container must give its count")
		}
	}
	if d.pos < len(d.in) && d.in[d.pos] == '#' {
		d.pos++
		if count, err = d.length(); err != nil {
			return 0, 0, err
		}
	}
	return elem, count, nil
}

func (d *ubjDecoder) array(depth int) error {
	return d.elements(depth, '[', ']', "array", nil)
}

func (d *ubjDecoder) object(depth int) error {
	return d.elements(depth, '{', '}', "object", func() error {
		key, err := d.str()
		if err != nil {
			return err
		}
		d.quote(key)
		d.out = append(d.out, ':')
		return nil
	})
}

// elements reads the body of an array or object whose opening marker has
// been read: its optional type and count, then values until the count or
// the closing marker, each after key when key is set (objects).
func (d *ubjDecoder) elements(depth int, open, close byte, what string, key func() error) error {
	if depth > maxDepth {
		return d.fail("nested deeper than %d levels", maxDepth)
	}
	elem, count, err := d.container()
	if err != nil {
		return err
	}
	d.out = append(d.out, open)
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			if d.pos >= len(d.in) {
				return d.fail("%s does not end", what)
			}
			if d.in[d.pos] == close {
				d.pos++
				break
			}
		}
		if i > 0 {
			d.out = append(d.out, ',')
		}
		if key != nil {
			if err := key(); err != nil {
				return err
			}
		}
		if elem != 0 {
			err = d.typed(elem, depth)
		} else {
			err = d.value(depth)
		}
		if err != nil {
			return err
		}
	}
	d.out = append(d.out, close)
	return nil
}
