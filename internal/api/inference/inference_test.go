package inference

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

// rows of the small model (radius, texture, perimeter, area), one with a
// missing value.
var smallRows = [][]float32{
	{17.99, 10.38, 122.8, 1001},
	{13.54, 14.36, 87.46, 566.3},
	{12.45, float32(math.NaN()), 82.57, 477.1},
}

var smallNames = []string{"radius", "texture", "perimeter", "area"}

// tensorsBody is an OIP request with one input per column.
func tensorsBody(names []string, rows [][]float32, datatype string, nested bool) string {
	var ins []string
	for j, n := range names {
		var vals []string
		for _, r := range rows {
			v := jsonNumber(r[j])
			if nested {
				v = "[" + v + "]"
			}
			vals = append(vals, v)
		}
		shape := fmt.Sprintf("[%d]", len(rows))
		if nested {
			shape = fmt.Sprintf("[%d, 1]", len(rows))
		}
		ins = append(ins, fmt.Sprintf(`{"name":%q,"shape":%s,"datatype":%q,"data":[%s]}`, n, shape, datatype, strings.Join(vals, ",")))
	}
	return `{"inputs":[` + strings.Join(ins, ",") + `]}`
}

// matrixBody is an OIP request with one [N, F] input.
func matrixBody(rows [][]float32, nested bool) string {
	var vals []string
	for _, r := range rows {
		var rv []string
		for _, v := range r {
			rv = append(rv, jsonNumber(v))
		}
		if nested {
			vals = append(vals, "["+strings.Join(rv, ",")+"]")
		} else {
			vals = append(vals, rv...)
		}
	}
	return fmt.Sprintf(`{"id":"req-1","inputs":[{"name":"x","shape":[%d,%d],"datatype":"FP32","data":[%s]}]}`, len(rows), len(rows[0]), strings.Join(vals, ","))
}

type oipResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version"`
	ID           *string        `json:"id"`
	Parameters   map[string]any `json:"parameters"`
	Outputs      []struct {
		Name     string          `json:"name"`
		Datatype string          `json:"datatype"`
		Shape    []int           `json:"shape"`
		Data     json.RawMessage `json:"data"`
	} `json:"outputs"`
}

func TestOIPInferMatchesPredict(t *testing.T) {
	h := newHarness(t, Options{})
	f := loadFixtures(t)
	want := predict(t, f.small.Model, smallRows)
	cases := []struct {
		name, path, body, format, version string
	}{
		{"tensors FP32", "/v2/models/small/infer", tensorsBody(smallNames, smallRows, "FP32", false), "tensors", "3"},
		{"tensors FP64 [N,1] nested", "/v2/models/small/infer", tensorsBody(smallNames, smallRows, "FP64", true), "tensors", "3"},
		{"tensors reordered", "/v2/models/small/infer", tensorsBody([]string{"area", "radius", "texture", "perimeter"}, reorder(smallRows, []int{3, 0, 1, 2}), "FP32", false), "tensors", "3"},
		{"matrix flat", "/v2/models/small/infer", matrixBody(smallRows, false), "matrix", "3"},
		{"matrix nested", "/v2/models/small/infer", matrixBody(smallRows, true), "matrix", "3"},
		{"explicit version", "/v2/models/small/versions/2/infer", matrixBody(smallRows, false), "matrix", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("POST", tc.path, "application/json", tc.body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp oipResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("%v: %s", err, w.Body)
			}
			if resp.ModelName != "small" || resp.ModelVersion != tc.version {
				t.Errorf("model %q version %q", resp.ModelName, resp.ModelVersion)
			}
			if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "prediction" || resp.Outputs[0].Datatype != "FP32" || fmt.Sprint(resp.Outputs[0].Shape) != "[3]" {
				t.Fatalf("outputs %s", w.Body)
			}
			if got := float32s(t, resp.Outputs[0].Data); !sameFloats(got, want) {
				t.Errorf("predictions %v, Model.Predict %v", got, want)
			}
			if got := h.eps["small"].lastRequest().Format; tc.version == "3" && got != tc.format {
				t.Errorf("format %q, want %q", got, tc.format)
			}
		})
	}
	// The id is echoed; without one, none is returned.
	w := h.do("POST", "/v2/models/small/infer", "", matrixBody(smallRows, false))
	var resp oipResponse
	json.Unmarshal(w.Body.Bytes(), &resp)
	if resp.ID == nil || *resp.ID != "req-1" {
		t.Errorf("id not echoed: %s", w.Body)
	}
	w = h.do("POST", "/v2/models/small/infer", "", tensorsBody(smallNames, smallRows, "FP32", false), "X-Request-Id", "hdr-7")
	if strings.Contains(w.Body.String(), `"id"`) {
		t.Errorf("id invented: %s", w.Body)
	}
	if got := h.eps["small"].lastRequest(); got.ID != "hdr-7" || got.Protocol != ProtocolOIP || got.Rows != 3 || !strings.Contains(string(got.Body), `"radius"`) {
		t.Errorf("request seen by the endpoint: %+v", got)
	}
}

func reorder(rows [][]float32, order []int) [][]float32 {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		for _, j := range order {
			out[i] = append(out[i], r[j])
		}
	}
	return out
}

func TestOIPCategoricalAndMultiOutput(t *testing.T) {
	h := newHarness(t, Options{})
	f := loadFixtures(t)
	nan := float32(math.NaN())
	// blue=0, green=1, red=2; "purple" is unknown and so missing.
	want := predict(t, f.cat.Model, [][]float32{{4, 0}, {7, 1}, {nan, 2}, {6, nan}, {5, nan}})
	bodies := map[string]string{
		"BYTES levels": `{"inputs":[{"name":"size","shape":[5],"datatype":"FP32","data":[4,7,null,6,5]},
			{"name":"color","shape":[5],"datatype":"BYTES","data":["blue","green","red","purple",null]}]}`,
		"INT64 codes": `{"inputs":[{"name":"color","shape":[5],"datatype":"INT64","data":[0,1,2,null,null]},
			{"name":"size","shape":[5],"datatype":"FP64","data":[4,7,null,6,5]}]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			w := h.do("POST", "/v2/models/cat/infer", "application/json", body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp oipResponse
			json.Unmarshal(w.Body.Bytes(), &resp)
			if got := float32s(t, resp.Outputs[0].Data); !sameFloats(got, want) {
				t.Errorf("predictions %v, Model.Predict %v", got, want)
			}
		})
	}

	rows := [][]float32{{1, 1}, {8, 2}, {3, 9}}
	probs := predict(t, f.multi.Model, rows)
	w := h.do("POST", "/v2/models/multi/infer", "application/json",
		`{"inputs":[{"name":"m","shape":[3,2],"datatype":"FP32","data":[[1,1],[8,2],[3,9]]}],"outputs":[{"name":"probability_2"},{"name":"probability_0"}]}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp oipResponse
	json.Unmarshal(w.Body.Bytes(), &resp)
	if len(resp.Outputs) != 2 || resp.Outputs[0].Name != "probability_2" || resp.Outputs[1].Name != "probability_0" {
		t.Fatalf("outputs not filtered in order: %s", w.Body)
	}
	for n, k := range []int{2, 0} {
		got := float32s(t, resp.Outputs[n].Data)
		for r := range rows {
			if got[r] != probs[r*3+k] {
				t.Errorf("row %d class %d: %v, Model.Predict %v", r, k, got[r], probs[r*3+k])
			}
		}
	}
}

func TestMLflowInvocationsMatchPredict(t *testing.T) {
	h := newHarness(t, Options{})
	f := loadFixtures(t)
	want := predict(t, f.small.Model, smallRows)
	var split, recs, lists, cols []string
	for _, r := range smallRows {
		var vals, rec []string
		for j, v := range r {
			vals = append(vals, jsonNumber(v))
			if v == v { // a record without a key is a missing value
				rec = append(rec, fmt.Sprintf("%q:%s", smallNames[j], jsonNumber(v)))
			}
		}
		split = append(split, "["+strings.Join(vals, ",")+"]")
		recs = append(recs, "{"+strings.Join(rec, ",")+"}")
		lists = append(lists, "["+strings.Join(vals, ",")+"]")
	}
	for j, n := range smallNames {
		var vals []string
		for _, r := range smallRows {
			vals = append(vals, jsonNumber(r[j]))
		}
		cols = append(cols, fmt.Sprintf("%q:[%s]", n, strings.Join(vals, ",")))
	}
	// Columns in another order than the model's.
	var splitReordered []string
	for _, r := range smallRows {
		splitReordered = append(splitReordered, fmt.Sprintf("[%s,%s,%s,%s]", jsonNumber(r[3]), jsonNumber(r[2]), jsonNumber(r[1]), jsonNumber(r[0])))
	}
	csv := "area,radius,texture,perimeter\n1001,17.99,10.38,122.8\n566.3,13.54,14.36,87.46\n477.1,12.45,,82.57\n"
	cases := []struct {
		name, path, ctype, body, format string
	}{
		{"dataframe_split", "/invocations", "application/json", `{"dataframe_split":{"columns":["radius","texture","perimeter","area"],"index":[0,1,2],"data":[` + strings.Join(split, ",") + `]}}`, "dataframe_split"},
		{"dataframe_split reordered, data first", "/invocations", "application/json; charset=utf-8", `{"dataframe_split":{"data":[` + strings.Join(splitReordered, ",") + `],"columns":["area","perimeter","texture","radius"]}}`, "dataframe_split"},
		{"dataframe_split positional", "/invocations", "application/json", `{"dataframe_split":{"data":[` + strings.Join(split, ",") + `]}}`, "dataframe_split"},
		{"dataframe_records", "/deployments/small/invocations", "application/json", `{"dataframe_records":[` + strings.Join(recs, ",") + `]}`, "dataframe_records"},
		{"instances rows", "/invocations", "application/json", `{"instances":[` + strings.Join(lists, ",") + `]}`, "instances"},
		{"instances records", "/invocations", "application/json", `{"instances":[` + strings.Join(recs, ",") + `]}`, "instances"},
		{"inputs rows", "/invocations", "application/json", `{"inputs":[` + strings.Join(lists, ",") + `]}`, "inputs"},
		{"inputs columns", "/invocations", "", `{"inputs":{` + strings.Join(cols, ",") + `},"params":{"threshold":0.5}}`, "inputs"},
		{"csv", "/deployments/small/invocations", "text/csv", csv, "csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Standalone /invocations serves the only model there is.
			hh := h
			if tc.path == "/invocations" {
				hh = newHarness(t, Options{})
				hh.res.byName = map[string]*testEndpoint{"small": hh.eps["small"]}
			}
			w := hh.do("POST", tc.path, tc.ctype, tc.body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp struct {
				Predictions json.RawMessage `json:"predictions"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("%v: %s", err, w.Body)
			}
			if got := float32s(t, resp.Predictions); !sameFloats(got, want) {
				t.Errorf("predictions %v, Model.Predict %v", got, want)
			}
			last := hh.eps["small"].lastRequest()
			if last.Format != tc.format || last.Protocol != ProtocolMLflow {
				t.Errorf("format %q protocol %q", last.Format, last.Protocol)
			}
			if tc.name == "inputs columns" && fmt.Sprint(last.Parameters) != "map[threshold:0.5]" {
				t.Errorf("params %v", last.Parameters)
			}
		})
	}
}

func TestMLflowCategoricalAndMultiOutput(t *testing.T) {
	h := newHarness(t, Options{})
	f := loadFixtures(t)
	nan := float32(math.NaN())
	want := predict(t, f.cat.Model, [][]float32{{4, 0}, {7, 1}, {nan, 2}, {6, nan}})
	for name, tc := range map[string]struct{ ctype, body string }{
		"records":  {"application/json", `{"dataframe_records":[{"size":4,"color":"blue"},{"size":7,"color":"green"},{"color":"red"},{"size":6,"color":"purple"}]}`},
		"codes":    {"application/json", `{"instances":[[4,0],[7,1],[null,2],[6,null]]}`},
		"csv text": {"text/csv", "color,size\nblue,4\ngreen,7\nred,\npurple,6\n"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.do("POST", "/deployments/cat/invocations", tc.ctype, tc.body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp struct{ Predictions json.RawMessage }
			json.Unmarshal(w.Body.Bytes(), &resp)
			if got := float32s(t, resp.Predictions); !sameFloats(got, want) {
				t.Errorf("predictions %v, Model.Predict %v", got, want)
			}
		})
	}
	rows := [][]float32{{1, 1}, {8, 2}}
	probs := predict(t, f.multi.Model, rows)
	w := h.do("POST", "/deployments/multi/invocations", "application/json", `{"inputs":[[1,1],[8,2]]}`)
	var resp struct{ Predictions [][]json.Number }
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp.Predictions) != 2 {
		t.Fatalf("%v: %s", err, w.Body)
	}
	for r, row := range resp.Predictions {
		var raw []string
		for _, n := range row {
			raw = append(raw, string(n))
		}
		got := float32s(t, json.RawMessage("["+strings.Join(raw, ",")+"]"))
		if !sameFloats(got, probs[r*3:r*3+3]) {
			t.Errorf("row %d: %v, Model.Predict %v", r, got, probs[r*3:r*3+3])
		}
	}
}

func TestOIPMetadataAndHealth(t *testing.T) {
	h := newHarness(t, Options{ServerVersion: "0.9.0"})
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/v2/health/live", 200, `{"live":true}`},
		{"/v2/health/ready", 200, `{"ready":true}`},
		{"/v2", 200, `{"name":"slipway","version":"0.9.0","extensions":[]}`},
		{"/v2/models/small", 200, `{"name":"small","versions":["2","3"],"platform":"xgboost","inputs":[{"name":"radius","datatype":"FP32","shape":[-1]},{"name":"texture","datatype":"FP32","shape":[-1]},{"name":"perimeter","datatype":"FP32","shape":[-1]},{"name":"area","datatype":"FP32","shape":[-1]}],"outputs":[{"name":"prediction","datatype":"FP32","shape":[-1]}]}`},
		{"/v2/models/cat", 200, `{"name":"cat","platform":"xgboost","inputs":[{"name":"size","datatype":"FP32","shape":[-1]},{"name":"color","datatype":"BYTES","shape":[-1]}],"outputs":[{"name":"prediction","datatype":"FP32","shape":[-1]}]}`},
		{"/v2/models/small/versions/2/ready", 200, `{"name":"small","ready":true}`},
		{"/v2/models/small/ready", 200, `{"name":"small","ready":true}`},
		{"/v2/models/loading/ready", 503, `{"name":"loading","ready":false}`},
		{"/v2/models/nope", 404, `{"error":"no model \"nope\""}`},
		{"/v2/models/small/versions/9", 404, `{"error":"model \"small\" has no version \"9\""}`},
		{"/v2/nothing/here", 404, `{"error":"no endpoint GET /v2/nothing/here (or the method is not allowed there)"}`},
	}
	for _, tc := range cases {
		w := h.do("GET", tc.path, "", "")
		if w.Code != tc.status || strings.TrimSpace(w.Body.String()) != tc.body {
			t.Errorf("GET %s: %d %s\nwant %d %s", tc.path, w.Code, w.Body, tc.status, tc.body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", tc.path, ct)
		}
	}
	h.res.notReady = true
	if w := h.do("GET", "/v2/health/ready", "", ""); w.Code != 503 {
		t.Errorf("not ready: %d", w.Code)
	}
	if w := h.do("GET", "/ping", "", ""); w.Code != 503 {
		t.Errorf("ping not ready: %d", w.Code)
	}
}

// Requests in parallel share pooled state; each must get its own answer.
func TestConcurrentRequests(t *testing.T) {
	h := newHarness(t, Options{})
	f := loadFixtures(t)
	type job struct {
		path, ctype, body string
		want              []float32
	}
	var jobs []job
	for i := range smallRows {
		rows := smallRows[i:]
		want := predict(t, f.small.Model, rows)
		jobs = append(jobs,
			job{"/v2/models/small/infer", "application/json", matrixBody(rows, i%2 == 0), want},
			job{"/v2/models/small/infer", "application/json", tensorsBody(smallNames, rows, "FP64", i%2 == 1), want})
	}
	jobs = append(jobs, job{"/deployments/cat/invocations", "application/json", `{"dataframe_records":[{"size":4,"color":"blue"}]}`, predict(t, f.cat.Model, [][]float32{{4, 0}})})
	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 60; i++ {
				j := jobs[(g+i)%len(jobs)]
				w := h.do("POST", j.path, j.ctype, j.body)
				if w.Code != http.StatusOK {
					errc <- fmt.Errorf("%s: %d %s", j.path, w.Code, w.Body)
					return
				}
				var data json.RawMessage
				if strings.HasPrefix(j.path, "/v2/") {
					var resp oipResponse
					json.Unmarshal(w.Body.Bytes(), &resp)
					data = resp.Outputs[0].Data
				} else {
					var resp struct{ Predictions json.RawMessage }
					json.Unmarshal(w.Body.Bytes(), &resp)
					data = resp.Predictions
				}
				if got, err := parseFloat32s(data); err != nil || !sameFloats(got, j.want) {
					errc <- fmt.Errorf("%s %s: %v, want %v", j.path, j.body, got, j.want)
					return
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

// The routing header reaches the resolver and the endpoint, and
// X-Request-Id the endpoint, whatever case the client and the
// configuration write the header names in.
func TestRoutingKeyAndRequestID(t *testing.T) {
	for _, configured := range []string{"", "x-user-ID"} {
		h := newHarness(t, Options{RoutingHeader: configured})
		sent := strings.ToLower(configured)
		if configured == "" {
			sent = "x-slipway-routing-key"
		}
		body := strings.Replace(matrixBody(smallRows, false), `"id":"req-1",`, "", 1) // an id in the body would win
		w := h.do("POST", "/v2/models/small/infer", "application/json", body, sent, "user-7", "x-request-id", "req-9")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		got := h.eps["small"].lastRequest()
		h.res.mu.Lock()
		key := h.res.lastKey
		h.res.mu.Unlock()
		if got.RoutingKey != "user-7" || key != "user-7" || got.ID != "req-9" {
			t.Errorf("routing header %q sent as %q: the endpoint saw key %q and id %q, the resolver key %q", configured, sent, got.RoutingKey, got.ID, key)
		}
	}
}
