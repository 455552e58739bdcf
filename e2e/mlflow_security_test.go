package e2e

// The attack classes of MLflow's CVE history against every route of
// Slipway that takes an artifact path or location. A canary file sits
// outside the data directory, at a place the crafted paths would reach if
// they escaped the artifact root; each attempt must be refused with a 4xx in
// MLflow's error shape, and the canary must never be read, overwritten,
// deleted, or joined by new files.
//
// CVEs (all path traversal in MLflow's tracking server):
//   CVE-2023-1177  model version / artifact location pointing at local files
//                  (file://, absolute paths), read back through get-artifact
//   CVE-2023-2356  relative traversal ("../") in sources and paths
//   CVE-2023-6909  "#" fragment in an artifact location hiding "../"
//   CVE-2023-6977  double URL-encoding ("%252e%252e") past a single decode
//   CVE-2024-1483  "?" query string in an artifact location hiding "../"
//   CVE-2024-1560  double decoding in artifact deletion
//   CVE-2024-1593  ";" URL path parameters hiding "../"
//   CVE-2024-3848  "#" fragment bypass of the CVE-2023-6909 fix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// securityAttack builds, for a route whose artifact root lies up ".."
// steps below the directory holding the canary directory c (absolute path
// abs), the path the server should see after decoding once (logical), the
// same put into a URL path (urlPath, already escaped), and experiment
// artifact locations that try the same trick.
type securityAttack struct {
	name string
	cves string
	// build returns logical and urlPath for a route; empty skips path routes.
	build func(up int, c, abs string) (logical, urlPath string)
	// locations are tried as experiments/create artifact_location.
	locations func(c, abs string) []string
	// uploadID, when set, is sent as the multipart upload id instead of a
	// valid one (the path is then a harmless one).
	uploadID func(up int, c string) string
}

func dots(n int, seg string) string { return strings.Repeat(seg, n) }

var securityAttacks = []securityAttack{
	{
		name: "dot-dot", cves: "CVE-2023-2356, CVE-2023-1177",
		build: func(up int, c, _ string) (string, string) {
			p := dots(up, "../") + c + "/canary.txt"
			return p, p
		},
		locations: func(c, _ string) []string {
			return []string{"../../" + c, "mlflow-artifacts:/../../" + c, "mlflow-artifacts:/1/../../../" + c}
		},
	},
	{
		name: "dot-dot percent-encoded once", cves: "CVE-2023-2356",
		build: func(up int, c, _ string) (string, string) {
			return dots(up, "../") + c + "/canary.txt", dots(up, "%2e%2e%2f") + c + "%2fcanary.txt"
		},
	},
	{
		name: "double URL-encoding", cves: "CVE-2023-6977, CVE-2024-1560",
		build: func(up int, c, _ string) (string, string) {
			return dots(up, "%2e%2e%2f") + c + "%2fcanary.txt", dots(up, "%252e%252e%252f") + c + "%252fcanary.txt"
		},
		locations: func(c, _ string) []string {
			return []string{"mlflow-artifacts:/%2e%2e/%2e%2e/" + c, "mlflow-artifacts:/%252e%252e%252f%252e%252e%252f" + c}
		},
	},
	{
		name: "absolute path", cves: "CVE-2023-1177",
		build: func(_ int, _ string, abs string) (string, string) {
			return abs + "/canary.txt", abs + "/canary.txt"
		},
		// ("mlflow-artifacts:" + abs is not here: it names the store key
		// "tmp/...", inside the artifact root.)
		locations: func(_, abs string) []string {
			return []string{abs, "mlflow-artifacts://" + abs, "mlflow-artifacts:///" + abs}
		},
	},
	{
		name: "file URI", cves: "CVE-2023-1177",
		build: func(_ int, _ string, abs string) (string, string) {
			return "file://" + abs + "/canary.txt", "file://" + abs + "/canary.txt"
		},
		locations: func(_, abs string) []string { return []string{"file://" + abs, "file:" + abs, "FILE://" + abs} },
	},
	{
		name: "query string", cves: "CVE-2024-1483",
		build: func(up int, c, _ string) (string, string) {
			return "x?/" + dots(up+1, "../") + c + "/canary.txt", "x%3F/" + dots(up+1, "../") + c + "/canary.txt"
		},
		locations: func(c, _ string) []string {
			return []string{"mlflow-artifacts:/x?/../../../" + c, "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/?/../../../../" + c}
		},
	},
	{
		name: "fragment", cves: "CVE-2023-6909, CVE-2024-3848",
		build: func(up int, c, _ string) (string, string) {
			return "x#/" + dots(up+1, "../") + c + "/canary.txt", "x%23/" + dots(up+1, "../") + c + "/canary.txt"
		},
		locations: func(c, _ string) []string {
			return []string{"mlflow-artifacts:/x#/../../../" + c, "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/#/../../../../" + c,
				"mlflow-artifacts:/1#" + c}
		},
	},
	{
		name: "semicolon path parameter", cves: "CVE-2024-1593",
		build: func(up int, c, _ string) (string, string) {
			p := "x;/" + dots(up+1, "../") + c + "/canary.txt"
			return p, p
		},
		locations: func(c, _ string) []string {
			return []string{"mlflow-artifacts:/x;/../../../" + c, "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/;/../../../../" + c}
		},
	},
	{
		name: "backslash separators", cves: "CVE-2023-2356 (Windows separators)",
		build: func(up int, c, _ string) (string, string) {
			return dots(up, `..\`) + c + `\canary.txt`, dots(up, "..%5C") + c + "%5Ccanary.txt"
		},
		locations: func(c, _ string) []string { return []string{`mlflow-artifacts:/..\..\` + c} },
	},
	{
		name: "NUL byte", cves: "CVE-2023-2356 (truncation)",
		build: func(up int, c, _ string) (string, string) {
			return dots(up, "../") + c + "/canary.txt\x00.png", dots(up, "../") + c + "/canary.txt%00.png"
		},
		locations: func(c, _ string) []string { return []string{"mlflow-artifacts:/1\x00/../../" + c} },
	},
	{
		name: "Unicode full-width dots", cves: "NFKC normalisation of U+FF0E",
		build: func(up int, c, _ string) (string, string) {
			p := dots(up, "\uff0e\uff0e/") + c + "/canary.txt"
			return p, escapePathKeepSlash(p)
		},
		locations: func(c, _ string) []string { return []string{"mlflow-artifacts:/\uff0e\uff0e/\uff0e\uff0e/" + c} },
	},
	{
		name: "upload id traversal", cves: "multipart upload ids become store keys",
		uploadID: func(up int, c string) string { return dots(up+1, "../") + c },
	},
}

// escapePathKeepSlash percent-encodes a path for a URL, leaving "/" as is.
func escapePathKeepSlash(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

type securityRoute struct {
	name string
	run  bool // the path is relative to a run's artifact root, not the proxy root
	// send issues the request for a payload and returns status and body.
	send func(t *testing.T, p securityPayload) (int, []byte)
}

type securityPayload struct {
	logical, urlPath, uploadID string
}

func TestArtifactSecurity(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	base := s.URL

	// The canary: a sibling of the data directory, so a path that climbs
	// out of <data-dir>/artifacts can reach it.
	canaryDir := t.TempDir()
	secret := "SLIPWAY-CANARY-" + filepath.Base(canaryDir)
	canary := filepath.Join(canaryDir, "canary.txt")
	if err := os.WriteFile(canary, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	exp := c.createExperiment("security")
	run := c.createRun(exp)
	runID := mfRunID(run)
	runRoot := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	c.putArtifact(runRoot+"/legit.txt", "legit", "")
	artRoot := filepath.Join(s.DataDir, "artifacts")
	up := func(from string) int {
		rel, err := filepath.Rel(from, filepath.Dir(canaryDir))
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Split(filepath.ToSlash(rel), "/"))
	}
	proxyUp, runUp := up(artRoot), up(filepath.Join(artRoot, filepath.FromSlash(runRoot)))
	cName := filepath.Base(canaryDir)
	tempRoot := filepath.Dir(canaryDir)
	before := dirNames(t, tempRoot)

	// A real multipart upload, so complete/abort/part get past the id check.
	created := c.s.OK("POST", "/api/2.0/mlflow-artifacts/mpu/create/"+runRoot+"/big.bin", map[string]any{"path": "big.bin", "num_parts": 1})
	validID := mfStr(created["upload_id"])

	routes := []securityRoute{
		{"proxy download GET /api/2.0/mlflow-artifacts/artifacts/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/api/2.0/mlflow-artifacts/artifacts/"+p.urlPath, nil)
			return status, b
		}},
		{"proxy download GET /ajax-api/2.0/mlflow-artifacts/artifacts/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/ajax-api/2.0/mlflow-artifacts/artifacts/"+p.urlPath, nil)
			return status, b
		}},
		{"proxy upload PUT /api/2.0/mlflow-artifacts/artifacts/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "PUT", base+"/api/2.0/mlflow-artifacts/artifacts/"+p.urlPath, strings.NewReader("PWNED"))
			return status, b
		}},
		{"proxy delete DELETE /api/2.0/mlflow-artifacts/artifacts/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "DELETE", base+"/api/2.0/mlflow-artifacts/artifacts/"+p.urlPath, nil)
			return status, b
		}},
		{"proxy list GET /api/2.0/mlflow-artifacts/artifacts?path=", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/api/2.0/mlflow-artifacts/artifacts?"+url.Values{"path": {p.logical}}.Encode(), nil)
			return status, b
		}},
		{"mpu create POST /api/2.0/mlflow-artifacts/mpu/create/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "POST", base+"/api/2.0/mlflow-artifacts/mpu/create/"+p.urlPath,
				bytes.NewReader(mfJSON(t, map[string]any{"path": p.logical, "num_parts": 1})), "Content-Type", "application/json")
			return status, b
		}},
		{"mpu part PUT /api/2.0/mlflow-artifacts/mpu/part/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			q := url.Values{"upload_id": {p.uploadID}, "part_number": {"1"}}.Encode()
			status, _, b := mfRaw(t, "PUT", base+"/api/2.0/mlflow-artifacts/mpu/part/"+p.urlPath+"?"+q, strings.NewReader("PWNED"))
			return status, b
		}},
		{"mpu complete POST /api/2.0/mlflow-artifacts/mpu/complete/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			body := map[string]any{"path": p.logical, "upload_id": p.uploadID, "parts": []map[string]any{{"part_number": 1, "etag": "0"}}}
			status, _, b := mfRaw(t, "POST", base+"/api/2.0/mlflow-artifacts/mpu/complete/"+p.urlPath,
				bytes.NewReader(mfJSON(t, body)), "Content-Type", "application/json")
			return status, b
		}},
		{"mpu abort POST /api/2.0/mlflow-artifacts/mpu/abort/<path>", false, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "POST", base+"/api/2.0/mlflow-artifacts/mpu/abort/"+p.urlPath,
				bytes.NewReader(mfJSON(t, map[string]any{"path": p.logical, "upload_id": p.uploadID})), "Content-Type", "application/json")
			return status, b
		}},
		{"run artifacts GET /api/2.0/mlflow/artifacts/list?run_id&path=", true, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/api/2.0/mlflow/artifacts/list?"+url.Values{"run_id": {runID}, "path": {p.logical}}.Encode(), nil)
			return status, b
		}},
		{"run artifacts GET /ajax-api/2.0/mlflow/artifacts/list?run_id&path=", true, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/ajax-api/2.0/mlflow/artifacts/list?"+url.Values{"run_id": {runID}, "path": {p.logical}}.Encode(), nil)
			return status, b
		}},
		{"get-artifact GET /get-artifact?run_id&path=", true, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/get-artifact?"+url.Values{"run_id": {runID}, "path": {p.logical}}.Encode(), nil)
			return status, b
		}},
		{"get-artifact GET /ajax-api/2.0/mlflow/get-artifact?run_uuid&path=", true, func(t *testing.T, p securityPayload) (int, []byte) {
			status, _, b := mfRaw(t, "GET", base+"/ajax-api/2.0/mlflow/get-artifact?"+url.Values{"run_uuid": {runID}, "path": {p.logical}}.Encode(), nil)
			return status, b
		}},
	}

	// intact checks, after every request, that nothing outside the data
	// directory was read, written or deleted.
	intact := func(t *testing.T, what string, body []byte) {
		t.Helper()
		// The canary's content, or a listing of the canary's directory.
		if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte(`"path":"canary.txt"`)) {
			t.Errorf("SECURITY: %s: the answer reveals the canary outside the data dir: %.300s", what, body)
		}
		if b, err := os.ReadFile(canary); err != nil || string(b) != secret {
			t.Fatalf("SECURITY: %s: the canary was changed or removed: %q %v", what, b, err)
		}
		if got := dirNames(t, canaryDir); !reflect.DeepEqual(got, []string{"canary.txt"}) {
			t.Fatalf("SECURITY: %s: files appeared next to the canary: %v", what, got)
		}
		if got := dirNames(t, tempRoot); !reflect.DeepEqual(got, before) {
			t.Fatalf("SECURITY: %s: the directory above the data dir changed: %v, was %v", what, got, before)
		}
	}
	refused := func(t *testing.T, what string, status int, body []byte) {
		t.Helper()
		var out map[string]any
		jsonErr := json.Unmarshal(body, &out)
		if status >= 300 && status < 400 {
			t.Errorf("%s: got %d, a redirect to the cleaned path (%.120q): a client that follows it acts on a different artifact than it named; want a 4xx with MLflow's {\"error_code\", \"message\"}", what, status, body)
			return
		}
		if status < 400 || status > 499 || jsonErr != nil || mfStr(out["error_code"]) == "" || mfStr(out["message"]) == "" {
			t.Errorf("%s: got %d %.200q, want a 4xx with MLflow's {\"error_code\", \"message\"}", what, status, body)
		}
	}

	// Every route must exist, or the refusals below would prove nothing:
	// a harmless request is not answered ENDPOINT_NOT_FOUND.
	spare := mfStr(c.s.OK("POST", "/api/2.0/mlflow-artifacts/mpu/create/"+runRoot+"/spare.bin", map[string]any{"path": "spare.bin", "num_parts": 1})["upload_id"])
	for _, r := range routes {
		p := securityPayload{logical: runRoot + "/spare.bin", urlPath: runRoot + "/spare.bin", uploadID: spare}
		if r.run {
			p.logical, p.urlPath = "legit.txt", "legit.txt"
		}
		status, body := r.send(t, p)
		if status == http.StatusNotFound && bytes.Contains(body, []byte("ENDPOINT_NOT_FOUND")) || status == http.StatusMethodNotAllowed {
			t.Errorf("route %s is not served: %d %s", r.name, status, body)
		}
	}

	for _, a := range securityAttacks {
		t.Run(a.name, func(t *testing.T) {
			t.Logf("%s", a.cves)
			for _, r := range routes {
				n := proxyUp
				if r.run {
					n = runUp
				}
				p := securityPayload{uploadID: validID}
				switch {
				case a.uploadID != nil:
					if !strings.Contains(r.name, "mpu ") || strings.Contains(r.name, "mpu create") {
						continue
					}
					p.uploadID = a.uploadID(n, cName)
					p.logical, p.urlPath = runRoot+"/big.bin", runRoot+"/big.bin"
				case a.build != nil:
					p.logical, p.urlPath = a.build(n, cName, canaryDir)
				default:
					continue
				}
				status, body := r.send(t, p)
				what := r.name + " with " + fmt.Sprintf("%q", p.urlPath)
				intact(t, what, body)
				refused(t, what, status, body)
			}
			if a.locations == nil {
				return
			}
			for i, loc := range a.locations(cName, canaryDir) {
				name := fmt.Sprintf("security %s %d", a.name, i)
				status, body := c.s.Do("POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": name, "artifact_location": loc})
				what := fmt.Sprintf("experiments/create artifact_location=%q", loc)
				intact(t, what, body)
				refused(t, what, status, body)
				if status == http.StatusOK {
					// Accepted: show where its runs would keep their files.
					var out map[string]any
					json.Unmarshal(body, &out)
					e := c.getExperiment(mfStr(out["experiment_id"]))
					t.Errorf("SECURITY: %s was accepted and stored as %v", what, e["artifact_location"])
				}
			}
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}
