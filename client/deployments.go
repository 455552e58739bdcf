package client

import (
	"context"
	"net/url"
)

// Deployments live on Slipway's native API: named endpoints whose traffic
// is split over registered model versions. See docs/serving.md.

// DeploymentRoute sends Weight percent of the traffic to Model
// (models:/NAME/VERSION or models:/NAME@ALIAS); Role is stable or canary.
type DeploymentRoute struct {
	Model  string `json:"model"`
	Weight int    `json:"weight"`
	Role   string `json:"role"`
}

// DeploymentShadow mirrors Percent of the requests to Model.
type DeploymentShadow struct {
	Model   string `json:"model"`
	Percent int    `json:"percent"`
}

// DeploymentSplit is how a deployment's traffic is divided.
type DeploymentSplit struct {
	Routes []DeploymentRoute `json:"routes"`
	Shadow *DeploymentShadow `json:"shadow,omitempty"`
}

// DeploymentServing is the model version behind a route right now.
type DeploymentServing struct {
	Model    string `json:"model"`
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Weight   int    `json:"weight"`
	Role     string `json:"role"`
}

// Deployment is a named endpoint and its split.
type Deployment struct {
	Name        string              `json:"name"`
	Split       DeploymentSplit     `json:"split"`
	Revision    int64               `json:"revision"`
	CreatedTime int64               `json:"created_time"`
	UpdatedTime int64               `json:"updated_time"`
	UpdatedBy   string              `json:"updated_by,omitempty"`
	Serving     []DeploymentServing `json:"serving,omitempty"`
}

// DeploymentRevision is one recorded change of a deployment.
type DeploymentRevision struct {
	Revision    int64           `json:"revision"`
	Split       DeploymentSplit `json:"split"`
	Action      string          `json:"action"`
	CreatedTime int64           `json:"created_time"`
	CreatedBy   string          `json:"created_by,omitempty"`
}

func (c *Client) deploymentCall(ctx context.Context, method, path string, in any) (*Deployment, error) {
	var out struct {
		Deployment Deployment `json:"deployment"`
	}
	if _, err := c.v1(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Deployment, nil
}

func deploymentPath(name string) string { return "deployments/" + url.PathEscape(name) }

// CreateDeployment makes a deployment that sends all traffic to model.
func (c *Client) CreateDeployment(ctx context.Context, name, model string) (*Deployment, error) {
	return c.deploymentCall(ctx, "POST", "deployments", map[string]string{"name": name, "model": model})
}

// GetDeployment returns a deployment with what it serves now.
func (c *Client) GetDeployment(ctx context.Context, name string) (*Deployment, error) {
	return c.deploymentCall(ctx, "GET", deploymentPath(name), nil)
}

// ListDeployments returns every deployment.
func (c *Client) ListDeployments(ctx context.Context) ([]Deployment, error) {
	var out struct {
		Deployments []Deployment `json:"deployments"`
	}
	_, err := c.v1(ctx, "GET", "deployments", nil, nil, &out)
	return out.Deployments, err
}

// DeploymentRevisions returns a deployment's changes, newest first.
func (c *Client) DeploymentRevisions(ctx context.Context, name string) ([]DeploymentRevision, error) {
	var out struct {
		Revisions []DeploymentRevision `json:"revisions"`
	}
	_, err := c.v1(ctx, "GET", deploymentPath(name)+"/revisions", nil, nil, &out)
	return out.Revisions, err
}

// CanaryDeployment sends percent of the traffic to model.
func (c *Client) CanaryDeployment(ctx context.Context, name, model string, percent int) (*Deployment, error) {
	return c.deploymentCall(ctx, "POST", deploymentPath(name)+"/canary", map[string]any{"model": model, "percent": percent})
}

// ShadowDeployment mirrors percent of the traffic to model; 0 stops it.
func (c *Client) ShadowDeployment(ctx context.Context, name, model string, percent int) (*Deployment, error) {
	return c.deploymentCall(ctx, "POST", deploymentPath(name)+"/shadow", map[string]any{"model": model, "percent": percent})
}

// PromoteDeployment makes the canary the stable route.
func (c *Client) PromoteDeployment(ctx context.Context, name string) (*Deployment, error) {
	return c.deploymentCall(ctx, "POST", deploymentPath(name)+"/promote", nil)
}

// RollbackDeployment restores the split before the last change.
func (c *Client) RollbackDeployment(ctx context.Context, name string) (*Deployment, error) {
	return c.deploymentCall(ctx, "POST", deploymentPath(name)+"/rollback", nil)
}

// DeleteDeployment removes a deployment.
func (c *Client) DeleteDeployment(ctx context.Context, name string) error {
	_, err := c.v1(ctx, "DELETE", deploymentPath(name), nil, nil, nil)
	return err
}

// RolloutSpec says how a progressive rollout raises a canary; zero values
// take the server's defaults (steps 10, 25, 50, 100; a minute each; 100
// canary requests per step; 1 point of error rate; 1.5 x p99 latency).
type RolloutSpec struct {
	Model                string  `json:"model"`
	Steps                []int   `json:"steps,omitempty"`
	IntervalSeconds      float64 `json:"interval_seconds,omitempty"`
	MinRequests          int64   `json:"min_requests,omitempty"`
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase,omitempty"`
	MaxLatencyRatio      float64 `json:"max_latency_ratio,omitempty"`
}

// RolloutWindow is what the server saw of a version in the current step.
type RolloutWindow struct {
	Version   string  `json:"version"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P99Millis float64 `json:"p99_ms"`
}

// Rollout is a deployment's latest progressive rollout; State is
// running, succeeded, rolled_back or cancelled.
type Rollout struct {
	Deployment  string         `json:"deployment"`
	Spec        RolloutSpec    `json:"spec"`
	Step        int            `json:"step"`
	Percent     int            `json:"percent"`
	State       string         `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	Revision    int64          `json:"revision"`
	StartedTime int64          `json:"started_time"`
	StepTime    int64          `json:"step_time"`
	UpdatedTime int64          `json:"updated_time"`
	StartedBy   string         `json:"started_by,omitempty"`
	Canary      *RolloutWindow `json:"canary,omitempty"`
	Stable      *RolloutWindow `json:"stable,omitempty"`
}

func (c *Client) rolloutCall(ctx context.Context, method, name string, in any) (*Rollout, error) {
	var out struct {
		Rollout Rollout `json:"rollout"`
	}
	if _, err := c.v1(ctx, method, deploymentPath(name)+"/rollout", nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Rollout, nil
}

// StartRollout starts a progressive rollout of spec.Model.
func (c *Client) StartRollout(ctx context.Context, name string, spec RolloutSpec) (*Rollout, error) {
	return c.rolloutCall(ctx, "POST", name, spec)
}

// GetRollout returns a deployment's latest rollout.
func (c *Client) GetRollout(ctx context.Context, name string) (*Rollout, error) {
	return c.rolloutCall(ctx, "GET", name, nil)
}

// CancelRollout stops a running rollout where it is.
func (c *Client) CancelRollout(ctx context.Context, name string) (*Rollout, error) {
	return c.rolloutCall(ctx, "DELETE", name, nil)
}

// DeploymentFeedback sends ground-truth labels for logged requests, each
// {"request_id": ..., "label": ...}.
func (c *Client) DeploymentFeedback(ctx context.Context, name string, feedback []map[string]any) error {
	_, err := c.v1(ctx, "POST", deploymentPath(name)+"/feedback", nil, map[string]any{"feedback": feedback}, nil)
	return err
}
