package e2e

// A request-for-request replay of MLflow's Python client. Each fixture in
// testdata/python_client/ (other than messages.json) lists, in order, the
// HTTP requests the client sends for a short script, as reconstructed from
// MLflow 2.x's client code, and what the client needs from each answer: the
// status (and error_code of a refusal), that the answer parses as the
// response message the client decodes it into (json_format.ParseDict
// rules, messages.json), and the fields the client then reads. Values saved
// from one answer (${name}) feed later requests, as the client's own state
// does.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type replayFixture struct {
	Description string       `json:"description"`
	Script      []string     `json:"script"`
	Steps       []replayStep `json:"steps"`
}

type replayStep struct {
	Call      string                `json:"call"`
	Via       string                `json:"via"`
	Method    string                `json:"method"`
	Path      string                `json:"path"`
	Query     map[string][]string   `json:"query"`
	Body      any                   `json:"body"`
	BodyText  *string               `json:"body_text"`
	Headers   map[string]string     `json:"headers"`
	Status    int                   `json:"status"`
	ErrorCode string                `json:"error_code"`
	Response  string                `json:"response"`
	Reads     []string              `json:"reads"`
	Equals    map[string]any        `json:"equals"`
	Prefix    map[string]string     `json:"prefix"`
	Same      map[string]string     `json:"same"`
	Save      map[string]replaySave `json:"save"`
	Paginate  *struct {
		Token string `json:"token"`
		Param string `json:"param"`
		Items string `json:"items"`
		Pages int    `json:"pages"`
	} `json:"paginate"`
	CountOf string `json:"count_of"`
	Count   *int   `json:"count"`
}

type replaySave struct {
	From       string `json:"from"`
	TrimPrefix string `json:"trim_prefix"`
}

type protoSchema struct {
	Enums    map[string][]string          `json:"enums"`
	Messages map[string]map[string]string `json:"messages"`
}

func TestPythonClientReplay(t *testing.T) {
	var schema protoSchema
	readJSONFile(t, "testdata/python_client/messages.json", &schema)
	files, err := filepath.Glob("testdata/python_client/*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("no fixtures in testdata/python_client: %v", err)
	}
	s := Start(t)
	for _, f := range files {
		if filepath.Base(f) == "messages.json" {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			var fx replayFixture
			readJSONFile(t, f, &fx)
			r := &replayer{t: t, s: s, schema: schema, vars: map[string]string{}}
			for i, step := range fx.Steps {
				if !r.run(i, step) {
					return // later steps depend on this one's answer
				}
			}
		})
	}
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type replayer struct {
	t      *testing.T
	s      *Server
	schema protoSchema
	vars   map[string]string
}

// subst replaces ${name} with saved values in every string inside v.
func (r *replayer) subst(v any) any {
	switch x := v.(type) {
	case string:
		for k, val := range r.vars {
			x = strings.ReplaceAll(x, "${"+k+"}", val)
		}
		if strings.Contains(x, "${") {
			r.t.Fatalf("unresolved variable in %q (saved: %v)", x, r.vars)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.subst(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.subst(e)
		}
		return out
	}
	return v
}

// send issues one request of a step (with an extra body or query field for
// a page token) and returns status and raw answer.
func (r *replayer) send(step replayStep, extra map[string]string) (int, []byte) {
	t := r.t
	path := r.subst(step.Path).(string)
	q := url.Values{}
	for k, vs := range step.Query {
		for _, v := range vs {
			q.Add(k, r.subst(v).(string))
		}
	}
	var body any
	if step.Body != nil {
		body = r.subst(step.Body)
	}
	for k, v := range extra {
		if step.Method == "GET" {
			q.Set(k, v)
		} else {
			m, _ := body.(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			m[k] = v
			body = m
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var reader *strings.Reader
	switch {
	case step.BodyText != nil:
		reader = strings.NewReader(r.subst(*step.BodyText).(string))
	case body != nil:
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = strings.NewReader(string(raw))
	}
	var headers []string
	if body != nil {
		headers = append(headers, "Content-Type", "application/json")
	}
	for k, v := range step.Headers {
		headers = append(headers, k, v)
	}
	// rest_utils.http_request sets a User-Agent naming the client.
	headers = append(headers, "User-Agent", "mlflow-python-client/2.14.1")
	if reader == nil {
		status, _, out := mfRaw(t, step.Method, r.s.URL+path, nil, headers...)
		return status, out
	}
	status, _, out := mfRaw(t, step.Method, r.s.URL+path, reader, headers...)
	return status, out
}

func (r *replayer) run(i int, step replayStep) bool {
	t := r.t
	what := fmt.Sprintf("step %d %s (%s %s)", i, step.Call, step.Method, step.Path)
	status, raw := r.send(step, nil)
	if status != step.Status {
		t.Errorf("%s: status %d, want %d; answer %s", what, status, step.Status, raw)
		return false
	}
	if step.Response == "" {
		return true // e.g. an artifact PUT: the client only checks the status
	}
	var answer any
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Errorf("%s: answer is not JSON (the client's json.loads fails): %v: %q", what, err, raw)
		return false
	}
	if _, ok := answer.(map[string]any); !ok {
		t.Errorf("%s: answer is not a JSON object: %s", what, raw)
		return false
	}
	for _, p := range r.schema.check(step.Response, answer, "") {
		t.Errorf("%s: the client cannot parse the answer as %s: %s", what, step.Response, p)
	}
	if step.ErrorCode != "" {
		if code := mfStr(mfObj(answer)["error_code"]); code != step.ErrorCode {
			t.Errorf("%s: error_code %q, want %q", what, code, step.ErrorCode)
		}
	}

	// Follow next_page_token as the client does, collecting the items.
	pages := 1
	if pg := step.Paginate; pg != nil {
		items, _ := mfObj(answer)[pg.Items].([]any)
		for token := mfStr(mfObj(answer)[pg.Token]); token != ""; {
			if pages > 1000 {
				t.Fatalf("%s: more than 1000 pages", what)
			}
			status, raw := r.send(step, map[string]string{pg.Param: token})
			pages++
			var next map[string]any
			if status != http.StatusOK || json.Unmarshal(raw, &next) != nil {
				t.Errorf("%s: page %d: %d %s", what, pages, status, raw)
				return false
			}
			for _, p := range r.schema.check(step.Response, next, "") {
				t.Errorf("%s: page %d cannot be parsed as %s: %s", what, pages, step.Response, p)
			}
			more, _ := next[pg.Items].([]any)
			items = append(items, more...)
			token = mfStr(next[pg.Token])
		}
		mfObj(answer)[pg.Items] = items
		if pg.Pages != 0 && pages != pg.Pages {
			t.Errorf("%s: %d pages, want %d", what, pages, pg.Pages)
		}
	}
	if step.Count != nil {
		field := step.CountOf
		if step.Paginate != nil {
			field = step.Paginate.Items
		}
		if items, _ := mfObj(answer)[field].([]any); len(items) != *step.Count {
			t.Errorf("%s: %d %s, want %d", what, len(items), field, *step.Count)
		}
	}
	for _, p := range step.Reads {
		for _, v := range jsonPathAll(answer, p) {
			if v == nil {
				t.Errorf("%s: the client reads %s, which the answer lacks", what, p)
				break
			}
		}
	}
	for p, want := range step.Equals {
		got := jsonPath(answer, p)
		if !jsonValueEqual(got, r.subst(want)) {
			t.Errorf("%s: %s = %v, want %v", what, p, got, r.subst(want))
		}
	}
	for p, prefix := range step.Prefix {
		if got := mfStr(jsonPath(answer, p)); !strings.HasPrefix(got, prefix) {
			t.Errorf("%s: %s = %q, want it to start with %q", what, p, got, prefix)
		}
	}
	for a, b := range step.Same {
		if va, vb := jsonPath(answer, a), jsonPath(answer, b); va == nil || !reflect.DeepEqual(va, vb) {
			t.Errorf("%s: %s = %v and %s = %v, want them equal", what, a, va, b, vb)
		}
	}
	for name, sv := range step.Save {
		v := mfStr(jsonPath(answer, sv.From))
		if v == "" {
			t.Errorf("%s: nothing at %s to save as %s", what, sv.From, name)
			return false
		}
		r.vars[name] = strings.TrimPrefix(v, sv.TrimPrefix)
	}
	return !t.Failed()
}

// check reports why value would not parse as message msg under protobuf's
// json_format.ParseDict with ignore_unknown_fields=True.
func (s protoSchema) check(msg string, value any, at string) []string {
	fields, ok := s.Messages[msg]
	if !ok {
		return []string{fmt.Sprintf("%s: no schema for message %s in messages.json", at, msg)}
	}
	obj, ok := value.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: %s must be a JSON object, got %s", at, msg, jsonKind(value))}
	}
	var problems []string
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		typ, known := fields[k]
		v := obj[k]
		if !known || v == nil { // unknown fields are ignored; null clears a field
			continue
		}
		path := strings.TrimPrefix(at+"."+k, ".")
		if elem, repeated := strings.CutPrefix(typ, "repeated "); repeated {
			list, ok := v.([]any)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: repeated field must be a JSON array, got %s", path, jsonKind(v)))
				continue
			}
			for i, e := range list {
				problems = append(problems, s.checkValue(elem, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
			continue
		}
		problems = append(problems, s.checkValue(typ, v, path)...)
	}
	return problems
}

func (s protoSchema) checkValue(typ string, v any, at string) []string {
	bad := func(want string) []string {
		return []string{fmt.Sprintf("%s: %s expected, got %s %v", at, want, jsonKind(v), v)}
	}
	switch {
	case typ == "string":
		if _, ok := v.(string); !ok {
			return bad("string")
		}
	case typ == "bool":
		if _, ok := v.(bool); !ok {
			return bad("bool")
		}
	case typ == "int64" || typ == "int32":
		switch x := v.(type) {
		case float64:
			if x != math.Trunc(x) {
				return bad("integer")
			}
		case string:
			if _, err := strconv.ParseInt(x, 10, 64); err != nil {
				return bad("integer")
			}
		default:
			return bad("integer")
		}
	case typ == "double":
		switch x := v.(type) {
		case float64:
		case string:
			if x != "NaN" && x != "Infinity" && x != "-Infinity" {
				if _, err := strconv.ParseFloat(x, 64); err != nil {
					return bad(`number, "NaN", "Infinity" or "-Infinity"`)
				}
			}
		default:
			return bad("number")
		}
	case strings.HasPrefix(typ, "enum "):
		name := strings.TrimPrefix(typ, "enum ")
		switch x := v.(type) {
		case string:
			for _, e := range s.Enums[name] {
				if e == x {
					return nil
				}
			}
			return bad(fmt.Sprintf("one of %v", s.Enums[name]))
		case float64:
		default:
			return bad("enum " + name)
		}
	default:
		return s.check(typ, v, at)
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonPath resolves a path such as "runs.0.data.tags[mlflow.runName]":
// dot-separated keys and list indexes; name[k] picks the "value" of the
// {"key","value"} element whose key is k.
func jsonPath(v any, path string) any {
	all := jsonPathAll(v, path)
	if len(all) == 0 {
		return nil
	}
	return all[0]
}

// jsonPathAll is jsonPath where the segment "*" stands for every element
// of a list.
func jsonPathAll(v any, path string) []any {
	cur := []any{v}
	for _, seg := range splitJSONPath(path) {
		var next []any
		for _, c := range cur {
			name, key, hasKey := strings.Cut(seg, "[")
			switch x := c.(type) {
			case map[string]any:
				val := x[name]
				if hasKey {
					key = strings.TrimSuffix(key, "]")
					val = nil
					for _, e := range mfList(x[name]) {
						if e["key"] == key {
							val = e["value"]
						}
					}
				}
				next = append(next, val)
			case []any:
				if seg == "*" {
					next = append(next, x...)
				} else if i, err := strconv.Atoi(seg); err == nil && i < len(x) {
					next = append(next, x[i])
				} else {
					next = append(next, nil)
				}
			default:
				next = append(next, nil)
			}
		}
		cur = next
	}
	return cur
}

// splitJSONPath splits on dots outside brackets.
func splitJSONPath(p string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range p {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				out = append(out, p[start:i])
				start = i + 1
			}
		}
	}
	return append(out, p[start:])
}

// jsonValueEqual compares a value from an answer with an expected one the
// way the client sees them: an int64 sent as a string equals the number.
func jsonValueEqual(got, want any) bool {
	if w, ok := want.(float64); ok {
		switch g := got.(type) {
		case float64:
			return g == w
		case string:
			f, err := strconv.ParseFloat(g, 64)
			return err == nil && f == w
		}
		return false
	}
	return reflect.DeepEqual(got, want)
}
