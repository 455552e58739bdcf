// Package runs is the server side of pipelines: the pipelines registered
// with the server, their runs as a durable queue, and the runner that
// claims queued runs and executes them with the engine, as tracked MLflow
// runs (one parent per pipeline run, one child per step).
//
// A run is queued in the database before anything executes, so whatever
// queued it (a person, a schedule, a webhook) is acknowledged only once the
// run cannot be lost. A server that dies mid-run leaves a heartbeat that
// stops; the next server to look marks the run failed, and it can be
// resumed from its failed steps.
package runs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Run statuses.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// Step statuses besides the engine's.
const (
	StepPending = "pending"
	StepRunning = "running"
)

// Trigger kinds: what started a run.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerData     = "data"
	TriggerWebhook  = "webhook"
	TriggerInternal = "internal"
	TriggerResume   = "resume"
)

// Limits, generous for real pipelines and small enough to keep a request
// cheap.
const (
	MaxSpecBytes    = 1 << 20
	MaxTriggerBytes = 16 << 10
)

// Pipeline is a spec registered with the server.
type Pipeline struct {
	Name        string   `json:"name"`
	File        string   `json:"file"`
	ProjectDir  string   `json:"project_dir"`
	Spec        string   `json:"spec"`
	Steps       []string `json:"steps"`
	HasWebhook  bool     `json:"has_webhook_secret"`
	CreatedTime int64    `json:"created_time"`
	UpdatedTime int64    `json:"updated_time"`
	UpdatedBy   string   `json:"updated_by,omitempty"`
	LatestRun   *Run     `json:"latest_run,omitempty"`
}

// Trigger says what started a run; Detail holds its particulars (the
// schedule, the data version, the pushed commit).
type Trigger struct {
	Kind   string            `json:"kind"`
	Detail map[string]string `json:"detail,omitempty"`
}

// Run is one execution of a pipeline.
type Run struct {
	ID           string            `json:"run_id"`
	Pipeline     string            `json:"pipeline"`
	Number       int64             `json:"number"`
	Status       string            `json:"status"`
	Trigger      Trigger           `json:"trigger"`
	Params       map[string]string `json:"params,omitempty"`
	Force        bool              `json:"force,omitempty"`
	ResumedFrom  string            `json:"resumed_from,omitempty"`
	MLflowRunID  string            `json:"mlflow_run_id,omitempty"`
	ExperimentID string            `json:"experiment_id,omitempty"`
	Error        string            `json:"error,omitempty"`
	CreatedBy    string            `json:"created_by,omitempty"`
	CreatedTime  int64             `json:"created_time"`
	StartTime    int64             `json:"start_time,omitempty"`
	EndTime      int64             `json:"end_time,omitempty"`
	Steps        []Step            `json:"steps,omitempty"`

	spec, specFile string
}

// Done says whether the run has ended.
func (r *Run) Done() bool {
	return r.Status == Succeeded || r.Status == Failed || r.Status == Cancelled
}

// Step is one step of a run: the engine's record of it, and where its
// tracking run and log are.
type Step struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	MLflowRunID string `json:"mlflow_run_id,omitempty"`
	HasLog      bool   `json:"has_log"`
	StartTime   int64  `json:"start_time,omitempty"`
	EndTime     int64  `json:"end_time,omitempty"`
	// Result is set once the step has ended.
	Result *engine.StepResult `json:"result,omitempty"`

	logKey string
}

// Service keeps pipelines and runs, and executes runs.
type Service struct {
	db       *store.DB
	blobs    *blob.Store
	tracking *tracking.Service
	data     *datasets.Service
	models   *registry.Service

	// Dir is a local working folder: run directories, step logs while
	// they are written, and data and model inputs fetched for steps.
	Dir string
	// Executor runs steps; nil runs them as local processes.
	Executor engine.Executor
	// TrackingURL is the server's own address, given to steps as
	// MLFLOW_TRACKING_URI and SLIPWAY_URL. Set it once the server listens.
	TrackingURL string
	// Auth, when set, gives each run a token of its own for its steps to
	// log with, revoked when the run ends.
	Auth *auth.Service
	// MaxRuns is how many runs this server executes at once; 0 means 2.
	MaxRuns int
	// StaleAfter is how long a running run may go without a heartbeat
	// before another server takes it for dead; 0 means 30s.
	StaleAfter time.Duration
	// Bin is the directory put first on steps' PATH, so that specs can
	// call `slipway`; empty means the directory of this executable.
	Bin string
	Log *slog.Logger
	Now func() time.Time

	owner  string        // this process: host/pid/random
	wake   chan struct{} // a run was queued
	mu     sync.Mutex
	active map[string]context.CancelCauseFunc
}

// New returns a service over the stores; dir is its local working folder.
func New(db *store.DB, blobs *blob.Store, tr *tracking.Service, data *datasets.Service, models *registry.Service, dir string) *Service {
	host, _ := os.Hostname()
	return &Service{db: db, blobs: blobs, tracking: tr, data: data, models: models, Dir: dir,
		Log: slog.Default(), Now: time.Now,
		owner: host + "/" + strconv.Itoa(os.Getpid()) + "/" + newID()[:8],
		wake:  make(chan struct{}, 1), active: map[string]context.CancelCauseFunc{}}
}

func (s *Service) nowMillis() int64 { return s.Now().UnixMilli() }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PutPipeline registers a spec, or replaces the registered one of the
// same name. The spec must name the pipeline name, validate completely,
// and the project directory must exist on the server's machine.
func (s *Service) PutPipeline(ctx context.Context, name, file string, specText []byte, projectDir, by string) (Pipeline, error) {
	if len(specText) > MaxSpecBytes {
		return Pipeline{}, errs.New(errs.ResourceExhausted, "spec: larger than %d bytes", MaxSpecBytes)
	}
	if file == "" {
		file = "pipeline.yaml"
	}
	p, err := spec.Parse(file, specText)
	if err != nil {
		return Pipeline{}, errs.Invalid("spec: %v", err)
	}
	if p.Name != name {
		return Pipeline{}, errs.Invalid("spec: names pipeline %q, not %q; the name in the URL and in the spec must agree", p.Name, name)
	}
	if err := checkProjectDir(projectDir); err != nil {
		return Pipeline{}, err
	}
	now := s.nowMillis()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO pipelines (name, spec, spec_file, project_dir, created_time, updated_time, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, spec_file = excluded.spec_file,
				project_dir = excluded.project_dir, updated_time = excluded.updated_time, updated_by = excluded.updated_by`),
			name, string(specText), file, projectDir, now, now, by)
		return err
	})
	if err != nil {
		return Pipeline{}, errs.Wrap(err, "saving pipeline")
	}
	return s.GetPipeline(ctx, name)
}

func checkProjectDir(dir string) error {
	if dir == "" {
		return errs.Invalid("project_dir: is required: the directory on the server's machine where steps run")
	}
	if !filepath.IsAbs(dir) {
		return errs.Invalid("project_dir: %q must be an absolute path", dir)
	}
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return errs.Invalid("project_dir: %q is not a directory on the server's machine (steps run on the server: start it where the project is)", dir)
	}
	return nil
}

// SetWebhookSecret sets (or with "" removes) the secret that signs push
// webhooks for the pipeline.
func (s *Service) SetWebhookSecret(ctx context.Context, name, secret string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipelines SET webhook_secret = ? WHERE name = ?`), secret, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return pipelineNotFound(name)
		}
		return nil
	})
}

// WebhookSecret returns the pipeline's webhook secret ("" when none is set).
func (s *Service) WebhookSecret(ctx context.Context, name string) (string, error) {
	var secret string
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT webhook_secret FROM pipelines WHERE name = ?`), name).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return "", pipelineNotFound(name)
	}
	return secret, err
}

func pipelineNotFound(name string) error {
	return errs.NotFoundf("pipeline %q is not registered (slipway pipeline run FILE registers it)", name)
}

func runNotFound(id string) error {
	return errs.NotFoundf("pipeline run %q does not exist", id)
}

const pipelineColumns = `name, spec, spec_file, project_dir, webhook_secret <> '', created_time, updated_time, updated_by`

func scanPipeline(r interface{ Scan(...any) error }) (Pipeline, error) {
	var p Pipeline
	err := r.Scan(&p.Name, &p.Spec, &p.File, &p.ProjectDir, &p.HasWebhook, &p.CreatedTime, &p.UpdatedTime, &p.UpdatedBy)
	if err != nil {
		return p, err
	}
	if parsed, err := spec.Parse(p.File, []byte(p.Spec)); err == nil {
		for _, st := range parsed.Steps {
			p.Steps = append(p.Steps, st.Name)
		}
	}
	return p, nil
}

// GetPipeline returns a registered pipeline with its latest run.
func (s *Service) GetPipeline(ctx context.Context, name string) (Pipeline, error) {
	p, err := scanPipeline(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+pipelineColumns+` FROM pipelines WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return p, pipelineNotFound(name)
	}
	if err != nil {
		return p, errs.Wrap(err, "reading pipeline")
	}
	runs, _, err := s.ListRuns(ctx, ListRunsRequest{Pipeline: name, MaxResults: 1})
	if err != nil {
		return p, err
	}
	if len(runs) > 0 {
		p.LatestRun = &runs[0]
	}
	return p, nil
}

// ListPipelines returns every registered pipeline, by name, each with its
// latest run.
func (s *Service) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	var out []Pipeline
	err := s.db.EachRow(ctx, `SELECT `+pipelineColumns+` FROM pipelines ORDER BY name`, nil, func(rows *sql.Rows) error {
		p, err := scanPipeline(rows)
		out = append(out, p)
		return err
	})
	if err != nil {
		return nil, errs.Wrap(err, "listing pipelines")
	}
	for i := range out {
		runs, _, err := s.ListRuns(ctx, ListRunsRequest{Pipeline: out[i].Name, MaxResults: 1})
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			out[i].LatestRun = &runs[0]
		}
	}
	return out, nil
}

// DeletePipeline removes a pipeline with its runs and triggers. A pipeline
// with a run still queued or running is not deleted.
func (s *Service) DeletePipeline(ctx context.Context, name string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var active int
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM pipeline_runs WHERE pipeline = ? AND status IN ('queued', 'running')`), name).Scan(&active); err != nil {
			return err
		}
		if active > 0 {
			return errs.New(errs.FailedPrecondition, "pipeline %q has %d run(s) queued or running; cancel them first", name, active)
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM pipelines WHERE name = ?`), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return pipelineNotFound(name)
		}
		return nil
	})
}
