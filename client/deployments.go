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
