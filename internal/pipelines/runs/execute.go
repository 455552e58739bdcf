package runs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
	"github.com/slipwayml/slipway/internal/tracking"
)

// ExperimentPrefix names the experiment each pipeline's runs are tracked
// in: pipelines/NAME.
const ExperimentPrefix = "pipelines/"

// execution is one claimed run on its way through the engine.
type execution struct {
	s        *Service
	run      Run
	p        *spec.Pipeline
	resolver *resolver
	env      map[string]string // for every step

	mu       sync.Mutex
	children map[string]string // step -> its tracking run
}

// execute runs a claimed run to its end and records how it ended. Every
// write after the run's context ends uses a context that is not
// cancelled, so a cancelled or shut-down run is still recorded.
func (s *Service) execute(ctx context.Context, id string) {
	keep := context.WithoutCancel(ctx)
	run, err := s.GetRun(keep, id)
	if err != nil {
		s.Log.Error("loading claimed pipeline run", "run", id, "err", err)
		return
	}
	ex := &execution{s: s, run: run, children: map[string]string{}}
	status, msg := ex.do(ctx)
	if status == Cancelled {
		cause := context.Cause(ctx)
		msg = "cancelled: " + cause.Error()
		if errors.Is(cause, errShutdown) {
			msg += fmt.Sprintf("; resume it with `slipway pipeline resume %s`", id)
		}
	}
	ex.revoke(keep)
	// The tracking runs end first: whoever sees the run ended finds them
	// ended too.
	if run, err := s.GetRun(keep, id); err == nil {
		s.endTracking(keep, run, trackingStatus(status))
	}
	err = s.db.Tx(keep, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(keep, s.db.Q(`UPDATE pipeline_runs SET status = ?, error = ?, end_time = ? WHERE run_id = ? AND owner = ?`),
			status, msg, s.nowMillis(), id, s.owner)
		return err
	})
	if err != nil {
		s.Log.Error("recording the end of a pipeline run", "run", id, "err", err)
	}
	// Logs were copied to the artifact store as each step ended.
	os.RemoveAll(s.runDir(id))
	s.Log.Info("pipeline run ended", "pipeline", run.Pipeline, "number", run.Number, "run", id, "status", status)
}

func (s *Service) runDir(id string) string { return filepath.Join(s.Dir, "runs", id) }

func trackingStatus(status string) string {
	switch status {
	case Succeeded, string(engine.StatusCached), string(engine.StatusReused):
		return "FINISHED"
	case Cancelled:
		return "KILLED"
	}
	return "FAILED"
}

func (ex *execution) do(ctx context.Context) (status, msg string) {
	s, run := ex.s, ex.run
	keep := context.WithoutCancel(ctx)
	var projectDir string
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT project_dir FROM pipelines WHERE name = ?`), run.Pipeline).Scan(&projectDir)
	if err != nil {
		return Failed, "reading the pipeline: " + err.Error()
	}
	if err := checkProjectDir(projectDir); err != nil {
		return Failed, errs.Message(err)
	}
	p, err := spec.Parse(run.specFile, []byte(run.spec))
	if err == nil {
		err = p.ApplyOverrides(run.Params)
	}
	if err != nil {
		return Failed, "spec: " + err.Error()
	}
	ex.p = p
	if err := ex.startTracking(ctx); err != nil {
		return Failed, "tracking the run: " + errs.Message(err)
	}
	if err := ex.insertSteps(ctx); err != nil {
		return Failed, "recording steps: " + err.Error()
	}
	completed, err := ex.completed(ctx)
	if err != nil {
		return Failed, "reading the resumed run: " + err.Error()
	}
	if err := ex.stepEnv(ctx); err != nil {
		return Failed, errs.Message(err)
	}
	ex.resolver = &resolver{s: s, used: map[string]resolvedInput{}}
	eng := &engine.Engine{Executor: s.Executor, Cache: engine.NewBlobCache(s.blobs), Resolver: ex.resolver, Now: s.Now}
	res, err := eng.Run(ctx, p, engine.Options{
		ProjectDir: projectDir,
		RunDir:     s.runDir(run.ID),
		Force:      run.Force,
		Completed:  completed,
		StepEnv:    ex.beforeStep,
		StepDone:   func(r *engine.StepResult) { ex.afterStep(keep, r) },
	})
	switch {
	case res == nil:
		return Failed, errs.Message(err)
	case res.Status == engine.StatusCancelled:
		return Cancelled, ""
	case err != nil:
		return Failed, errs.Message(err)
	}
	return Succeeded, ""
}

// startTracking makes the run a parent MLflow run in the pipeline's
// experiment, with the params it runs with.
func (ex *execution) startTracking(ctx context.Context) error {
	s, run, tr := ex.s, ex.run, ex.s.tracking
	name := ExperimentPrefix + run.Pipeline
	expID := ""
	exp, err := tr.GetExperimentByName(ctx, name)
	switch {
	case err == nil:
		expID = exp.ID
	case errs.CodeOf(err) == errs.NotFound:
		expID, err = tr.CreateExperiment(ctx, name, "", nil)
		if errs.CodeOf(err) == errs.AlreadyExists { // another run created it meanwhile
			exp, err = tr.GetExperimentByName(ctx, name)
			expID = exp.ID
		}
		if err != nil {
			return err
		}
	default:
		return err
	}
	tags := []tracking.Tag{
		{Key: "mlflow.source.type", Value: "JOB"},
		{Key: "mlflow.source.name", Value: "pipeline:" + run.Pipeline},
		{Key: "slipway.pipeline", Value: run.Pipeline},
		{Key: "slipway.pipeline_run_id", Value: run.ID},
		{Key: "slipway.trigger", Value: run.Trigger.Kind},
	}
	if run.CreatedBy != "" {
		tags = append(tags, tracking.Tag{Key: "mlflow.user", Value: run.CreatedBy})
	}
	if run.ResumedFrom != "" {
		tags = append(tags, tracking.Tag{Key: "slipway.resumed_from", Value: run.ResumedFrom})
	}
	parent, err := tr.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, UserID: run.CreatedBy,
		RunName: fmt.Sprintf("%s-%d", run.Pipeline, run.Number), StartTime: s.nowMillis(), Tags: tags})
	if err != nil {
		return err
	}
	var params []tracking.Param
	for _, name := range ex.p.ParamNames() {
		params = append(params, tracking.Param{Key: name, Value: ex.p.Params[name].Text})
	}
	for len(params) > 0 {
		n := min(len(params), 100)
		if err := tr.LogBatch(ctx, parent.Info.RunID, nil, params[:n], nil); err != nil {
			return err
		}
		params = params[n:]
	}
	ex.run.MLflowRunID, ex.run.ExperimentID = parent.Info.RunID, expID
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET mlflow_run_id = ?, experiment_id = ? WHERE run_id = ?`),
			parent.Info.RunID, expID, run.ID)
		return err
	})
}

func (ex *execution) insertSteps(ctx context.Context) error {
	s := ex.s
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, st := range ex.p.Steps {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO pipeline_run_steps (run_id, step, position, status) VALUES (?, ?, ?, ?)`),
				ex.run.ID, st.Name, i, StepPending); err != nil {
				return err
			}
		}
		return nil
	})
}

// completed returns, for a resumed run, the steps that succeeded in the
// run it resumes (in turn taken from the one before, when they were kept).
func (ex *execution) completed(ctx context.Context) (map[string]*engine.StepResult, error) {
	if ex.run.ResumedFrom == "" {
		return nil, nil
	}
	old, err := ex.s.GetRun(ctx, ex.run.ResumedFrom)
	if err != nil {
		return nil, err
	}
	out := map[string]*engine.StepResult{}
	for _, st := range old.Steps {
		if st.Result != nil && st.Result.Status.OK() {
			out[st.Name] = st.Result
		}
	}
	return out, nil
}

// stepEnv sets what every step's process is told: where the server is,
// the run, a PATH that finds this slipway binary, and, when the server
// requires tokens, one made for this run.
func (ex *execution) stepEnv(ctx context.Context) error {
	s := ex.s
	env := map[string]string{
		"SLIPWAY_PIPELINE":        ex.run.Pipeline,
		"SLIPWAY_PIPELINE_RUN_ID": ex.run.ID,
		"MLFLOW_EXPERIMENT_ID":    ex.run.ExperimentID,
	}
	if s.TrackingURL != "" {
		env["SLIPWAY_URL"] = s.TrackingURL
		env["MLFLOW_TRACKING_URI"] = s.TrackingURL
	}
	bin := s.Bin
	if bin == "" {
		if exe, err := os.Executable(); err == nil {
			bin = filepath.Dir(exe)
		}
	}
	if bin != "" {
		env["PATH"] = bin + string(os.PathListSeparator) + os.Getenv("PATH")
	}
	if s.Auth != nil {
		by := ex.run.CreatedBy
		if by == "" {
			by = "pipeline-" + ex.run.Pipeline // usernames allow no ":"
		}
		_, secret, err := s.Auth.Create(ctx, tokenName(ex.run.ID), by, auth.RoleEditor)
		if err != nil {
			return errs.Wrap(err, "creating the run's token")
		}
		env["SLIPWAY_TOKEN"] = secret
		env["MLFLOW_TRACKING_TOKEN"] = secret
	}
	ex.env = env
	return nil
}

func tokenName(runID string) string { return "pipeline-run-" + runID }

func (ex *execution) revoke(ctx context.Context) {
	if ex.s.Auth == nil || ex.env["SLIPWAY_TOKEN"] == "" {
		return
	}
	if err := ex.s.Auth.Revoke(ctx, tokenName(ex.run.ID)); err != nil {
		ex.s.Log.Warn("revoking a pipeline run's token", "run", ex.run.ID, "err", err)
	}
}

// beforeStep makes the step a child run and records it as running; the
// step's process logs to that run through MLFLOW_RUN_ID.
func (ex *execution) beforeStep(ctx context.Context, step string, d engine.Decision) (map[string]string, error) {
	child, err := ex.childRun(ctx, step, d, "")
	if err != nil {
		return nil, err
	}
	s := ex.s
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_run_steps SET status = ?, mlflow_run_id = ?, start_time = ? WHERE run_id = ? AND step = ?`),
			StepRunning, child, s.nowMillis(), ex.run.ID, step)
		return err
	})
	if err != nil {
		return nil, err
	}
	env := map[string]string{"MLFLOW_RUN_ID": child, "SLIPWAY_STEP": step}
	for k, v := range ex.env {
		env[k] = v
	}
	return env, nil
}

func (ex *execution) childRun(ctx context.Context, step string, d engine.Decision, outcome string) (string, error) {
	tags := []tracking.Tag{
		{Key: "mlflow.parentRunId", Value: ex.run.MLflowRunID},
		{Key: "mlflow.source.type", Value: "JOB"},
		{Key: "mlflow.source.name", Value: "pipeline:" + ex.run.Pipeline + "/" + step},
		{Key: "slipway.pipeline", Value: ex.run.Pipeline},
		{Key: "slipway.pipeline_run_id", Value: ex.run.ID},
		{Key: "slipway.step", Value: step},
		{Key: "slipway.cache_key", Value: d.Key},
		{Key: "slipway.cache", Value: cacheTag(outcome)},
		{Key: "slipway.decision", Value: truncate(d.Reason, 5000)},
	}
	child, err := ex.s.tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: ex.run.ExperimentID, UserID: ex.run.CreatedBy,
		RunName: step, StartTime: ex.s.nowMillis(), Tags: tags})
	if err != nil {
		return "", err
	}
	ex.mu.Lock()
	ex.children[step] = child.Info.RunID
	ex.mu.Unlock()
	return child.Info.RunID, nil
}

func cacheTag(outcome string) string {
	switch outcome {
	case string(engine.StatusCached):
		return "hit"
	case string(engine.StatusReused):
		return "reused"
	}
	return "miss"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// afterStep records a step's end: its result, its log in the artifact
// store, and in its tracking run the metrics it wrote, the data versions
// it read (lineage's consumed-by edge) and how it ended. A step restored
// from the cache gets a tracking run too, tagged as a hit, so every
// pipeline run has the full set of children.
func (ex *execution) afterStep(ctx context.Context, r *engine.StepResult) {
	s := ex.s
	ex.mu.Lock()
	child := ex.children[r.Name]
	ex.mu.Unlock()
	if child == "" && r.Status.OK() {
		var err error
		if child, err = ex.childRun(ctx, r.Name, r.Decision, string(r.Status)); err != nil {
			s.Log.Warn("tracking a pipeline step", "run", ex.run.ID, "step", r.Name, "err", err)
		}
	}
	if child != "" {
		if err := ex.trackStep(ctx, child, r); err != nil {
			s.Log.Warn("tracking a pipeline step", "run", ex.run.ID, "step", r.Name, "err", err)
		}
	}
	logKey := ""
	if r.Log != "" {
		if f, err := os.Open(r.Log); err == nil {
			key := LogKey(ex.run.ID, r.Name)
			if _, err := s.blobs.Put(ctx, key, f); err == nil {
				logKey = key
			} else {
				s.Log.Warn("storing a step log", "run", ex.run.ID, "step", r.Name, "err", err)
			}
			f.Close()
		}
	}
	result, _ := json.Marshal(r)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_run_steps SET status = ?, result = ?, mlflow_run_id = ?, log_key = ?,
				start_time = CASE WHEN start_time = 0 THEN ? ELSE start_time END, end_time = ?
			WHERE run_id = ? AND step = ?`),
			string(r.Status), string(result), child, logKey, s.nowMillis()-r.Duration.Milliseconds(), s.nowMillis(), ex.run.ID, r.Name)
		return err
	})
	if err != nil {
		s.Log.Error("recording a pipeline step", "run", ex.run.ID, "step", r.Name, "err", err)
	}
}

// LogKey is where a step's log is kept in the artifact store.
func LogKey(runID, step string) string { return "pipelines/logs/" + runID + "/" + step + ".log" }

func (ex *execution) trackStep(ctx context.Context, child string, r *engine.StepResult) error {
	tr, now := ex.s.tracking, ex.s.nowMillis()
	names := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	var ms, parentMs []tracking.Metric
	for _, k := range names {
		ms = append(ms, tracking.Metric{Key: k, Value: r.Metrics[k], Timestamp: now})
		parentMs = append(parentMs, tracking.Metric{Key: r.Name + "." + k, Value: r.Metrics[k], Timestamp: now})
	}
	tags := []tracking.Tag{{Key: "slipway.step_status", Value: string(r.Status)}}
	st := ex.p.Step(r.Name)
	var inputs []tracking.DatasetInput
	for _, in := range st.Inputs {
		got, ok := ex.resolver.get(in.Ref)
		if !ok {
			continue
		}
		tags = append(tags, tracking.Tag{Key: "slipway.input." + in.Name, Value: got.resolved})
		if got.dataset != "" {
			inputs = append(inputs, tracking.DatasetInput{
				Tags:    []tracking.Tag{{Key: "mlflow.data.context", Value: in.Name}},
				Dataset: tracking.Dataset{Name: got.dataset, Digest: got.digest[:min(32, len(got.digest))], SourceType: "slipway", Source: got.resolved},
			})
		}
	}
	// MLflow's log-batch takes at most 1000 metrics per call.
	for start := 0; start == 0 || start < len(ms); start += 1000 {
		end := min(start+1000, len(ms))
		if err := tr.LogBatch(ctx, child, ms[start:end], nil, tags); err != nil {
			return err
		}
		tags = nil
		if end > start {
			if err := tr.LogBatch(ctx, ex.run.MLflowRunID, parentMs[start:end], nil, nil); err != nil {
				return err
			}
		}
	}
	if len(inputs) > 0 {
		if err := tr.LogInputs(ctx, child, inputs); err != nil {
			return err
		}
	}
	end := now
	_, err := tr.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: child, Status: trackingStatus(string(r.Status)), EndTime: &end})
	return err
}

// endTracking ends the run's parent MLflow run, and any step run left
// running, with status.
func (s *Service) endTracking(ctx context.Context, run Run, status string) {
	end := s.nowMillis()
	for _, st := range run.Steps {
		if st.MLflowRunID == "" || st.Result != nil {
			continue
		}
		s.tracking.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: st.MLflowRunID, Status: status, EndTime: &end})
	}
	if run.MLflowRunID != "" {
		if _, err := s.tracking.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: run.MLflowRunID, Status: status, EndTime: &end}); err != nil {
			s.Log.Warn("ending a pipeline's tracking run", "run", run.ID, "err", err)
		}
	}
}
