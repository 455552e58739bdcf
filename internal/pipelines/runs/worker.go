package runs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

func (s *Service) maxRuns() int {
	if s.MaxRuns > 0 {
		return s.MaxRuns
	}
	return 2
}

func (s *Service) staleAfter() time.Duration {
	if s.StaleAfter > 0 {
		return s.StaleAfter
	}
	return 30 * time.Second
}

// errShutdown ends runs when the server stops: they are recorded as
// cancelled and can be resumed.
var errShutdown = errors.New("the server shut down")

// Work runs queued runs until ctx ends, up to MaxRuns at once, keeps a
// heartbeat on the ones it runs, acts on cancellations requested through
// any server, and marks runs whose server died as failed. When ctx ends,
// running steps are ended and Work returns once every run is recorded.
func (s *Service) Work(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	beat := s.staleAfter() / 6
	tick := time.NewTicker(min(beat, time.Second))
	defer tick.Stop()
	lastBeat := time.Time{}
	for {
		if time.Since(lastBeat) >= beat {
			s.heartbeat(ctx)
			s.recoverStale(ctx)
			lastBeat = time.Now()
		}
		s.claim(ctx, &wg)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, cancel := range s.active {
				cancel(errShutdown)
			}
			s.mu.Unlock()
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// claim takes queued runs, oldest first, while there is room, and starts
// each on its own goroutine. The conditional update is the claim: on a
// shared database only one server wins a run.
func (s *Service) claim(ctx context.Context, wg *sync.WaitGroup) {
	s.mu.Lock()
	free := s.maxRuns() - len(s.active)
	s.mu.Unlock()
	if free <= 0 || ctx.Err() != nil {
		return
	}
	var ids []string
	err := s.db.EachRow(ctx, `SELECT run_id FROM pipeline_runs WHERE status = ? ORDER BY created_time, number LIMIT ?`,
		[]any{Queued, free}, func(rows *sql.Rows) error {
			var id string
			ids = append(ids, id)
			return rows.Scan(&ids[len(ids)-1])
		})
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("reading queued pipeline runs", "err", err)
		}
		return
	}
	for _, id := range ids {
		runCtx, cancel := context.WithCancelCause(ctx)
		s.mu.Lock()
		s.active[id] = cancel
		s.mu.Unlock()
		now := s.nowMillis()
		var won int64
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET status = ?, owner = ?, heartbeat = ?, start_time = ?
				WHERE run_id = ? AND status = ?`), Running, s.owner, now, now, id, Queued)
			if err != nil {
				return err
			}
			won, _ = res.RowsAffected()
			return nil
		})
		if err != nil || won == 0 {
			s.forget(id)
			cancel(nil)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("claiming pipeline run", "run", id, "err", err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.forget(id)
			defer cancel(nil)
			s.execute(runCtx, id)
		}()
	}
}

func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.active, id)
	s.mu.Unlock()
}

// heartbeat tells other servers this one's runs are alive, and picks up
// cancellations requested through them.
func (s *Service) heartbeat(ctx context.Context) {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET heartbeat = ? WHERE owner = ? AND status = ?`),
			s.nowMillis(), s.owner, Running)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("pipeline run heartbeat", "err", err)
		}
		return
	}
	var cancelled []string
	s.db.EachRow(ctx, `SELECT run_id FROM pipeline_runs WHERE owner = ? AND status = ? AND cancel_requested = 1`,
		[]any{s.owner, Running}, func(rows *sql.Rows) error {
			var id string
			err := rows.Scan(&id)
			cancelled = append(cancelled, id)
			return err
		})
	for _, id := range cancelled {
		s.cancelLocal(id, errCancelled)
	}
}

// recoverStale marks as failed the runs whose server is gone: a process
// on this machine that no longer exists, or a heartbeat older than
// StaleAfter. Their steps' tracking runs end FAILED too, so nothing shows
// as running forever.
func (s *Service) recoverStale(ctx context.Context) {
	host, _ := os.Hostname()
	type stale struct {
		id, owner string
		beat      int64
	}
	var found []stale
	cutoff := s.nowMillis() - s.staleAfter().Milliseconds()
	err := s.db.EachRow(ctx, `SELECT run_id, owner, heartbeat FROM pipeline_runs WHERE status = ?`, []any{Running},
		func(rows *sql.Rows) error {
			var st stale
			if err := rows.Scan(&st.id, &st.owner, &st.beat); err != nil {
				return err
			}
			if st.owner == s.owner {
				return nil
			}
			if st.beat < cutoff || !processAlive(st.owner, host) {
				found = append(found, st)
			}
			return nil
		})
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("looking for abandoned pipeline runs", "err", err)
		}
		return
	}
	for _, st := range found {
		msg := fmt.Sprintf("the server running it (%s) stopped; resume it with `slipway pipeline resume %s`", st.owner, st.id)
		var n int64
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			now := s.nowMillis()
			res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_runs SET status = ?, error = ?, end_time = ?
				WHERE run_id = ? AND status = ? AND owner = ? AND heartbeat = ?`), Failed, msg, now, st.id, Running, st.owner, st.beat)
			if err != nil {
				return err
			}
			if n, _ = res.RowsAffected(); n == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_run_steps SET status = ?, end_time = ? WHERE run_id = ? AND status = ?`),
				Failed, now, st.id, StepRunning); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_run_steps SET status = ? WHERE run_id = ? AND status = ?`),
				Cancelled, st.id, StepPending)
			return err
		})
		if err != nil {
			s.Log.Warn("marking abandoned pipeline run failed", "run", st.id, "err", err)
			continue
		}
		if n == 0 {
			continue
		}
		s.Log.Warn("pipeline run abandoned by a stopped server marked failed", "run", st.id, "owner", st.owner)
		if run, err := s.GetRun(ctx, st.id); err == nil {
			s.endTracking(ctx, run, "FAILED")
		}
	}
}
