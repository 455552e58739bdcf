package runs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
	"github.com/slipwayml/slipway/internal/store"
)

// StartRequest asks for a run of a registered pipeline.
type StartRequest struct {
	Pipeline string
	Params   map[string]string // overrides of the spec's param defaults, as text
	Force    bool
	Trigger  Trigger
	By       string
}

var triggerKinds = []string{TriggerManual, TriggerSchedule, TriggerData, TriggerWebhook, TriggerInternal, TriggerResume}

// Start queues a run; the runner picks it up. Params are checked against
// the spec first, so a bad value is an error here and no run is queued.
func (s *Service) Start(ctx context.Context, req StartRequest) (Run, error) {
	var id string
	err := s.retryNumber(ctx, func(tx *sql.Tx) (err error) {
		id, err = s.Enqueue(ctx, tx, req)
		return err
	})
	if err != nil {
		return Run{}, err
	}
	s.Wake()
	return s.GetRun(ctx, id)
}

// retryNumber runs fn in a transaction, again when a concurrent enqueue on
// another server took the same run number.
func (s *Service) retryNumber(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.db.Tx(ctx, fn)
		if err == nil || !store.IsUniqueViolation(err) || attempt == 4 {
			return err
		}
	}
}

// Enqueue queues a run inside tx, so that a caller can make queuing and
// its own bookkeeping (a schedule's next firing) one commit; call Wake
// after the commit. It returns the new run's id.
func (s *Service) Enqueue(ctx context.Context, tx *sql.Tx, req StartRequest) (string, error) {
	var text, file string
	err := tx.QueryRowContext(ctx, s.db.Q(`SELECT spec, spec_file FROM pipelines WHERE name = ?`), req.Pipeline).Scan(&text, &file)
	if errors.Is(err, sql.ErrNoRows) {
		return "", pipelineNotFound(req.Pipeline)
	}
	if err != nil {
		return "", err
	}
	return s.enqueue(ctx, tx, req, text, file, "")
}

func (s *Service) enqueue(ctx context.Context, tx *sql.Tx, req StartRequest, text, file, resumedFrom string) (string, error) {
	if !contains(triggerKinds, req.Trigger.Kind) {
		return "", errs.Invalid("trigger.kind: %q is not one of %s", req.Trigger.Kind, strings.Join(triggerKinds, ", "))
	}
	detail, _ := json.Marshal(req.Trigger.Detail)
	if len(detail) > MaxTriggerBytes {
		return "", errs.Invalid("trigger.detail: larger than %d bytes", MaxTriggerBytes)
	}
	p, err := spec.Parse(file, []byte(text))
	if err != nil {
		return "", errs.Invalid("pipeline %s: the registered spec no longer validates: %v", req.Pipeline, err)
	}
	if err := p.ApplyOverrides(req.Params); err != nil {
		return "", errs.Invalid("params: %v", err)
	}
	params, _ := json.Marshal(req.Params)
	if req.Params == nil {
		params = []byte("{}")
	}
	var number int64
	if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COALESCE(MAX(number), 0) + 1 FROM pipeline_runs WHERE pipeline = ?`), req.Pipeline).Scan(&number); err != nil {
		return "", err
	}
	id := newID()
	_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO pipeline_runs (run_id, pipeline, number, status, trigger_kind, trigger_detail,
			params, spec, spec_file, force_run, resumed_from, created_by, created_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		id, req.Pipeline, number, Queued, req.Trigger.Kind, string(detail), string(params), text, file, boolInt(req.Force),
		resumedFrom, req.By, s.nowMillis())
	if err != nil {
		return "", err
	}
	return id, nil
}

// Wake tells the runner that a run was queued.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Resume queues a new run of a failed or cancelled run's spec and params:
// steps that succeeded in it are kept while their outputs are unchanged,
// and the rest run.
func (s *Service) Resume(ctx context.Context, id, by string) (Run, error) {
	old, err := s.GetRun(ctx, id)
	if err != nil {
		return Run{}, err
	}
	if old.Status != Failed && old.Status != Cancelled {
		return Run{}, errs.New(errs.FailedPrecondition, "pipeline run %s is %s; only failed or cancelled runs can be resumed", id, old.Status)
	}
	var newID string
	err = s.retryNumber(ctx, func(tx *sql.Tx) (err error) {
		newID, err = s.enqueue(ctx, tx, StartRequest{Pipeline: old.Pipeline, Params: old.Params, By: by,
			Trigger: Trigger{Kind: TriggerResume, Detail: map[string]string{"run_id": old.ID, "number": strconv.FormatInt(old.Number, 10)}}},
			old.spec, old.specFile, old.ID)
		return err
	})
	if err != nil {
		return Run{}, err
	}
	s.Wake()
	return s.GetRun(ctx, newID)
}

// Cancel stops a run: a queued one at once, a running one by ending its
// steps' processes (on whichever server runs it, within a heartbeat).
func (s *Service) Cancel(ctx context.Context, id string) (Run, error) {
	now := s.nowMillis()
	var queued, running int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET status = ?, error = ?, end_time = ?
			WHERE run_id = ? AND status = ?`), Cancelled, "cancelled before it started", now, id, Queued)
		if err != nil {
			return err
		}
		if queued, _ = res.RowsAffected(); queued > 0 {
			return nil
		}
		res, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET cancel_requested = 1 WHERE run_id = ? AND status = ?`), id, Running)
		if err != nil {
			return err
		}
		running, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return Run{}, errs.Wrap(err, "cancelling run")
	}
	run, err := s.GetRun(ctx, id)
	if err != nil {
		return Run{}, err
	}
	if queued == 0 && running == 0 {
		return run, errs.New(errs.FailedPrecondition, "pipeline run %s already %s", id, run.Status)
	}
	s.cancelLocal(id, errCancelled)
	return run, nil
}

var errCancelled = errors.New("cancelled by request")

func (s *Service) cancelLocal(id string, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel := s.active[id]; cancel != nil {
		cancel(cause)
	}
}

const runColumns = `run_id, pipeline, number, status, trigger_kind, trigger_detail, params, spec, spec_file, force_run,
	resumed_from, mlflow_run_id, experiment_id, error, created_by, created_time, start_time, end_time`

func scanRun(r interface{ Scan(...any) error }) (Run, error) {
	var run Run
	var detail, params string
	var force int64
	err := r.Scan(&run.ID, &run.Pipeline, &run.Number, &run.Status, &run.Trigger.Kind, &detail, &params, &run.spec, &run.specFile,
		&force, &run.ResumedFrom, &run.MLflowRunID, &run.ExperimentID, &run.Error, &run.CreatedBy, &run.CreatedTime, &run.StartTime, &run.EndTime)
	if err != nil {
		return run, err
	}
	run.Force = force != 0
	json.Unmarshal([]byte(detail), &run.Trigger.Detail)
	json.Unmarshal([]byte(params), &run.Params)
	return run, nil
}

var runRef = regexp.MustCompile(`^(.+)#([0-9]+)$`)

// FindRun finds a run by id, by PIPELINE#NUMBER, or by a pipeline name
// (its latest run).
func (s *Service) FindRun(ctx context.Context, ref string) (Run, error) {
	if m := runRef.FindStringSubmatch(ref); m != nil {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		var id string
		err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT run_id FROM pipeline_runs WHERE pipeline = ? AND number = ?`), m[1], n).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return Run{}, errs.NotFoundf("pipeline %s has no run #%d", m[1], n)
		}
		if err != nil {
			return Run{}, errs.Wrap(err, "finding run")
		}
		return s.GetRun(ctx, id)
	}
	run, err := s.GetRun(ctx, ref)
	if errs.CodeOf(err) != errs.NotFound {
		return run, err
	}
	runs, _, lerr := s.ListRuns(ctx, ListRunsRequest{Pipeline: ref, MaxResults: 1})
	if lerr != nil || len(runs) == 0 {
		return run, errs.NotFoundf("no pipeline run %q: give a run id, PIPELINE#NUMBER, or a pipeline name for its latest run", ref)
	}
	return s.GetRun(ctx, runs[0].ID)
}

// GetRun returns a run with its steps.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	run, err := scanRun(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+runColumns+` FROM pipeline_runs WHERE run_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return run, runNotFound(id)
	}
	if err != nil {
		return run, errs.Wrap(err, "reading run")
	}
	err = s.db.EachRow(ctx, `SELECT step, status, result, mlflow_run_id, log_key, start_time, end_time
		FROM pipeline_run_steps WHERE run_id = ? ORDER BY position`, []any{id}, func(rows *sql.Rows) error {
		var st Step
		var result string
		if err := rows.Scan(&st.Name, &st.Status, &result, &st.MLflowRunID, &st.logKey, &st.StartTime, &st.EndTime); err != nil {
			return err
		}
		if result != "{}" {
			st.Result = new(engine.StepResult)
			if err := json.Unmarshal([]byte(result), st.Result); err != nil {
				return err
			}
		}
		st.HasLog = st.logKey != "" || st.Status == StepRunning
		run.Steps = append(run.Steps, st)
		return nil
	})
	if err != nil {
		return run, errs.Wrap(err, "reading run steps")
	}
	return run, nil
}

// ListRunsRequest filters and pages runs, newest first.
type ListRunsRequest struct {
	Pipeline   string
	Status     string
	MaxResults int
	PageToken  string
}

// MaxListRuns bounds a page of runs.
const MaxListRuns = 1000

var runStatuses = []string{Queued, Running, Succeeded, Failed, Cancelled}

// ListRuns returns runs newest first, without their steps.
func (s *Service) ListRuns(ctx context.Context, req ListRunsRequest) ([]Run, string, error) {
	if req.MaxResults == 0 {
		req.MaxResults = 100
	}
	if req.MaxResults < 0 || req.MaxResults > MaxListRuns {
		return nil, "", errs.Invalid("max_results: %d must be between 1 and %d", req.MaxResults, MaxListRuns)
	}
	if req.Status != "" && !contains(runStatuses, req.Status) {
		return nil, "", errs.Invalid("status: %q is not one of %s", req.Status, strings.Join(runStatuses, ", "))
	}
	offset := 0
	if req.PageToken != "" {
		n, err := strconv.Atoi(req.PageToken)
		if err != nil || n < 0 {
			return nil, "", errs.Invalid("page_token: %q is not a token this server issued", req.PageToken)
		}
		offset = n
	}
	q := `SELECT ` + runColumns + ` FROM pipeline_runs WHERE 1 = 1`
	var args []any
	if req.Pipeline != "" {
		q += ` AND pipeline = ?`
		args = append(args, req.Pipeline)
	}
	if req.Status != "" {
		q += ` AND status = ?`
		args = append(args, req.Status)
	}
	q += ` ORDER BY created_time DESC, number DESC LIMIT ? OFFSET ?`
	args = append(args, req.MaxResults+1, offset)
	var out []Run
	err := s.db.EachRow(ctx, q, args, func(rows *sql.Rows) error {
		run, err := scanRun(rows)
		out = append(out, run)
		return err
	})
	if err != nil {
		return nil, "", errs.Wrap(err, "listing runs")
	}
	next := ""
	if len(out) > req.MaxResults {
		out = out[:req.MaxResults]
		next = strconv.Itoa(offset + req.MaxResults)
	}
	return out, next, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// processAlive says whether owner names a process on this machine that is
// still running. A process elsewhere is taken as alive: only its
// heartbeat can tell.
func processAlive(owner, host string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 || parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
