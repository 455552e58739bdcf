package e2e

// Ports of MLflow 2.x tests/tracking/test_mlflow_artifacts.py: the artifact
// proxy (mlflow/protos/mlflow_artifacts.proto) and the tracking routes that
// read proxied artifacts (artifacts/list, /get-artifact), driven with the
// requests HttpArtifactRepository and MlflowArtifactsRepository send
// (mlflow/store/artifact/http_artifact_repo.py, mlflow_artifacts_repo.py).
// In MLflow the proxy root is --artifacts-destination; in Slipway it is
// <data-dir>/artifacts.
//
// Not ported: test_mlflow_artifacts_example (docker compose),
// test_rest_get_model_version_artifact_api_proxied_artifact_root (registry),
// test_rest_get_artifact_api_log_image (needs numpy/PIL to produce images).

import (
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestArtifacts(t *testing.T) {
	// mlflow_artifacts_rest_apis lists the proxy root: it needs a server of
	// its own, and runs first.
	s := Start(t)
	dest := filepath.Join(s.DataDir, "artifacts")
	for _, tc := range []restCase{
		{"mlflow_artifacts_rest_apis", func(t *testing.T, c *mlflowClient) {
			c.putArtifact("a.txt", "0", "")
			if b, err := os.ReadFile(filepath.Join(dest, "a.txt")); err != nil || string(b) != "0" {
				t.Errorf("a.txt in the artifact destination: %q %v", b, err)
			}
			c.putArtifact("dir/b.txt", "1", "")
			if b, err := os.ReadFile(filepath.Join(dest, "dir", "b.txt")); err != nil || string(b) != "1" {
				t.Errorf("dir/b.txt in the artifact destination: %q %v", b, err)
			}
			for p, want := range map[string]string{"a.txt": "0", "dir/b.txt": "1"} {
				status, h, body := c.download(p)
				if status != http.StatusOK || body != want {
					t.Errorf("download %s: %d %q", p, status, body)
				}
				checkDownloadHeaders(t, p, h)
			}
			status, out := c.listProxy("")
			want := map[string]any{"files": []any{
				map[string]any{"path": "a.txt", "is_dir": false, "file_size": 1},
				map[string]any{"path": "dir", "is_dir": true},
			}}
			if status != http.StatusOK || !mfEqualJSON(out, want) {
				t.Errorf("list root: %d %v, want %v", status, out, want)
			}
			status, out = c.listProxy("dir")
			want = map[string]any{"files": []any{map[string]any{"path": "b.txt", "is_dir": false, "file_size": 1}}}
			if status != http.StatusOK || !mfEqualJSON(out, want) {
				t.Errorf("list dir: %d %v, want %v", status, out, want)
			}
		}},

		// mlflow.log_artifact(path[, artifact_path]) in a run of the Default
		// experiment lands at <destination>/0/<run_id>/artifacts/...
		{"log_artifact", func(t *testing.T, c *mlflowClient) {
			for _, sub := range []string{"", "artifact_path"} {
				run := c.createRun("0")
				root := mfArtifactPath(t, mfStr(mfDig(c.getRun(mfRunID(run)), "info.artifact_uri")))
				p := "a.txt"
				if sub != "" {
					p = sub + "/a.txt"
				}
				c.putArtifact(root+"/"+p, "0", "")
				want := filepath.Join(dest, "0", mfRunID(run), "artifacts", filepath.FromSlash(p))
				if b, err := os.ReadFile(want); err != nil || string(b) != "0" {
					t.Errorf("log_artifact(artifact_path=%q): %s: %q %v", sub, want, b, err)
				}
			}
		}},

		{"log_artifacts", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			root := mfArtifactPath(t, mfStr(mfDig(c.getRun(id), "info.artifact_uri")))
			c.putArtifact(root+"/a.txt", "0", "")
			c.putArtifact(root+"/dir/b.txt", "1", "")
			checkList(t, c, id, "", "a.txt", "dir")
			checkList(t, c, id, "dir", "dir/b.txt")

			id = c.newRunID("0")
			root = mfArtifactPath(t, mfStr(mfDig(c.getRun(id), "info.artifact_uri")))
			c.putArtifact(root+"/artifact_path/a.txt", "0", "")
			c.putArtifact(root+"/artifact_path/dir/b.txt", "1", "")
			checkList(t, c, id, "", "artifact_path")
			checkList(t, c, id, "artifact_path", "artifact_path/a.txt", "artifact_path/dir")
			checkList(t, c, id, "artifact_path/dir", "artifact_path/dir/b.txt")
		}},

		{"list_artifacts", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			checkList(t, c, id, "") // nothing logged yet: []
			root := mfArtifactPath(t, mfStr(mfDig(c.getRun(id), "info.artifact_uri")))
			c.putArtifact(root+"/a.txt", "0", "")
			c.putArtifact(root+"/dir/b.txt", "1", "")
			checkList(t, c, id, "", "a.txt", "dir")
			checkList(t, c, id, "dir", "dir/b.txt")
		}},

		// download_artifacts(run_id=..., artifact_path="") lists the run's
		// root, then fetches each file.
		{"download_artifacts", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			root := mfArtifactPath(t, mfStr(mfDig(c.getRun(id), "info.artifact_uri")))
			c.putArtifact(root+"/a.txt", "0", "")
			c.putArtifact(root+"/dir/b.txt", "1", "")
			checkList(t, c, id, "", "a.txt", "dir")
			if status, _, body := c.download(root + "/a.txt"); status != http.StatusOK || body != "0" {
				t.Errorf("a.txt: %d %q", status, body)
			}
			checkList(t, c, id, "dir", "dir/b.txt")
			if status, _, body := c.download(root + "/dir/b.txt"); status != http.StatusOK || body != "1" {
				t.Errorf("dir/b.txt: %d %q", status, body)
			}
		}},

		{"rest_tracking_api_list_artifacts_with_proxied_artifacts", func(t *testing.T, c *mlflowClient) {
			exp := c.createExperiment(uniqueName("rest_list_api_test"))
			run := c.createRun(exp)
			id, uri := mfRunID(run), mfStr(mfDig(run, "info.artifact_uri"))
			root := mfArtifactPath(t, uri)
			c.putArtifact(root+"/a.txt", "0", "")
			c.putArtifact(root+"/dir/b.txt", "1", "")
			out := c.ok("artifacts/list", map[string]any{"run_id": id})
			want := []any{map[string]any{"path": "a.txt", "is_dir": false, "file_size": 1}, map[string]any{"path": "dir", "is_dir": true}}
			if !mfEqualJSON(out["files"], want) || out["root_uri"] != uri {
				t.Errorf("artifacts/list = %v, want files %v and root_uri %s", out, want, uri)
			}
			out = c.ok("artifacts/list", map[string]any{"run_id": id, "path": "dir"})
			want = []any{map[string]any{"path": "dir/b.txt", "is_dir": false, "file_size": 1}}
			if !mfEqualJSON(out["files"], want) || out["root_uri"] != uri {
				t.Errorf("artifacts/list dir = %v, want files %v", out, want)
			}
		}},

		{"rest_get_artifact_api_proxied_with_artifacts", func(t *testing.T, c *mlflowClient) {
			exp := c.createExperiment(uniqueName("rest_get_artifact_api_test"))
			run := c.createRun(exp)
			c.putArtifact(mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))+"/a.txt", "abcdefg", "")
			status, _, body := mfRaw(t, "GET", c.s.URL+"/get-artifact?run_id="+mfRunID(run)+"&path=a.txt", nil)
			if status != http.StatusOK || string(body) != "abcdefg" {
				t.Errorf("get-artifact: %d %q", status, body)
			}
		}},

		// MLflow compares Content-Type exactly; Go adds "; charset=utf-8" to
		// text types, so the media type is compared here.
		{"mime_type_for_download_artifacts_api", func(t *testing.T, c *mlflowClient) {
			for _, tc := range []struct{ filename, want string }{
				{"a.txt", "text/plain"}, {"b.pkl", "application/octet-stream"}, {"c.png", "image/png"},
				{"d.pdf", "application/pdf"}, {"MLmodel", "text/plain"}, {"mlproject", "text/plain"},
			} {
				c.putArtifact("dir/"+tc.filename, "", "")
				status, h, _ := c.download("dir/" + tc.filename)
				if status != http.StatusOK {
					t.Errorf("download %s: %d", tc.filename, status)
				}
				checkAttachment(t, "proxy download", tc.filename, tc.want, h)
				run := c.createRun("0")
				c.putArtifact(mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))+"/"+tc.filename, "", "")
				status, h, _ = mfRaw(t, "GET", c.s.URL+"/get-artifact?run_id="+mfRunID(run)+"&path="+tc.filename, nil)
				if status != http.StatusOK {
					t.Errorf("get-artifact %s: %d", tc.filename, status)
				}
				checkAttachment(t, "get-artifact", tc.filename, tc.want, h)
			}
		}},

		{"server_overrides_requested_mime_type", func(t *testing.T, c *mlflowClient) {
			for _, tc := range []struct{ filename, want string }{
				{"b.pkl", "application/octet-stream"}, {"c.png", "image/png"}, {"d.pdf", "application/pdf"},
			} {
				c.putArtifact("dir/"+tc.filename, "", "text/html")
				_, h, _ := c.download("dir/" + tc.filename)
				checkAttachment(t, "uploaded as text/html", tc.filename, tc.want, h)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mlflowOn(s, t)) })
	}
}

// checkList compares MlflowClient.list_artifacts(run_id, path) with want.
func checkList(t *testing.T, c *mlflowClient, runID, path string, want ...string) {
	t.Helper()
	got := c.clientListArtifacts(runID, path)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("list_artifacts(%q) = %v, want %v", path, got, want)
	}
}

// checkDownloadHeaders is test_mlflow_artifacts.py's download_file checks.
func checkDownloadHeaders(t *testing.T, p string, h http.Header) {
	t.Helper()
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Type") == "" || h.Get("Content-Disposition") == "" {
		t.Errorf("download %s: headers %v, want X-Content-Type-Options: nosniff, a Content-Type and a Content-Disposition", p, h)
	}
}

func checkAttachment(t *testing.T, what, filename, wantType string, h http.Header) {
	t.Helper()
	checkDownloadHeaders(t, filename, h)
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || params["filename"] != filename {
		t.Errorf("%s %s: Content-Disposition %q, want filename=%s", what, filename, h.Get("Content-Disposition"), filename)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != wantType {
		t.Errorf("%s %s: Content-Type %q, want %s", what, filename, h.Get("Content-Type"), wantType)
	}
	if strings.TrimSpace(h.Get("X-Content-Type-Options")) != "nosniff" {
		t.Errorf("%s %s: no X-Content-Type-Options: nosniff", what, filename)
	}
}
