package mlflow

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// newUIServer serves the MLflow routes over a SQLite store and a local
// artifact folder, which it returns with the folder around it.
func newUIServer(t *testing.T) (srv *httptest.Server, tr *tracking.Service, dir, root string) {
	t.Helper()
	ctx := context.Background()
	tr, err := tracking.New(ctx, storetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	root = filepath.Join(dir, "artifacts")
	artifacts, err := blob.Open(ctx, root, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { artifacts.Close() })
	mux := http.NewServeMux()
	(&Handler{Tracking: tr, Artifacts: artifacts, MaxBodyBytes: 1 << 20}).Register(mux)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, tr, dir, root
}

func send(t *testing.T, method, u, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// files lists every file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestUploadArtifactStaysInRunRoot(t *testing.T) {
	srv, tr, dir, _ := newUIServer(t)
	run, err := tr.CreateRun(context.Background(), tracking.CreateRunRequest{ExperimentID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	upload := func(p, body string) (int, map[string]any) {
		t.Helper()
		return send(t, "POST", srv.URL+"/ajax-api/2.0/mlflow/upload-artifact?"+url.Values{"run_uuid": {id}, "path": {p}}.Encode(), "", body)
	}
	for _, p := range []string{
		"../x", "a/../../x", "../../../../tmp/x", "/etc/x", "//x", `..\x`, `a\..\..\x`, "%2e%2e/x", "%252e%252e/x",
		"file:///tmp/x", "C:/x", ".", "./x", "a/./x", "x/.", "a//x", "x?y", "x#y", "x\x00y", "\uff0e\uff0e/x",
	} {
		if status, out := upload(p, "evil"); status != http.StatusBadRequest || out["error_code"] != "INVALID_PARAMETER_VALUE" {
			t.Errorf("upload %q: %d %v, want 400", p, status, out)
		}
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("refused uploads wrote %v", got)
	}
	if status, out := upload("dir/f.txt", "hello"); status != http.StatusOK {
		t.Fatalf("upload dir/f.txt: %d %v", status, out)
	}
	if got, want := files(t, dir), []string{"artifacts/0/" + id + "/artifacts/dir/f.txt"}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("files = %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "artifacts/0", id, "artifacts/dir/f.txt")); string(b) != "hello" {
		t.Errorf("uploaded content %q", b)
	}

	// A final "." in a query-argument path names the directory.
	for p, want := range map[string]string{"dir/.": "dir/f.txt", ".": "dir"} {
		status, out := send(t, "GET", srv.URL+"/api/2.0/mlflow/artifacts/list?"+url.Values{"run_id": {id}, "path": {p}}.Encode(), "", "")
		if fs, _ := out["files"].([]any); status != http.StatusOK || len(fs) != 1 || fs[0].(map[string]any)["path"] != want {
			t.Errorf("artifacts/list path=%q: %d %v, want one file %s", p, status, out, want)
		}
	}
	proxyRoot := "0/" + id + "/artifacts"
	for _, p := range []string{proxyRoot + "/dir/.", proxyRoot + "/."} {
		if status, out := send(t, "GET", srv.URL+"/api/2.0/mlflow-artifacts/artifacts?"+url.Values{"path": {p}}.Encode(), "", ""); status != http.StatusOK || out["files"] == nil {
			t.Errorf("proxy list path=%q: %d %v", p, status, out)
		}
	}
	if status, out := send(t, "GET", srv.URL+"/get-artifact?"+url.Values{"run_id": {id}, "path": {"dir/."}}.Encode(), "", ""); status < 400 || status >= 500 {
		t.Errorf("get-artifact of a directory: %d %v, want a 4xx", status, out)
	}

	for _, tc := range []struct {
		q, body, want string
	}{
		{"", "x", "Request must specify run_uuid."},
		{"run_uuid=" + id, "x", "Request must specify path."},
		{"run_uuid=" + id + "&path=", "x", "Request must specify path."},
		{"run_uuid=" + id + "&path=f", "", "Request must specify data."},
		{"run_uuid=" + id + "&path=f", strings.Repeat("x", maxUIUploadBytes+1), "Artifact size is too large. Max size is 10MB."},
	} {
		status, out := send(t, "POST", srv.URL+"/ajax-api/2.0/mlflow/upload-artifact?"+tc.q, "", tc.body)
		if status != http.StatusBadRequest || out["message"] != tc.want {
			t.Errorf("upload-artifact?%s: %d %v, want 400 %q", tc.q, status, out, tc.want)
		}
	}
	if status, out := send(t, "POST", srv.URL+"/ajax-api/2.0/mlflow/upload-artifact?run_uuid=0123456789abcdef0123456789abcdef&path=f", "", "x"); status != http.StatusNotFound {
		t.Errorf("unknown run: %d %v", status, out)
	}
	// MLflow serves it under /ajax-api only.
	if status, _ := upload("g.txt", "x"); status != http.StatusOK {
		t.Errorf("ajax upload: %d", status)
	}
	if status, out := send(t, "POST", srv.URL+"/api/2.0/mlflow/upload-artifact?run_uuid="+id+"&path=g.txt", "", "x"); status != http.StatusNotFound || out["error_code"] != "ENDPOINT_NOT_FOUND" {
		t.Errorf("/api upload-artifact: %d %v", status, out)
	}
}

func TestSearchDatasetsWantsJSON(t *testing.T) {
	srv, _, _, _ := newUIServer(t)
	u := srv.URL + "/ajax-api/2.0/mlflow/experiments/search-datasets"
	for _, tc := range []struct{ ct, want string }{
		{"", "Bad Request. Content-Type header is missing."},
		{"text/plain", "Bad Request. Content-Type must be one of ['application/json']."},
		{"application/x-www-form-urlencoded", "Bad Request. Content-Type must be one of ['application/json']."},
	} {
		if status, out := send(t, "POST", u, tc.ct, `{"experiment_ids":["0"]}`); status != http.StatusBadRequest || out["message"] != tc.want {
			t.Errorf("Content-Type %q: %d %v", tc.ct, status, out)
		}
	}
	if status, out := send(t, "POST", u, "application/json; charset=utf-8", `{"experiment_ids":["0"]}`); status != http.StatusOK || len(out) != 0 {
		t.Errorf("no datasets: %d %v, want 200 {}", status, out)
	}
}

func TestMetricHistoryBulkRoute(t *testing.T) {
	srv, tr, _, _ := newUIServer(t)
	ctx := context.Background()
	run, err := tr.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	for i := range 3 {
		if err := tr.LogMetric(ctx, id, tracking.Metric{Key: "m", Value: float64(i), Timestamp: 1, Step: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, prefix := range Prefixes {
		status, out := send(t, "GET", srv.URL+prefix+"metrics/get-history-bulk?run_id="+id+"&metric_key=m&max_results=2", "", "")
		ms, _ := out["metrics"].([]any)
		if status != http.StatusOK || len(ms) != 2 || ms[1].(map[string]any)["run_id"] != id {
			t.Errorf("%sget-history-bulk: %d %v", prefix, status, out)
		}
	}
	status, out := send(t, "GET", srv.URL+"/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+id+"&metric_key=none", "", "")
	if ms, ok := out["metrics"].([]any); status != http.StatusOK || !ok || len(ms) != 0 {
		t.Errorf("no points: %d %v, want an empty metrics list", status, out)
	}
	status, out = send(t, "GET", srv.URL+"/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+id+"&metric_key=m&max_results=x", "", "")
	if status != http.StatusBadRequest {
		t.Errorf("max_results=x: %d %v", status, out)
	}
	// get-history-bulk-interval tells an absent max_results from 0.
	h := &Handler{Tracking: tr}
	sampled := httptest.NewServer(h.serve(h.getSampledMetricHistory))
	defer sampled.Close()
	interval := sampled.URL + "?run_ids=" + id + "&metric_key=m"
	if status, out := send(t, "GET", interval, "", ""); status != http.StatusOK || len(out["metrics"].([]any)) != 3 {
		t.Errorf("bulk-interval without max_results: %d %v", status, out)
	}
	if status, out := send(t, "GET", interval+"&max_results=0", "", ""); status != http.StatusBadRequest || out["message"] != "max_results must be between 1 and 2500." {
		t.Errorf("bulk-interval max_results=0: %d %v", status, out)
	}
}

func TestDotDir(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool // CleanKey accepts the result
	}{
		{".", "", true}, {"a/.", "a", true}, {"a/b/.", "a/b", true}, {"a", "a", true}, {"", "", true},
		// Left unchanged, or reduced to a path CleanKey still refuses.
		{"/.", "/.", false}, {"a//.", "a//.", false}, {"./.", ".", false}, {"../.", "..", false},
		{"a/../.", "a/..", false}, {"a/./b", "a/./b", false}, {"./a", "./a", false}, {"a/..", "a/..", false},
		{"a/./", "a/./", false}, {"a/.b", "a/.b", true},
	} {
		got := dotDir(tc.in)
		if got != tc.want {
			t.Errorf("dotDir(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if _, err := blob.CleanKey(got); (err == nil) != tc.ok {
			t.Errorf("CleanKey(dotDir(%q)) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestArtifactContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.txt": "text/plain", "b.pkl": "application/octet-stream", "c.png": "image/png", "d.pdf": "application/pdf",
		"MLmodel": "text/plain", "mlproject": "text/plain", "MLproject": "text/plain", "conda.yaml": "text/plain",
		"requirements.txt": "text/plain", "x.json": "text/plain", "x.py": "text/plain", "x.js": "text/plain",
		"x.xml": "text/plain", "x.md": "text/plain", "x.csv": "text/plain", "model.onnx": "application/octet-stream",
		"noext": "application/octet-stream", ".bashrc": "application/octet-stream", "txt": "text/plain",
		// Never anything a browser would run in the UI's origin.
		"x.html": "application/octet-stream", "x.htm": "application/octet-stream", "x.svg": "application/octet-stream",
		"x.mjs": "application/octet-stream", "x.xhtml": "application/octet-stream", "X.HTML": "application/octet-stream",
		"x.JS": "application/octet-stream",
	} {
		if got := artifactContentType(name); got != want {
			t.Errorf("artifactContentType(%q) = %q, want %q", name, got, want)
		}
	}
}
