package mlflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// Double is a proto double on the wire: a JSON number, or the strings "NaN",
// "Infinity" and "-Infinity" that protobuf's JSON mapping uses for values
// JSON cannot hold.
type Double float64

func (d *Double) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*d = Double(math.NaN())
		case "Infinity", "inf", "Inf":
			*d = Double(math.Inf(1))
		case "-Infinity", "-inf", "-Inf":
			*d = Double(math.Inf(-1))
		default:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return typeError(b, float64(0))
			}
			*d = Double(f)
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return typeError(b, float64(0))
	}
	*d = Double(f)
	return nil
}

func (d Double) MarshalJSON() ([]byte, error) {
	return appendDouble(nil, float64(d)), nil
}

// appendDouble appends f as Double writes it. Streamed answers call it
// directly, so both paths spell non-finite values the same way.
func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// Int64 is a proto int64: protobuf's JSON mapping sends it as a string, many
// clients send a number; both are accepted, and it is written as a number as
// MLflow's server writes it.
type Int64 int64

func (n *Int64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Accept integral floats such as 1.7e12 that JavaScript clients send.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return typeError(b, int64(0))
		}
		v = int64(f)
	}
	*n = Int64(v)
	return nil
}

// Bool accepts JSON booleans and the strings "true"/"false" of query args.
type Bool bool

func (v *Bool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "True", "1":
		*v = true
	case "false", "False", "0", "":
		*v = false
	default:
		return typeError(b, false)
	}
	return nil
}

// typeError reports a wrongly typed value the way encoding/json does, so the
// decoder adds the field's name; Value keeps the raw JSON for the message.
func typeError(raw []byte, want any) error {
	return &json.UnmarshalTypeError{Value: string(raw), Type: reflect.TypeOf(want)}
}

// listFields are the repeated fields of GET-able requests: their query args
// become JSON arrays even when given once.
var listFields = map[string]bool{"order_by": true, "run_ids": true, "experiment_ids": true}

// decode reads a request message: the JSON body of a POST, PATCH or DELETE,
// or the query string of a GET. Unknown fields are ignored, as MLflow does;
// wrongly typed ones are an INVALID_PARAMETER_VALUE naming the field.
func decode(r *http.Request, v any, limit int64) error {
	var body []byte
	if r.Method == http.MethodGet {
		m := make(map[string]any, len(r.URL.Query()))
		for k, vals := range r.URL.Query() {
			if listFields[k] {
				m[k] = vals
			} else if len(vals) > 0 {
				m[k] = vals[0]
			}
		}
		body, _ = json.Marshal(m)
	} else {
		var err error
		if body, err = readBody(r, limit); err != nil {
			return err
		}
	}
	return unmarshalBody(body, v)
}

// readBody reads a request body of at most limit bytes, an empty one as
// {}, with Python's bare NaN and Infinity tokens quoted.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= limit {
		// Sized up front (a 35 KB log-batch read by io.ReadAll grows its
		// buffer eight times); net/http ends the body at its Content-Length.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	}
	if err != nil {
		return nil, errs.Invalid("could not read request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, errs.Invalid("Request body must be at most %d bytes", limit)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return quoteNonFinite(body), nil
}

// unmarshalBody decodes a request message; unknown fields are ignored, as
// MLflow does, and wrongly typed ones are an INVALID_PARAMETER_VALUE
// naming the field.
func unmarshalBody(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errs.Invalid("Invalid value %s for parameter '%s' supplied: expected %s. See the API docs for more information about request parameters.",
				rawValue(body, te), te.Field, kindName(te.Type.Kind().String()))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return errs.Invalid("Malformed JSON request body at offset %d: %v", se.Offset, err)
		}
		return errs.Invalid("Invalid request body: %v", err)
	}
	return nil
}

// rawValue is the offending value as the client sent it, which MLflow echoes
// in its message: found at the top level of the body when the field is
// there, else the raw text the decoder saw.
func rawValue(body []byte, te *json.UnmarshalTypeError) string {
	if !strings.Contains(te.Field, ".") {
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil {
			if raw, ok := top[te.Field]; ok {
				return string(raw)
			}
		}
	}
	// encoding/json's own errors name the JSON kind, never valid JSON text;
	// Slipway's wire types put the raw value there.
	switch kind, _, _ := strings.Cut(te.Value, " "); kind {
	case "string", "number", "bool", "array", "object":
		return "of JSON type " + kind
	}
	return te.Value
}

func kindName(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice":
		return "a list"
	case "int64", "float64":
		return "a number"
	}
	return "a " + k
}

// quoteNonFinite rewrites the bare NaN, Infinity and -Infinity tokens that
// Python's json module emits (and MLflow's server accepts) into strings that
// Double understands. Text inside strings is left alone.
func quoteNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			if c == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out = append(out, `"NaN"`...)
			i += 2
			continue
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out = append(out, `"-Infinity"`...)
			i += 8
			continue
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out = append(out, `"Infinity"`...)
			i += 7
			continue
		}
		out = append(out, c)
	}
	return out
}

// errorCode maps a coded error to MLflow's error_code and HTTP status
// (mlflow/protos/databricks.proto and mlflow/server/handlers.py).
func errorCode(code errs.Code) (string, int) {
	switch code {
	case errs.InvalidArgument:
		return "INVALID_PARAMETER_VALUE", http.StatusBadRequest
	case errs.NotFound:
		return "RESOURCE_DOES_NOT_EXIST", http.StatusNotFound
	case errs.AlreadyExists:
		return "RESOURCE_ALREADY_EXISTS", http.StatusBadRequest
	case errs.FailedPrecondition:
		return "INVALID_STATE", http.StatusBadRequest
	case errs.PermissionDenied:
		return "PERMISSION_DENIED", http.StatusForbidden
	case errs.Unauthenticated:
		return "UNAUTHENTICATED", http.StatusUnauthorized
	case errs.ResourceExhausted:
		return "RESOURCE_EXHAUSTED", http.StatusTooManyRequests
	}
	return "INTERNAL_ERROR", http.StatusInternalServerError
}

// WriteError writes err in MLflow's error shape.
func WriteError(w http.ResponseWriter, err error) {
	code, status := errorCode(errs.CodeOf(err))
	writeJSON(w, status, map[string]string{"error_code": code, "message": errs.Message(err)})
}

// appendJSONString appends s encoded as writeJSON encodes a string, so that
// streamed answers escape exactly as encoded ones do.
func appendJSONString(b []byte, s string) []byte {
	// Printable ASCII other than '"' and '\\' is written as it is; the rest
	// goes through encoding/json, so escapes and invalid UTF-8 come out as
	// it writes them.
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = 0x20 <= c && c < 0x80 && c != '"' && c != '\\'
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// wroteWriter records whether anything has reached the client, which decides
// whether a failure can still be answered with an error or must abort.
type wroteWriter struct {
	w     io.Writer
	wrote bool
}

func (w *wroteWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.w.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
