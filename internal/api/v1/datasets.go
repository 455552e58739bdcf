package v1

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
)

func (h *Handler) registerDatasets(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/datasets", h.listDatasets)
	mux.HandleFunc("GET /api/v1/datasets/{name}", h.getDataset)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions", h.listVersions)
	mux.HandleFunc("POST /api/v1/datasets/{name}/versions", h.commitVersion)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions/{version}", h.getVersion)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions/{version}/files/{path...}", h.downloadFile)
	mux.HandleFunc("GET /api/v1/datasets/{name}/diff", h.diff)
	mux.HandleFunc("POST /api/v1/objects/missing", h.missingObjects)
	mux.HandleFunc("PUT /api/v1/objects/sha256/{digest}", h.putObject)
	mux.HandleFunc("POST /api/v1/objects/batch", h.putObjects)
	mux.HandleFunc("GET /api/v1/objects/sha256/{digest}", h.getObject)
}

func (h *Handler) listDatasets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("max_results"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, r, errs.Invalid("max_results %q: must be a whole number from 1 to %d", s, datasets.MaxListResults))
			return
		}
		limit = n
	}
	list, next, err := h.Datasets.List(r.Context(), q.Get("page_token"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": list, "next_page_token": next})
}

func (h *Handler) getDataset(w http.ResponseWriter, r *http.Request) {
	d, err := h.Datasets.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := h.Datasets.Versions(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// commitVersion creates a version from a manifest whose objects have been
// uploaded. 201 with created=true for a new version; 200 with
// created=false when the content is the latest version's.
func (h *Handler) commitVersion(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := datasets.ValidateName(name); err != nil {
		h.fail(w, r, err)
		return
	}
	var c datasets.Commit
	if err := decode(w, r, MaxManifestBytes, &c); err != nil {
		h.fail(w, r, err)
		return
	}
	v, created, err := h.Datasets.Commit(r.Context(), name, c, username(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"version": v, "created": created})
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request) {
	n, err := datasets.ParseVersion(r.PathValue("version"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	details := true
	if s := r.URL.Query().Get("details"); s != "" {
		if details, err = strconv.ParseBool(s); err != nil {
			h.fail(w, r, errs.Invalid("details %q: must be true or false", s))
			return
		}
	}
	v, err := h.Datasets.Version(r.Context(), r.PathValue("name"), n, details)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) diff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from, to int64
	for _, p := range []struct {
		field string
		dst   *int64
	}{{"from", &from}, {"to", &to}} {
		s := q.Get(p.field)
		if s == "" {
			h.fail(w, r, errs.Invalid("%s is required: a version number (1, v1) or \"latest\"", p.field))
			return
		}
		n, err := datasets.ParseVersion(s)
		if err != nil {
			h.fail(w, r, errs.Invalid("%s: %s", p.field, errs.Message(err)))
			return
		}
		*p.dst = n
	}
	d, err := h.Datasets.Diff(r.Context(), r.PathValue("name"), from, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *Handler) missingObjects(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Objects []datasets.ObjectRef `json:"objects"`
	}
	if err := decode(w, r, MaxManifestBytes, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	missing, err := h.Datasets.Missing(r.Context(), req.Objects)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"missing": missing})
}

// putObject stores a request body as the object it hashes to. The body is
// verified while it streams to the store; on mismatch nothing is stored.
func (h *Handler) putObject(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	stored, err := h.Datasets.PutObject(r.Context(), digest, r.ContentLength, r.Body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if stored {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"digest": digest, "stored": stored})
}

// MaxBatchBytes bounds the body of a batch upload: the tar stream of
// datasets.MaxBatchObjects objects that are small in total.
const MaxBatchBytes = 1 << 30

// putObjects stores a tar stream of objects named by their digests, so that
// a tree of many small files is uploaded in a few requests.
func (h *Handler) putObjects(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-tar" {
		h.fail(w, r, errs.Invalid("Content-Type %q: a batch upload must be application/x-tar", ct))
		return
	}
	res, err := h.Datasets.PutObjects(r.Context(), http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = errs.New(errs.ResourceExhausted, "batch: request body larger than %d bytes", int64(MaxBatchBytes))
		}
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) getObject(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	h.stream(w, r, digest, digest)
}

func (h *Handler) downloadFile(w http.ResponseWriter, r *http.Request) {
	n, err := datasets.ParseVersion(r.PathValue("version"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := h.Datasets.File(r.Context(), r.PathValue("name"), n, r.PathValue("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.stream(w, r, f.Digest, path.Base(f.Path))
}

// stream sends an object as a download that a browser will never render.
// The ETag carries the digest so clients can verify what they received.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, digest, filename string) {
	body, size, err := h.Datasets.OpenObject(r.Context(), digest)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(filename))
	w.Header().Set("ETag", `"sha256:`+digest+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	io.Copy(w, body)
}
