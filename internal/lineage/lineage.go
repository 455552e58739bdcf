// Package lineage is Slipway's provenance graph: the data versions runs
// consumed, the runs model versions were registered from, the versions
// that were copied from other versions, and the deployments that served
// them.
//
// It is a read model. Every edge is computed when asked for, from
// references the domain packages already record: the digests of MLflow
// dataset inputs (log-inputs), model_versions.run_id, what a version's
// source resolved to when it was registered, and the versions serving
// loaded for each deployment. So a data version added after
// a run logged its digest still links to that run, and nothing has to be
// kept in step when runs, versions or data change.
//
// Every edge points downstream, from origin to consumer; its relation says
// how the downstream node came from the upstream one.
package lineage

import (
	"math"
	"strconv"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
)

// Kind is a kind of node.
type Kind string

const (
	// KindData is a data version, id NAME@vN.
	KindData Kind = "data"
	// KindRun is a tracking run, id its run id.
	KindRun Kind = "run"
	// KindModel is a model version, id NAME/VERSION.
	KindModel Kind = "model"
	// KindDeployment is a serving deployment, id its name.
	KindDeployment Kind = "deployment"
)

// Relation is the kind of an edge.
type Relation string

const (
	// ConsumedBy: data version -> run that logged an MLflow dataset input
	// with the version's digest.
	ConsumedBy Relation = "consumed-by"
	// Produced: run -> data version it wrote (slipway data add --run,
	// and pipeline steps' outputs later).
	Produced Relation = "produced"
	// RegisteredFrom: run -> model version registered from it (its run_id,
	// or a runs:/ source).
	RegisteredFrom Relation = "registered-from"
	// DerivedFrom: model version -> model version registered from it with a
	// models:/ source.
	DerivedFrom Relation = "derived-from"
	// ServedBy: model version -> deployment that has served it (by version
	// or through an alias), as a route or a shadow.
	ServedBy Relation = "served-by"
)

// Direction is which way a walk goes from its root.
type Direction string

const (
	// Up walks towards origins: what a node came from.
	Up Direction = "up"
	// Down walks towards consumers: what came from a node.
	Down Direction = "down"
	// Both walks up and down from the root; ancestors' other descendants
	// (siblings, cousins) are not included.
	Both Direction = "both"
)

// Bounds of a walk.
const (
	DefaultDepth = 3
	MaxDepth     = 10
	// MaxNodes caps a graph; past it the walk stops adding nodes and the
	// graph is marked truncated.
	MaxNodes = 1000
)

// Ref names a node.
type Ref struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

func (r Ref) String() string { return string(r.Kind) + ":" + r.ID }

// Node is a node of a graph with what it is. Exactly one of Data, Run,
// Model and Deployment is set, unless Missing: a run that was purged, a
// model version or a deployment that was deleted, that another node still
// names.
type Node struct {
	Ref
	// Depth is the number of edges between the root and the node.
	Depth   int               `json:"depth"`
	Missing bool              `json:"missing,omitempty"`
	Data    *datasets.Version `json:"data,omitempty"`
	Run     *Run              `json:"run,omitempty"`
	Model   *ModelVersion     `json:"model,omitempty"`
	// Deployment is set for a deployment that exists.
	Deployment *Deployment `json:"deployment,omitempty"`
}

// Deployment is what lineage shows of a deployment: where it stands now.
type Deployment struct {
	Name        string `json:"name"`
	Revision    int64  `json:"revision"`
	UpdatedTime int64  `json:"updated_time"`
}

// Edge links an upstream node to a downstream one.
type Edge struct {
	From     Ref      `json:"from"`
	To       Ref      `json:"to"`
	Relation Relation `json:"relation"`
}

// Graph is the answer to a query: the root first, then nodes in the order
// the walk reached them.
type Graph struct {
	Root      Ref       `json:"root"`
	Direction Direction `json:"direction"`
	Depth     int       `json:"depth"`
	Nodes     []Node    `json:"nodes"`
	Edges     []Edge    `json:"edges"`
	// Truncated is set when MaxNodes stopped the walk early.
	Truncated bool `json:"truncated"`
}

// Run is what lineage shows of a run: enough to say which code, settings
// and results are behind a model.
type Run struct {
	RunID          string `json:"run_id"`
	Name           string `json:"name,omitempty"`
	ExperimentID   string `json:"experiment_id"`
	Status         string `json:"status"`
	LifecycleStage string `json:"lifecycle_stage"`
	UserID         string `json:"user_id,omitempty"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"`
	// GitCommit and SourceName are the mlflow.source.git.commit and
	// mlflow.source.name tags MLflow clients set.
	GitCommit  string   `json:"git_commit,omitempty"`
	SourceName string   `json:"source_name,omitempty"`
	Params     []Param  `json:"params"`
	Metrics    []Metric `json:"metrics"`
	// Inputs are the MLflow dataset records the run logged, matched to a
	// data version or not.
	Inputs []Input `json:"inputs"`
}

// Param is a run's parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is the latest value of a run's metric.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// MarshalJSON writes NaN and infinities as MLflow's JSON does ("NaN",
// "Infinity", "-Infinity"), since JSON numbers cannot hold them.
func (m Metric) MarshalJSON() ([]byte, error) {
	b := []byte(`{"key":`)
	b = strconv.AppendQuote(b, m.Key)
	b = append(b, `,"value":`...)
	switch {
	case math.IsNaN(m.Value):
		b = append(b, `"NaN"`...)
	case math.IsInf(m.Value, 1):
		b = append(b, `"Infinity"`...)
	case math.IsInf(m.Value, -1):
		b = append(b, `"-Infinity"`...)
	default:
		b = strconv.AppendFloat(b, m.Value, 'g', -1, 64)
	}
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	return append(b, '}'), nil
}

// Input is an MLflow dataset record a run logged with log-inputs.
type Input struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type,omitempty"`
	Source     string `json:"source,omitempty"`
	// Context is the mlflow.data.context tag, such as "training".
	Context string `json:"context,omitempty"`
}

// ModelVersion is what lineage shows of a model version.
type ModelVersion struct {
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

// Query asks for the graph around one node.
type Query struct {
	Kind Kind
	// ID names the node: NAME@vN (also NAME@N, NAME@latest or NAME) for
	// data, a run id, NAME/VERSION or NAME@ALIAS for a model.
	ID string
	// Direction defaults to Up for models, Down for data and Both for runs.
	Direction Direction
	// Depth bounds the walk, 1 to MaxDepth; 0 means DefaultDepth.
	Depth int
}

// ParseQuery reads a query from text, as the API receives it; empty
// direction and depth take their defaults.
func ParseQuery(kind, id, direction, depth string) (Query, error) {
	q := Query{Kind: Kind(kind), ID: id, Direction: Direction(direction)}
	if depth != "" {
		// 0 would mean the default; said explicitly it is a mistake.
		n, err := strconv.Atoi(depth)
		if err != nil || n < 1 {
			return Query{}, badDepth(depth)
		}
		q.Depth = n
	}
	return q, q.check()
}

func badDepth(depth string) error {
	return errs.Invalid("depth %s: must be a whole number from 1 to %d (default %d)", depth, MaxDepth, DefaultDepth)
}

// check validates q and fills in its defaults.
func (q *Query) check() error {
	switch q.Kind {
	case KindData, KindRun, KindModel, KindDeployment:
	default:
		return errs.Invalid("kind %q: must be data, run, model or deployment", q.Kind)
	}
	if q.ID == "" {
		return errs.Invalid("id is required: NAME@vN for data, a run id for a run, NAME/VERSION or NAME@ALIAS for a model, NAME for a deployment")
	}
	switch q.Direction {
	case "":
		q.Direction = map[Kind]Direction{KindData: Down, KindRun: Both, KindModel: Up, KindDeployment: Up}[q.Kind]
	case Up, Down, Both:
	default:
		return errs.Invalid("direction %q: must be up, down or both", q.Direction)
	}
	if q.Depth == 0 {
		q.Depth = DefaultDepth
	}
	if q.Depth < 1 || q.Depth > MaxDepth {
		return badDepth(strconv.Itoa(q.Depth))
	}
	return nil
}
