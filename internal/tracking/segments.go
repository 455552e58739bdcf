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

// A metric's points are stored in binary, never a row a point: a B-tree
// insert of a 70-byte row per point was most of a log-batch's cost.
//
// Each write's points for a run go into one row of metric_batches (all of
// its keys; see metric_write.go), so a 500-point log-batch dirties a page
// or two instead of one page per key. When a run's batches hold enough
// points they are compacted, in the writing transaction, into
// metric_segments: a row per key, sorted by step, which is what reading a
// history wants. A read takes the run's batches first and then the key's
// segments, so a compaction committing in between shows points twice,
// never not at all.
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
	// segmentFormat is the first byte of every segment and batch, so that a
	// later encoding can be told apart from this one.
	segmentFormat = 1
	// maxSegmentPoints bounds one segment, so that merging overlapping
	// segments holds little.
	maxSegmentPoints = 4096
	// segmentsPerStatement keeps a multi-row insert (7 values a row) under
	// both databases' parameter limits.
	segmentsPerStatement = 500
)

// appendPoints encodes sorted points: for each, its step and timestamp as
// zig-zag varints of the difference from the point before (from 0 for the
// first) and its value's 8 bytes, little-endian. Steps usually go up by one
// and a batch's timestamps are close, so a point takes about 10 bytes
// instead of 24: every byte less is a byte less for the write-ahead log.
func appendPoints(b []byte, ps []point) []byte {
	var step, ts int64
	for _, p := range ps {
		b = binary.AppendVarint(b, p.step-step)
		b = binary.AppendVarint(b, p.timestamp-ts)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.value))
		step, ts = p.step, p.timestamp
	}
	return b
}

// decodePoints appends the points appendPoints encoded in b to into.
func decodePoints(b []byte, into []point) ([]point, error) {
	var step, ts int64
	for len(b) > 0 {
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

// A segment is the format byte and one key's points.
func encodeSegment(ps []point) []byte {
	return appendPoints(append(make([]byte, 0, 1+12*len(ps)), segmentFormat), ps)
}

func decodeSegment(data []byte, into []point) ([]point, error) {
	if len(data) == 0 || data[0] != segmentFormat {
		return into, errSegmentFormat(len(data))
	}
	return decodePoints(data[1:], into)
}

// A batch is the format byte and, for each key, the key's length and bytes
// and its encoded points' length and bytes, so a reader skips other keys
// without decoding them.
func encodeBatch(keys []keyPoints) []byte {
	size := 1
	for _, k := range keys {
		size += 2*binary.MaxVarintLen32 + len(k.key) + 12*len(k.points)
	}
	b := append(make([]byte, 0, size), segmentFormat)
	var body []byte
	for _, k := range keys {
		body = appendPoints(body[:0], k.points)
		b = binary.AppendUvarint(b, uint64(len(k.key)))
		b = append(b, k.key...)
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	return b
}

// eachBatchKey calls fn with each key of a batch and its encoded points.
func eachBatchKey(data []byte, fn func(key, body []byte) error) error {
	if len(data) == 0 || data[0] != segmentFormat {
		return errSegmentFormat(len(data))
	}
	for b := data[1:]; len(b) > 0; {
		var parts [2][]byte
		for i := range parts {
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return errCorruptSegment
			}
			parts[i], b = b[k:k+int(n)], b[k+int(n):]
		}
		if err := fn(parts[0], parts[1]); err != nil {
			return err
		}
	}
	return nil
}

var errCorruptSegment = errors.New("tracking: metric segment is cut short")

func errSegmentFormat(size int) error {
	return fmt.Errorf("tracking: metric segment of %d bytes is not in format %d", size, segmentFormat)
}

// sortedUnique sorts ps in history order and drops repeated points.
func sortedUnique(ps []point) []point {
	if !slices.IsSortedFunc(ps, comparePoints) {
		slices.SortFunc(ps, comparePoints)
	}
	return slices.CompactFunc(ps, samePoint)
}

// keyPoints is one key's points, sorted and unique.
type keyPoints struct {
	key    string
	points []point
}

// byKey groups metrics by key, in the order keys first appear, each key's
// points sorted and unique.
func byKey(metrics []Metric) []keyPoints {
	index := make(map[string]int, 8)
	var out []keyPoints
	for _, m := range metrics {
		i, ok := index[m.Key]
		if !ok {
			i = len(out)
			index[m.Key] = i
			out = append(out, keyPoints{key: m.Key})
		}
		v := m.Value
		if math.IsNaN(v) {
			v = math.NaN() // one NaN, whatever the payload
		}
		out[i].points = append(out[i].points, point{step: m.Step, timestamp: m.Timestamp, value: v})
	}
	for i := range out {
		out[i].points = sortedUnique(out[i].points)
	}
	return out
}

// cutSegments cuts each key's points into segments of at most
// maxSegmentPoints.
func cutSegments(keys []keyPoints) []keyPoints {
	var out []keyPoints
	for _, k := range keys {
		for ps := k.points; len(ps) > 0; {
			n := min(len(ps), maxSegmentPoints)
			out = append(out, keyPoints{key: k.key, points: ps[:n]})
			ps = ps[n:]
		}
	}
	return out
}

// insertSegments writes segments of runID's metrics.
func (s *Service) insertSegments(ctx context.Context, tx *sql.Tx, runID string, rows []keyPoints) error {
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
var errStopHistory = errors.New("tracking: history read stopped")

// eachPoint calls fn for every point of runID's metric key whose step is in
// steps, in history order, each point once. It holds the run's batches'
// points of key and no more than the points of segments that overlap in
// steps: segments come in the order of their first steps, so a point
// before the next segment's first step can be handed out. fn returning
// errStopHistory ends the read with no error.
func (s *Service) eachPoint(ctx context.Context, runID, key string, steps stepRange, fn func(point) error) error {
	recent, err := s.batchedPoints(ctx, runID, key)
	if err != nil {
		return err
	}
	var m historyMerge
	n := 0
	m.fn = func(p point) error {
		if p.step < steps.lo || p.step > steps.hi {
			return nil
		}
		// A segment holds up to thousands of points, so the driver's check
		// of ctx between rows is not enough for a client that has gone.
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return fn(p)
	}
	var seg []point
	err = s.db.EachRow(ctx, `SELECT data FROM metric_segments WHERE run_uuid = ? AND key = ? AND first_step <= ? AND last_step >= ? ORDER BY first_step`,
		[]any{runID, key, steps.hi, steps.lo}, func(rows *sql.Rows) error {
			var data sql.RawBytes
			if err := rows.Scan(&data); err != nil {
				return err
			}
			var err error
			if seg, err = decodeSegment(data, seg[:0]); err != nil {
				return err
			}
			// The batches' points are one more segment, taken in its turn.
			if len(recent) > 0 && recent[0].step <= seg[0].step {
				if err := m.add(recent); err != nil {
					return err
				}
				recent = nil
			}
			return m.add(seg)
		})
	if err == nil && len(recent) > 0 {
		err = m.add(recent)
	}
	if err == nil {
		err = m.finish()
	}
	if err == errStopHistory {
		return nil
	}
	return err
}

// batchedPoints returns the points of key in runID's batches not yet
// compacted, sorted and unique.
func (s *Service) batchedPoints(ctx context.Context, runID, key string) ([]point, error) {
	var out []point
	err := s.db.EachRow(ctx, `SELECT data FROM metric_batches WHERE run_uuid = ?`, []any{runID}, func(rows *sql.Rows) error {
		var data sql.RawBytes
		if err := rows.Scan(&data); err != nil {
			return err
		}
		return eachBatchKey(data, func(k, body []byte) error {
			if string(k) != key {
				return nil
			}
			var err error
			out, err = decodePoints(body, out)
			return err
		})
	})
	return sortedUnique(out), err
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
