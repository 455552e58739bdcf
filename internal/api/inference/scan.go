package inference

import (
	"fmt"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads JSON from a byte slice without reflection or per-token
// allocation: request bodies are small and hot, so the decoders walk them
// directly. Strings are returned as slices of the body, or of arena when
// they hold escapes; both stay valid until the scanner is reset.
//
// Like encoding/json it lets invalid UTF-8 through (responses write it as
// U+FFFD). Besides strict JSON it reads the bare literals NaN, Infinity and
// -Infinity, which Python's json module writes for non-finite floats.
type scanner struct {
	b     []byte
	i     int
	arena []byte
	err   error
}

// maxDepth bounds how deeply arrays and objects may nest.
const maxDepth = 64

func (s *scanner) reset(b []byte) {
	s.b, s.i, s.arena, s.err = b, 0, s.arena[:0], nil
}

// fail records the first syntax error, at the current offset.
func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("invalid JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
	}
	s.i = len(s.b)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next significant byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// consume takes c if it is next.
func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) expect(c byte) bool {
	if s.consume(c) {
		return true
	}
	if s.i >= len(s.b) {
		s.fail("unexpected end of input, expected %q", c)
	} else {
		s.fail("expected %q, found %q", c, s.b[s.i])
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object iterates over an object's members: it calls member with each
// key, positioned at the value, which member must consume.
func (s *scanner) object(member func(key []byte)) {
	if !s.expect('{') {
		return
	}
	if s.consume('}') {
		return
	}
	for s.err == nil {
		key, ok := s.str()
		if !ok || !s.expect(':') {
			return
		}
		member(key)
		if s.err != nil || s.consume('}') {
			return
		}
		if !s.expect(',') {
			return
		}
	}
}

// array iterates over an array's elements: elem is called positioned at
// each element, which it must consume.
func (s *scanner) array(elem func(i int)) {
	if !s.expect('[') {
		return
	}
	if s.consume(']') {
		return
	}
	for n := 0; s.err == nil; n++ {
		elem(n)
		if s.err != nil || s.consume(']') {
			return
		}
		if !s.expect(',') {
			return
		}
	}
}

// str reads a string.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		if s.i >= len(s.b) {
			s.fail("unexpected end of input, expected a string")
		} else {
			s.fail("expected a string, found %q", s.b[s.i])
		}
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, true
		case c == '\\':
			return s.unescape(start)
		case c < 0x20:
			s.fail("control character in a string")
			return nil, false
		default:
			s.i++
		}
	}
	s.fail("unterminated string")
	return nil, false
}

// unescape continues a string that holds escapes, writing it to the arena.
func (s *scanner) unescape(start int) ([]byte, bool) {
	a := len(s.arena)
	s.arena = append(s.arena, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.arena[a:len(s.arena):len(s.arena)], true
		case c < 0x20:
			s.fail("control character in a string")
			return nil, false
		case c != '\\':
			s.arena = append(s.arena, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.arena = append(s.arena, e)
		case 'b':
			s.arena = append(s.arena, '\b')
		case 'f':
			s.arena = append(s.arena, '\f')
		case 'n':
			s.arena = append(s.arena, '\n')
		case 'r':
			s.arena = append(s.arena, '\r')
		case 't':
			s.arena = append(s.arena, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				pair := unicode.ReplacementChar
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					next := s.i
					s.i += 2
					r2, ok := s.hex4()
					if !ok {
						return nil, false
					}
					if pair = utf16.DecodeRune(r, r2); pair == unicode.ReplacementChar {
						s.i = next // not a pair: the second escape is read on its own, as encoding/json does
					}
				}
				r = pair
			}
			s.arena = utf8.AppendRune(s.arena, r)
		default:
			s.i--
			s.fail("invalid escape \\%c", e)
			return nil, false
		}
	}
	s.fail("unterminated string")
	return nil, false
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		s.fail("short \\u escape")
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			s.fail("invalid \\u escape")
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// Kinds of scalar values.
const (
	kindNull uint8 = iota
	kindNumber
	kindString
	kindBool
)

// value is one scalar: a number (or a boolean as 0/1), a string, or null.
type value struct {
	num  float64
	str  []byte
	kind uint8
}

// scalar reads a number, string, boolean or null. ok is false (without
// an error) when the next value is an array or object, which it leaves.
func (s *scanner) scalar() (v value, ok bool) {
	switch c := s.peek(); c {
	case '"':
		v.str, ok = s.str()
		v.kind = kindString
		return v, ok
	case 't':
		return value{num: 1, kind: kindBool}, s.literal("true")
	case 'f':
		return value{kind: kindBool}, s.literal("false")
	case 'n':
		return value{kind: kindNull}, s.literal("null")
	case 'N':
		return value{num: math.NaN(), kind: kindNumber}, s.literal("NaN")
	case 'I':
		return value{num: math.Inf(1), kind: kindNumber}, s.literal("Infinity")
	case '[', '{':
		return v, false
	case 0:
		s.fail("unexpected end of input, expected a value")
		return v, false
	default:
		if c == '-' && s.i+1 < len(s.b) && s.b[s.i+1] == 'I' {
			s.i++
			return value{num: math.Inf(-1), kind: kindNumber}, s.literal("Infinity")
		}
		v.num, ok = s.number()
		v.kind = kindNumber
		return v, ok
	}
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	s.fail("invalid literal")
	return false
}

// number reads a JSON number (strict grammar) as a float64.
//
// While it checks the grammar it also gathers the digits as an integer
// mantissa and a decimal exponent. When the mantissa is at most 2^53 and
// the exponent at most 22 either way, both are exact float64s and one
// multiplication or division rounds correctly, which is the value
// strconv.ParseFloat returns (Clinger's fast path, which ParseFloat also
// takes, after parsing the text a second time). A request's numbers
// almost always qualify; the rest go to ParseFloat.
func (s *scanner) number() (float64, bool) {
	start := s.i
	i := s.i
	b := s.b
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	exp := 0
	exact := true // mant holds every digit read
	digit := func(c byte) {
		if mant < 1<<59 {
			mant = mant*10 + uint64(c-'0')
		} else {
			exact = false
		}
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			digit(b[i])
			i++
		}
	default:
		if i < len(b) {
			s.i = i
			s.fail("unexpected %q, expected a value", b[i])
		} else {
			s.fail("unexpected end of input, expected a value")
		}
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			digit(b[i])
			exp--
			i++
		}
		if i == d {
			s.i = i
			s.fail("a number needs digits after the decimal point")
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		sign := 1
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			if b[i] == '-' {
				sign = -1
			}
			i++
		}
		d := i
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == d {
			s.i = i
			s.fail("a number needs digits in its exponent")
			return 0, false
		}
		exp += sign * e
	}
	s.i = i
	if exact && mant <= 1<<53 && exp >= -22 && exp <= 22 {
		f := float64(mant)
		if exp >= 0 {
			f *= exactPow10[exp]
		} else {
			f /= exactPow10[-exp]
		}
		if neg {
			f = -f
		}
		return f, true
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		// Out of range: ParseFloat returns ±Inf (or 0), which is the value.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			s.fail("invalid number")
			return 0, false
		}
	}
	return f, true
}

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// skip consumes any value.
func (s *scanner) skip() { s.skipDepth(0) }

func (s *scanner) skipDepth(depth int) {
	if depth > maxDepth {
		s.fail("nested more than %d levels deep", maxDepth)
		return
	}
	switch s.peek() {
	case '{':
		s.object(func([]byte) { s.skipDepth(depth + 1) })
	case '[':
		s.array(func(int) { s.skipDepth(depth + 1) })
	default:
		s.scalar()
	}
}

// raw consumes a value and returns its bytes.
func (s *scanner) raw() []byte {
	s.ws()
	start := s.i
	s.skip()
	if s.err != nil {
		return nil
	}
	return s.b[start:s.i]
}
