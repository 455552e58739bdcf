package inference

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

// fuzzCall decodes with fresh state each time, as a pooled call would be
// reset; any error must be an InvalidArgument (a 400), never a panic.
func checkOutcome(t *testing.T, err error, c *call, nf int) {
	t.Helper()
	if err != nil {
		if !errs.Is(err, errs.InvalidArgument) {
			t.Fatalf("not a 400: %v", err)
		}
		return
	}
	if c.req.Rows < 1 || len(c.req.X) != c.req.Rows*nf {
		t.Fatalf("rows %d, len(X) %d, features %d", c.req.Rows, len(c.req.X), nf)
	}
}

func FuzzDecodeOIP(f *testing.F) {
	for _, s := range []string{
		tensorsBody(smallNames, smallRows, "FP32", false),
		tensorsBody(smallNames, smallRows, "INT64", true),
		matrixBody(smallRows, true),
		matrixBody(smallRows, false),
		`{"id":"a\u00e9\ud83d\ude00","parameters":{"x":1},"inputs":[{"name":"x","shape":[1,2],"datatype":"BYTES","data":[["blue","red"]]}],"outputs":[{"name":"prediction"}]}`,
		`{"inputs":[{"name":"color","shape":[2],"datatype":"BYTES","data":["red",null]},{"name":"size","shape":[2,1],"datatype":"FP16","data":[[NaN],[-Infinity]]}]}`,
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"UINT8","data":[[[1,2]]]}]}`,
		`{"inputs":[{"name":"x","shape":[9223372036854775807,2],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[1e300],"datatype":"FP32","data":1}]}`,
		`[`, `{"inputs":[{"data":[[[[[[[[[[[[1]]]]]]]]]]]]}]}`, "{\"id\":\"\\ud800\"}",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	h := newHarness(f, Options{MaxRows: 100})
	cat := h.eps["cat"]
	small := h.eps["small"]
	f.Fuzz(func(t *testing.T, body string, categorical bool) {
		ep := small
		if categorical {
			ep = cat
		}
		c := new(call)
		err := decodeOIP(&c.sc, &c.oip, []byte(body))
		if err == nil {
			err = h.srv.oipMatrix(c, ep.Signature(), ep.Features())
		}
		checkOutcome(t, err, c, len(ep.Features()))
	})
}

func FuzzDecodeMLflowJSON(f *testing.F) {
	for _, s := range []string{
		`{"dataframe_split":{"columns":["radius","texture","perimeter","area"],"index":[0],"data":[[1,2,3,4]]}}`,
		`{"dataframe_split":{"data":[[1,2,3,4],[5,6,7,null]]}}`,
		`{"dataframe_records":[{"radius":1,"texture":2,"perimeter":3,"area":4},{"area":5}]}`,
		`{"instances":[[1,2,3,4],{"radius":1,"texture":2,"perimeter":3,"area":4}]}`,
		`{"inputs":{"radius":[1,2],"texture":[[1],[2]],"perimeter":[3,4],"area":[5,6]},"params":{"a":"b"}}`,
		`{"inputs":{"size":1,"color":"red"}}`,
		`{"dataframe_records":[{"size":1,"color":"purple"},{"size":true,"color":2}]}`,
		`{"instances":[1,2,3]}`, `{"inputs":[]}`, `{}`, `{"dataframe_split":{"columns":[],"data":[[],[]]}}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	h := newHarness(f, Options{MaxRows: 100})
	cat := h.eps["cat"]
	small := h.eps["small"]
	f.Fuzz(func(t *testing.T, body string, categorical bool) {
		ep := small
		if categorical {
			ep = cat
		}
		c := new(call)
		c.body = []byte(body)
		err := h.srv.decodeMLflowJSON(c, ep.Signature(), ep.Features())
		checkOutcome(t, err, c, len(ep.Features()))
	})
}

func FuzzDecodeCSV(f *testing.F) {
	for _, s := range []string{
		"radius,texture,perimeter,area\n1,2,3,4\n5,,7,8\n",
		"area,radius,texture,perimeter\n1e3,NaN,true,-4\n",
		"size,color\nred,1\n", "color,size\nblue,4\npurple,\n",
		"\"radius\",\"tex\"\"ture\"\n1,2\n", "", "a\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	h := newHarness(f, Options{MaxRows: 100})
	cat := h.eps["cat"]
	small := h.eps["small"]
	f.Fuzz(func(t *testing.T, body string, categorical bool) {
		ep := small
		if categorical {
			ep = cat
		}
		c := new(call)
		c.body = []byte(body)
		err := h.srv.decodeCSV(c, ep.Features())
		checkOutcome(t, err, c, len(ep.Features()))
	})
}

// FuzzScanner checks the scanner against encoding/json: both accept the
// same documents (setting aside the NaN and Infinity literals the scanner
// also reads), and read the same strings and numbers.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e3,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{}}`,
		`[0.1, 1E+2, -0, 1e400, "\/\b\f\r\t\\\""]`, `"\ud800x"`, `01`, `1.`, `-`, `[1,]`, `{"a" 1}`, "\"\x01\"", "\"\xff\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if strings.Contains(doc, "NaN") || strings.Contains(doc, "Infinity") {
			return
		}
		var sc scanner
		sc.reset([]byte(doc))
		sc.skip()
		ok := sc.err == nil && sc.end()
		if want := json.Valid([]byte(doc)); ok != want {
			t.Fatalf("scanner accepts %v, encoding/json %v", ok, want)
		}
		if !ok {
			return
		}
		// A top-level string or number reads as encoding/json reads it.
		var std any
		if json.Unmarshal([]byte(doc), &std) != nil {
			return
		}
		sc.reset([]byte(doc))
		v, isScalar := sc.scalar()
		if !isScalar {
			return
		}
		switch want := std.(type) {
		case string:
			if string([]rune(string(v.str))) != want { // encoding/json writes invalid UTF-8 as U+FFFD
				t.Fatalf("string %q, encoding/json %q", v.str, want)
			}
		case float64:
			if v.num != want && !(math.IsInf(v.num, 0)) {
				t.Fatalf("number %v, encoding/json %v", v.num, want)
			}
		}
	})
}
