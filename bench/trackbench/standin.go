package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The physical-limit stand-in: the same points written straight into the
// same metrics table, by one writer, one transaction per batch, one prepared
// single-row INSERT executed once per point. No HTTP, no JSON, no
// validation, no run check, no latest_metrics upkeep, no group commit: what
// is left is what the database and its driver cost.

// sqlitePragmas must stay equal to the writer's in internal/store/store.go
// openSQLite (store does not export them). Record changes to them in
// docs/benchmarks.md: they move the stand-in as much as Slipway.
const sqlitePragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(FULL)&_pragma=case_sensitive_like(1)&_pragma=temp_store(MEMORY)&_txlock=immediate" +
	"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)"

const insertMetric = `INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES (?, ?, ?, ?, ?, ?)`

// StandinRep is one repetition of a stand-in.
type StandinRep struct {
	Name         string  `json:"name"`
	Latency      Latency `json:"batch_latency"` // one transaction of one batch
	WallSeconds  float64 `json:"wall_seconds"`
	Points       int64   `json:"points"`
	PointsPerSec float64 `json:"points_per_second"`
	Rows         int64   `json:"rows_counted"`
	OK           bool    `json:"ok"`
}

// standinRunIDs are run ids shaped like Slipway's (32 hex characters).
func standinRunIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = randHex(16)
	}
	return ids
}

// writeOrder calls fn for every batch in the order concurrent clients would
// roughly deliver them: batch 0 of every client, then batch 1, ...
func (w workload) writeOrder(fn func(c, b int) error) error {
	for b := range w.Batches {
		for c := range w.Clients {
			if err := fn(c, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func runStandinSQLite(ctx context.Context, be *backend, w workload, rep int) (StandinRep, error) {
	out := StandinRep{Name: "sqlite raw insert"}
	d, err := be.freshSQLite(fmt.Sprintf("standin-sqlite-%d", rep))
	if err != nil {
		return out, err
	}
	if err := d.createSchema(ctx); err != nil {
		return out, err
	}
	db, err := sql.Open("sqlite", "file:"+d.DSN+sqlitePragmas)
	if err != nil {
		return out, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, insertMetric)
	if err != nil {
		return out, err
	}
	defer stmt.Close()
	runs := standinRunIDs(w.Clients)
	pts := make([]point, 0, w.BatchSize)
	lat := make([]time.Duration, 0, w.Clients*w.Batches)
	t0 := time.Now()
	err = w.writeOrder(func(c, b int) error {
		pts = w.batch(pts, c, b)
		start := time.Now()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		for _, p := range pts {
			if _, err := stmt.ExecContext(ctx, runs[c], p.Key, p.Step, p.Timestamp, p.Value, 0); err != nil {
				conn.ExecContext(ctx, "ROLLBACK")
				return err
			}
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
		return nil
	})
	wall := time.Since(t0)
	if err != nil {
		return out, err
	}
	out.Latency = summarize(lat)
	out.WallSeconds = wall.Seconds()
	out.Points = w.totalPoints()
	out.PointsPerSec = float64(out.Points) / wall.Seconds()
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM metrics`).Scan(&out.Rows); err != nil {
		return out, err
	}
	out.OK = out.Rows == out.Points
	return out, nil
}

// runStandinPostgres writes the same points with pgx directly. mode "insert"
// queues the prepared single-row INSERT once per point and sends the batch's
// statements in one pipelined round trip (without pipelining, 500 loopback
// round trips per batch would measure the network, not the database); mode
// "copy" uses COPY FROM, PostgreSQL's bulk-load path, as an upper bound.
func runStandinPostgres(ctx context.Context, be *backend, w workload, rep int, mode string) (StandinRep, error) {
	out := StandinRep{Name: "postgres raw insert (prepared, pipelined)"}
	if mode == "copy" {
		out.Name = "postgres COPY"
	}
	d, err := be.fresh(ctx, fmt.Sprintf("standin-pg-%s-%d", mode, rep))
	if err != nil {
		return out, err
	}
	if err := d.createSchema(ctx); err != nil {
		return out, err
	}
	conn, err := pgx.Connect(ctx, d.DSN)
	if err != nil {
		return out, err
	}
	defer conn.Close(context.Background())
	q := `INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ($1, $2, $3, $4, $5, $6)`
	cols := []string{"run_uuid", "key", "step", "timestamp", "value", "is_nan"}
	runs := standinRunIDs(w.Clients)
	pts := make([]point, 0, w.BatchSize)
	rows := make([][]any, 0, w.BatchSize)
	lat := make([]time.Duration, 0, w.Clients*w.Batches)
	t0 := time.Now()
	err = w.writeOrder(func(c, b int) error {
		pts = w.batch(pts, c, b)
		start := time.Now()
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if mode == "copy" {
			rows = rows[:0]
			for _, p := range pts {
				rows = append(rows, []any{runs[c], p.Key, p.Step, p.Timestamp, p.Value, int32(0)})
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"metrics"}, cols, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		} else {
			batch := &pgx.Batch{}
			for _, p := range pts {
				batch.Queue(q, runs[c], p.Key, p.Step, p.Timestamp, p.Value, int32(0))
			}
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
		return nil
	})
	wall := time.Since(t0)
	if err != nil {
		return out, err
	}
	out.Latency = summarize(lat)
	out.WallSeconds = wall.Seconds()
	out.Points = w.totalPoints()
	out.PointsPerSec = float64(out.Points) / wall.Seconds()
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM metrics`).Scan(&out.Rows); err != nil {
		return out, err
	}
	out.OK = out.Rows == out.Points
	return out, nil
}
