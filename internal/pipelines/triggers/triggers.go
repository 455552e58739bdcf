// Package triggers starts pipeline runs without a person at the keyboard:
// cron schedules, new versions of a dataset, git push webhooks (GitHub and
// GitLab, signature checked), and an internal trigger for other parts of
// the server such as monitoring alerts.
//
// Every run is queued through the runs service inside this package's own
// transaction, together with the trigger's bookkeeping: a schedule's next
// firing time, or the last dataset version acted on. That update is a
// compare-and-set on the value read, so when two scheduler loops (two
// servers on one database, or a server restarted mid-tick) reach the same
// firing, exactly one commits and the other changes nothing. A restart
// therefore never fires a slot twice.
//
// Missed firings (the server was down when a schedule was due) are not
// caught up one by one: the first tick after a start fires once, for the
// earliest slot missed, and the schedule continues from the present, as
// Airflow does with catchup off.
package triggers

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA zones; do not depend on the host's zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
	"github.com/slipwayml/slipway/internal/store"
)

// Kinds of trigger rows. Manual and internal runs have no row: they are
// started on request.
const (
	KindSchedule = "schedule"
	KindData     = "data"
	KindWebhook  = "webhook"
)

// Limits on what a trigger holds.
const (
	MaxCronLength   = 200
	MaxReasonLength = 1000
	MinSecretLength = 16
	MaxSecretLength = 1024
	MaxBranchLength = 255
	// MaxWebhookBytes bounds a webhook body. GitHub and GitLab list at
	// most 20 commits in a push payload; a few MB is ample.
	MaxWebhookBytes = 5 << 20
)

// Trigger is one row: a schedule, a data trigger or a pipeline's webhook.
type Trigger struct {
	ID       string `json:"trigger_id"`
	Pipeline string `json:"pipeline"`
	Kind     string `json:"kind"`
	// Cron and Timezone are set for a schedule.
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// Dataset is set for a data trigger; LastVersion is the newest
	// version of it already acted on.
	Dataset     string `json:"dataset,omitempty"`
	LastVersion int64  `json:"last_version,omitempty"`
	// Branch filters a webhook: a glob on the pushed branch's name.
	Branch string `json:"branch,omitempty"`
	// Params override the spec's defaults in the runs this starts.
	Params  map[string]string `json:"params,omitempty"`
	Enabled bool              `json:"enabled"`
	// NextTime is a schedule's next firing, in ms since the epoch.
	NextTime int64 `json:"next_time,omitempty"`
	// LastFired and LastRunID are the last run this queued; LastError
	// says why the last firing queued none.
	LastFired   int64  `json:"last_fired,omitempty"`
	LastRunID   string `json:"last_run_id,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	CreatedBy   string `json:"created_by,omitempty"`
	CreatedTime int64  `json:"created_time"`
}

// Service keeps triggers and fires them.
type Service struct {
	db        *store.DB
	pipelines *runs.Service
	data      *datasets.Service

	// Interval is how often Run looks for due triggers; 0 means 1s.
	Interval time.Duration
	Log      *slog.Logger
	Now      func() time.Time
}

// New returns a service that queues runs through pipelines and watches
// data's datasets.
func New(db *store.DB, pipelines *runs.Service, data *datasets.Service) *Service {
	return &Service{db: db, pipelines: pipelines, data: data, Log: slog.Default(), Now: time.Now}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ScheduleRequest creates a cron schedule.
type ScheduleRequest struct {
	Pipeline string
	// Cron is five fields (minute hour day-of-month month day-of-week) or
	// a descriptor: @yearly, @monthly, @weekly, @daily, @hourly, or
	// @every DURATION (at least 1s).
	Cron string
	// Timezone is an IANA name such as Europe/Paris; "" means UTC.
	Timezone string
	Params   map[string]string
	By       string
}

// DataTriggerRequest creates a trigger on new versions of a dataset.
type DataTriggerRequest struct {
	Pipeline string
	Dataset  string
	Params   map[string]string
	By       string
}

// CreateSchedule adds a cron schedule to a pipeline. Bad cron text, an
// unknown timezone or params the spec rejects are errors, and nothing is
// created.
func (s *Service) CreateSchedule(ctx context.Context, req ScheduleRequest) (Trigger, error) {
	sched, loc, err := ParseSchedule(req.Cron, req.Timezone)
	if err != nil {
		return Trigger{}, err
	}
	if err := s.checkPipeline(ctx, req.Pipeline, req.Params); err != nil {
		return Trigger{}, err
	}
	now := s.Now()
	next := slotAfter(sched, now.In(loc))
	if next.IsZero() {
		return Trigger{}, errs.Invalid("cron: %q never fires (a date such as 30 February does not exist)", req.Cron)
	}
	t := Trigger{ID: newID(), Pipeline: req.Pipeline, Kind: KindSchedule, Cron: strings.TrimSpace(req.Cron), Timezone: loc.String(),
		Params: req.Params, Enabled: true, NextTime: next.UnixMilli(), CreatedBy: req.By, CreatedTime: now.UnixMilli()}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error { return s.insert(ctx, tx, t) })
	if err != nil {
		return Trigger{}, errs.Wrap(err, "creating schedule")
	}
	return t, nil
}

// CreateDataTrigger makes every new version of a dataset start a run of
// the pipeline. Versions that exist when the trigger is created do not
// start one.
func (s *Service) CreateDataTrigger(ctx context.Context, req DataTriggerRequest) (Trigger, error) {
	if req.Dataset == "" {
		return Trigger{}, errs.Invalid("dataset: is required: the dataset whose new versions start a run")
	}
	if err := datasets.ValidateName(req.Dataset); err != nil {
		return Trigger{}, errs.Invalid("dataset: %s", errs.Message(err))
	}
	if _, err := s.data.Get(ctx, req.Dataset); err != nil {
		if errs.Is(err, errs.NotFound) {
			return Trigger{}, errs.NotFoundf("dataset: %q does not exist; add a first version with `slipway data add %s DIR`, then create the trigger", req.Dataset, req.Dataset)
		}
		return Trigger{}, err
	}
	if err := s.checkPipeline(ctx, req.Pipeline, req.Params); err != nil {
		return Trigger{}, err
	}
	now := s.Now()
	t := Trigger{ID: newID(), Pipeline: req.Pipeline, Kind: KindData, Dataset: req.Dataset, Params: req.Params, Enabled: true,
		CreatedBy: req.By, CreatedTime: now.UnixMilli()}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The latest version is read in the transaction that records it,
		// so a version committed after it is never skipped.
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT latest_version FROM data_datasets WHERE name = ?`), req.Dataset).Scan(&t.LastVersion); err != nil {
			return err
		}
		return s.insert(ctx, tx, t)
	})
	if err != nil {
		return Trigger{}, errs.Wrap(err, "creating data trigger")
	}
	return t, nil
}

// checkPipeline says whether the pipeline is registered and its spec
// takes params.
func (s *Service) checkPipeline(ctx context.Context, name string, params map[string]string) error {
	if name == "" {
		return errs.Invalid("pipeline: is required")
	}
	p, err := s.pipelines.GetPipeline(ctx, name)
	if err != nil {
		return err
	}
	parsed, err := spec.Parse(p.File, []byte(p.Spec))
	if err != nil {
		return errs.Invalid("pipeline %s: the registered spec no longer validates: %v", name, err)
	}
	if err := parsed.ApplyOverrides(params); err != nil {
		return errs.Invalid("params: %v", err)
	}
	return nil
}

func (s *Service) insert(ctx context.Context, tx *sql.Tx, t Trigger) error {
	params := []byte("{}")
	if len(t.Params) > 0 {
		params, _ = json.Marshal(t.Params)
	}
	_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO pipeline_triggers (trigger_id, pipeline, kind, cron, timezone, dataset, branch,
			params, enabled, next_time, last_version, created_by, created_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		t.ID, t.Pipeline, t.Kind, t.Cron, t.Timezone, t.Dataset, t.Branch, string(params), boolInt(t.Enabled), t.NextTime,
		t.LastVersion, t.CreatedBy, t.CreatedTime)
	return err
}

// ParseSchedule checks cron text and a timezone and returns the schedule
// and location. The errors name the field and the rule.
func ParseSchedule(text, timezone string) (sched cron.Schedule, loc *time.Location, err error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, nil, errs.Invalid(`cron: is required: five fields (minute hour day-of-month month day-of-week, e.g. "0 3 * * *") or a descriptor such as @daily or "@every 10m"`)
	case len(text) > MaxCronLength:
		return nil, nil, errs.Invalid("cron: longer than %d characters", MaxCronLength)
	case strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ="):
		return nil, nil, errs.Invalid("cron: %q: give the timezone in the timezone field, not as a TZ= prefix", text)
	}
	if d, ok := strings.CutPrefix(text, "@every "); ok {
		dur, perr := time.ParseDuration(strings.TrimSpace(d))
		if perr != nil {
			return nil, nil, errs.Invalid("cron: %q: @every takes a Go duration such as 90s, 10m or 1h30m", text)
		}
		if dur < time.Second {
			return nil, nil, errs.Invalid("cron: %q: @every must be at least 1s", text)
		}
	}
	defer func() {
		// The parser has panicked on odd input before; a panic is bad text.
		if p := recover(); p != nil {
			sched, loc, err = nil, nil, errs.Invalid("cron: %q is not valid cron text", text)
		}
	}()
	sched, perr := cron.ParseStandard(text)
	if perr != nil {
		return nil, nil, errs.Invalid(`cron: %q: %v (five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"; or @hourly, @daily, @weekly, @monthly, @yearly, "@every 10m")`, text, perr)
	}
	loc, err = ParseTimezone(timezone)
	if err != nil {
		return nil, nil, err
	}
	return sched, loc, nil
}

// ParseTimezone reads an IANA zone name; "" is UTC. "Local" is refused: a
// schedule must mean the same on every server.
func ParseTimezone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errs.Invalid(`timezone: "Local" depends on the server's machine; name a zone such as Europe/Paris, or UTC`)
	}
	if len(name) > 64 {
		return nil, errs.Invalid("timezone: longer than 64 characters")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errs.Invalid("timezone: %q is not an IANA time zone name (such as UTC, Europe/Paris or America/New_York)", name)
	}
	return loc, nil
}

const triggerColumns = `trigger_id, pipeline, kind, cron, timezone, dataset, branch, params, enabled, next_time, last_version,
	last_fired, last_run_id, last_error, created_by, created_time`

func scanTrigger(r interface{ Scan(...any) error }) (Trigger, error) {
	var t Trigger
	var params string
	var enabled int64
	err := r.Scan(&t.ID, &t.Pipeline, &t.Kind, &t.Cron, &t.Timezone, &t.Dataset, &t.Branch, &params, &enabled, &t.NextTime,
		&t.LastVersion, &t.LastFired, &t.LastRunID, &t.LastError, &t.CreatedBy, &t.CreatedTime)
	if err != nil {
		return t, err
	}
	t.Enabled = enabled != 0
	if params != "{}" {
		json.Unmarshal([]byte(params), &t.Params)
	}
	if t.Kind != KindSchedule {
		t.Timezone = ""
	}
	if t.NextTime == never {
		t.NextTime = 0
	}
	return t, nil
}

// never is the next_time of a schedule that has no further firing.
const never = math.MaxInt64

func notFound(id string) error {
	return errs.NotFoundf("schedule %q does not exist (slipway schedules list shows them)", id)
}

// Get returns one trigger.
func (s *Service) Get(ctx context.Context, id string) (Trigger, error) {
	t, err := scanTrigger(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+triggerColumns+` FROM pipeline_triggers WHERE trigger_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound(id)
	}
	if err != nil {
		return t, errs.Wrap(err, "reading schedule")
	}
	return t, nil
}

// List returns the triggers of one pipeline, or of all ("" ), by pipeline
// and creation time.
func (s *Service) List(ctx context.Context, pipeline string) ([]Trigger, error) {
	q := `SELECT ` + triggerColumns + ` FROM pipeline_triggers`
	var args []any
	if pipeline != "" {
		if _, err := s.pipelines.WebhookSecret(ctx, pipeline); err != nil {
			return nil, err
		}
		q += ` WHERE pipeline = ?`
		args = append(args, pipeline)
	}
	q += ` ORDER BY pipeline, created_time, trigger_id`
	out := []Trigger{}
	err := s.db.EachRow(ctx, q, args, func(rows *sql.Rows) error {
		t, err := scanTrigger(rows)
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, errs.Wrap(err, "listing schedules")
	}
	return out, nil
}

// Delete removes a trigger. Deleting a pipeline's webhook also removes its
// webhook secret, so that pushes are refused from then on.
func (s *Service) Delete(ctx context.Context, id string) error {
	t, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if t.Kind == KindWebhook {
		if err := s.pipelines.SetWebhookSecret(ctx, t.Pipeline, ""); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	var n int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM pipeline_triggers WHERE trigger_id = ?`), id)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return errs.Wrap(err, "deleting schedule")
	}
	if n == 0 {
		return notFound(id)
	}
	return nil
}

// SetEnabled pauses or resumes a trigger. A resumed schedule next fires at
// its first slot after now, and a resumed data trigger at the first
// version committed after now: what came while it was paused is skipped.
// A paused webhook answers pushes without starting runs.
func (s *Service) SetEnabled(ctx context.Context, id string, enabled bool) (Trigger, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return t, err
	}
	if t.Enabled == enabled {
		return t, nil
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		switch {
		case !enabled:
			res, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET enabled = 0 WHERE trigger_id = ?`), id)
		case t.Kind == KindSchedule:
			sched, loc, perr := ParseSchedule(t.Cron, t.Timezone)
			if perr != nil {
				return perr
			}
			next := nextFiring(sched, loc, s.Now(), s.Now())
			res, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET enabled = 1, next_time = ? WHERE trigger_id = ?`), next, id)
		case t.Kind == KindData:
			res, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET enabled = 1,
				last_version = COALESCE((SELECT latest_version FROM data_datasets WHERE name = ?), last_version)
				WHERE trigger_id = ?`), t.Dataset, id)
		default:
			res, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET enabled = 1 WHERE trigger_id = ?`), id)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(id)
		}
		return nil
	})
	if err != nil {
		return Trigger{}, errs.Wrap(err, "updating schedule")
	}
	return s.Get(ctx, id)
}

// nextFiring is the first slot of sched after due, in ms; if that is not
// after now (the server was down, or is late), the first slot after now,
// so that missed slots are skipped rather than fired one by one.
func nextFiring(sched cron.Schedule, loc *time.Location, due, now time.Time) int64 {
	next := slotAfter(sched, due.In(loc))
	if !next.IsZero() && !next.After(now) {
		next = slotAfter(sched, now.In(loc))
	}
	if next.IsZero() {
		return never
	}
	return next.UnixMilli()
}

// allHours is a cron hour field that matches every hour.
const allHours = 1<<24 - 1

// slotAfter is the schedule's first slot after t (in t's location). When
// the clocks go back, a schedule at fixed hours does not fire again at the
// same wall-clock time an hour later (as cron does: only schedules that
// run every hour run in the repeated hour); the parser alone would fire
// "30 2 * * *" twice that night.
func slotAfter(sched cron.Schedule, t time.Time) time.Time {
	next := sched.Next(t)
	if spec, ok := sched.(*cron.SpecSchedule); ok && spec.Hour&allHours != allHours && !next.IsZero() {
		const wall = "2006-01-02T15:04:05"
		if next.Format(wall) == t.Format(wall) {
			next = sched.Next(next)
		}
	}
	return next
}

// Internal queues a run for another part of the server (a monitoring
// alert, say); reason says why, and is kept in the run's trigger detail.
func (s *Service) Internal(ctx context.Context, pipeline, reason string, params map[string]string) (runs.Run, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return runs.Run{}, errs.Invalid("reason: is required: why the run is started")
	}
	if len(reason) > MaxReasonLength {
		return runs.Run{}, errs.Invalid("reason: longer than %d characters", MaxReasonLength)
	}
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		id, err = s.pipelines.Enqueue(ctx, tx, runs.StartRequest{Pipeline: pipeline, Params: params,
			Trigger: runs.Trigger{Kind: runs.TriggerInternal, Detail: map[string]string{"reason": reason}}})
		return err
	})
	if err != nil {
		return runs.Run{}, errs.Wrap(err, "queuing run")
	}
	s.pipelines.Wake()
	s.Log.Info("pipeline run queued by an internal trigger", "pipeline", pipeline, "run", id, "reason", reason)
	return s.pipelines.GetRun(ctx, id)
}

// tx runs fn in a transaction, again when a concurrent writer took a
// unique key first (the same run number, or a pipeline's webhook row); the
// violation rolls everything back, the trigger update included.
func (s *Service) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.db.Tx(ctx, fn)
		if err == nil || !store.IsUniqueViolation(err) || attempt == 4 {
			return err
		}
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// checkBranch validates a webhook's branch filter, a glob as path.Match
// reads it ("main", "release/*").
func checkBranch(b string) error {
	if len(b) > MaxBranchLength {
		return errs.Invalid("branch: longer than %d characters", MaxBranchLength)
	}
	if _, err := path.Match(b, ""); err != nil {
		return errs.Invalid("branch: %q is not a valid pattern (%v); use a name such as main, or a glob such as release/*", b, err)
	}
	if strings.HasPrefix(b, "refs/") {
		return errs.Invalid("branch: %q: give the branch name (main), not the ref (refs/heads/main)", b)
	}
	return nil
}

func describe(t Trigger) string {
	switch t.Kind {
	case KindSchedule:
		return fmt.Sprintf("schedule %s (%q, %s)", t.ID, t.Cron, t.Timezone)
	case KindData:
		return fmt.Sprintf("data trigger %s (dataset %s)", t.ID, t.Dataset)
	}
	return t.Kind + " " + t.ID
}
