package mlflow

import (
	"bytes"
	"io"
	"mime"
	"net/http"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
)

// ajaxPrefix is where MLflow's server mounts the routes only its web UI
// calls (mlflow/server/__init__.py).
const ajaxPrefix = "/ajax-api/2.0/mlflow/"

// maxUIUploadBytes is upload-artifact's limit in MLflow's handler.
const maxUIUploadBytes = 10 * 1024 * 1024

// registerUI mounts the routes MLflow's web UI calls beyond the public API.
// MLflow serves them under /ajax-api only; get-history-bulk is served under
// both prefixes, like the rest of the tracking API.
func (h *Handler) registerUI(mux *http.ServeMux) {
	for _, p := range Prefixes {
		mux.Handle("GET "+p+"metrics/get-history-bulk", h.serve(h.getMetricHistoryBulk))
	}
	mux.Handle("POST "+ajaxPrefix+"upload-artifact", h.serve(h.uploadRunArtifact))
	mux.Handle("POST "+ajaxPrefix+"experiments/search-datasets", h.serve(h.searchDatasets))
}

// uploadRunArtifact serves upload-artifact (handlers.py
// upload_artifact_handler): the raw request body, at most 10 MB, becomes
// the file at the query argument path inside the artifact root of the run
// named by run_uuid. The path is checked with blob.CleanKey, so it can only
// name a file below that root.
func (h *Handler) uploadRunArtifact(r *http.Request) (any, error) {
	q := r.URL.Query()
	runID := q.Get("run_uuid")
	if runID == "" {
		return nil, errs.Invalid("Request must specify run_uuid.")
	}
	p := q.Get("path")
	if p == "" {
		return nil, errs.Invalid("Request must specify path.")
	}
	sub, err := blob.CleanKey(p)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > maxUIUploadBytes {
		return nil, errs.Invalid("Artifact size is too large. Max size is 10MB.")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxUIUploadBytes+1))
	if err != nil {
		return nil, errs.Invalid("could not read request body: %v", err)
	}
	if len(data) > maxUIUploadBytes {
		return nil, errs.Invalid("Artifact size is too large. Max size is 10MB.")
	}
	if len(data) == 0 {
		return nil, errs.Invalid("Request must specify data.")
	}
	_, root, err := h.runArtifactRoot(r, runID)
	if err != nil {
		return nil, err
	}
	if _, err := h.Artifacts.Put(r.Context(), root+"/"+sub, bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return empty{}, nil
}

type datasetSummaryJSON struct {
	ExperimentID string  `json:"experiment_id"`
	Name         string  `json:"name"`
	Digest       string  `json:"digest"`
	Context      *string `json:"context,omitempty"`
}

// searchDatasets serves experiments/search-datasets (handlers.py
// search_datasets_handler): the datasets the runs of 1 to 20 experiments
// used, each with the context it was used in. Like MLflow it takes only
// application/json bodies, which a cross-site form cannot send.
func (h *Handler) searchDatasets(r *http.Request) (any, error) {
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	var req struct {
		ExperimentIDs []string `json:"experiment_ids"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	summaries, err := h.Tracking.SearchDatasets(r.Context(), req.ExperimentIDs)
	if err != nil {
		return nil, err
	}
	out := struct {
		DatasetSummaries []datasetSummaryJSON `json:"dataset_summaries,omitempty"`
	}{}
	for _, d := range summaries {
		out.DatasetSummaries = append(out.DatasetSummaries, datasetSummaryJSON(d))
	}
	return out, nil
}

// requireJSON is MLflow's _validate_content_type(request, ["application/json"]).
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return errs.Invalid("Bad Request. Content-Type header is missing.")
	}
	if media, _, err := mime.ParseMediaType(ct); err != nil || media != "application/json" {
		return errs.Invalid("Bad Request. Content-Type must be one of ['application/json'].")
	}
	return nil
}
