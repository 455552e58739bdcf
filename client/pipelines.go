package client

import (
	"context"
	"io"
	"net/url"
	"strconv"
)

// Pipelines live on Slipway's native API: specs registered with the server
// and their runs, which the server executes. See docs/pipelines.md.

// Pipeline statuses of a run.
const (
	PipelineQueued    = "queued"
	PipelineRunning   = "running"
	PipelineSucceeded = "succeeded"
	PipelineFailed    = "failed"
	PipelineCancelled = "cancelled"
)

// Pipeline is a spec registered with the server.
type Pipeline struct {
	Name        string       `json:"name"`
	File        string       `json:"file"`
	ProjectDir  string       `json:"project_dir"`
	Spec        string       `json:"spec,omitempty"`
	Steps       []string     `json:"steps"`
	HasWebhook  bool         `json:"has_webhook_secret"`
	CreatedTime int64        `json:"created_time"`
	UpdatedTime int64        `json:"updated_time"`
	UpdatedBy   string       `json:"updated_by,omitempty"`
	LatestRun   *PipelineRun `json:"latest_run,omitempty"`
}

// PipelineTrigger says what started a run.
type PipelineTrigger struct {
	Kind   string            `json:"kind"`
	Detail map[string]string `json:"detail,omitempty"`
}

// PipelineRun is one execution of a pipeline.
type PipelineRun struct {
	ID           string            `json:"run_id"`
	Pipeline     string            `json:"pipeline"`
	Number       int64             `json:"number"`
	Status       string            `json:"status"`
	Trigger      PipelineTrigger   `json:"trigger"`
	Params       map[string]string `json:"params,omitempty"`
	Force        bool              `json:"force,omitempty"`
	ResumedFrom  string            `json:"resumed_from,omitempty"`
	MLflowRunID  string            `json:"mlflow_run_id,omitempty"`
	ExperimentID string            `json:"experiment_id,omitempty"`
	Error        string            `json:"error,omitempty"`
	CreatedBy    string            `json:"created_by,omitempty"`
	CreatedTime  int64             `json:"created_time"`
	StartTime    int64             `json:"start_time,omitempty"`
	EndTime      int64             `json:"end_time,omitempty"`
	Steps        []PipelineStep    `json:"steps,omitempty"`
}

// Done says whether the run has ended.
func (r *PipelineRun) Done() bool {
	return r.Status == PipelineSucceeded || r.Status == PipelineFailed || r.Status == PipelineCancelled
}

// PipelineStep is one step of a run. Status is pending or running, then
// how it ended: succeeded, cached, reused, failed, skipped or cancelled.
type PipelineStep struct {
	Name        string      `json:"name"`
	Status      string      `json:"status"`
	MLflowRunID string      `json:"mlflow_run_id,omitempty"`
	HasLog      bool        `json:"has_log"`
	StartTime   int64       `json:"start_time,omitempty"`
	EndTime     int64       `json:"end_time,omitempty"`
	Result      *StepResult `json:"result,omitempty"`
}

// StepResult is how a step ended and why it ran or was restored.
type StepResult struct {
	Status   string                `json:"status"`
	Decision StepDecision          `json:"decision"`
	Attempts int                   `json:"attempts"`
	Duration int64                 `json:"duration"` // nanoseconds
	ExitCode int                   `json:"exit_code"`
	Error    string                `json:"error,omitempty"`
	Outputs  map[string]StepOutput `json:"outputs,omitempty"`
	Metrics  map[string]float64    `json:"metrics,omitempty"`
}

// StepDecision is the cache decision: the key, hit or not, and why.
type StepDecision struct {
	Key     string   `json:"key"`
	Hit     bool     `json:"hit"`
	Reason  string   `json:"reason"`
	Changed []string `json:"changed,omitempty"`
}

// StepOutput is where an output is in the project and its digest.
type StepOutput struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// PutPipeline registers spec (YAML text) under name; its steps run in
// projectDir on the server's machine.
func (c *Client) PutPipeline(ctx context.Context, name, file, spec, projectDir string) (*Pipeline, error) {
	var out struct {
		Pipeline Pipeline `json:"pipeline"`
	}
	in := map[string]string{"spec": spec, "file": file, "project_dir": projectDir}
	if _, err := c.v1(ctx, "PUT", "pipelines/"+url.PathEscape(name), nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Pipeline, nil
}

// GetPipeline returns a registered pipeline with its spec and latest run.
func (c *Client) GetPipeline(ctx context.Context, name string) (*Pipeline, error) {
	var out struct {
		Pipeline Pipeline `json:"pipeline"`
	}
	if _, err := c.v1(ctx, "GET", "pipelines/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out.Pipeline, nil
}

// ListPipelines returns the registered pipelines with their latest runs.
func (c *Client) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	var out struct {
		Pipelines []Pipeline `json:"pipelines"`
	}
	_, err := c.v1(ctx, "GET", "pipelines", nil, nil, &out)
	return out.Pipelines, err
}

// DeletePipeline removes a pipeline with its runs and schedules.
func (c *Client) DeletePipeline(ctx context.Context, name string) error {
	_, err := c.v1(ctx, "DELETE", "pipelines/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// StartPipelineRun queues a manual run with param overrides.
func (c *Client) StartPipelineRun(ctx context.Context, name string, params map[string]string, force bool) (*PipelineRun, error) {
	return c.runCall(ctx, "POST", "pipelines/"+url.PathEscape(name)+"/runs", map[string]any{"params": params, "force": force})
}

// GetPipelineRun returns a run with its steps: ref is a run id,
// PIPELINE#NUMBER, or a pipeline name for its latest run.
func (c *Client) GetPipelineRun(ctx context.Context, ref string) (*PipelineRun, error) {
	return c.runCall(ctx, "GET", "pipeline-runs/"+url.PathEscape(ref), nil)
}

// CancelPipelineRun stops a queued or running run.
func (c *Client) CancelPipelineRun(ctx context.Context, id string) (*PipelineRun, error) {
	return c.runCall(ctx, "POST", "pipeline-runs/"+url.PathEscape(id)+"/cancel", nil)
}

// ResumePipelineRun queues a new run of a failed or cancelled one that
// keeps its succeeded steps.
func (c *Client) ResumePipelineRun(ctx context.Context, id string) (*PipelineRun, error) {
	return c.runCall(ctx, "POST", "pipeline-runs/"+url.PathEscape(id)+"/resume", nil)
}

func (c *Client) runCall(ctx context.Context, method, path string, in any) (*PipelineRun, error) {
	var out struct {
		Run PipelineRun `json:"run"`
	}
	if _, err := c.v1(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// ListPipelineRunsRequest filters runs; the zero value lists the newest
// 100 of every pipeline.
type ListPipelineRunsRequest struct {
	Pipeline   string
	Status     string
	MaxResults int
	PageToken  string
}

// ListPipelineRuns returns runs newest first, and the next page's token.
func (c *Client) ListPipelineRuns(ctx context.Context, req ListPipelineRunsRequest) ([]PipelineRun, string, error) {
	q := url.Values{}
	for k, v := range map[string]string{"pipeline": req.Pipeline, "status": req.Status, "page_token": req.PageToken} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if req.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(req.MaxResults))
	}
	var out struct {
		Runs []PipelineRun `json:"runs"`
		Next string        `json:"next_page_token"`
	}
	_, err := c.v1(ctx, "GET", "pipeline-runs", q, nil, &out)
	return out.Runs, out.Next, err
}

// StepLog is a piece of a step's log: Next is the offset to read from
// next; Complete says the step has ended and nothing follows.
type StepLog struct {
	Data     []byte
	Next     int64
	Complete bool
}

// ReadStepLog reads a step's log from offset.
func (c *Client) ReadStepLog(ctx context.Context, runID, step string, offset int64) (*StepLog, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	resp, err := c.sendV1(ctx, "GET", "pipeline-runs/"+url.PathEscape(runID)+"/logs/"+url.PathEscape(step), q, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	next, err := strconv.ParseInt(resp.Header.Get("X-Slipway-Log-Offset"), 10, 64)
	if err != nil {
		next = offset + int64(len(data))
	}
	return &StepLog{Data: data, Next: next, Complete: resp.Header.Get("X-Slipway-Log-Complete") == "true"}, nil
}
