package mlflow

import (
	"fmt"

	"github.com/slipwayml/slipway/internal/tracking"
)

// Wire forms of MLflow's entities (mlflow/protos/service.proto). Empty lists
// and unset optional fields are omitted, as protobuf's JSON printer omits them.

type tagJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type metricJSON struct {
	Key       string `json:"key"`
	Value     Double `json:"value"`
	Timestamp Int64  `json:"timestamp"`
	Step      Int64  `json:"step"`
	RunID     string `json:"run_id,omitempty"`
}

type experimentJSON struct {
	ExperimentID     string    `json:"experiment_id"`
	Name             string    `json:"name"`
	ArtifactLocation string    `json:"artifact_location"`
	LifecycleStage   string    `json:"lifecycle_stage"`
	LastUpdateTime   int64     `json:"last_update_time"`
	CreationTime     int64     `json:"creation_time"`
	Tags             []tagJSON `json:"tags,omitempty"`
}

type runInfoJSON struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

type runDataJSON struct {
	Metrics []metricJSON `json:"metrics,omitempty"`
	Params  []tagJSON    `json:"params,omitempty"`
	Tags    []tagJSON    `json:"tags,omitempty"`
}

type datasetJSON struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

type datasetInputJSON struct {
	Tags    []tagJSON   `json:"tags,omitempty"`
	Dataset datasetJSON `json:"dataset"`
}

type runInputsJSON struct {
	DatasetInputs []datasetInputJSON `json:"dataset_inputs,omitempty"`
}

type runJSON struct {
	Info   runInfoJSON   `json:"info"`
	Data   runDataJSON   `json:"data"`
	Inputs runInputsJSON `json:"inputs"`
}

func tagsJSON[T tracking.Tag | tracking.Param](in []T) []tagJSON {
	if len(in) == 0 {
		return nil
	}
	out := make([]tagJSON, len(in))
	for i, t := range in {
		kv := struct{ Key, Value string }(t)
		out[i] = tagJSON{Key: kv.Key, Value: kv.Value}
	}
	return out
}

func tagsFrom(in []tagJSON) []tracking.Tag {
	out := make([]tracking.Tag, len(in))
	for i, t := range in {
		out[i] = tracking.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func experimentOut(e tracking.Experiment) experimentJSON {
	return experimentJSON{
		ExperimentID:     e.ID,
		Name:             e.Name,
		ArtifactLocation: e.ArtifactLocation,
		LifecycleStage:   e.LifecycleStage,
		LastUpdateTime:   e.LastUpdateTime,
		CreationTime:     e.CreationTime,
		Tags:             tagsJSON(e.Tags),
	}
}

func runInfoOut(ri tracking.RunInfo) runInfoJSON {
	return runInfoJSON{
		RunID:          ri.RunID,
		RunUUID:        ri.RunID,
		RunName:        ri.RunName,
		ExperimentID:   ri.ExperimentID,
		UserID:         ri.UserID,
		Status:         ri.Status,
		StartTime:      ri.StartTime,
		EndTime:        ri.EndTime,
		ArtifactURI:    ri.ArtifactURI,
		LifecycleStage: ri.LifecycleStage,
	}
}

func metricOut(m tracking.Metric) metricJSON {
	return metricJSON{Key: m.Key, Value: Double(m.Value), Timestamp: Int64(m.Timestamp), Step: Int64(m.Step)}
}

func runOut(r tracking.Run) runJSON {
	out := runJSON{Info: runInfoOut(r.Info)}
	if len(r.Metrics) > 0 {
		out.Data.Metrics = make([]metricJSON, len(r.Metrics))
		for i, m := range r.Metrics {
			out.Data.Metrics[i] = metricOut(m)
		}
	}
	out.Data.Params = tagsJSON(r.Params)
	out.Data.Tags = tagsJSON(r.Tags)
	for _, in := range r.Inputs {
		d := in.Dataset
		out.Inputs.DatasetInputs = append(out.Inputs.DatasetInputs, datasetInputJSON{
			Tags: tagsJSON(in.Tags),
			Dataset: datasetJSON{Name: d.Name, Digest: d.Digest, SourceType: d.SourceType,
				Source: d.Source, Schema: d.Schema, Profile: d.Profile},
		})
	}
	return out
}

// logBatchRequest is a log-batch body as encoding/json decodes it, on the
// path scanLogBatch leaves to it.
type logBatchRequest struct {
	RunID   string `json:"run_id"`
	Metrics []struct {
		Key       string  `json:"key"`
		Value     *Double `json:"value"`
		Timestamp *Int64  `json:"timestamp"`
		Step      Int64   `json:"step"`
	} `json:"metrics"`
	Params []tagJSON `json:"params"`
	Tags   []tagJSON `json:"tags"`
}

func (req *logBatchRequest) metrics() ([]tracking.Metric, error) {
	metrics := make([]tracking.Metric, len(req.Metrics))
	for i, m := range req.Metrics {
		switch {
		case m.Value == nil:
			return nil, tracking.MissingValue(fmt.Sprintf("metrics[%d].value", i))
		case m.Timestamp == nil:
			return nil, tracking.MissingValue(fmt.Sprintf("metrics[%d].timestamp", i))
		}
		metrics[i] = tracking.Metric{Key: m.Key, Value: float64(*m.Value), Timestamp: int64(*m.Timestamp), Step: int64(m.Step)}
	}
	return metrics, nil
}
