package client

import (
	"context"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// CreateRunRequest starts a run. An empty ExperimentID means the Default
// experiment ("0"), an empty RunName gets a generated name, and a zero
// StartTime means now.
type CreateRunRequest struct {
	ExperimentID string `json:"experiment_id,omitempty"`
	RunName      string `json:"run_name,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	StartTime    int64  `json:"start_time,omitempty"`
	Tags         []Tag  `json:"tags,omitempty"`
}

// CreateRun starts a run in the RUNNING state.
func (c *Client) CreateRun(ctx context.Context, req CreateRunRequest) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.call(ctx, "POST", "runs/create", nil, req, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// GetRun returns a run with its latest metrics, params, tags and inputs.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.call(ctx, "GET", "runs/get", url.Values{"run_id": {runID}}, nil, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// UpdateRunRequest changes a run; empty fields are left as they are. To end
// a run, set Status to RunStatusFinished (or FAILED, KILLED) and EndTime.
type UpdateRunRequest struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status,omitempty"`
	EndTime int64  `json:"end_time,omitempty"`
	RunName string `json:"run_name,omitempty"`
}

// UpdateRun applies req and returns the run's updated info.
func (c *Client) UpdateRun(ctx context.Context, req UpdateRunRequest) (*RunInfo, error) {
	var out struct {
		RunInfo RunInfo `json:"run_info"`
	}
	if err := c.call(ctx, "POST", "runs/update", nil, req, &out); err != nil {
		return nil, err
	}
	return &out.RunInfo, nil
}

// DeleteRun marks a run deleted; RestoreRun undoes it.
func (c *Client) DeleteRun(ctx context.Context, runID string) error {
	return c.call(ctx, "POST", "runs/delete", nil, map[string]string{"run_id": runID}, nil)
}

// RestoreRun brings back a deleted run.
func (c *Client) RestoreRun(ctx context.Context, runID string) error {
	return c.call(ctx, "POST", "runs/restore", nil, map[string]string{"run_id": runID}, nil)
}

// SearchRunsRequest selects runs of the given experiments. Filter uses
// MLflow's grammar ("metrics.auc > 0.8 AND params.model = 'gbdt'"); OrderBy
// entries look like "metrics.auc DESC" or "attributes.start_time".
// MaxResults is the page size (the server's default, 1000, when 0).
type SearchRunsRequest struct {
	ExperimentIDs []string `json:"experiment_ids"`
	Filter        string   `json:"filter,omitempty"`
	ViewType      ViewType `json:"run_view_type,omitempty"`
	MaxResults    int64    `json:"max_results,omitempty"`
	OrderBy       []string `json:"order_by,omitempty"`
	PageToken     string   `json:"page_token,omitempty"`
}

// RunsPage is one page of search results; NextPageToken is empty on the
// last page.
type RunsPage struct {
	Runs          []Run  `json:"runs"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SearchRuns returns one page of runs.
func (c *Client) SearchRuns(ctx context.Context, req SearchRunsRequest) (*RunsPage, error) {
	var out RunsPage
	if err := c.call(ctx, "POST", "runs/search", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterRuns yields every run req selects, fetching pages as the loop asks
// for them, starting at req.PageToken. It stops after yielding the first
// error.
func (c *Client) IterRuns(ctx context.Context, req SearchRunsRequest) iter.Seq2[Run, error] {
	return paginate(req.PageToken, func(token string) ([]Run, string, error) {
		req.PageToken = token
		page, err := c.SearchRuns(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return page.Runs, page.NextPageToken, nil
	})
}

// SearchAllRuns returns every run req selects, following page tokens.
func (c *Client) SearchAllRuns(ctx context.Context, req SearchRunsRequest) ([]Run, error) {
	return collect(c.IterRuns(ctx, req))
}

// LogMetric logs one metric point. A zero Timestamp means now; m.RunID is
// ignored.
func (c *Client) LogMetric(ctx context.Context, runID string, m Metric) error {
	if m.Timestamp == 0 {
		m.Timestamp = time.Now().UnixMilli()
	}
	// Embedding Metric would promote its MarshalJSON and drop run_id, so
	// the fields are spelled out.
	return c.call(ctx, "POST", "runs/log-metric", nil, struct {
		RunID     string    `json:"run_id"`
		Key       string    `json:"key"`
		Value     flexFloat `json:"value"`
		Timestamp int64     `json:"timestamp"`
		Step      int64     `json:"step"`
	}{runID, m.Key, flexFloat(m.Value), m.Timestamp, m.Step}, nil)
}

// LogParam logs a param. Logging a different value for a key the run
// already has is an INVALID_PARAMETER_VALUE error.
func (c *Client) LogParam(ctx context.Context, runID, key, value string) error {
	return c.call(ctx, "POST", "runs/log-parameter", nil,
		map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// SetTag sets (or overwrites) a run tag.
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	return c.call(ctx, "POST", "runs/set-tag", nil,
		map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// DeleteTag removes a run tag.
func (c *Client) DeleteTag(ctx context.Context, runID, key string) error {
	return c.call(ctx, "POST", "runs/delete-tag", nil, map[string]string{"run_id": runID, "key": key}, nil)
}

// LogBatch logs metrics, params and tags in one request, which the server
// applies all or nothing. MLflow's limits apply to one call: at most 1000
// metrics, 100 params, 100 tags and 1000 entities in all. Metrics with a
// zero Timestamp are stamped now.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	now := time.Now().UnixMilli()
	ms := make([]Metric, len(metrics))
	for i, m := range metrics {
		m.RunID = ""
		if m.Timestamp == 0 {
			m.Timestamp = now
		}
		ms[i] = m
	}
	return c.call(ctx, "POST", "runs/log-batch", nil, struct {
		RunID   string   `json:"run_id"`
		Metrics []Metric `json:"metrics,omitempty"`
		Params  []Param  `json:"params,omitempty"`
		Tags    []Tag    `json:"tags,omitempty"`
	}{runID, ms, params, tags}, nil)
}

// LogInputs records the datasets a run used.
func (c *Client) LogInputs(ctx context.Context, runID string, inputs []DatasetInput) error {
	return c.call(ctx, "POST", "runs/log-inputs", nil, struct {
		RunID    string         `json:"run_id"`
		Datasets []DatasetInput `json:"datasets"`
	}{runID, inputs}, nil)
}

// LogModel records a logged model's MLmodel description (as JSON) on the
// run, as MLflow's log_model does; the model's files are uploaded
// separately as artifacts.
func (c *Client) LogModel(ctx context.Context, runID, modelJSON string) error {
	return c.call(ctx, "POST", "runs/log-model", nil, map[string]string{"run_id": runID, "model_json": modelJSON}, nil)
}

// GetMetricHistoryRequest asks for the points of one metric of one run, in
// step order. With MaxResults and PageToken both zero the server returns the
// whole history at once.
type GetMetricHistoryRequest struct {
	RunID      string
	MetricKey  string
	MaxResults int64
	PageToken  string
}

// MetricHistoryPage is one page of a metric's history.
type MetricHistoryPage struct {
	Metrics       []Metric `json:"metrics"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// GetMetricHistory returns one page of a metric's history.
func (c *Client) GetMetricHistory(ctx context.Context, req GetMetricHistoryRequest) (*MetricHistoryPage, error) {
	q := url.Values{"run_id": {req.RunID}, "metric_key": {req.MetricKey}}
	if req.MaxResults != 0 {
		q.Set("max_results", strconv.FormatInt(req.MaxResults, 10))
	}
	if req.PageToken != "" {
		q.Set("page_token", req.PageToken)
	}
	var out MetricHistoryPage
	if err := c.call(ctx, "GET", "metrics/get-history", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterMetricHistory yields every point of a metric, following page tokens.
func (c *Client) IterMetricHistory(ctx context.Context, req GetMetricHistoryRequest) iter.Seq2[Metric, error] {
	return paginate(req.PageToken, func(token string) ([]Metric, string, error) {
		req.PageToken = token
		page, err := c.GetMetricHistory(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return page.Metrics, page.NextPageToken, nil
	})
}

// GetFullMetricHistory returns every point of the metric key of a run.
func (c *Client) GetFullMetricHistory(ctx context.Context, runID, key string) ([]Metric, error) {
	return collect(c.IterMetricHistory(ctx, GetMetricHistoryRequest{RunID: runID, MetricKey: key}))
}

// BulkIntervalRequest asks for one metric of several runs, sampled as MLflow
// samples it: at most MaxResults steps (the server's default when 0) spread
// evenly over the union of the runs' steps between StartStep and EndStep
// (inclusive; nil means from 0 to the last step), plus each run's own first
// and last step in that range.
type BulkIntervalRequest struct {
	RunIDs     []string
	MetricKey  string
	StartStep  *int64
	EndStep    *int64
	MaxResults int64
}

// GetMetricHistoryBulkInterval returns the sampled points, each with its
// RunID set, as the UI's charts fetch them.
func (c *Client) GetMetricHistoryBulkInterval(ctx context.Context, req BulkIntervalRequest) ([]Metric, error) {
	q := url.Values{"run_ids": req.RunIDs, "metric_key": {req.MetricKey}}
	if req.StartStep != nil {
		q.Set("start_step", strconv.FormatInt(*req.StartStep, 10))
	}
	if req.EndStep != nil {
		q.Set("end_step", strconv.FormatInt(*req.EndStep, 10))
	}
	if req.MaxResults != 0 {
		q.Set("max_results", strconv.FormatInt(req.MaxResults, 10))
	}
	var out struct {
		Metrics []Metric `json:"metrics"`
	}
	if err := c.call(ctx, "GET", "metrics/get-history-bulk-interval", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Metrics, nil
}
