package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// ErrClosed is returned by Batch after Close has begun.
var ErrClosed = errors.New("store: closed")

// maxGroup bounds how many callers share one commit, so one transaction never
// grows without limit under a flood of writes.
const maxGroup = 256

type job struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// batcher is group commit: writers that arrive while a commit is in flight
// queue up and are committed together next, each inside its own savepoint.
// One fsync then acknowledges many requests, and SQLite sees a single writer.
type batcher struct {
	db      *DB
	jobs    chan job
	mu      sync.RWMutex
	closed  bool
	workers sync.WaitGroup
}

func newBatcher(db *DB) *batcher {
	b := &batcher{db: db, jobs: make(chan job, maxGroup)}
	workers := 1
	if db.Dialect == Postgres {
		// PostgreSQL takes concurrent writers; a few groups in flight hide
		// the network round trips.
		workers = 4
	}
	for range workers {
		b.workers.Add(1)
		go b.run()
	}
	return b
}

func (b *batcher) do(ctx context.Context, fn func(*sql.Tx) error) error {
	j := job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	// Once queued, wait for the outcome even if ctx ends: the write may
	// already be committing, and the caller must not report it as lost.
	return <-j.done
}

func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.jobs)
	}
	b.mu.Unlock()
	b.workers.Wait()
}

func (b *batcher) run() {
	defer b.workers.Done()
	group := make([]job, 0, maxGroup)
	results := make([]error, 0, maxGroup)
	for first := range b.jobs {
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case j, ok := <-b.jobs:
				if !ok {
					break drain
				}
				group = append(group, j)
			default:
				break drain
			}
		}
		results = b.commit(group, results[:0])
		for i, j := range group {
			j.done <- results[i]
		}
	}
}

// commit runs a group in one transaction and returns one result per job.
// It first runs every job straight in the shared transaction, which is the
// common case and costs no savepoints (SQLite copies each page a savepoint
// first touches into a sub-journal). If any job fails, the transaction is
// rolled back and the group run again with each job in its own savepoint,
// so only the failing jobs' writes are undone. Jobs are closures whose only
// effects are inside the transaction, so running one twice is safe.
func (b *batcher) commit(group []job, results []error) []error {
	for range group {
		results = append(results, nil)
	}
	if len(group) > 1 {
		if b.run1(group, results, false) {
			return results
		}
		for i := range results {
			results[i] = nil
		}
	}
	b.run1(group, results, len(group) > 1)
	return results
}

// run1 runs the group in one transaction, with a savepoint per job when
// isolate is set. Without isolation it gives up at the first failure and
// reports false, having rolled back; with it, failing jobs are undone alone
// and the rest committed. results receives each job's outcome.
func (b *batcher) run1(group []job, results []error, isolate bool) bool {
	tx, err := b.db.write.Begin()
	if err != nil {
		for i := range results {
			results[i] = err
		}
		return true
	}
	ran := 0
	for i, j := range group {
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if isolate {
			results[i] = savepoint(tx, j.fn)
		} else {
			results[i] = j.fn(tx)
		}
		if results[i] == nil {
			ran++
		} else if !isolate && len(group) > 1 {
			tx.Rollback()
			return false
		}
	}
	if ran == 0 {
		tx.Rollback()
		return true
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
	}
	return true
}

func savepoint(tx *sql.Tx, fn func(*sql.Tx) error) error {
	if _, err := tx.Exec("SAVEPOINT job"); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if _, rerr := tx.Exec("ROLLBACK TO SAVEPOINT job"); rerr != nil {
			return errors.Join(err, rerr)
		}
		// Released after rollback so the savepoint stack stays flat.
		tx.Exec("RELEASE SAVEPOINT job")
		return err
	}
	_, err := tx.Exec("RELEASE SAVEPOINT job")
	return err
}
