package tracking

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// A metric's points are stored in segments: the points one write logs for
// one (run, key), sorted and without duplicates, encoded in binary in one
// row of metric_segments (migration 0014). Writing a point then costs 24
// bytes of a blob instead of a B-tree insert of a 70-byte row, and a
// history of 100,000 points is read from a few hundred rows.
//
// Segments of one (run, key) may overlap (a client may log step 5 after
// step 10, or the same point twice); readers merge them in history order
// and drop repeated points, which is what MLflow's primary key on
// (run, key, step, timestamp, value, is_nan) makes of them.

// point is one logged point of a metric.
type point struct {
	step, timestamp int64
	value           float64
}

// comparePoints orders points as a history is ordered: by step, then
// timestamp, then value, a NaN after every number of its step and time
// (MLflow stores NaN as 0 with is_nan set, and the stores sort on both).
func comparePoints(a, b point) int {
	if c := cmp.Compare(a.step, b.step); c != 0 {
		return c
	}
	if c := cmp.Compare(a.timestamp, b.timestamp); c != 0 {
		return c
	}
	an, bn := math.IsNaN(a.value), math.IsNaN(b.value)
	if an || bn {
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		default:
			return -1
		}
	}
	return cmp.Compare(a.value, b.value)
}

func samePoint(a, b point) bool { return comparePoints(a, b) == 0 }

const (
	// segmentFormat is the first byte of every segment, so that a later
	// encoding can be told apart from this one.
	segmentFormat = 1
	// maxSegmentPoints bounds one segment; a log-batch holds at most 1,000
	// metrics, and moving old rows into segments cuts them at this size.
	maxSegmentPoints = 1000
	// segmentsPerStatement keeps a multi-row insert (7 values a row) under
	// both databases' parameter limits.
	segmentsPerStatement = 500
)

// encodeSegment writes sorted points as the format byte followed, for each
// point, by its step and timestamp as zig-zag varints of the difference
// from the point before (from 0 for the first) and its value's 8 bytes,
// little-endian. Steps usually go up by one and a batch's timestamps are
// close, so a point takes about 10 bytes instead of 24; every byte less is
// a byte less for the write-ahead log and the B-tree to carry.
func encodeSegment(ps []point) []byte {
	b := make([]byte, 1, 1+12*len(ps))
	b[0] = segmentFormat
	var step, ts int64
	for _, p := range ps {
		b = binary.AppendVarint(b, p.step-step)
		b = binary.AppendVarint(b, p.timestamp-ts)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.value))
		step, ts = p.step, p.timestamp
	}
	return b
}

// decodeSegment appends a segment's points to into.
func decodeSegment(data []byte, into []point) ([]point, error) {
	if len(data) == 0 || data[0] != segmentFormat {
		return into, fmt.Errorf("tracking: metric segment of %d bytes is not in format %d", len(data), segmentFormat)
	}
	var step, ts int64
	for b := data[1:]; len(b) > 0; {
		ds, n := binary.Varint(b)
		if n <= 0 {
			return into, errCorruptSegment
		}
		b = b[n:]
		dt, n := binary.Varint(b)
		if n <= 0 || len(b) < n+8 {
			return into, errCorruptSegment
		}
		step, ts = step+ds, ts+dt
		into = append(into, point{step: step, timestamp: ts, value: math.Float64frombits(binary.LittleEndian.Uint64(b[n:]))})
		b = b[n+8:]
	}
	return into, nil
}

var errCorruptSegment = errors.New("tracking: metric segment is cut short")

// sortedUnique sorts ps in history order and drops repeated points.
func sortedUnique(ps []point) []point {
	if !slices.IsSortedFunc(ps, comparePoints) {
		slices.SortFunc(ps, comparePoints)
	}
	return slices.CompactFunc(ps, samePoint)
}

// segmentRow is one row of metric_segments to insert.
type segmentRow struct {
	key    string
	points []point
}

// segmentsOf groups metrics by key, in the order keys first appear, each
// key's points sorted and unique and cut into segments of at most
// maxSegmentPoints.
func segmentsOf(metrics []Metric) []segmentRow {
	byKey := make(map[string]int, 8)
	var rows []segmentRow
	for _, m := range metrics {
		i, ok := byKey[m.Key]
		if !ok {
			i = len(rows)
			byKey[m.Key] = i
			rows = append(rows, segmentRow{key: m.Key})
		}
		v := m.Value
		if math.IsNaN(v) {
			v = math.NaN() // one NaN, whatever the payload
		}
		rows[i].points = append(rows[i].points, point{step: m.Step, timestamp: m.Timestamp, value: v})
	}
	out := rows[:0:0]
	for _, r := range rows {
		ps := sortedUnique(r.points)
		for len(ps) > 0 {
			n := min(len(ps), maxSegmentPoints)
			out = append(out, segmentRow{key: r.key, points: ps[:n]})
			ps = ps[n:]
		}
	}
	return out
}

// insertSegments writes segments of runID's metrics.
func (s *Service) insertSegments(ctx context.Context, tx *sql.Tx, runID string, rows []segmentRow) error {
	args := make([]any, 0, 7*min(len(rows), segmentsPerStatement))
	for start := 0; start < len(rows); start += segmentsPerStatement {
		part := rows[start:min(start+segmentsPerStatement, len(rows))]
		args = args[:0]
		for _, r := range part {
			ps := r.points
			// The id only tells apart segments that start at the same step;
			// a random one needs no coordination between writers.
			args = append(args, runID, r.key, ps[0].step, rand.Int64(), ps[len(ps)-1].step, len(ps), encodeSegment(ps))
		}
		_, err := tx.ExecContext(ctx, s.db.Q(s.db.InsertInto("metric_segments")+` (run_uuid, key, first_step, id, last_step, points, data) VALUES `+tuples(len(part), 7)), args...)
		if err != nil {
			return err
		}
	}
	return nil
}

// stepRange bounds the steps a history read returns, inclusive.
type stepRange struct{ lo, hi int64 }

var allSteps = stepRange{math.MinInt64, math.MaxInt64}

// errStopHistory ends a history read early without an error.
var errStopHistory = fmt.Errorf("tracking: history read stopped")

// eachPoint calls fn for every point of runID's metric key whose step is in
// steps, in history order, each point once. It holds no more than the
// points of segments that overlap in steps: segments come in the order of
// their first steps, so a point before the next segment's first step can
// be handed out. fn returning errStopHistory ends the read with no error.
func (s *Service) eachPoint(ctx context.Context, runID, key string, steps stepRange, fn func(point) error) error {
	var m historyMerge
	n := 0
	m.fn = func(p point) error {
		if p.step < steps.lo || p.step > steps.hi {
			return nil
		}
		// A segment holds up to a thousand points, so the driver's check
		// of ctx between rows is not enough for a client that has gone.
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return fn(p)
	}
	var seg []point
	err := s.db.EachRow(ctx, `SELECT data FROM metric_segments WHERE run_uuid = ? AND key = ? AND first_step <= ? AND last_step >= ? ORDER BY first_step`,
		[]any{runID, key, steps.hi, steps.lo}, func(rows *sql.Rows) error {
			var data sql.RawBytes
			if err := rows.Scan(&data); err != nil {
				return err
			}
			var err error
			if seg, err = decodeSegment(data, seg[:0]); err != nil {
				return err
			}
			return m.add(seg)
		})
	if err == nil {
		err = m.finish()
	}
	if err == errStopHistory {
		return nil
	}
	return err
}

// historyMerge merges sorted segments that arrive in the order of their
// first steps into one sorted stream without repeated points.
type historyMerge struct {
	pending []point // sorted; not yet handed out
	last    point
	started bool
	fn      func(point) error
}

// add takes a sorted, non-empty segment. Nothing that comes after it can
// hold a step below its first, so the pending points before that step are
// final.
func (m *historyMerge) add(seg []point) error {
	if err := m.emitBefore(seg[0].step); err != nil {
		return err
	}
	if n := len(m.pending); n == 0 || comparePoints(m.pending[n-1], seg[0]) <= 0 {
		m.pending = append(m.pending, seg...)
		return nil
	}
	merged := make([]point, 0, len(m.pending)+len(seg))
	a, b := m.pending, seg
	for len(a) > 0 && len(b) > 0 {
		if comparePoints(b[0], a[0]) < 0 {
			merged, b = append(merged, b[0]), b[1:]
		} else {
			merged, a = append(merged, a[0]), a[1:]
		}
	}
	merged = append(append(merged, a...), b...)
	m.pending = merged
	return nil
}

func (m *historyMerge) emitBefore(step int64) error {
	i := 0
	for i < len(m.pending) && m.pending[i].step < step {
		if err := m.emit(m.pending[i]); err != nil {
			return err
		}
		i++
	}
	m.pending = m.pending[:copy(m.pending, m.pending[i:])]
	return nil
}

func (m *historyMerge) finish() error {
	for _, p := range m.pending {
		if err := m.emit(p); err != nil {
			return err
		}
	}
	m.pending = m.pending[:0]
	return nil
}

func (m *historyMerge) emit(p point) error {
	if m.started && samePoint(m.last, p) {
		return nil
	}
	m.last, m.started = p, true
	return m.fn(p)
}

// history returns every point of runID's metric key in steps, in history
// order.
func (s *Service) history(ctx context.Context, runID, key string, steps stepRange) ([]point, error) {
	var out []point
	err := s.eachPoint(ctx, runID, key, steps, func(p point) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// moveMetricRows moves the points of the metrics table, where servers
// before migration 0014 wrote them, into segments, in transactions of
// moveRowsPerTx rows; a crash part way leaves every point in one table or
// the other, and the next start goes on. Two servers starting at once on
// one PostgreSQL database may both move the same rows: readers drop the
// repeated points.
func (s *Service) moveMetricRows(ctx context.Context) error {
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
			return nil
		}
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
		seg segmentRow
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
			all = append(all, series{run: r.run, seg: segmentRow{key: r.key}})
		}
		cur := &all[len(all)-1].seg
		cur.points = append(cur.points, point{step: r.step, timestamp: r.timestamp, value: loadedValue(r.value, r.isNaN)})
	}
	rows.Close()
	if err := rows.Err(); err != nil || n == 0 {
		return 0, err
	}
	for _, sr := range all {
		sr.seg.points = sortedUnique(sr.seg.points)
		if err := s.insertSegments(ctx, tx, sr.run, []segmentRow{sr.seg}); err != nil {
			return 0, err
		}
	}
	// The rows read are a prefix of the primary key's order.
	_, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM metrics WHERE (run_uuid, key, step, timestamp, value, is_nan) <= (?, ?, ?, ?, ?, ?)`),
		last.run, last.key, last.step, last.timestamp, last.value, last.isNaN)
	return n, err
}
