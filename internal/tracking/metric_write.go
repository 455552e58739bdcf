package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
)

// How much of a run waits in metric_batches before it is compacted into
// segments. Reads take all of a run's batches, so this bounds their cost;
// compacting sooner makes smaller segments and more pages to write.
const (
	compactBatches = 128
	compactPoints  = 20_000
)

// metricWrite is a log-batch's metrics made ready to write before the
// batch reaches the single writer, so that the writer only runs SQL.
type metricWrite struct {
	points int
	batch  []byte // encodeBatch of the metrics by key
	latest []any  // latest_metrics rows: the newest point of each key
}

func prepareMetrics(runID string, metrics []Metric) metricWrite {
	if len(metrics) == 0 {
		return metricWrite{}
	}
	latest := make(map[string]Metric, 8)
	for _, m := range metrics {
		if cur, ok := latest[m.Key]; !ok || newer(m, cur) {
			latest[m.Key] = m
		}
	}
	w := metricWrite{latest: make([]any, 0, 6*len(latest))}
	for _, m := range latest {
		v, isNaN := storedValue(m.Value)
		w.latest = append(w.latest, runID, m.Key, m.Step, m.Timestamp, v, isNaN)
	}
	keys := byKey(metrics)
	for _, k := range keys {
		w.points += len(k.points)
	}
	w.batch = encodeBatch(keys)
	return w
}

// insertMetrics writes a batch of runID's metrics, compacts the run's
// batches when they hold enough, and moves each key's latest point
// forward.
func (s *Service) insertMetrics(ctx context.Context, tx *sql.Tx, runID string, w metricWrite) error {
	if w.points == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.db.Q(s.db.InsertInto("metric_batches")+` (run_uuid, points, data) VALUES (?, ?, ?)`), runID, w.points, w.batch); err != nil {
		return err
	}
	var batches, points int
	if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*), COALESCE(SUM(points), 0) FROM metric_batches WHERE run_uuid = ?`), runID).Scan(&batches, &points); err != nil {
		return err
	}
	if batches >= compactBatches || points >= compactPoints {
		if err := s.compactBatches(ctx, tx, runID); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, s.db.Q(s.db.InsertInto("latest_metrics")+` (run_uuid, key, step, timestamp, value, is_nan)
		VALUES `+tuples(len(w.latest)/6, 6)+`
		ON CONFLICT (run_uuid, key) DO UPDATE SET
			step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan
		WHERE (excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)`), w.latest...)
	return err
}

// compactBatches moves the points of runID's batches into segments, one
// set a key, and deletes the batches, in tx. The batches are deleted by
// the ids read, not by a bound: on PostgreSQL a batch with a lower id may
// commit after the read.
func (s *Service) compactBatches(ctx context.Context, tx *sql.Tx, runID string) error {
	var ids []any
	var keys []keyPoints
	index := map[string]int{}
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT id, data FROM metric_batches WHERE run_uuid = ?`), runID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
		err := eachBatchKey(data, func(k, body []byte) error {
			i, ok := index[string(k)]
			if !ok {
				i = len(keys)
				index[string(k)] = i
				keys = append(keys, keyPoints{key: string(k)})
			}
			var err error
			keys[i].points, err = decodePoints(body, keys[i].points)
			return err
		})
		if err != nil {
			rows.Close()
			return fmt.Errorf("tracking: compact run %s: %w", runID, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range keys {
		keys[i].points = sortedUnique(keys[i].points)
	}
	if err := s.insertSegments(ctx, tx, runID, cutSegments(keys)); err != nil {
		return err
	}
	for len(ids) > 0 {
		part := ids[:min(len(ids), segmentsPerStatement)]
		ids = ids[len(part):]
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM metric_batches WHERE id IN (`+placeholders(len(part))+`)`), part...); err != nil {
			return err
		}
	}
	return nil
}

// moveMetricRows moves the points of the metrics table, where servers
// before migration 0014 wrote them, into segments, in transactions of
// moveRowsPerTx rows; a crash part way leaves every point in one table or
// the other, and the next start goes on. Two servers starting at once on
// one PostgreSQL database may both move the same rows: readers drop the
// repeated points.
func (s *Service) moveMetricRows(ctx context.Context) error {
	total := 0
	for {
		moved := 0
		err := s.db.Batch(ctx, func(tx *sql.Tx) error {
			var err error
			moved, err = s.moveSomeMetricRows(ctx, tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("tracking: move metric rows into segments: %w", err)
		}
		if moved == 0 {
			if total > 0 {
				slog.Info("moved metric points into segments", "points", total)
			}
			return nil
		}
		if total == 0 {
			// A large database takes a while: say why the start is slow.
			slog.Info("moving metric points written by an earlier version into segments")
		}
		total += moved
	}
}

const moveRowsPerTx = 50_000

func (s *Service) moveSomeMetricRows(ctx context.Context, tx *sql.Tx) (int, error) {
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics
		ORDER BY run_uuid, key, step, timestamp, value, is_nan LIMIT ?`), moveRowsPerTx)
	if err != nil {
		return 0, err
	}
	type series struct {
		run string
		seg keyPoints
	}
	var all []series
	var last struct {
		run, key        string
		step, timestamp int64
		value           float64
		isNaN           int
	}
	n := 0
	for rows.Next() {
		r := &last
		if err := rows.Scan(&r.run, &r.key, &r.step, &r.timestamp, &r.value, &r.isNaN); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if k := len(all); k == 0 || all[k-1].run != r.run || all[k-1].seg.key != r.key || len(all[k-1].seg.points) == maxSegmentPoints {
			all = append(all, series{run: r.run, seg: keyPoints{key: r.key}})
		}
		cur := &all[len(all)-1].seg
		cur.points = append(cur.points, point{step: r.step, timestamp: r.timestamp, value: loadedValue(r.value, r.isNaN)})
	}
	rows.Close()
	if err := rows.Err(); err != nil || n == 0 {
		return 0, err
	}
	// One insert per run: the series come grouped by run.
	for start := 0; start < len(all); {
		run := all[start].run
		var segs []keyPoints
		for ; start < len(all) && all[start].run == run; start++ {
			segs = append(segs, keyPoints{key: all[start].seg.key, points: sortedUnique(all[start].seg.points)})
		}
		if err := s.insertSegments(ctx, tx, run, segs); err != nil {
			return 0, err
		}
	}
	// The rows read are a prefix of the primary key's order.
	_, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM metrics WHERE (run_uuid, key, step, timestamp, value, is_nan) <= (?, ?, ?, ?, ?, ?)`),
		last.run, last.key, last.step, last.timestamp, last.value, last.isNaN)
	return n, err
}
