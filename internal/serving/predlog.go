package serving

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
)

// PredictionInfo is what the log knows of an answered request besides its
// values.
type PredictionInfo struct {
	RequestID  string `json:"request_id"`
	Deployment string `json:"deployment"`
	ModelName  string `json:"model_name"`
	Version    int64  `json:"model_version"`
	Shadow     bool   `json:"shadow,omitempty"`
	Time       int64  `json:"time_ms"`
	LatencyUS  int64  `json:"latency_us"`
	Rows       int    `json:"rows"`
}

// Prediction is one answered request as it is queued for the log.
type Prediction struct {
	PredictionInfo
	Inputs  []float32 // row-major, the model's features
	Outputs []float32 // row-major, the model's outputs

	values []float32 // backs Inputs and Outputs of a pooled prediction
	shared bool      // a shadow scores Inputs: not to be recycled
}

// predictions recycles the predictions Observe queues once the writer has
// encoded them: a busy server queues tens of thousands a second, and each
// would otherwise be garbage within a linger, paid for in GC cycles.
var predictions = sync.Pool{New: func() any { return new(Prediction) }}

// maxPooledValues bounds the buffer a recycled prediction keeps, so that
// one large batch does not pin its memory in the pool.
const maxPooledValues = 4096

// newPrediction returns a prediction holding copies of x and y: the
// caller's buffers are reused.
func newPrediction(info PredictionInfo, x, y []float32) *Prediction {
	p := predictions.Get().(*Prediction)
	p.PredictionInfo, p.shared = info, false
	p.values = append(append(p.values[:0], x...), y...)
	p.Inputs, p.Outputs = p.values[:len(x):len(x)], p.values[len(x):]
	return p
}

// recycle gives p back once nothing reads it any more.
func (p *Prediction) recycle() {
	if p.shared || cap(p.values) > maxPooledValues {
		return
	}
	p.Inputs, p.Outputs = nil, nil
	predictions.Put(p)
}

// recycleAll gives back a written group, which the queue had handed over.
func recycleAll(batch []*Prediction) {
	for i, p := range batch {
		p.recycle()
		batch[i] = nil
	}
}

// Prediction log defaults: a queue that absorbs a few seconds of bursts
// at 20,000 requests/s, groups that keep a commit cheap, a linger that
// lets a group fill, and a month of history.
const (
	DefaultLogQueue     = 65536
	DefaultLogGroup     = 2000
	DefaultLogLinger    = 100 * time.Millisecond
	DefaultLogRetention = 30 * 24 * time.Hour
)

// PredictionLog records predictions asynchronously: Record never blocks
// and never fails a request. What does not fit in the queue is dropped and
// counted, because under overload answering matters more than logging.
type PredictionLog struct {
	s         *Service
	queue     chan *Prediction
	full      chan struct{} // a group is queued: the linger can end
	group     int
	linger    time.Duration
	Retention time.Duration

	logged, dropped, failed, shadowSkipped atomic.Int64
	unchecked                              int    // segment bytes written since the last checkpoint (writer only)
	segment                                []byte // the segment being written (writer only)
}

func newPredictionLog(s *Service) *PredictionLog {
	return &PredictionLog{s: s, queue: make(chan *Prediction, DefaultLogQueue), full: make(chan struct{}, 1), group: DefaultLogGroup,
		linger: DefaultLogLinger, Retention: DefaultLogRetention}
}

// Record queues p, or counts it as dropped when the queue is full. The log
// owns p from then on, and recycles it once written.
func (l *PredictionLog) Record(p *Prediction) {
	select {
	case l.queue <- p:
		// The writer holds the first prediction of the group it is
		// gathering, so a group is complete one short of l.group queued.
		if len(l.queue) >= l.group-1 {
			select {
			case l.full <- struct{}{}:
			default:
			}
		}
	default:
		l.dropped.Add(1)
		p.recycle()
	}
}

// LogStats are the log's counters since start.
type LogStats struct {
	Queued        int   `json:"queued"`
	Logged        int64 `json:"logged"`
	Dropped       int64 `json:"dropped"`
	Failed        int64 `json:"failed"`
	ShadowSkipped int64 `json:"shadow_skipped"`
}

// Stats reports the queue depth and what was logged, dropped (queue full)
// and lost to write errors.
func (l *PredictionLog) Stats() LogStats {
	return LogStats{Queued: len(l.queue), Logged: l.logged.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load(),
		ShadowSkipped: l.shadowSkipped.Load()}
}

// run writes queued predictions in groups until ctx ends, then writes
// what is still queued.
//
// A group waits up to the linger for more predictions once its first one
// arrives. Without it, a writer that keeps up commits every few
// predictions, and each commit's WAL frames and fsync cost more than the
// predictions' own encoding: about 15% of a busy server's CPU. Predictions
// are waiting in memory either way until their group commits; the linger
// only bounds how long.
func (l *PredictionLog) run(ctx context.Context) {
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	l.prune(ctx)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	batch := make([]*Prediction, 0, l.group)
	for {
		select {
		case p := <-l.queue:
			batch = l.gather(ctx, append(batch[:0], p), linger)
			l.write(context.WithoutCancel(ctx), batch)
			recycleAll(batch)
		case <-prune.C:
			l.prune(ctx)
		case <-ctx.Done():
			for {
				batch = batch[:0]
				for len(batch) < l.group && len(l.queue) > 0 {
					batch = append(batch, <-l.queue)
				}
				if len(batch) == 0 {
					return
				}
				l.write(context.WithoutCancel(ctx), batch)
				recycleAll(batch)
			}
		}
	}
}

// gather adds queued predictions to batch once a group is queued, the
// linger has passed, or ctx ends (run then writes the rest). The writer
// sleeps through the linger rather than receiving from the queue: a
// receiver waiting on it would be woken by every request.
func (l *PredictionLog) gather(ctx context.Context, batch []*Prediction, linger *time.Timer) []*Prediction {
	// A signal left from a group already written is dropped before the
	// check, so that one sent after the check is not lost.
	select {
	case <-l.full:
	default:
	}
	if len(batch)+len(l.queue) < l.group {
		linger.Reset(l.linger)
		select {
		case <-linger.C:
		case <-l.full:
			linger.Stop()
		case <-ctx.Done():
			linger.Stop()
		}
	}
	for len(batch) < l.group && len(l.queue) > 0 {
		batch = append(batch, <-l.queue)
	}
	return batch
}

// write stores a group as one segment per deployment.
func (l *PredictionLog) write(ctx context.Context, batch []*Prediction) {
	byDeployment := map[string][]*Prediction{}
	var order []string
	for _, p := range batch {
		if _, ok := byDeployment[p.Deployment]; !ok {
			order = append(order, p.Deployment)
		}
		byDeployment[p.Deployment] = append(byDeployment[p.Deployment], p)
	}
	db := l.s.db
	written := 0
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		written = 0
		for _, d := range order {
			ps := byDeployment[d]
			lo, hi := ps[0].Time, ps[0].Time
			for _, p := range ps {
				lo, hi = min(lo, p.Time), max(hi, p.Time)
			}
			// The driver has copied the bytes once Exec returns, so one
			// buffer serves every segment.
			l.segment = appendSegment(l.segment[:0], ps)
			data := l.segment
			written += len(data)
			if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO prediction_segments (deployment, min_time_ms, max_time_ms, count, data)
				VALUES (?, ?, ?, ?, ?)`), d, lo, hi, len(ps), data); err != nil {
				return err
			}
		}
		return nil
	})
	if cap(l.segment) > 4<<20 {
		l.segment = nil // a group of large batches need not stay in memory
	}
	if err != nil {
		l.failed.Add(int64(len(batch)))
		l.s.Log.Error("writing the prediction log", "predictions", len(batch), "err", err)
		return
	}
	l.logged.Add(int64(len(batch)))
	// Under steady traffic the log is most of what SQLite's write-ahead
	// log receives; copying it back every few MB keeps each checkpoint
	// short, where one at the 40 MB autocheckpoint mark occupies a core
	// long enough to show in request latencies.
	if l.unchecked += written; l.unchecked >= checkpointEvery {
		l.unchecked = 0
		if err := db.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			l.s.Log.Warn("checkpointing after the prediction log", "err", err)
		}
	}
}

// checkpointEvery is how many bytes of segments the log writes between
// checkpoints.
const checkpointEvery = 4 << 20

// appendFloats writes vs as a JSON array; NaN (a missing input) is null.
func appendFloats(b []byte, vs []float32) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		if v != v {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']')
}

func (l *PredictionLog) prune(ctx context.Context) {
	if l.Retention <= 0 {
		return
	}
	cutoff := l.s.Now().Add(-l.Retention).UnixMilli()
	err := l.s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, l.s.db.Q(`DELETE FROM prediction_segments WHERE max_time_ms < ?`), cutoff); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, l.s.db.Q(`DELETE FROM predictions WHERE time_ms < ?`), cutoff); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, l.s.db.Q(`DELETE FROM prediction_feedback WHERE time_ms < ?`), cutoff)
		return err
	})
	if err != nil && ctx.Err() == nil {
		l.s.Log.Warn("pruning the prediction log", "err", err)
	}
}

// Predictions returns a deployment's logged predictions in [from, to)
// (milliseconds), oldest first, with their labels where feedback came.
func (s *Service) Predictions(ctx context.Context, deployment string, from, to int64, limit int) ([]LoggedPrediction, error) {
	if limit <= 0 || limit > 10000 {
		return nil, errs.Invalid("max_results: %d must be between 1 and 10000", limit)
	}
	var out []LoggedPrediction
	var latest int64
	// Segments come in order of their earliest prediction; once limit
	// predictions are in hand, a segment that starts after all of them
	// cannot hold one of the first limit.
	enough := errors.New("enough")
	err := s.db.EachRow(ctx, `SELECT min_time_ms, data FROM prediction_segments
		WHERE deployment = ? AND max_time_ms >= ? AND min_time_ms < ? ORDER BY min_time_ms, id`,
		[]any{deployment, from, to}, func(rows *sql.Rows) error {
			var start int64
			var data []byte
			if err := rows.Scan(&start, &data); err != nil {
				return err
			}
			if len(out) >= limit && start > latest {
				return enough
			}
			r, err := newSegmentReader(data)
			if err != nil {
				return err
			}
			var p Prediction
			for r.next(&p) {
				if p.Time < from || p.Time >= to {
					continue
				}
				p.Deployment = deployment
				out = append(out, LoggedPrediction{PredictionInfo: p.PredictionInfo,
					Inputs: appendFloats(nil, p.Inputs), Outputs: appendFloats(nil, p.Outputs)})
				latest = max(latest, p.Time)
			}
			return r.err
		})
	if err != nil && !errors.Is(err, enough) {
		return nil, errs.Wrap(err, "reading the prediction log")
	}
	legacy, err := s.legacyPredictions(ctx, deployment, from, to, limit)
	if err != nil {
		return nil, err
	}
	out = append(legacy, out...)
	slices.SortStableFunc(out, func(a, b LoggedPrediction) int { return cmp.Compare(a.Time, b.Time) })
	if len(out) > limit {
		out = out[:limit]
	}
	if err := s.attachLabels(ctx, deployment, out); err != nil {
		return nil, errs.Wrap(err, "reading the prediction log's labels")
	}
	return out, nil
}

// legacyPredictions reads the window from the table of one row per
// prediction that earlier versions wrote, until retention empties it.
func (s *Service) legacyPredictions(ctx context.Context, deployment string, from, to int64, limit int) ([]LoggedPrediction, error) {
	var out []LoggedPrediction
	err := s.db.EachRow(ctx, `SELECT request_id, model_name, model_version, shadow, time_ms, latency_us, rows, inputs, outputs
		FROM predictions WHERE deployment = ? AND time_ms >= ? AND time_ms < ? ORDER BY time_ms, id LIMIT ?`,
		[]any{deployment, from, to, limit}, func(rows *sql.Rows) error {
			var p LoggedPrediction
			var shadow int64
			var inputs, outputs string
			if err := rows.Scan(&p.RequestID, &p.ModelName, &p.Version, &shadow, &p.Time, &p.LatencyUS, &p.Rows, &inputs, &outputs); err != nil {
				return err
			}
			p.Deployment, p.Shadow = deployment, shadow != 0
			p.Inputs, p.Outputs = json.RawMessage(inputs), json.RawMessage(outputs)
			out = append(out, p)
			return nil
		})
	if err != nil {
		return nil, errs.Wrap(err, "reading the prediction log")
	}
	return out, nil
}

// attachLabels joins the feedback labels of ps by request id.
func (s *Service) attachLabels(ctx context.Context, deployment string, ps []LoggedPrediction) error {
	byID := map[string][]int{}
	for i, p := range ps {
		byID[p.RequestID] = append(byID[p.RequestID], i)
	}
	ids := make([]any, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	const chunk = 500
	for len(ids) > 0 {
		part := ids[:min(len(ids), chunk)]
		ids = ids[len(part):]
		err := s.db.EachRow(ctx, `SELECT request_id, label FROM prediction_feedback WHERE deployment = ? AND request_id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(part)), ", ")+`)`, append([]any{deployment}, part...), func(rows *sql.Rows) error {
			var id, label string
			if err := rows.Scan(&id, &label); err != nil {
				return err
			}
			for _, i := range byID[id] {
				ps[i].Label = json.RawMessage(label)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// LoggedPrediction is a prediction as read back, with its label.
type LoggedPrediction struct {
	PredictionInfo
	Inputs  json.RawMessage `json:"inputs"`
	Outputs json.RawMessage `json:"outputs"`
	Label   json.RawMessage `json:"label,omitempty"`
}

// Feedback is a ground-truth label for a request, sent after the fact.
type Feedback struct {
	RequestID string          `json:"request_id"`
	Label     json.RawMessage `json:"label"`
}

// MaxFeedback bounds the labels of one feedback call.
const MaxFeedback = 10000

// RecordFeedback stores labels by request id; a later label for the same
// request replaces the earlier one.
func (s *Service) RecordFeedback(ctx context.Context, deployment string, fb []Feedback) error {
	if _, err := s.Get(ctx, deployment); err != nil {
		return err
	}
	if len(fb) == 0 || len(fb) > MaxFeedback {
		return errs.Invalid("feedback: %d labels; send 1 to %d", len(fb), MaxFeedback)
	}
	for i, f := range fb {
		if f.RequestID == "" || len(f.RequestID) > 256 {
			return errs.Invalid("feedback[%d].request_id: must be 1-256 characters", i)
		}
		if len(f.Label) == 0 || !json.Valid(f.Label) || strings.TrimSpace(string(f.Label)) == "null" {
			return errs.Invalid("feedback[%d].label: must be a JSON value (a number, string or array)", i)
		}
	}
	now := s.nowMillis()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, f := range fb {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO prediction_feedback (deployment, request_id, label, time_ms) VALUES (?, ?, ?, ?)
				ON CONFLICT (deployment, request_id) DO UPDATE SET label = excluded.label, time_ms = excluded.time_ms`),
				deployment, f.RequestID, string(f.Label), now); err != nil {
				return err
			}
		}
		return nil
	})
}

// Observe records an answered request in the prediction log (copying its
// rows: the caller's buffers are reused) and, when the deployment has a
// shadow and this request is drawn for it, scores the rows with the shadow
// off the request path and logs that answer too.
func (s *Service) Observe(deployment string, m *Loaded, requestID string, rows int, x, y []float32, latency time.Duration) {
	p := newPrediction(PredictionInfo{RequestID: requestID, Deployment: deployment, ModelName: m.Name, Version: m.Version,
		Time: s.nowMillis(), LatencyUS: latency.Microseconds(), Rows: rows}, x, y)
	sh := s.drawShadow(deployment)
	p.shared = sh != nil
	s.plog.Record(p)
	if sh == nil {
		return
	}
	go func() {
		defer func() { <-s.shadowSlots }()
		start := time.Now()
		out := make([]float32, rows*sh.Model.Model.NumOutputs())
		err := sh.Model.Model.Predict(p.Inputs, out)
		took := time.Since(start)
		s.stats.get(deployment, sh, true).Record(took, err != nil)
		if err != nil {
			return
		}
		info := p.PredictionInfo
		info.ModelName, info.Version, info.Shadow, info.LatencyUS = sh.Name, sh.Version, true, took.Microseconds()
		s.plog.Record(&Prediction{PredictionInfo: info, Inputs: p.Inputs, Outputs: out})
	}()
}

// drawShadow returns the deployment's shadow when this request is drawn
// for it and a scoring slot is free; the caller frees the slot.
func (s *Service) drawShadow(deployment string) *Loaded {
	t := s.table(deployment)
	if t == nil || t.shadow == nil || rand.IntN(100) >= t.shadow.upTo {
		return nil
	}
	select {
	case s.shadowSlots <- struct{}{}:
		return t.shadow.model
	default:
		s.plog.shadowSkipped.Add(1) // shadows never queue up behind real traffic
		return nil
	}
}
