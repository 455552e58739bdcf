package mlflow

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/tracking"
)

// ArtifactPrefixes serve MLflow's artifact proxy (mlflow_artifacts.proto):
// clients read and write run artifacts through the server and never need
// storage credentials of their own.
var ArtifactPrefixes = []string{"/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/"}

// PartPath is the route multipart uploads send parts to. Its URLs carry the
// upload id, an unguessable capability handed out by an authenticated
// mpu/create call, so it is the one artifact route that needs no token.
const PartPath = "/api/2.0/mlflow-artifacts/mpu/part/"

func (h *Handler) registerArtifacts(mux *http.ServeMux) {
	for _, p := range ArtifactPrefixes {
		mux.HandleFunc("GET "+p+"artifacts", h.listProxyArtifacts)
		mux.HandleFunc("GET "+p+"artifacts/{path...}", h.downloadArtifact)
		mux.HandleFunc("PUT "+p+"artifacts/{path...}", h.uploadArtifact)
		mux.HandleFunc("DELETE "+p+"artifacts/{path...}", h.deleteArtifact)
		mux.Handle("POST "+p+"mpu/create/{path...}", h.serve(h.createUpload))
		mux.Handle("POST "+p+"mpu/complete/{path...}", h.serve(h.completeUpload))
		mux.Handle("POST "+p+"mpu/abort/{path...}", h.serve(h.abortUpload))
	}
	mux.HandleFunc("PUT "+PartPath+"{path...}", h.uploadPart)
	for _, p := range Prefixes {
		mux.HandleFunc("GET "+strings.Replace(p, "/mlflow/", "/", 1)+"mlflow/get-artifact", h.getRunArtifact)
	}
	mux.HandleFunc("GET /get-artifact", h.getRunArtifact)
}

// ReadOnlyDirs are top-level folders of the artifact store that only their
// own services write (registered model versions, data-version objects):
// the proxy serves reads there and refuses every write.
var ReadOnlyDirs = []string{registry.StorageDir, datasets.ObjectsDir}

// ReservedDir returns the read-only folder key lies in, if any. The first
// segment is compared without case because local stores on macOS and
// Windows fold case: "Registry/..." is the same folder there.
func ReservedDir(key string) (string, bool) {
	first, _, _ := strings.Cut(key, "/")
	for _, d := range ReadOnlyDirs {
		if strings.EqualFold(first, d) {
			return d, true
		}
	}
	return "", false
}

// writableKey validates a path a client wants to write or delete.
func (h *Handler) writableKey(p string) (string, error) {
	key, err := blob.CleanKey(p)
	if err != nil {
		return "", err
	}
	if dir, ok := ReservedDir(key); ok {
		return "", errs.New(errs.PermissionDenied, "artifact path %q is read-only: %s/ is written only by Slipway (registered model versions and data versions never change)", key, dir)
	}
	return key, nil
}

type fileInfoJSON struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}

func fileInfo(p string, e blob.Entry) fileInfoJSON {
	fi := fileInfoJSON{Path: p, IsDir: e.IsDir}
	if !e.IsDir {
		size := e.Size
		fi.FileSize = &size
	}
	return fi
}

// dotDir maps a path given as a query argument that names a directory by a
// final "." segment ("." or "<dir>/.") to the directory itself: MLflow's
// Python client lists "<root>/." for download_artifacts(artifact_path=".").
// Anything else, including "." segments elsewhere, "/." and "<dir>//.", is
// returned unchanged for CleanKey to judge. Paths in the URL path never get
// here: "." segments there are refused before routing.
func dotDir(p string) string {
	if p == "." {
		return ""
	}
	if dir, ok := strings.CutSuffix(p, "/."); ok && dir != "" && !strings.HasSuffix(dir, "/") {
		return dir
	}
	return p
}

func (h *Handler) listProxyArtifacts(w http.ResponseWriter, r *http.Request) {
	key, err := blob.CleanKey(dotDir(r.URL.Query().Get("path")))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	entries, err := h.Artifacts.List(r.Context(), key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Files []fileInfoJSON `json:"files,omitempty"`
	}{}
	for _, e := range entries {
		out.Files = append(out.Files, fileInfo(path.Base(e.Key), e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) downloadArtifact(w http.ResponseWriter, r *http.Request) {
	h.streamArtifact(w, r, r.PathValue("path"))
}

func (h *Handler) streamArtifact(w http.ResponseWriter, r *http.Request, key string) {
	key, err := blob.CleanKey(key)
	if err == nil && key == "" {
		err = tracking.MissingValue("path")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, size, err := h.Artifacts.Get(r.Context(), key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeArtifact(w, key, body, size)
}

// writeArtifact sends a file as a download: always an attachment with
// nosniff, and never as a type a browser would run (see artifactContentType).
func writeArtifact(w http.ResponseWriter, key string, body io.ReadCloser, size int64) {
	defer body.Close()
	w.Header().Set("Content-Type", artifactContentType(path.Base(key)))
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(path.Base(key)))
	io.Copy(w, body)
}

func (h *Handler) uploadArtifact(w http.ResponseWriter, r *http.Request) {
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.Artifacts.Put(r.Context(), key, r.Body); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, empty{})
}

func (h *Handler) deleteArtifact(w http.ResponseWriter, r *http.Request) {
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Artifacts.Delete(r.Context(), key); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, empty{})
}

type credentialJSON struct {
	URL        string            `json:"url"`
	PartNumber int64             `json:"part_number"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// maxParts is S3's limit on parts per upload, which MLflow clients respect.
const maxParts = 10000

func (h *Handler) createUpload(r *http.Request) (any, error) {
	var req struct {
		Path     string `json:"path"`
		NumParts Int64  `json:"num_parts"`
	}
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		return nil, err
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.NumParts < 1 || req.NumParts > maxParts {
		return nil, errs.Invalid("Invalid value %d for parameter 'num_parts' supplied: must be between 1 and %d", req.NumParts, maxParts)
	}
	id, err := h.Artifacts.CreateUpload(r.Context(), key)
	if err != nil {
		return nil, err
	}
	base := requestBase(r) + PartPath + escapePath(key)
	creds := make([]credentialJSON, req.NumParts)
	for i := range creds {
		n := int64(i + 1)
		creds[i] = credentialJSON{PartNumber: n, URL: fmt.Sprintf("%s?upload_id=%s&part_number=%d", base, url.QueryEscape(id), n)}
	}
	return map[string]any{"upload_id": id, "credentials": creds}, nil
}

func (h *Handler) uploadPart(w http.ResponseWriter, r *http.Request) {
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("part_number"))
	if err != nil || n < 1 || n > maxParts {
		h.fail(w, r, errs.Invalid("Invalid value %q for parameter 'part_number' supplied: must be between 1 and %d", q.Get("part_number"), maxParts))
		return
	}
	etag, err := h.Artifacts.PutPart(r.Context(), key, q.Get("upload_id"), n, r.Body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, empty{})
}

func (h *Handler) completeUpload(r *http.Request) (any, error) {
	var req struct {
		UploadID string `json:"upload_id"`
		Parts    []struct {
			PartNumber Int64  `json:"part_number"`
			ETag       string `json:"etag"`
		} `json:"parts"`
	}
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		return nil, err
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	parts := make([]blob.Part, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = blob.Part{Number: int(p.PartNumber), ETag: p.ETag}
	}
	return empty{}, h.Artifacts.CompleteUpload(r.Context(), key, req.UploadID, parts)
}

func (h *Handler) abortUpload(r *http.Request) (any, error) {
	var req struct {
		UploadID string `json:"upload_id"`
	}
	key, err := h.writableKey(r.PathValue("path"))
	if err != nil {
		return nil, err
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Artifacts.AbortUpload(r.Context(), key, req.UploadID)
}

// requestBase is the scheme and host the client used to reach this server,
// so that the URLs it is handed come back here.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// textExtensions are what MLflow's _guess_mime_type
// (mlflow/utils/mime_type_utils.py) serves as text/plain: file extensions,
// and the whole names of files without one (MLmodel, mlproject).
var textExtensions = map[string]bool{
	"txt": true, "log": true, "err": true, "cfg": true, "conf": true, "cnf": true, "cf": true,
	"ini": true, "properties": true, "prop": true, "hocon": true, "toml": true, "yaml": true,
	"yml": true, "xml": true, "json": true, "js": true, "py": true, "py3": true, "csv": true,
	"tsv": true, "md": true, "rst": true, "MLmodel": true, "mlproject": true,
}

// artifactContentType is the Content-Type a download of a file named name is
// sent with: MLflow's choice, except that nothing a browser could run as a
// page or script in the UI's origin (HTML, XML, JavaScript, SVG) is ever
// named; those, and names with no known type, are application/octet-stream.
// Downloads are also sent as attachments with nosniff.
func artifactContentType(name string) string {
	// Python's splitext: leading dots do not start an extension.
	ext, trimmed := "", strings.TrimLeft(name, ".")
	if i := strings.LastIndexByte(trimmed, '.'); i >= 0 {
		ext = trimmed[i+1:]
	}
	if ext == "" {
		ext = name
	}
	// MLflow matches case-sensitively; the project file is usually spelt
	// MLproject, so the two model and project names match in any case.
	if textExtensions[ext] || strings.EqualFold(ext, "MLmodel") || strings.EqualFold(ext, "mlproject") {
		return "text/plain"
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	media, _, err := mime.ParseMediaType(ctype)
	if ctype == "" || err != nil {
		return "application/octet-stream"
	}
	for _, bad := range []string{"html", "xml", "javascript", "ecmascript", "svg"} {
		if strings.Contains(media, bad) {
			return "application/octet-stream"
		}
	}
	return ctype
}

// runArtifactRoot returns a run and the store key of its artifact root.
func (h *Handler) runArtifactRoot(r *http.Request, runID string) (tracking.Run, string, error) {
	run, err := h.Tracking.GetRun(r.Context(), runID)
	if err != nil {
		return run, "", err
	}
	root, err := blob.ResolveLocation(run.Info.ArtifactURI)
	if err != nil {
		return run, "", errs.New(errs.FailedPrecondition, "run %s stores its artifacts at %s, which this server does not serve", runID, run.Info.ArtifactURI)
	}
	return run, root, nil
}

// runArtifactKey resolves a path inside a run's artifact root, given as a
// query argument, to a store key. "." or a final "/." names the directory.
func (h *Handler) runArtifactKey(r *http.Request, runID, rel string) (run tracking.Run, root, key string, err error) {
	sub, err := blob.CleanKey(dotDir(rel))
	if err != nil {
		return run, "", "", err
	}
	run, root, err = h.runArtifactRoot(r, runID)
	if err != nil {
		return run, "", "", err
	}
	if sub == "" {
		return run, root, root, nil
	}
	return run, root, root + "/" + sub, nil
}

func (h *Handler) listRunArtifacts(r *http.Request) (any, error) {
	var req struct {
		RunID     string `json:"run_id"`
		RunUUID   string `json:"run_uuid"`
		Path      string `json:"path"`
		PageToken string `json:"page_token"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	run, root, key, err := h.runArtifactKey(r, runID(req.RunID, req.RunUUID), req.Path)
	if err != nil {
		return nil, err
	}
	entries, err := h.Artifacts.List(r.Context(), key)
	if err != nil {
		return nil, err
	}
	out := struct {
		RootURI string         `json:"root_uri"`
		Files   []fileInfoJSON `json:"files,omitempty"`
	}{RootURI: run.Info.ArtifactURI}
	for _, e := range entries {
		out.Files = append(out.Files, fileInfo(strings.TrimPrefix(e.Key, root+"/"), e))
	}
	return out, nil
}

// getRunArtifact serves MLflow's /get-artifact?run_id=&path= download.
func (h *Handler) getRunArtifact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := runID(q.Get("run_id"), q.Get("run_uuid"))
	if q.Get("path") == "" {
		h.fail(w, r, tracking.MissingValue("path"))
		return
	}
	_, _, key, err := h.runArtifactKey(r, id, q.Get("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.streamArtifact(w, r, key)
}
