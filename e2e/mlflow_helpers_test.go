package e2e

// Helpers shared by the MLflow compatibility tests (mlflow_*_test.go). They
// speak to the server exactly as MLflow's Python client does
// (mlflow/utils/rest_utils.py call_endpoint): GET endpoints take the request
// message as query arguments, everything else as a JSON body.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// mlflowClient is a running server seen from one (sub)test: failures are
// reported on that test, so one server can serve a whole group of subtests.
type mlflowClient struct {
	t testing.TB
	s *Server
}

// on binds a shared server to the (sub)test t.
func mlflowOn(s *Server, t testing.TB) *mlflowClient {
	t.Helper()
	c := *s
	c.t = t
	return &mlflowClient{t: t, s: &c}
}

// mfGetEndpoints are the MLflow REST endpoints whose proto rule is a GET
// (mlflow/protos/service.proto); the Python client sends their request
// message as query arguments.
var mfGetEndpoints = map[string]bool{
	"experiments/get":                   true,
	"experiments/get-by-name":           true,
	"runs/get":                          true,
	"metrics/get-history":               true,
	"metrics/get-history-bulk-interval": true,
	"artifacts/list":                    true,
}

// query encodes a request message the way `requests` encodes the params dict
// that call_endpoint passes for a GET: lists become repeated keys, Python
// bools become "True"/"False", numbers their decimal text.
func mfQuery(msg map[string]any) string {
	v := url.Values{}
	keys := make([]string, 0, len(msg))
	for k := range msg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch x := msg[k].(type) {
		case nil:
		case []string:
			for _, s := range x {
				v.Add(k, s)
			}
		case []any:
			for _, s := range x {
				v.Add(k, fmt.Sprint(s))
			}
		case bool:
			if x {
				v.Add(k, "True")
			} else {
				v.Add(k, "False")
			}
		default:
			v.Add(k, fmt.Sprint(x))
		}
	}
	return v.Encode()
}

// call sends an MLflow REST request for endpoint (e.g. "runs/get") under
// /api/2.0/mlflow/ and returns the status and decoded answer.
func (c *mlflowClient) call(endpoint string, msg map[string]any) (int, map[string]any) {
	c.t.Helper()
	path := "/api/2.0/mlflow/" + endpoint
	if mfGetEndpoints[endpoint] {
		if q := mfQuery(msg); q != "" {
			path += "?" + q
		}
		return c.s.JSON("GET", path, nil)
	}
	if msg == nil {
		msg = map[string]any{}
	}
	return c.s.JSON("POST", path, msg)
}

// ok is call that fails the test unless the answer is 200.
func (c *mlflowClient) ok(endpoint string, msg map[string]any) map[string]any {
	c.t.Helper()
	status, out := c.call(endpoint, msg)
	if status != http.StatusOK {
		c.t.Fatalf("%s %v: status %d: %v", endpoint, msg, status, out)
	}
	return out
}

// mlflowError checks that an answer is MLflow's error shape
// {"error_code": ..., "message": ...} with the given status and code, and
// that the message contains each of substrs. It returns the message.
func mlflowError(t testing.TB, what string, status int, out map[string]any, wantStatus int, wantCode string, substrs ...string) string {
	t.Helper()
	code, _ := out["error_code"].(string)
	msg, _ := out["message"].(string)
	if status != wantStatus || code != wantCode {
		t.Errorf("%s: got %d %q (%q), want %d %s", what, status, code, msg, wantStatus, wantCode)
	}
	for _, s := range substrs {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: message %q does not contain %q", what, msg, s)
		}
	}
	return msg
}

// fails sends a request that must be refused and checks the refusal.
func (c *mlflowClient) fails(endpoint string, msg map[string]any, wantStatus int, wantCode string, substrs ...string) string {
	c.t.Helper()
	status, out := c.call(endpoint, msg)
	return mlflowError(c.t, endpoint, status, out, wantStatus, wantCode, substrs...)
}

// postRaw posts a JSON body to an MLflow endpoint and returns the raw answer
// text, as the Python tests' _send_rest_tracking_post_request do when they
// look for a substring of response.text.
func (c *mlflowClient) postRaw(endpoint string, body any) (int, string) {
	c.t.Helper()
	status, raw := c.s.Do("POST", "/api/2.0/mlflow/"+endpoint, body)
	return status, string(raw)
}

// badRequestText asserts the Python tests' assert_bad_request: status 400
// and the raw response text containing want.
func (c *mlflowClient) badRequestText(endpoint string, body any, want string) {
	c.t.Helper()
	status, text := c.postRaw(endpoint, body)
	if status != http.StatusBadRequest || !strings.Contains(text, want) {
		c.t.Errorf("POST %s %v:\n got %d %s\nwant 400 with text containing %s", endpoint, body, status, strings.TrimSpace(text), want)
	}
}

var mfNameSeq atomic.Int64

// unique makes an experiment name unique within one server, for ported
// Python tests that each had a fresh server and reuse names.
func uniqueName(name string) string {
	return fmt.Sprintf("%s [%d]", name, mfNameSeq.Add(1))
}

func (c *mlflowClient) createExperiment(name string, extra ...any) string {
	c.t.Helper()
	msg := map[string]any{"name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		msg[extra[i].(string)] = extra[i+1]
	}
	id, _ := c.ok("experiments/create", msg)["experiment_id"].(string)
	if id == "" {
		c.t.Fatalf("experiments/create %q returned no experiment_id", name)
	}
	return id
}

func (c *mlflowClient) getExperiment(id string) map[string]any {
	c.t.Helper()
	return mfObj(c.ok("experiments/get", map[string]any{"experiment_id": id})["experiment"])
}

// createRun sends what MlflowClient.create_run sends (tracking/_tracking_service
// /client.py): user_id from the mlflow.user tag or "unknown", start_time now
// unless given, the tags, and run_name if given. extra overrides fields.
func (c *mlflowClient) createRun(expID string, extra ...any) map[string]any {
	c.t.Helper()
	msg := map[string]any{"experiment_id": expID, "user_id": "unknown", "start_time": time.Now().UnixMilli()}
	for i := 0; i+1 < len(extra); i += 2 {
		msg[extra[i].(string)] = extra[i+1]
	}
	return mfObj(c.ok("runs/create", msg)["run"])
}

func (c *mlflowClient) newRunID(expID string) string {
	c.t.Helper()
	return mfRunID(c.createRun(expID))
}

func (c *mlflowClient) getRun(id string) map[string]any {
	c.t.Helper()
	return mfObj(c.ok("runs/get", map[string]any{"run_uuid": id, "run_id": id})["run"])
}

// logMetric sends what RestStore.log_metric sends; value may be a float64 or
// one of the strings protobuf's JSON printer uses for NaN and infinities.
func (c *mlflowClient) logMetric(runID, key string, value any, timestamp, step int64) {
	c.t.Helper()
	c.ok("runs/log-metric", map[string]any{"run_uuid": runID, "run_id": runID, "key": key,
		"value": value, "timestamp": timestamp, "step": step})
}

func (c *mlflowClient) logParam(runID, key, value string) {
	c.t.Helper()
	c.ok("runs/log-parameter", map[string]any{"run_uuid": runID, "run_id": runID, "key": key, "value": value})
}

func (c *mlflowClient) setTag(runID, key, value string) {
	c.t.Helper()
	c.ok("runs/set-tag", map[string]any{"run_uuid": runID, "run_id": runID, "key": key, "value": value})
}

// setTerminated sends what MlflowClient.set_terminated sends.
func (c *mlflowClient) setTerminated(runID, status string) {
	c.t.Helper()
	if status == "" {
		status = "FINISHED"
	}
	c.ok("runs/update", map[string]any{"run_uuid": runID, "run_id": runID, "status": status, "end_time": time.Now().UnixMilli()})
}

func (c *mlflowClient) metricHistory(runID, key string) []map[string]any {
	c.t.Helper()
	return mfList(c.ok("metrics/get-history", map[string]any{"run_uuid": runID, "run_id": runID, "metric_key": key})["metrics"])
}

// searchRuns sends what RestStore._search_runs sends and returns the runs
// and the next page token.
func (c *mlflowClient) searchRuns(expIDs []string, filter string, view string, maxResults int, orderBy []string, token string) ([]map[string]any, string) {
	c.t.Helper()
	msg := map[string]any{"experiment_ids": expIDs, "run_view_type": view, "max_results": maxResults}
	if filter != "" {
		msg["filter"] = filter
	}
	if len(orderBy) > 0 {
		msg["order_by"] = orderBy
	}
	if token != "" {
		msg["page_token"] = token
	}
	out := c.ok("runs/search", msg)
	next, _ := out["next_page_token"].(string)
	return mfList(out["runs"]), next
}

// searchExperiments sends what RestStore.search_experiments sends.
func (c *mlflowClient) searchExperiments(view string, maxResults int, filter string, orderBy []string, token string) ([]string, string) {
	c.t.Helper()
	msg := map[string]any{"view_type": view}
	if maxResults > 0 {
		msg["max_results"] = maxResults
	} else {
		msg["max_results"] = 1000 // SEARCH_MAX_RESULTS_DEFAULT in MlflowClient.search_experiments
	}
	if filter != "" {
		msg["filter"] = filter
	}
	if len(orderBy) > 0 {
		msg["order_by"] = orderBy
	}
	if token != "" {
		msg["page_token"] = token
	}
	out := c.ok("experiments/search", msg)
	var names []string
	for _, e := range mfList(out["experiments"]) {
		names = append(names, mfStr(e["name"]))
	}
	next, _ := out["next_page_token"].(string)
	return names, next
}

// --- JSON helpers ---

func mfObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func mfList(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		out = append(out, mfObj(x))
	}
	return out
}

func mfStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// dig walks a decoded JSON value along a dotted path of keys.
func mfDig(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mfRunID(run map[string]any) string { return mfStr(mfDig(run, "info.run_id")) }

// kv turns a list of {"key","value"} objects (params, tags) into a map.
func mfKV(v any) map[string]string {
	out := map[string]string{}
	for _, e := range mfList(v) {
		out[mfStr(e["key"])] = mfStr(e["value"])
	}
	return out
}

func mfTags(run map[string]any) map[string]string   { return mfKV(mfDig(run, "data.tags")) }
func mfParams(run map[string]any) map[string]string { return mfKV(mfDig(run, "data.params")) }

// num reads a proto double as MLflow's client would: JSON numbers, and the
// strings "NaN", "Infinity" and "-Infinity".
func mfNum(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		switch x {
		case "NaN":
			return math.NaN()
		case "Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
		f, err := strconv.ParseFloat(x, 64)
		if err == nil {
			return f
		}
	}
	return math.NaN()
}

// int64Of reads a proto int64, sent as a number or a string.
func mfInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), x == math.Trunc(x)
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// runMetrics maps metric key to value for a run's latest metrics.
func mfMetrics(run map[string]any) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mfList(mfDig(run, "data.metrics")) {
		out[mfStr(m["key"])] = mfNum(m["value"])
	}
	return out
}

// mfMetric is a metric point the way the Python tests compare them.
type mfMetric struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
	RunID     string
}

func mfTuples(ms []map[string]any) []mfMetric {
	out := make([]mfMetric, 0, len(ms))
	for _, m := range ms {
		ts, _ := mfInt(m["timestamp"])
		step, _ := mfInt(m["step"])
		out = append(out, mfMetric{Key: mfStr(m["key"]), Value: mfNum(m["value"]), Timestamp: ts, Step: step, RunID: mfStr(m["run_id"])})
	}
	return out
}

func mfEqualJSON(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(ra, &x)
	json.Unmarshal(rb, &y)
	return reflect.DeepEqual(x, y)
}

// rawGet sends a GET without following redirects and returns status,
// headers and body.
func mfRaw(t testing.TB, method, rawURL string, body io.Reader, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := mfNoRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

var mfNoRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// artifactPath turns a run's artifact URI (mlflow-artifacts:/<path>) into
// the path the artifact proxy serves it under, as MlflowArtifactsRepository
// resolves it against the tracking URI.
func mfArtifactPath(t testing.TB, artifactURI string) string {
	t.Helper()
	p, ok := strings.CutPrefix(artifactURI, "mlflow-artifacts:/")
	if !ok {
		t.Fatalf("artifact URI %q is not served by the artifact proxy (want mlflow-artifacts:/...)", artifactURI)
	}
	return strings.TrimPrefix(p, "/")
}

// putArtifact uploads content as HttpArtifactRepository.log_artifact does:
// PUT <proxy>/<path> with the file as body and its guessed MIME type.
func (c *mlflowClient) putArtifact(path, content, contentType string) {
	c.t.Helper()
	if contentType == "" {
		contentType = "text/plain"
	}
	status, _, body := mfRaw(c.t, "PUT", c.s.URL+"/api/2.0/mlflow-artifacts/artifacts/"+path, strings.NewReader(content), "Content-Type", contentType)
	if status != http.StatusOK {
		c.t.Fatalf("PUT artifact %s: %d %s", path, status, body)
	}
}

// listProxy lists a directory through the artifact proxy the way
// HttpArtifactRepository.list_artifacts does and returns the answer.
func (c *mlflowClient) listProxy(path string) (int, map[string]any) {
	c.t.Helper()
	p := "/api/2.0/mlflow-artifacts/artifacts"
	if path != "" {
		p += "?" + url.Values{"path": {path}}.Encode()
	}
	return c.s.JSON("GET", p, nil)
}

// clientListArtifacts is MlflowClient.list_artifacts(run_id, path) for a run
// whose artifacts the server proxies: it lists <root>/<path> through the
// proxy and joins path onto each returned name, sorted by path.
func (c *mlflowClient) clientListArtifacts(runID, path string) []string {
	c.t.Helper()
	root := mfArtifactPath(c.t, mfStr(mfDig(c.getRun(runID), "info.artifact_uri")))
	p := root
	if path != "" {
		p = root + "/" + path
	}
	status, out := c.listProxy(p)
	if status != http.StatusOK {
		c.t.Fatalf("list artifacts %q of run %s: %d %v", path, runID, status, out)
	}
	var names []string
	for _, f := range mfList(out["files"]) {
		name := mfStr(f["path"])
		if path != "" {
			name = path + "/" + name
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// download GETs a file through the artifact proxy.
func (c *mlflowClient) download(path string) (int, http.Header, string) {
	c.t.Helper()
	status, h, body := mfRaw(c.t, "GET", c.s.URL+"/api/2.0/mlflow-artifacts/artifacts/"+path, nil)
	return status, h, string(body)
}

// mfMatches reports whether s matches the regular expression re, as
// pytest.raises(match=...) checks (re.search).
func mfMatches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func mfJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
