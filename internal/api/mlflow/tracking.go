// Package mlflow serves MLflow's REST API (tracking, artifacts proxy) over
// Slipway's domain services, so every MLflow client works against Slipway by
// pointing MLFLOW_TRACKING_URI at it.
package mlflow

import (
	"bufio"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Prefixes MLflow clients and MLflow's own UI call.
var Prefixes = []string{"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"}

// Handler serves the MLflow API.
type Handler struct {
	Tracking  *tracking.Service
	Artifacts *blob.Store
	// Registry serves the model registry routes; nil leaves them out.
	Registry *registry.Service
	Log      *slog.Logger
	// MaxBodyBytes bounds JSON request bodies.
	MaxBodyBytes int64
}

type endpoint func(r *http.Request) (any, error)

// streamed is an endpoint's answer that writes itself, for answers too large
// to build in memory first. It writes the whole response, errors included.
type streamed func(w http.ResponseWriter, r *http.Request)

// Register mounts every MLflow route on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	routes := []struct {
		methods string
		path    string
		fn      endpoint
	}{
		{"POST", "experiments/create", h.createExperiment},
		{"GET", "experiments/get", h.getExperiment},
		{"GET", "experiments/get-by-name", h.getExperimentByName},
		{"GET POST", "experiments/search", h.searchExperiments},
		{"GET", "experiments/list", h.listExperiments},
		{"POST", "experiments/update", h.updateExperiment},
		{"POST", "experiments/delete", h.deleteExperiment},
		{"POST", "experiments/restore", h.restoreExperiment},
		{"POST", "experiments/set-experiment-tag", h.setExperimentTag},
		{"POST", "experiments/delete-experiment-tag", h.deleteExperimentTag},
		{"POST", "runs/create", h.createRun},
		{"GET", "runs/get", h.getRun},
		{"POST", "runs/update", h.updateRun},
		{"POST", "runs/delete", h.deleteRun},
		{"POST", "runs/restore", h.restoreRun},
		{"POST", "runs/search", h.searchRuns},
		{"POST", "runs/log-metric", h.logMetric},
		{"POST", "runs/log-parameter", h.logParam},
		{"POST", "runs/set-tag", h.setTag},
		{"POST", "runs/delete-tag", h.deleteTag},
		{"POST", "runs/log-batch", h.logBatch},
		{"POST", "runs/log-inputs", h.logInputs},
		{"POST", "runs/log-model", h.logModel},
		{"GET", "metrics/get-history", h.getMetricHistory},
		{"GET", "metrics/get-history-bulk-interval", h.getSampledMetricHistory},
		{"GET", "artifacts/list", h.listRunArtifacts},
	}
	for _, prefix := range Prefixes {
		for _, rt := range routes {
			for _, m := range strings.Fields(rt.methods) {
				mux.Handle(m+" "+prefix+rt.path, h.serve(rt.fn))
			}
		}
		mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{
				"error_code": "ENDPOINT_NOT_FOUND",
				"message":    "No MLflow endpoint " + r.Method + " " + r.URL.Path,
			})
		})
	}
	h.registerArtifacts(mux)
	h.registerRegistry(mux)
	h.registerUI(mux)
}

func (h *Handler) serve(fn endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := fn(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if s, ok := out.(streamed); ok {
			s(w, r)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errs.CodeOf(err) == errs.Internal && h.Log != nil {
		h.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteError(w, err)
}

func (h *Handler) decode(r *http.Request, v any) error {
	return decode(r, v, h.MaxBodyBytes)
}

type empty struct{}

// runID reads MLflow's run id, sent as run_id or the deprecated run_uuid.
func runID(id, uuid string) string {
	if id != "" {
		return id
	}
	return uuid
}

// --- experiments ---

func (h *Handler) createExperiment(r *http.Request) (any, error) {
	var req struct {
		Name             string    `json:"name"`
		ArtifactLocation string    `json:"artifact_location"`
		Tags             []tagJSON `json:"tags"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, tracking.MissingValue("name")
	}
	id, err := h.Tracking.CreateExperiment(r.Context(), req.Name, req.ArtifactLocation, tagsFrom(req.Tags))
	if err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": id}, nil
}

func (h *Handler) getExperiment(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string `json:"experiment_id"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	e, err := h.Tracking.GetExperiment(r.Context(), req.ExperimentID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentOut(e)}, nil
}

func (h *Handler) getExperimentByName(r *http.Request) (any, error) {
	var req struct {
		Name string `json:"experiment_name"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	e, err := h.Tracking.GetExperimentByName(r.Context(), req.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentOut(e)}, nil
}

func (h *Handler) searchExperiments(r *http.Request) (any, error) {
	var req struct {
		MaxResults Int64    `json:"max_results"`
		PageToken  string   `json:"page_token"`
		Filter     string   `json:"filter"`
		OrderBy    []string `json:"order_by"`
		ViewType   string   `json:"view_type"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	view, ok := tracking.ParseViewType(req.ViewType)
	if !ok {
		return nil, errs.Invalid("Invalid value '%s' for parameter 'view_type': must be ACTIVE_ONLY, DELETED_ONLY or ALL", req.ViewType)
	}
	exps, next, err := h.Tracking.SearchExperiments(r.Context(), tracking.SearchExperimentsRequest{
		Filter: req.Filter, OrderBy: req.OrderBy, MaxResults: int64(req.MaxResults), PageToken: req.PageToken, ViewType: view,
	})
	if err != nil {
		return nil, err
	}
	out := struct {
		Experiments   []experimentJSON `json:"experiments,omitempty"`
		NextPageToken string           `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, e := range exps {
		out.Experiments = append(out.Experiments, experimentOut(e))
	}
	return out, nil
}

// listExperiments serves MLflow 1.x's experiments/list, which 2.x replaced
// with search; older clients (such as the npm mlflow package) still call it.
func (h *Handler) listExperiments(r *http.Request) (any, error) {
	var req struct {
		ViewType string `json:"view_type"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	view, ok := tracking.ParseViewType(req.ViewType)
	if !ok {
		return nil, errs.Invalid("Invalid value '%s' for parameter 'view_type': must be ACTIVE_ONLY, DELETED_ONLY or ALL", req.ViewType)
	}
	out := struct {
		Experiments []experimentJSON `json:"experiments,omitempty"`
	}{}
	tok := ""
	for {
		exps, next, err := h.Tracking.SearchExperiments(r.Context(), tracking.SearchExperimentsRequest{
			ViewType: view, MaxResults: tracking.MaxResultsLimit, PageToken: tok})
		if err != nil {
			return nil, err
		}
		for _, e := range exps {
			out.Experiments = append(out.Experiments, experimentOut(e))
		}
		if next == "" {
			return out, nil
		}
		tok = next
	}
}

type experimentRef struct {
	ExperimentID string `json:"experiment_id"`
}

func (h *Handler) experimentAction(r *http.Request, fn func(id string) error) (any, error) {
	var req experimentRef
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, fn(req.ExperimentID)
}

func (h *Handler) deleteExperiment(r *http.Request) (any, error) {
	return h.experimentAction(r, func(id string) error { return h.Tracking.DeleteExperiment(r.Context(), id) })
}

func (h *Handler) restoreExperiment(r *http.Request) (any, error) {
	return h.experimentAction(r, func(id string) error { return h.Tracking.RestoreExperiment(r.Context(), id) })
}

func (h *Handler) updateExperiment(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string `json:"experiment_id"`
		NewName      string `json:"new_name"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	// MLflow checks experiment_id before new_name.
	if err := tracking.ValidateExperimentID(req.ExperimentID); err != nil {
		return nil, err
	}
	if req.NewName == "" {
		return nil, tracking.MissingValue("new_name")
	}
	return empty{}, h.Tracking.UpdateExperiment(r.Context(), req.ExperimentID, req.NewName)
}

func (h *Handler) setExperimentTag(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string `json:"experiment_id"`
		Key          string `json:"key"`
		Value        string `json:"value"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Tracking.SetExperimentTag(r.Context(), req.ExperimentID, tracking.Tag{Key: req.Key, Value: req.Value})
}

func (h *Handler) deleteExperimentTag(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string `json:"experiment_id"`
		Key          string `json:"key"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Tracking.DeleteExperimentTag(r.Context(), req.ExperimentID, req.Key)
}

// --- runs ---

func (h *Handler) createRun(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string    `json:"experiment_id"`
		UserID       string    `json:"user_id"`
		RunName      string    `json:"run_name"`
		StartTime    Int64     `json:"start_time"`
		Tags         []tagJSON `json:"tags"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	run, err := h.Tracking.CreateRun(r.Context(), tracking.CreateRunRequest{
		ExperimentID: req.ExperimentID, UserID: req.UserID, RunName: req.RunName,
		StartTime: int64(req.StartTime), Tags: tagsFrom(req.Tags),
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runOut(run)}, nil
}

type runRef struct {
	RunID   string `json:"run_id"`
	RunUUID string `json:"run_uuid"`
}

func (h *Handler) getRun(r *http.Request) (any, error) {
	var req runRef
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	run, err := h.Tracking.GetRun(r.Context(), runID(req.RunID, req.RunUUID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runOut(run)}, nil
}

func (h *Handler) updateRun(r *http.Request) (any, error) {
	var req struct {
		RunID   string `json:"run_id"`
		RunUUID string `json:"run_uuid"`
		Status  string `json:"status"`
		EndTime *Int64 `json:"end_time"`
		RunName string `json:"run_name"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	var end *int64
	if req.EndTime != nil {
		v := int64(*req.EndTime)
		end = &v
	}
	info, err := h.Tracking.UpdateRun(r.Context(), tracking.UpdateRunRequest{
		RunID: runID(req.RunID, req.RunUUID), Status: req.Status, EndTime: end, RunName: req.RunName,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": runInfoOut(info)}, nil
}

func (h *Handler) deleteRun(r *http.Request) (any, error) {
	var req runRef
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Tracking.DeleteRun(r.Context(), runID(req.RunID, req.RunUUID))
}

func (h *Handler) restoreRun(r *http.Request) (any, error) {
	var req runRef
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Tracking.RestoreRun(r.Context(), runID(req.RunID, req.RunUUID))
}

func (h *Handler) searchRuns(r *http.Request) (any, error) {
	var req struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		RunViewType   string   `json:"run_view_type"`
		MaxResults    Int64    `json:"max_results"`
		OrderBy       []string `json:"order_by"`
		PageToken     string   `json:"page_token"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	view, ok := tracking.ParseViewType(req.RunViewType)
	if !ok {
		return nil, errs.Invalid("Invalid value '%s' for parameter 'run_view_type': must be ACTIVE_ONLY, DELETED_ONLY or ALL", req.RunViewType)
	}
	runs, next, err := h.Tracking.SearchRuns(r.Context(), tracking.SearchRunsRequest{
		ExperimentIDs: req.ExperimentIDs, Filter: req.Filter, ViewType: view,
		MaxResults: int64(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return nil, err
	}
	body := appendSearchRuns(make([]byte, 0, 2700*len(runs)+64), runs, next)
	return streamed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}), nil
}

func (h *Handler) logMetric(r *http.Request) (any, error) {
	var req struct {
		RunID     string  `json:"run_id"`
		RunUUID   string  `json:"run_uuid"`
		Key       string  `json:"key"`
		Value     *Double `json:"value"`
		Timestamp *Int64  `json:"timestamp"`
		Step      Int64   `json:"step"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, tracking.MissingValue("value")
	}
	if req.Timestamp == nil {
		return nil, tracking.MissingValue("timestamp")
	}
	return empty{}, h.Tracking.LogMetric(r.Context(), runID(req.RunID, req.RunUUID), tracking.Metric{
		Key: req.Key, Value: float64(*req.Value), Timestamp: int64(*req.Timestamp), Step: int64(req.Step),
	})
}

func (h *Handler) logParam(r *http.Request) (any, error) {
	var req struct {
		RunID   string  `json:"run_id"`
		RunUUID string  `json:"run_uuid"`
		Key     string  `json:"key"`
		Value   *string `json:"value"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, tracking.MissingValue("value")
	}
	return empty{}, h.Tracking.LogParam(r.Context(), runID(req.RunID, req.RunUUID), tracking.Param{Key: req.Key, Value: *req.Value})
}

func (h *Handler) setTag(r *http.Request) (any, error) {
	var req struct {
		RunID   string  `json:"run_id"`
		RunUUID string  `json:"run_uuid"`
		Key     string  `json:"key"`
		Value   *string `json:"value"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, tracking.MissingValue("value")
	}
	return empty{}, h.Tracking.SetTag(r.Context(), runID(req.RunID, req.RunUUID), tracking.Tag{Key: req.Key, Value: *req.Value})
}

func (h *Handler) deleteTag(r *http.Request) (any, error) {
	var req struct {
		RunID string `json:"run_id"`
		Key   string `json:"key"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	return empty{}, h.Tracking.DeleteTag(r.Context(), req.RunID, req.Key)
}

func (h *Handler) logBatch(r *http.Request) (any, error) {
	// MLflow bounds a log-batch request at 1 MB regardless of the server's
	// general body limit.
	body, err := readBody(r, min(h.MaxBodyBytes, tracking.MaxBatchRequestBytes))
	if err != nil {
		return nil, err
	}
	if runID, metrics, ok := scanLogBatch(body); ok {
		return empty{}, h.Tracking.LogBatch(r.Context(), runID, metrics, nil, nil)
	}
	var req logBatchRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	metrics, err := req.metrics()
	if err != nil {
		return nil, err
	}
	params := make([]tracking.Param, len(req.Params))
	for i, p := range req.Params {
		params[i] = tracking.Param{Key: p.Key, Value: p.Value}
	}
	return empty{}, h.Tracking.LogBatch(r.Context(), req.RunID, metrics, params, tagsFrom(req.Tags))
}

func (h *Handler) logInputs(r *http.Request) (any, error) {
	var req struct {
		RunID    string              `json:"run_id"`
		Datasets *[]datasetInputJSON `json:"datasets"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if err := tracking.ValidateRunID(req.RunID); err != nil {
		return nil, err
	}
	if req.Datasets == nil {
		return nil, tracking.MissingValue("datasets")
	}
	inputs := make([]tracking.DatasetInput, len(*req.Datasets))
	for i, d := range *req.Datasets {
		inputs[i] = tracking.DatasetInput{
			Tags: tagsFrom(d.Tags),
			Dataset: tracking.Dataset{Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType,
				Source: d.Dataset.Source, Schema: d.Dataset.Schema, Profile: d.Dataset.Profile},
		}
	}
	return empty{}, h.Tracking.LogInputs(r.Context(), req.RunID, inputs)
}

// logModel records a logged model's MLmodel description in the run's
// mlflow.log-model.history tag, which is what MLflow's server does with it.
func (h *Handler) logModel(r *http.Request) (any, error) {
	var req struct {
		RunID     string `json:"run_id"`
		ModelJSON string `json:"model_json"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.ModelJSON == "" {
		return nil, tracking.MissingValue("model_json")
	}
	return empty{}, h.Tracking.RecordLoggedModel(r.Context(), req.RunID, req.ModelJSON)
}

// --- metrics ---

func (h *Handler) getMetricHistory(r *http.Request) (any, error) {
	var req struct {
		RunID      string `json:"run_id"`
		RunUUID    string `json:"run_uuid"`
		MetricKey  string `json:"metric_key"`
		PageToken  string `json:"page_token"`
		MaxResults Int64  `json:"max_results"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	if req.MaxResults == 0 && req.PageToken == "" {
		// The whole history, as the API answers a request for no page:
		// streamed from the database, since it can be millions of points.
		return streamed(func(w http.ResponseWriter, r *http.Request) {
			h.streamMetricHistory(w, r, runID(req.RunID, req.RunUUID), req.MetricKey)
		}), nil
	}
	history, next, err := h.Tracking.GetMetricHistory(r.Context(), runID(req.RunID, req.RunUUID), req.MetricKey, int64(req.MaxResults), req.PageToken)
	if err != nil {
		return nil, err
	}
	// Written as the streamed answer is, which is what encoding/json would
	// write for {metrics, next_page_token} at about a third of the cost; a
	// page of 25,000 points is what MLflow's Python client asks for.
	head := historyPointHead(req.MetricKey)
	body := make([]byte, 0, 96*len(history)+128)
	body = append(body, '{')
	if len(history) > 0 {
		body = append(body, `"metrics":[`...)
		for i := range history {
			if i > 0 {
				body = append(body, ',')
			}
			body = appendHistoryPoint(body, head, &history[i])
		}
		body = append(body, ']')
	}
	body = appendPageEnd(body, next, len(history) > 0)
	return streamed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}), nil
}

// historyPointHead is what every point of a history answer starts with.
func historyPointHead(key string) []byte {
	head := append([]byte(`{"key":`), appendJSONString(nil, key)...)
	return append(head, `,"value":`...)
}

// appendHistoryPoint appends m as metricJSON encodes it, after head.
func appendHistoryPoint(buf, head []byte, m *tracking.Metric) []byte {
	return appendMetricValue(append(buf, head...), m)
}

// appendMetricValue appends the end of metricJSON's encoding of m, from its
// value on.
func appendMetricValue(buf []byte, m *tracking.Metric) []byte {
	buf = appendDouble(buf, m.Value)
	buf = append(buf, `,"timestamp":`...)
	buf = strconv.AppendInt(buf, m.Timestamp, 10)
	buf = append(buf, `,"step":`...)
	buf = strconv.AppendInt(buf, m.Step, 10)
	return append(buf, '}')
}

// appendPageEnd ends a paged answer's object: its next_page_token when
// there is one, after a comma when listed is set.
func appendPageEnd(b []byte, next string, listed bool) []byte {
	if next != "" {
		if listed {
			b = append(b, ',')
		}
		b = append(b, `"next_page_token":`...)
		b = appendJSONString(b, next)
	}
	return append(b, "}\n"...)
}

// streamMetricHistory writes the answer getMetricHistory's encoder would
// write for a whole history, byte for byte, row by row as the database
// returns them.
func (h *Handler) streamMetricHistory(w http.ResponseWriter, r *http.Request, runID, key string) {
	out := &wroteWriter{w: w}
	bw := bufio.NewWriterSize(out, 64<<10)
	head := historyPointHead(key)
	buf := make([]byte, 0, 128)
	n := 0
	w.Header().Set("Content-Type", "application/json")
	err := h.Tracking.EachMetricHistoryPoint(r.Context(), runID, key, func(m *tracking.Metric) error {
		buf = buf[:0]
		if n == 0 {
			buf = append(buf, `{"metrics":[`...)
		} else {
			buf = append(buf, ',')
		}
		n++
		buf = appendHistoryPoint(buf, head, m)
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		if !out.wrote {
			h.fail(w, r, err)
			return
		}
		// Part of the answer is on the wire: only a broken connection tells
		// the client it is not the whole history.
		panic(http.ErrAbortHandler)
	}
	if n == 0 {
		bw.WriteString("{}\n") // metrics is omitempty
	} else {
		bw.WriteString("]}\n")
	}
	bw.Flush()
}
