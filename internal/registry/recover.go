package registry

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
)

// A registration reserves its version as PENDING_REGISTRATION, copies the
// files, then marks it READY (or removes it). A server that dies in between
// leaves the row PENDING and its files half copied, forever: no process is
// left to finish or undo it.
//
// Several servers may share one PostgreSQL database, so a PENDING row is
// not proof of a dead registration: another server may be copying a large
// model right now. The registering process therefore touches the row's
// last_updated_time every PendingHeartbeat while it copies, and only a row
// untouched for PendingStaleAfter is taken for abandoned. That is ten
// missed heartbeats; a copy may take as long as it needs.
const (
	PendingHeartbeat  = 30 * time.Second
	PendingStaleAfter = 5 * time.Minute
)

// RecoveryActor is who the audit log names for versions RecoverPending
// fails. Usernames cannot contain ":", so no user can be mistaken for it.
const RecoveryActor = "slipway:recover-pending"

// abandonedMessage is the status_message of a version RecoverPending
// fails: what happened and what to do, for whoever finds it.
const abandonedMessage = "Registration did not finish: the server registering this version stopped (or lost its database) " +
	"while copying the version's files, and nothing has touched it since. Its partial files were removed. " +
	"Delete this version and register the model again."

// RecoverPending marks every PENDING_REGISTRATION version whose
// registration has shown no sign of life since cutoff as
// FAILED_REGISTRATION with a status_message saying why, then removes its
// partial files. It returns the versions it failed (name, version, status
// and message set).
//
// The version keeps its number and stays visible, as a failed registration
// does in MLflow: the client that asked for it saw its request fail with
// the server, and the version tells it why; its number is not handed out
// again. Callers pass now minus PendingStaleAfter; a cutoff later than
// that may fail a registration that is still copying.
func (s *Service) RecoverPending(ctx context.Context, cutoff time.Time) ([]ModelVersion, error) {
	type stale struct {
		id      int64
		deleted bool
		failed  bool
		v       ModelVersion
	}
	var found []stale
	// Read first, on the read pool: this runs every minute, and nearly
	// always finds nothing, so it must not hold SQLite's one writer. The
	// status is a literal so that the partial index model_versions_pending
	// applies.
	err := s.db.EachRow(ctx, `SELECT mv.model_id, rm.name, mv.version, mv.current_stage FROM model_versions mv
		JOIN registered_models rm ON rm.model_id = mv.model_id
		WHERE mv.status = '`+StatusPending+`' AND mv.last_updated_time < ? ORDER BY mv.model_id, mv.version`, []any{cutoff.UnixMilli()},
		func(rows *sql.Rows) error {
			var f stale
			var stage string
			err := rows.Scan(&f.id, &f.v.Name, &f.v.Version, &stage)
			f.deleted = stage == stageDeleted
			found = append(found, f)
			return err
		})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	ctx = auth.WithPrincipal(ctx, auth.Principal{Username: RecoveryActor})
	err = s.db.Batch(ctx, func(tx *sql.Tx) error {
		now := s.nowMillis()
		for i := range found {
			f := &found[i]
			f.failed = false
			// A deleted version's row is redacted; it gets no message.
			var msg any
			if !f.deleted {
				msg = abandonedMessage
			}
			// Repeating the conditions lets a registration that finished,
			// or sent a heartbeat, since the read win over its recovery.
			res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET status = ?, status_message = ?, last_updated_time = ?
				WHERE model_id = ? AND version = ? AND status = ? AND last_updated_time < ?`),
				StatusFailed, msg, now, f.id, f.v.Version, StatusPending, cutoff.UnixMilli())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue
			}
			f.failed = true
			if err := s.record(ctx, tx, "model_version.recover_pending", audit.ModelVersion(f.v.Name, f.v.Version),
				map[string]any{"status": StatusPending}, map[string]any{"status": StatusFailed, "status_message": msg}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []ModelVersion
	for _, f := range found {
		if !f.failed {
			continue
		}
		s.removeFiles(ctx, versionDir(f.id, f.v.Version))
		if !f.deleted {
			f.v.Status, f.v.StatusMessage = StatusFailed, abandonedMessage
			out = append(out, f.v)
		}
	}
	return out, nil
}

// keepAlive touches a PENDING version's last_updated_time every
// PendingHeartbeat until the returned function is called, so that
// RecoverPending, in this process or another sharing the database, leaves
// the registration alone while its files are being copied.
func (s *Service) keepAlive(ctx context.Context, modelID, version int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(PendingHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := s.db.Batch(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET last_updated_time = ? WHERE model_id = ? AND version = ? AND status = ?`),
					s.nowMillis(), modelID, version, StatusPending)
				return err
			})
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("registry: could not mark a registration in progress as alive", "model_id", modelID, "version", version, "err", err)
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
