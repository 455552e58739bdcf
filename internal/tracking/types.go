// Package tracking is Slipway's experiment tracker: experiments, runs and the
// params, metrics, tags and dataset inputs runs log. Its behaviour follows
// MLflow's tracking server (mlflow/protos/service.proto and MLflow's SQL
// store) so that MLflow clients see what they expect; the transport lives in
// internal/api/mlflow.
package tracking

import "math"

// Lifecycle stages and run statuses, spelled as MLflow spells them.
const (
	StageActive  = "active"
	StageDeleted = "deleted"

	StatusRunning   = "RUNNING"
	StatusScheduled = "SCHEDULED"
	StatusFinished  = "FINISHED"
	StatusFailed    = "FAILED"
	StatusKilled    = "KILLED"
)

// ViewType selects runs or experiments by lifecycle stage.
type ViewType int

const (
	ActiveOnly ViewType = iota
	DeletedOnly
	All
)

// ParseViewType reads MLflow's ViewType names; empty means ACTIVE_ONLY.
func ParseViewType(s string) (ViewType, bool) {
	switch s {
	case "", "ACTIVE_ONLY", "1":
		return ActiveOnly, true
	case "DELETED_ONLY", "2":
		return DeletedOnly, true
	case "ALL", "3":
		return All, true
	}
	return 0, false
}

// Well-known tags MLflow clients and the UI read.
const (
	TagRunName   = "mlflow.runName"
	TagUser      = "mlflow.user"
	TagParentRun = "mlflow.parentRunId"
	TagContext   = "mlflow.data.context"
)

type Tag struct {
	Key   string
	Value string
}

type Param struct {
	Key   string
	Value string
}

// Metric is one logged point. Timestamp is in milliseconds since the epoch.
type Metric struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
}

// MetricWithRunID is a point returned by get-history-bulk-interval.
type MetricWithRunID struct {
	Metric
	RunID string
}

type Experiment struct {
	ID               string
	Name             string
	ArtifactLocation string
	LifecycleStage   string
	CreationTime     int64
	LastUpdateTime   int64
	Tags             []Tag
}

type RunInfo struct {
	RunID          string
	RunName        string
	ExperimentID   string
	UserID         string
	Status         string
	StartTime      int64
	EndTime        *int64
	ArtifactURI    string
	LifecycleStage string
}

type Run struct {
	Info    RunInfo
	Metrics []Metric // the latest value of each metric
	Params  []Param
	Tags    []Tag
	Inputs  []DatasetInput
}

// Dataset is MLflow's dataset record, logged with log-inputs.
type Dataset struct {
	Name       string
	Digest     string
	SourceType string
	Source     string
	Schema     string
	Profile    string
}

type DatasetInput struct {
	Tags    []Tag
	Dataset Dataset
}

// storedValue maps a metric value to its (value, is_nan) columns: SQLite
// turns NaN into NULL, so NaN is kept as 0 with a flag, as MLflow does.
func storedValue(v float64) (float64, int) {
	if math.IsNaN(v) {
		return 0, 1
	}
	return v, 0
}

func loadedValue(v float64, isNaN int) float64 {
	if isNaN != 0 {
		return math.NaN()
	}
	return v
}
