package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

// stepRunEnv names the run a pipeline step logs into. The pipeline runner
// creates one run per step (a child of the pipeline's run) and sets it,
// as MLflow's own tools read it, before it starts the step's command.
const stepRunEnv = "MLFLOW_RUN_ID"

// trackedRun is a run that a Slipway command (evaluate, train, tune) logs
// what it does to, so that its results are in the tracking server like
// any MLflow run's.
type trackedRun struct {
	c   *client.Client
	run *client.Run
	// experiment is the experiment's name when the command started the run.
	experiment string
	// external is set for a run someone else started and will end: the
	// pipeline step's run named by MLFLOW_RUN_ID.
	external bool
}

// startRun starts a run in the named experiment, creating the experiment
// if it does not exist. When MLFLOW_RUN_ID is set, the command runs as a
// pipeline step: it logs into that run instead, whatever the experiment,
// and finish leaves the run for the runner to end.
func startRun(ctx context.Context, c *client.Client, experiment, runName, command string) (*trackedRun, error) {
	if r, err := stepRun(ctx, c); r != nil || err != nil {
		return r, err
	}
	exp, err := c.GetExperimentByName(ctx, experiment)
	var id string
	switch {
	case err == nil:
		id = exp.ID
	case client.IsNotFound(err):
		if id, err = c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: experiment}); err != nil && !client.IsAlreadyExists(err) {
			return nil, err
		}
		if err != nil { // another command created it meanwhile
			exp, err := c.GetExperimentByName(ctx, experiment)
			if err != nil {
				return nil, err
			}
			id = exp.ID
		}
	default:
		return nil, err
	}
	run, err := c.CreateRun(ctx, client.CreateRunRequest{ExperimentID: id, RunName: runName,
		Tags: []client.Tag{{Key: "mlflow.source.name", Value: "slipway " + command}, {Key: "mlflow.source.type", Value: "LOCAL"}}})
	if err != nil {
		return nil, err
	}
	return &trackedRun{c: c, run: run, experiment: experiment}, nil
}

// stepRun returns the run MLFLOW_RUN_ID names, or nil when it is not set.
// A run the server does not have, or a deleted one, is an error: logging
// elsewhere would lose the step's results from its pipeline run.
func stepRun(ctx context.Context, c *client.Client) (*trackedRun, error) {
	id := strings.TrimSpace(os.Getenv(stepRunEnv))
	if id == "" {
		return nil, nil
	}
	run, err := c.GetRun(ctx, id)
	switch {
	case client.IsNotFound(err):
		return nil, errs.NotFoundf("%s=%s: the server at %s has no such run; unset %s to log to a new run in --experiment", stepRunEnv, id, c.URL(), stepRunEnv)
	case isInvalid(err):
		return nil, errs.Invalid("%s=%q is not a run id: %s", stepRunEnv, id, errs.Message(explain(err, c.URL(), "")))
	case err != nil:
		return nil, err
	case run.Info.LifecycleStage == "deleted":
		return nil, errs.New(errs.FailedPrecondition, "%s=%s: the run is deleted; restore it or unset %s", stepRunEnv, id, stepRunEnv)
	}
	return &trackedRun{c: c, run: run, external: true}, nil
}

// String says where the run is, for "logged as run ..." lines.
func (r *trackedRun) String() string {
	if r.external {
		return fmt.Sprintf("%s (the step's run, from %s)", r.ID(), stepRunEnv)
	}
	return fmt.Sprintf("%s in experiment %q", r.ID(), r.experiment)
}

func (r *trackedRun) ID() string { return r.run.Info.RunID }

// logBatch logs params, tags and metrics in as many log-batch calls as
// MLflow's limits need (1000 metrics, 100 params, 100 tags per call).
func (r *trackedRun) logBatch(ctx context.Context, params map[string]string, metrics map[string]float64, step int64) error {
	now := time.Now().UnixMilli()
	var ps []client.Param
	for _, k := range sortedKeys(params) {
		ps = append(ps, client.Param{Key: k, Value: params[k]})
	}
	var ms []client.Metric
	for _, k := range sortedKeys(metrics) {
		ms = append(ms, client.Metric{Key: k, Value: metrics[k], Timestamp: now, Step: step})
	}
	for len(ps) > 0 || len(ms) > 0 {
		np, nm := min(len(ps), 100), min(len(ms), 1000)
		if err := r.c.LogBatch(ctx, r.ID(), ms[:nm], ps[:np], nil); err != nil {
			return err
		}
		ps, ms = ps[np:], ms[nm:]
	}
	return nil
}

// logData records a data argument as the run's dataset input: a data
// version by the leading 32 hex digits of its digest (MLflow's digest
// limit is 36 characters), which is what lineage links runs to data by.
func (r *trackedRun) logData(ctx context.Context, ref, context string) error {
	if !strings.HasPrefix(ref, "data:") {
		return nil
	}
	name, n, err := parseDataRef(strings.TrimPrefix(ref, "data:"))
	if err != nil {
		return err
	}
	v, err := r.c.GetDataVersion(ctx, name, n, false)
	if err != nil {
		return err
	}
	return r.c.LogInputs(ctx, r.ID(), []client.DatasetInput{{
		Tags: []client.Tag{{Key: "mlflow.data.context", Value: context}},
		Dataset: client.Dataset{Name: v.Name, Digest: v.Digest[:32], SourceType: "slipway",
			Source: fmt.Sprintf("data:%s@v%d", v.Name, v.Version)},
	}})
}

// logHistory logs values as one metric's history, one step per round.
func (r *trackedRun) logHistory(ctx context.Context, key string, values []float64) error {
	now := time.Now().UnixMilli()
	for start := 0; start < len(values); start += 1000 {
		var ms []client.Metric
		for i, v := range values[start:min(start+1000, len(values))] {
			ms = append(ms, client.Metric{Key: key, Value: v, Timestamp: now, Step: int64(start + i)})
		}
		if err := r.c.LogBatch(ctx, r.ID(), ms, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// uploadDir copies a local folder into the run's artifacts under dest.
func (r *trackedRun) uploadDir(ctx context.Context, dir, dest string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return r.c.UploadArtifactTo(ctx, r.run.Info.ArtifactURI, dest+"/"+filepath.ToSlash(rel), f)
	})
}

func (r *trackedRun) upload(ctx context.Context, path, body string) error {
	return r.c.UploadArtifactTo(ctx, r.run.Info.ArtifactURI, path, strings.NewReader(body))
}

// finish ends the run FINISHED, or FAILED when err is not nil, and
// returns err. The run is ended even when the command's context was
// cancelled. A step's run (MLFLOW_RUN_ID) is left running: its runner
// ends it when the step's process exits, with the step's outcome.
func (r *trackedRun) finish(ctx context.Context, err error) error {
	if r.external {
		return err
	}
	status := "FINISHED"
	if err != nil {
		status = "FAILED"
	}
	_, uerr := r.c.UpdateRun(context.WithoutCancel(ctx), client.UpdateRunRequest{RunID: r.ID(), Status: status, EndTime: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	return uerr
}
