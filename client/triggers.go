package client

import (
	"context"
	"net/url"
)

// Schedules and webhooks start pipeline runs without a person: a cron
// schedule, new versions of a dataset, or a git push. They live on
// Slipway's native API; see docs/triggers.md.

// Kinds of Schedule.
const (
	ScheduleKindCron    = "schedule" // a cron schedule
	ScheduleKindData    = "data"     // new versions of a dataset
	ScheduleKindWebhook = "webhook"  // a pipeline's push webhook
)

// Schedule is one trigger of a pipeline: a cron schedule, a data trigger,
// or the pipeline's push webhook (its branch filter; never its secret).
type Schedule struct {
	ID       string `json:"trigger_id"`
	Pipeline string `json:"pipeline"`
	Kind     string `json:"kind"`
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	Dataset  string `json:"dataset,omitempty"`
	// LastVersion is the newest version of Dataset already acted on.
	LastVersion int64             `json:"last_version,omitempty"`
	Branch      string            `json:"branch,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	Enabled     bool              `json:"enabled"`
	// NextTime is a cron schedule's next firing (ms since the epoch).
	NextTime  int64  `json:"next_time,omitempty"`
	LastFired int64  `json:"last_fired,omitempty"`
	LastRunID string `json:"last_run_id,omitempty"`
	// LastError says why the last firing queued no run.
	LastError   string `json:"last_error,omitempty"`
	CreatedBy   string `json:"created_by,omitempty"`
	CreatedTime int64  `json:"created_time"`
}

// ScheduleRequest creates a cron schedule (Cron, and Timezone, an IANA
// name, default UTC) or a data trigger (Dataset): set Cron or Dataset.
// Params override the spec's defaults in the runs it starts.
type ScheduleRequest struct {
	Cron     string            `json:"cron,omitempty"`
	Timezone string            `json:"timezone,omitempty"`
	Dataset  string            `json:"dataset,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
}

// CreateSchedule adds a cron schedule or a data trigger to a pipeline.
func (c *Client) CreateSchedule(ctx context.Context, pipeline string, req ScheduleRequest) (*Schedule, error) {
	var out struct {
		Schedule Schedule `json:"schedule"`
	}
	if _, err := c.v1(ctx, "POST", "pipelines/"+url.PathEscape(pipeline)+"/schedules", nil, req, &out); err != nil {
		return nil, err
	}
	return &out.Schedule, nil
}

// ListSchedules returns a pipeline's schedules, or every pipeline's when
// pipeline is "".
func (c *Client) ListSchedules(ctx context.Context, pipeline string) ([]Schedule, error) {
	path := "schedules"
	if pipeline != "" {
		path = "pipelines/" + url.PathEscape(pipeline) + "/schedules"
	}
	var out struct {
		Schedules []Schedule `json:"schedules"`
	}
	if _, err := c.v1(ctx, "GET", path, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Schedules, nil
}

// GetSchedule returns one schedule by id.
func (c *Client) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	return c.scheduleCall(ctx, "GET", id, nil)
}

// SetScheduleEnabled pauses (false) or resumes (true) a schedule. A
// resumed schedule does not fire for what it missed while paused.
func (c *Client) SetScheduleEnabled(ctx context.Context, id string, enabled bool) (*Schedule, error) {
	return c.scheduleCall(ctx, "PATCH", id, map[string]bool{"enabled": enabled})
}

// DeleteSchedule removes a schedule. Deleting a pipeline's webhook also
// removes its secret.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	_, err := c.v1(ctx, "DELETE", "schedules/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func (c *Client) scheduleCall(ctx context.Context, method, id string, in any) (*Schedule, error) {
	var out struct {
		Schedule Schedule `json:"schedule"`
	}
	if _, err := c.v1(ctx, method, "schedules/"+url.PathEscape(id), nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Schedule, nil
}

// PipelineWebhook says whether a pipeline takes push webhooks; the secret
// itself is never returned.
type PipelineWebhook struct {
	Pipeline  string    `json:"pipeline"`
	HasSecret bool      `json:"has_secret"`
	Trigger   *Schedule `json:"trigger,omitempty"`
}

// SetPipelineWebhook sets the secret that GitHub or GitLab push webhooks
// for the pipeline are signed with (an empty secret turns webhooks off),
// and an optional branch filter, a glob on the branch name such as main
// or release/*. Point the repository's webhook at WebhookURL(pipeline).
func (c *Client) SetPipelineWebhook(ctx context.Context, pipeline, secret, branch string) (*PipelineWebhook, error) {
	var out struct {
		Webhook PipelineWebhook `json:"webhook"`
	}
	in := map[string]string{"secret": secret, "branch": branch}
	if _, err := c.v1(ctx, "PUT", "pipelines/"+url.PathEscape(pipeline)+"/webhook", nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Webhook, nil
}

// WebhookURL is where a repository's push webhook for the pipeline goes.
func (c *Client) WebhookURL(pipeline string) string {
	return c.base + v1Prefix + "pipelines/" + url.PathEscape(pipeline) + "/trigger"
}
