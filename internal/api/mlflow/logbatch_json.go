package mlflow

import (
	"strconv"

	"github.com/slipwayml/slipway/internal/tracking"
)

// scanLogBatch decodes the common shape of a log-batch body, a run_id and a
// list of metrics whose fields are plain numbers and strings, without
// encoding/json: under 20 logging clients, decoding was the largest cost
// left in the server. It answers ok only when it is sure encoding/json
// would decode the body into the same run id and metrics with no params or
// tags; on anything else (an unknown or repeated field, an escape in a
// string, a non-ASCII byte, a number as a string, a missing value or
// timestamp, params or tags, bad JSON) it gives up and the handler takes
// the general path, which also makes every error message. FuzzScanLogBatch
// holds it to that.
func scanLogBatch(body []byte) (runID string, metrics []tracking.Metric, ok bool) {
	s := jsonScanner{b: body}
	var seenRun, seenMetrics, seenParams, seenTags bool
	ok = s.object(func(field []byte) bool {
		switch string(field) {
		case "run_id":
			if seenRun {
				return false
			}
			seenRun = true
			v, ok := s.str()
			runID = string(v)
			return ok
		case "metrics":
			if seenMetrics {
				return false
			}
			seenMetrics = true
			metrics = make([]tracking.Metric, 0, len(body)/64) // a metric takes 60-90 bytes
			return s.array(func() bool {
				m, ok := s.metric()
				metrics = append(metrics, m)
				return ok
			})
		case "params", "tags":
			seen := &seenParams
			if field[0] == 't' {
				seen = &seenTags
			}
			if *seen {
				return false
			}
			*seen = true
			return s.array(func() bool { return false }) // only empty lists
		}
		return false
	})
	if !ok || !s.end() {
		return "", nil, false
	}
	return runID, metrics, true
}

// jsonScanner reads JSON from b; every method reports false on input it
// does not take, leaving the rest to encoding/json.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// object reads {"field": value, ...}, calling field for each name with the
// scanner at its value.
func (s *jsonScanner) object(field func(name []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		name, ok := s.str()
		if !ok || !s.next(':') || !field(name) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array reads [value, ...], calling elem with the scanner at each value.
func (s *jsonScanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes, the only strings
// whose bytes encoding/json keeps as they are.
func (s *jsonScanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// number reads a number in JSON's grammar and returns its text.
func (s *jsonScanner) number() ([]byte, bool) {
	s.space()
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch n := digits(); {
	case n == 0:
		return nil, false
	case n > 1 && s.b[s.i-n] == '0':
		return nil, false // a leading zero
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// metric reads {"key": ..., "value": ..., "timestamp": ..., "step": ...}
// with value and timestamp present, as Double and Int64 would decode them:
// the value a number, the timestamp and step integers, as numbers or
// strings.
func (s *jsonScanner) metric() (tracking.Metric, bool) {
	var m tracking.Metric
	var seen [4]bool
	ok := s.object(func(field []byte) bool {
		var f int
		switch string(field) {
		case "key":
			f = 0
		case "value":
			f = 1
		case "timestamp":
			f = 2
		case "step":
			f = 3
		default:
			return false
		}
		if seen[f] {
			return false
		}
		seen[f] = true
		if f == 0 {
			k, ok := s.str()
			m.Key = string(k)
			return ok
		}
		var text []byte
		var ok bool
		if s.peek() == '"' && f != 1 {
			// Protobuf's JSON mapping sends an int64 as a string.
			text, ok = s.str()
		} else {
			text, ok = s.number()
		}
		if !ok {
			return false
		}
		var err error
		switch f {
		case 1:
			m.Value, err = strconv.ParseFloat(string(text), 64)
		case 2:
			m.Timestamp, err = strconv.ParseInt(string(text), 10, 64)
		case 3:
			m.Step, err = strconv.ParseInt(string(text), 10, 64)
		}
		return err == nil
	})
	return m, ok && seen[0] && seen[1] && seen[2]
}
