package triggers

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
)

// How much one tick does at most; the rest waits for the next tick.
const (
	maxDuePerTick      = 100
	maxVersionsPerTick = 100
)

func (s *Service) interval() time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	return time.Second
}

// Run fires due schedules and data triggers until ctx ends. Each poll is
// two indexed queries; any number of servers may run it on one database.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.interval())
	defer tick.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tick fires what is due now and returns how many runs it queued.
func (s *Service) tick(ctx context.Context) int {
	n := s.fireSchedules(ctx) + s.fireData(ctx)
	if n > 0 {
		s.pipelines.Wake()
	}
	return n
}

// errTaken ends a firing's transaction when the compare-and-set found the
// trigger changed: another loop fired it, or it was paused or deleted.
var errTaken = errors.New("trigger already fired")

func (s *Service) warn(ctx context.Context, msg string, args ...any) {
	if ctx.Err() == nil {
		s.Log.Warn(msg, args...)
	}
}

func (s *Service) fireSchedules(ctx context.Context) int {
	now := s.Now()
	var due []Trigger
	err := s.db.EachRow(ctx, `SELECT `+triggerColumns+` FROM pipeline_triggers
		WHERE kind = ? AND enabled = 1 AND next_time <= ? ORDER BY next_time LIMIT ?`,
		[]any{KindSchedule, now.UnixMilli(), maxDuePerTick}, func(rows *sql.Rows) error {
			t, err := scanTrigger(rows)
			due = append(due, t)
			return err
		})
	if err != nil {
		s.warn(ctx, "reading due pipeline schedules", "err", err)
		return 0
	}
	n := 0
	for _, t := range due {
		if s.fireSchedule(ctx, t, now) {
			n++
		}
	}
	return n
}

// fireSchedule queues the run of a due schedule and advances its next
// firing in one commit, if the schedule still holds the next_time read.
func (s *Service) fireSchedule(ctx context.Context, t Trigger, now time.Time) bool {
	sched, loc, err := ParseSchedule(t.Cron, t.Timezone)
	if err != nil {
		s.fail(ctx, t, `next_time = ?`, never, t.NextTime, err)
		return false
	}
	due := time.UnixMilli(t.NextTime)
	next := nextFiring(sched, loc, due, now)
	detail := map[string]string{"trigger_id": t.ID, "cron": t.Cron, "scheduled_time": due.In(loc).Format(time.RFC3339)}
	var runID, skipped string
	err = s.tx(ctx, func(tx *sql.Tx) error {
		runID, skipped = "", ""
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET next_time = ?, last_fired = ?, last_error = ''
			WHERE trigger_id = ? AND enabled = 1 AND next_time = ?`), next, now.UnixMilli(), t.ID, t.NextTime)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errTaken
		}
		// A slow pipeline on a fast schedule must not pile up a queue:
		// while the run of the previous slot waits to start, this slot is
		// skipped. (The compare-and-set above makes t current: last_run_id
		// changes only with next_time.)
		if t.LastRunID != "" {
			var status string
			err := tx.QueryRowContext(ctx, s.db.Q(`SELECT status FROM pipeline_runs WHERE run_id = ?`), t.LastRunID).Scan(&status)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if status == runs.Queued {
				skipped = "the slot of " + detail["scheduled_time"] + " was skipped: run " + t.LastRunID + ", queued for the previous slot, has not started yet"
				_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET last_fired = ?, last_error = ? WHERE trigger_id = ?`),
					t.LastFired, skipped, t.ID)
				return err
			}
		}
		runID, err = s.pipelines.Enqueue(ctx, tx, runs.StartRequest{Pipeline: t.Pipeline, Params: t.Params, By: t.CreatedBy,
			Trigger: runs.Trigger{Kind: runs.TriggerSchedule, Detail: detail}})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET last_run_id = ? WHERE trigger_id = ?`), runID, t.ID)
		return err
	})
	switch {
	case err == nil && skipped != "":
		s.Log.Info("pipeline schedule skipped a slot", "pipeline", t.Pipeline, "schedule", t.ID, "reason", skipped)
		return false
	case err == nil:
		nextText := "never"
		if next != never {
			nextText = time.UnixMilli(next).In(loc).Format(time.RFC3339)
		}
		s.Log.Info("pipeline run queued by a schedule", "pipeline", t.Pipeline, "run", runID, "schedule", t.ID,
			"scheduled_time", detail["scheduled_time"], "next", nextText)
		return true
	case errors.Is(err, errTaken):
		return false
	case errs.CodeOf(err) != errs.Internal:
		// The run cannot be queued (params the spec no longer takes, say):
		// move on to the next slot rather than retry this one forever.
		s.fail(ctx, t, `next_time = ?`, next, t.NextTime, err)
	default:
		s.warn(ctx, "firing pipeline schedule; will retry", "schedule", t.ID, "pipeline", t.Pipeline, "err", err)
	}
	return false
}

// fail records why a firing queued no run and moves the trigger past it
// (set is "next_time = ?" or "last_version = ?", compared with old).
func (s *Service) fail(ctx context.Context, t Trigger, set string, value, old int64, cause error) {
	col := set[:len(set)-len(" = ?")]
	msg := errs.Message(cause)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET `+set+`, last_error = ?
			WHERE trigger_id = ? AND enabled = 1 AND `+col+` = ?`), value, msg, t.ID, old)
		return err
	})
	if err != nil {
		s.warn(ctx, "recording a failed pipeline trigger", "trigger", t.ID, "err", err)
		return
	}
	s.warn(ctx, "pipeline trigger queued no run", "trigger", describe(t), "pipeline", t.Pipeline, "err", cause)
}

func (s *Service) fireData(ctx context.Context) int {
	var pending []Trigger
	err := s.db.EachRow(ctx, `SELECT `+triggerColumns+` FROM pipeline_triggers JOIN data_datasets ON data_datasets.name = dataset
		WHERE kind = ? AND enabled = 1 AND latest_version > last_version ORDER BY trigger_id LIMIT ?`,
		[]any{KindData, maxDuePerTick}, func(rows *sql.Rows) error {
			t, err := scanTrigger(rows)
			pending = append(pending, t)
			return err
		})
	if err != nil {
		s.warn(ctx, "reading pipeline data triggers", "err", err)
		return 0
	}
	n := 0
	for _, t := range pending {
		for i := 0; i < maxVersionsPerTick && ctx.Err() == nil; i++ {
			fired, more := s.fireVersion(ctx, &t)
			if fired {
				n++
			}
			if !more {
				break
			}
		}
	}
	return n
}

// fireVersion queues a run for the first version of the trigger's dataset
// after its last_version and advances last_version to it, in one commit.
// It reports whether a run was queued and whether to look for another
// version.
func (s *Service) fireVersion(ctx context.Context, t *Trigger) (fired, more bool) {
	var version int64
	var runID string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var v sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT MIN(version) FROM data_versions WHERE name = ? AND version > ?`),
			t.Dataset, t.LastVersion).Scan(&v); err != nil {
			return err
		}
		if !v.Valid {
			return errTaken
		}
		version = v.Int64
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET last_version = ?, last_fired = ?, last_error = ''
			WHERE trigger_id = ? AND enabled = 1 AND last_version = ?`), version, s.Now().UnixMilli(), t.ID, t.LastVersion)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errTaken
		}
		runID, err = s.pipelines.Enqueue(ctx, tx, runs.StartRequest{Pipeline: t.Pipeline, Params: t.Params, By: t.CreatedBy,
			Trigger: runs.Trigger{Kind: runs.TriggerData, Detail: map[string]string{
				"trigger_id": t.ID, "dataset": t.Dataset, "version": strconv.FormatInt(version, 10)}}})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET last_run_id = ? WHERE trigger_id = ?`), runID, t.ID)
		return err
	})
	switch {
	case err == nil:
		s.Log.Info("pipeline run queued by a new data version", "pipeline", t.Pipeline, "run", runID, "trigger", t.ID,
			"dataset", t.Dataset, "version", version)
		t.LastVersion = version
		return true, true
	case errors.Is(err, errTaken):
		return false, false
	case errs.CodeOf(err) != errs.Internal:
		s.fail(ctx, *t, `last_version = ?`, version, t.LastVersion, err)
		t.LastVersion = version
		return false, true
	default:
		s.warn(ctx, "firing pipeline data trigger; will retry", "trigger", t.ID, "pipeline", t.Pipeline, "err", err)
		return false, false
	}
}
