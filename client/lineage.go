package client

import (
	"context"
	"net/url"
	"strconv"
	"strings"
)

// Lineage lives on Slipway's native API: the graph of data versions, runs
// and model versions, each edge pointing downstream from origin to
// consumer. See docs/lineage.md.

// Kinds of lineage nodes, and the form of their ids.
const (
	LineageKindData       = "data"       // a data version, NAME@vN
	LineageKindRun        = "run"        // a run, its run id
	LineageKindModel      = "model"      // a model version, NAME/VERSION
	LineageKindDeployment = "deployment" // a deployment, its name
)

// Directions of a lineage walk.
const (
	LineageUp   = "up"   // towards origins
	LineageDown = "down" // towards consumers
	LineageBoth = "both"
)

// Relations of lineage edges.
const (
	RelationConsumedBy     = "consumed-by"     // data version -> run that logged its digest
	RelationProduced       = "produced"        // run -> data version it wrote
	RelationRegisteredFrom = "registered-from" // run -> model version
	RelationDerivedFrom    = "derived-from"    // model version -> model version copied from it
	RelationServedBy       = "served-by"       // model version -> deployment that served it
)

// LineageRef names a lineage node.
type LineageRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

func (r LineageRef) String() string { return r.Kind + ":" + r.ID }

// LineageNode is a node with its details: Data, Run, Model or Deployment
// by kind, none when Missing (a purged run, or a deleted version or
// deployment, another node names).
type LineageNode struct {
	LineageRef
	Depth   int                  `json:"depth"`
	Missing bool                 `json:"missing,omitempty"`
	Data    *DataVersion         `json:"data,omitempty"`
	Run     *LineageRun          `json:"run,omitempty"`
	Model   *LineageModelVersion `json:"model,omitempty"`
	// Deployment is set for a deployment that exists.
	Deployment *LineageDeployment `json:"deployment,omitempty"`
}

// LineageDeployment is a deployment where it stands now.
type LineageDeployment struct {
	Name        string `json:"name"`
	Revision    int64  `json:"revision"`
	UpdatedTime int64  `json:"updated_time"`
}

// LineageEdge points from an upstream node to a downstream one.
type LineageEdge struct {
	From     LineageRef `json:"from"`
	To       LineageRef `json:"to"`
	Relation string     `json:"relation"`
}

// LineageGraph is the graph around Root: the root node first, then nodes
// in the order a breadth-first walk reached them. Truncated says the
// server's node cap cut the walk short.
type LineageGraph struct {
	Root      LineageRef    `json:"root"`
	Direction string        `json:"direction"`
	Depth     int           `json:"depth"`
	Nodes     []LineageNode `json:"nodes"`
	Edges     []LineageEdge `json:"edges"`
	Truncated bool          `json:"truncated"`
}

// LineageRun is what lineage shows of a run: its code (the
// mlflow.source.git.commit and mlflow.source.name tags), params, latest
// metrics and the MLflow datasets it logged.
type LineageRun struct {
	RunID          string         `json:"run_id"`
	Name           string         `json:"name,omitempty"`
	ExperimentID   string         `json:"experiment_id"`
	Status         string         `json:"status"`
	LifecycleStage string         `json:"lifecycle_stage"`
	UserID         string         `json:"user_id,omitempty"`
	StartTime      int64          `json:"start_time"`
	EndTime        *int64         `json:"end_time,omitempty"`
	GitCommit      string         `json:"git_commit,omitempty"`
	SourceName     string         `json:"source_name,omitempty"`
	Params         []Param        `json:"params"`
	Metrics        []Metric       `json:"metrics"`
	Inputs         []LineageInput `json:"inputs"`
}

// LineageInput is an MLflow dataset record a run logged.
type LineageInput struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type,omitempty"`
	Source     string `json:"source,omitempty"`
	Context    string `json:"context,omitempty"`
}

// LineageModelVersion is what lineage shows of a model version.
type LineageModelVersion struct {
	Name         string   `json:"name"`
	Version      int64    `json:"version"`
	Status       string   `json:"status"`
	Stage        string   `json:"stage"`
	Aliases      []string `json:"aliases,omitempty"`
	Digest       string   `json:"digest,omitempty"`
	Source       string   `json:"source"`
	RunID        string   `json:"run_id,omitempty"`
	CreationTime int64    `json:"creation_time"`
}

// LineageOptions shape a lineage query; zero values take the server's
// defaults (up for a model, down for data, both for a run; depth 3).
type LineageOptions struct {
	Direction string
	Depth     int
}

// Lineage returns the graph around one node: kind is LineageKindData,
// LineageKindRun or LineageKindModel; id is NAME@vN (or NAME for the latest), a
// run id, or NAME/VERSION or NAME@ALIAS.
func (c *Client) Lineage(ctx context.Context, kind, id string, opts LineageOptions) (*LineageGraph, error) {
	q := url.Values{}
	if opts.Direction != "" {
		q.Set("direction", opts.Direction)
	}
	if opts.Depth != 0 {
		q.Set("depth", strconv.Itoa(opts.Depth))
	}
	// Slashes in the id stay separators: the server reads the version of
	// NAME/VERSION after the last one.
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	var g LineageGraph
	if _, err := c.v1(ctx, "GET", "lineage/"+url.PathEscape(kind)+"/"+strings.Join(parts, "/"), q, nil, &g); err != nil {
		return nil, err
	}
	return &g, nil
}
