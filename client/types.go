package client

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Lifecycle stages, as the server spells them.
const (
	StageActive  = "active"
	StageDeleted = "deleted"
)

// Run statuses, as MLflow spells them.
const (
	RunStatusRunning   = "RUNNING"
	RunStatusScheduled = "SCHEDULED"
	RunStatusFinished  = "FINISHED"
	RunStatusFailed    = "FAILED"
	RunStatusKilled    = "KILLED"
)

// ViewType selects experiments or runs by lifecycle stage. The empty value
// means ViewActiveOnly.
type ViewType string

const (
	ViewActiveOnly  ViewType = "ACTIVE_ONLY"
	ViewDeletedOnly ViewType = "DELETED_ONLY"
	ViewAll         ViewType = "ALL"
)

// Well-known tags MLflow clients and the UI read.
const (
	TagRunName   = "mlflow.runName"
	TagUser      = "mlflow.user"
	TagParentRun = "mlflow.parentRunId"
)

// Tag is a key and value attached to an experiment, run or dataset input.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param is a run's input parameter; once logged its value cannot change.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is one logged point. Timestamp is in milliseconds since the Unix
// epoch. Value may be NaN or ±Inf: they travel as the strings "NaN",
// "Infinity" and "-Infinity", as in protobuf's JSON mapping. RunID is set only
// in GetMetricHistoryBulkInterval results.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
	RunID     string  `json:"run_id,omitempty"`
}

type metricWire struct {
	Key       string    `json:"key"`
	Value     flexFloat `json:"value"`
	Timestamp flexInt64 `json:"timestamp"`
	Step      flexInt64 `json:"step"`
	RunID     string    `json:"run_id,omitempty"`
}

func (m Metric) MarshalJSON() ([]byte, error) {
	return json.Marshal(metricWire{m.Key, flexFloat(m.Value), flexInt64(m.Timestamp), flexInt64(m.Step), m.RunID})
}

func (m *Metric) UnmarshalJSON(b []byte) error {
	var w metricWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = Metric{Key: w.Key, Value: float64(w.Value), Timestamp: int64(w.Timestamp), Step: int64(w.Step), RunID: w.RunID}
	return nil
}

// Experiment groups runs. Times are milliseconds since the Unix epoch.
type Experiment struct {
	ID               string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
	LastUpdateTime   int64  `json:"last_update_time"`
	CreationTime     int64  `json:"creation_time"`
	Tags             []Tag  `json:"tags,omitempty"`
}

func (e *Experiment) UnmarshalJSON(b []byte) error {
	type plain Experiment
	// The shallower fields win over plain's of the same name, so the times
	// are read leniently and the rest as usual.
	aux := struct {
		*plain
		LastUpdateTime flexInt64 `json:"last_update_time"`
		CreationTime   flexInt64 `json:"creation_time"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	e.LastUpdateTime, e.CreationTime = int64(aux.LastUpdateTime), int64(aux.CreationTime)
	return nil
}

// Tag returns the value of the experiment tag key.
func (e Experiment) Tag(key string) (string, bool) { return lookup(e.Tags, key) }

// RunInfo is a run's metadata. Times are milliseconds since the Unix epoch;
// EndTime is 0 while the run has not ended.
type RunInfo struct {
	RunID          string `json:"run_id"`
	RunName        string `json:"run_name"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

func (ri *RunInfo) UnmarshalJSON(b []byte) error {
	type plain RunInfo
	aux := struct {
		*plain
		RunUUID   string    `json:"run_uuid"`
		StartTime flexInt64 `json:"start_time"`
		EndTime   flexInt64 `json:"end_time"`
	}{plain: (*plain)(ri)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	ri.StartTime, ri.EndTime = int64(aux.StartTime), int64(aux.EndTime)
	// Older MLflow servers send only the deprecated run_uuid.
	if ri.RunID == "" {
		ri.RunID = aux.RunUUID
	}
	return nil
}

// RunData is what a run logged: the latest value of each metric, its params
// and its tags.
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// Metric returns the latest logged point of the metric key.
func (d RunData) Metric(key string) (Metric, bool) {
	for _, m := range d.Metrics {
		if m.Key == key {
			return m, true
		}
	}
	return Metric{}, false
}

// Param returns the value of the param key.
func (d RunData) Param(key string) (string, bool) {
	for _, p := range d.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Tag returns the value of the run tag key.
func (d RunData) Tag(key string) (string, bool) { return lookup(d.Tags, key) }

// Dataset describes data a run used, as logged with LogInputs.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset with the tags saying how a run used it (for
// example mlflow.data.context=training).
type DatasetInput struct {
	Tags    []Tag   `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// RunInputs lists the datasets a run used.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
}

// Run is a run with everything it logged.
type Run struct {
	Info   RunInfo   `json:"info"`
	Data   RunData   `json:"data"`
	Inputs RunInputs `json:"inputs"`
}

// FileInfo is one entry of an artifact listing. Path is relative to the
// listed root; FileSize is 0 for directories.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

func (f *FileInfo) UnmarshalJSON(b []byte) error {
	type plain FileInfo
	aux := struct {
		*plain
		FileSize flexInt64 `json:"file_size"`
	}{plain: (*plain)(f)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	f.FileSize = int64(aux.FileSize)
	return nil
}

func lookup(tags []Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// flexInt64 reads a proto int64, which protobuf's JSON mapping writes as a
// string and most servers (MLflow's, Slipway's) write as a number.
type flexInt64 int64

func (n *flexInt64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Integral floats such as 1.7e12 come from JavaScript writers.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return fmt.Errorf("not an integer: %s", b)
		}
		v = int64(f)
	}
	*n = flexInt64(v)
	return nil
}

// flexFloat is a proto double: a JSON number, or one of the strings
// protobuf's JSON mapping uses for values JSON numbers cannot hold.
type flexFloat float64

func (d flexFloat) MarshalJSON() ([]byte, error) {
	f := float64(d)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (d *flexFloat) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*d = flexFloat(math.NaN())
			return nil
		case "Infinity":
			*d = flexFloat(math.Inf(1))
			return nil
		case "-Infinity":
			*d = flexFloat(math.Inf(-1))
			return nil
		}
	}
	// ParseFloat also takes the "inf" and "nan" spellings some writers use.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*d = flexFloat(f)
	return nil
}
