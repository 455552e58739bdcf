package mlflow

import (
	"net/http"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tracking"
)

// getSampledMetricHistory serves metrics/get-history-bulk-interval
// (MLflow's get_metric_history_bulk_interval_handler). max_results is
// decoded as optional so that an explicit 0 is refused, as MLflow refuses
// it, while an absent one means MLflow's default of 2500.
func (h *Handler) getSampledMetricHistory(r *http.Request) (any, error) {
	var req struct {
		RunIDs     []string `json:"run_ids"`
		MetricKey  string   `json:"metric_key"`
		StartStep  *Int64   `json:"start_step"`
		EndStep    *Int64   `json:"end_step"`
		MaxResults *Int64   `json:"max_results"`
	}
	if err := h.decode(r, &req); err != nil {
		return nil, err
	}
	points, err := h.Tracking.SampleMetricHistory(r.Context(), tracking.BulkIntervalRequest{
		RunIDs: req.RunIDs, MetricKey: req.MetricKey,
		StartStep: int64Ptr(req.StartStep), EndStep: int64Ptr(req.EndStep), MaxResults: int64Ptr(req.MaxResults),
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Metrics []metricJSON `json:"metrics,omitempty"`
	}{metricsWithRunIDs(points)}, nil
}

// getMetricHistoryBulk serves MLflow's UI route metrics/get-history-bulk
// (handlers.py get_metric_history_bulk_handler): GET with run_id repeated
// (1 to 100), metric_key and an optional max_results (at most 25000 points
// in all). An empty metric_key is refused like a missing one. It answers a plain JSON object, not a proto message, so the
// metrics list is present even when empty, as Flask's jsonify writes it.
func (h *Handler) getMetricHistoryBulk(r *http.Request) (any, error) {
	q := r.URL.Query()
	maxResults := int64(tracking.MaxResultsBulk)
	if v := q.Get("max_results"); q.Has("max_results") {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errs.Invalid("Invalid value %q for parameter 'max_results' supplied: must be an integer.", v)
		}
		maxResults = n
	}
	points, err := h.Tracking.GetMetricHistoryBulk(r.Context(), q["run_id"], q.Get("metric_key"), maxResults)
	if err != nil {
		return nil, err
	}
	out := struct {
		Metrics []metricJSON `json:"metrics"`
	}{metricsWithRunIDs(points)}
	if out.Metrics == nil {
		out.Metrics = []metricJSON{}
	}
	return out, nil
}

func metricsWithRunIDs(points []tracking.MetricWithRunID) []metricJSON {
	if len(points) == 0 {
		return nil
	}
	out := make([]metricJSON, len(points))
	for i, p := range points {
		out[i] = metricOut(p.Metric)
		out[i].RunID = p.RunID
	}
	return out
}

func int64Ptr(v *Int64) *int64 {
	if v == nil {
		return nil
	}
	n := int64(*v)
	return &n
}
