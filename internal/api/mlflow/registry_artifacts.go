package mlflow

import (
	"net/http"
	"path"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/tracking"
)

// registerRegistryArtifacts verifies registry downloads in the artifact
// proxy. Its patterns are more specific than the proxy's
// "artifacts/{path...}", so ServeMux sends registry keys here, and files are
// checked against the version's manifest before they are sent. Writes there
// are refused by writableKey with the other read-only folders.
func (h *Handler) registerRegistryArtifacts(mux *http.ServeMux) {
	dir := registry.StorageDir
	for _, p := range ArtifactPrefixes {
		for _, suffix := range []string{dir, dir + "/{rest...}"} {
			mux.HandleFunc("GET "+p+"artifacts/"+suffix, h.downloadRegistryArtifact)
		}
	}
	for _, p := range Prefixes {
		mux.HandleFunc("GET "+p+"model-versions/get-artifact", h.getModelVersionArtifact)
	}
	mux.HandleFunc("GET /model-versions/get-artifact", h.getModelVersionArtifact)
}

func (h *Handler) downloadRegistryArtifact(w http.ResponseWriter, r *http.Request) {
	key := registry.StorageDir
	if rest := r.PathValue("rest"); rest != "" {
		key += "/" + rest
	}
	h.streamVerified(w, r, key)
}

// streamVerified sends a registry file only after it has been checked
// against its version's manifest.
func (h *Handler) streamVerified(w http.ResponseWriter, r *http.Request, key string) {
	key, err := blob.CleanKey(key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, size, err := h.Registry.OpenVerified(r.Context(), key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeArtifact(w, key, body, size)
}

// getModelVersionArtifact serves MLflow's
// /model-versions/get-artifact?name=&version=&path=, which MLflow's UI uses
// to show a registered model's files.
func (h *Handler) getModelVersionArtifact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("path") == "" {
		h.fail(w, r, tracking.MissingValue("path"))
		return
	}
	rel, err := blob.CleanKey(dotDir(q.Get("path")))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	name, n, err := parseVersionRef(versionRef{Name: q.Get("name"), Version: versionField(q.Get("version"))})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	uri, err := h.Registry.DownloadURI(r.Context(), name, n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	root, err := blob.ResolveLocation(uri)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// A version's location is its files directory, registry/<id>/<v>/files,
	// or for a version registered from one file, that file.
	key := root + "/" + rel
	if strings.Count(root, "/") > 3 && path.Base(root) == rel {
		key = root
	}
	h.streamVerified(w, r, key)
}
