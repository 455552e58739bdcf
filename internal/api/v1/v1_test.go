package v1_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/slipwayml/slipway/internal/api/v1"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

func newServer(t *testing.T, role string) *httptest.Server {
	t.Helper()
	b, err := blob.Open(context.Background(), t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	mux := http.NewServeMux()
	(&v1.Handler{Datasets: datasets.New(storetest.SQLite(t), b)}).Register(mux)
	var h http.Handler = mux
	if role != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Username: "u", Role: role})))
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	} else {
		out = map[string]any{"body": string(raw)}
	}
	return resp.StatusCode, out
}

// wantError checks the native envelope and that the message mentions want.
func wantError(t *testing.T, status int, out map[string]any, wantStatus int, code, want string) {
	t.Helper()
	e, _ := out["error"].(map[string]any)
	if status != wantStatus || e == nil || e["code"] != code || !strings.Contains(e["message"].(string), want) {
		t.Fatalf("got %d %v; want %d %s mentioning %q", status, out, wantStatus, code, want)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestDatasetsAPI(t *testing.T) {
	srv := newServer(t, "")
	content := "a,b\n1,2\n"
	d := sum(content)
	manifest := `{"files":[{"path":"t.csv","digest":"` + d + `","size":8}],"message":"hi"}`

	st, out := do(t, srv, "POST", "/api/v1/datasets/ds/versions", manifest)
	wantError(t, st, out, 409, "failed_precondition", "not in the object store")
	st, out = do(t, srv, "POST", "/api/v1/objects/missing", `{"objects":[{"digest":"`+d+`","size":8}]}`)
	if st != 200 || len(out["missing"].([]any)) != 1 {
		t.Fatalf("missing: %d %v", st, out)
	}
	st, out = do(t, srv, "PUT", "/api/v1/objects/sha256/"+d, "a,b\n1,3\n")
	wantError(t, st, out, 400, "invalid_argument", "does not match digest")
	st, out = do(t, srv, "GET", "/api/v1/objects/sha256/"+d, "")
	wantError(t, st, out, 404, "not_found", d)
	if st, out = do(t, srv, "PUT", "/api/v1/objects/sha256/"+d, content); st != 201 || out["stored"] != true {
		t.Fatalf("put: %d %v", st, out)
	}
	if st, out = do(t, srv, "PUT", "/api/v1/objects/sha256/"+d, content); st != 201 {
		t.Fatalf("put again (harmless): %d %v", st, out)
	}
	if st, out = do(t, srv, "POST", "/api/v1/datasets/ds/versions", manifest); st != 201 || out["created"] != true {
		t.Fatalf("commit: %d %v", st, out)
	}
	if st, out = do(t, srv, "POST", "/api/v1/datasets/ds/versions", manifest); st != 200 || out["created"] != false {
		t.Fatalf("commit again: %d %v", st, out)
	}
	if st, out = do(t, srv, "GET", "/api/v1/datasets/ds/versions/v1", ""); st != 200 || len(out["files"].([]any)) != 1 {
		t.Fatalf("version: %d %v", st, out)
	}
	if st, out = do(t, srv, "GET", "/api/v1/datasets/ds/versions/latest/files/t.csv", ""); st != 200 || out["body"] != content {
		t.Fatalf("file: %d %v", st, out)
	}
	if st, out = do(t, srv, "GET", "/api/v1/datasets", ""); st != 200 || len(out["datasets"].([]any)) != 1 {
		t.Fatalf("list: %d %v", st, out)
	}
	if st, out = do(t, srv, "GET", "/api/v1/datasets/ds/diff?from=1&to=latest", ""); st != 200 || out["unchanged"] != 1.0 {
		t.Fatalf("diff: %d %v", st, out)
	}
}

func TestBadInput(t *testing.T) {
	srv := newServer(t, "")
	cases := []struct {
		method, path, body string
		status             int
		code, want         string
	}{
		{"POST", "/api/v1/datasets/ds/versions", `{"files":[{"path":"a","digest":"x","size":"big"}]}`, 400, "invalid_argument", "files.size"},
		{"POST", "/api/v1/datasets/ds/versions", `{"files":[],"extra":1}`, 400, "invalid_argument", `unknown field "extra"`},
		{"POST", "/api/v1/datasets/ds/versions", `{"files":[]} {}`, 400, "invalid_argument", "nothing after it"},
		{"POST", "/api/v1/datasets/ds/versions", `{"files":[`, 400, "invalid_argument", "request body"},
		{"POST", "/api/v1/datasets/ds/versions", ``, 400, "invalid_argument", "JSON object is required"},
		{"POST", "/api/v1/datasets/b@d/versions", `{"files":[]}`, 400, "invalid_argument", "name"},
		{"POST", "/api/v1/datasets/ds/versions", `{"files":[{"path":"../x","digest":"` + sum("") + `","size":0}]}`, 400, "invalid_argument", "files[0].path"},
		{"GET", "/api/v1/datasets/ds/versions/v0", ``, 400, "invalid_argument", "version"},
		{"GET", "/api/v1/datasets/ds/diff?from=1", ``, 400, "invalid_argument", "to is required"},
		{"GET", "/api/v1/datasets?max_results=x", ``, 400, "invalid_argument", "max_results"},
		{"GET", "/api/v1/datasets/nope", ``, 404, "not_found", "nope"},
		{"PUT", "/api/v1/objects/sha256/not-a-digest", `x`, 400, "invalid_argument", "digest"},
		{"POST", "/api/v1/objects/batch", `{}`, 400, "invalid_argument", "must be application/x-tar"},
		{"GET", "/api/v1/nothing-here", ``, 404, "not_found", "no endpoint"},
		{"DELETE", "/api/v1/datasets/ds", ``, 404, "not_found", "no endpoint"},
	}
	for _, c := range cases {
		st, out := do(t, srv, c.method, c.path, c.body)
		t.Run(c.method+" "+c.path, func(t *testing.T) { wantError(t, st, out, c.status, c.code, c.want) })
	}
}
