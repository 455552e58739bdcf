package tracking

import (
	"context"
	"database/sql"
	"slices"
	"sync"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// GetMetricHistory returns every point of one metric of one run in step
// order. Without maxResults and pageToken it returns the whole history, as
// MLflow does; with either it pages, at most MaxHistoryPage points a page.
func (s *Service) GetMetricHistory(ctx context.Context, runID, key string, pageSize int64, pageToken string) ([]Metric, string, error) {
	if err := s.checkHistoryRequest(ctx, runID, key); err != nil {
		return nil, "", err
	}
	paged := pageSize != 0 || pageToken != ""
	limit, offset := -1, 0
	if paged {
		var err error
		if limit, err = maxResults(pageSize, MaxHistoryPage, MaxHistoryPage); err != nil {
			return nil, "", err
		}
		if offset, err = search.DecodePageToken(pageToken); err != nil {
			return nil, "", err
		}
	}
	query := historyQuery
	args := []any{runID, key}
	if paged {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, int64(limit+1), int64(offset))
	}
	var out []Metric
	err := s.eachHistoryRow(ctx, query, args, func(value float64, timestamp, step int64) error {
		out = append(out, Metric{Key: key, Value: value, Timestamp: timestamp, Step: step})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if paged && len(out) > limit {
		out = out[:limit]
		next = search.EncodePageToken(offset + limit)
	}
	return out, next, nil
}

// historyQuery reads one metric of one run in the primary key's order, so
// that neither database sorts. It selects three columns, not four: a NaN
// (stored as 0 with is_nan 1) comes back as NULL, which costs the SQLite
// driver one call where a column costs two.
const historyQuery = `SELECT CASE WHEN is_nan = 0 THEN value END, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step, timestamp, value`

func (s *Service) checkHistoryRequest(ctx context.Context, runID, key string) error {
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	if key == "" {
		return MissingValue("metric_key")
	}
	_, err := s.readRunInfo(ctx, s.db.Read, runID)
	return err
}

// EachMetricHistoryPoint calls fn for every point of one metric of one run,
// in the order of GetMetricHistory's unpaged answer, so that a caller can
// stream a long history instead of holding all of it. The run is checked
// before fn is first called, so a missing run fails with nothing written.
// fn's Metric is reused between calls; fn's error stops the scan and is
// returned.
//
// The rows are read on a second goroutine, a batch of historyBatchSize
// points ahead of fn, so that reading the database and what fn does with a
// point (encoding and writing it to the client) overlap; fn itself is
// always called on the caller's goroutine.
func (s *Service) EachMetricHistoryPoint(ctx context.Context, runID, key string, fn func(*Metric) error) error {
	if err := s.checkHistoryRequest(ctx, runID, key); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan *[]historyPoint, historyBatches)
	read := make(chan error, 1)
	go func() {
		defer close(full)
		batch := getHistoryBatch()
		send := func() error {
			select {
			case full <- batch:
				batch = getHistoryBatch()
				return nil
			case <-ctx.Done():
				return ctx.Err() // batch is put back below
			}
		}
		err := s.eachHistoryRow(ctx, historyQuery, []any{runID, key}, func(value float64, timestamp, step int64) error {
			*batch = append(*batch, historyPoint{value, timestamp, step})
			if len(*batch) == historyBatchSize {
				return send()
			}
			return nil
		})
		if err == nil && len(*batch) > 0 {
			err = send()
		}
		putHistoryBatch(batch)
		read <- err
	}()
	m := Metric{Key: key}
	var fnErr error
	for batch := range full { // drained to the end, so the reader always finishes
		if fnErr == nil {
			// The caller's context is checked between batches as the
			// driver checks it between rows: the reader may be done.
			if fnErr = ctx.Err(); fnErr != nil {
				cancel()
			}
		}
		if fnErr == nil {
			for _, p := range *batch {
				m.Value, m.Timestamp, m.Step = p.value, p.timestamp, p.step
				if fnErr = fn(&m); fnErr != nil {
					cancel()
					break
				}
			}
		}
		putHistoryBatch(batch)
	}
	err := <-read
	if fnErr != nil {
		return fnErr
	}
	return err
}

// historyPoint is a point read ahead by EachMetricHistoryPoint.
type historyPoint struct {
	value           float64
	timestamp, step int64
}

const (
	// historyBatchSize points (24 KiB) are handed over at a time.
	historyBatchSize = 1024
	// historyBatches is how many full batches may wait for fn.
	historyBatches = 4
)

var historyBatchPool = sync.Pool{New: func() any {
	b := make([]historyPoint, 0, historyBatchSize)
	return &b
}}

func getHistoryBatch() *[]historyPoint {
	b := historyBatchPool.Get().(*[]historyPoint)
	*b = (*b)[:0]
	return b
}

func putHistoryBatch(b *[]historyPoint) { historyBatchPool.Put(b) }

// Limits of the bulk history routes MLflow's UI calls, as in MLflow's
// mlflow/server/handlers.py.
const (
	// MaxRunsPerBulkInterval is MAX_RUNS_GET_METRIC_HISTORY_BULK.
	MaxRunsPerBulkInterval = 100
	// MaxResultsPerRunInterval is MAX_RESULTS_PER_RUN: the most steps
	// get-history-bulk-interval samples, and its default.
	MaxResultsPerRunInterval = 2500
	// maxPointsPerRunInterval is MAX_RESULTS_GET_METRIC_HISTORY: the most
	// points get-history-bulk-interval returns for one run (several points
	// can share a step).
	maxPointsPerRunInterval = 25000
	// MaxRunsPerBulk and MaxResultsBulk are get-history-bulk's
	// MAX_RUN_IDS_PER_REQUEST and MAX_HISTORY_RESULTS.
	MaxRunsPerBulk = 100
	MaxResultsBulk = 25000
)

// BulkIntervalRequest asks for one metric of several runs, sampled by step
// for charts (MLflow's GetMetricHistoryBulkInterval).
type BulkIntervalRequest struct {
	RunIDs    []string
	MetricKey string
	// StartStep and EndStep bound the steps sampled, inclusive; both or
	// neither. Neither means [0, the largest step logged].
	StartStep, EndStep *int64
	// MaxResults is how many steps to sample, 1 to MaxResultsPerRunInterval;
	// nil means MaxResultsPerRunInterval.
	MaxResults *int64
}

// SampleMetricHistory samples one metric across runs for charts, as
// MLflow's get_metric_history_bulk_interval_impl does: the steps are
// sampled once over the union of every run's steps in [StartStep, EndStep]
// (see SampleSteps), each run's own smallest and largest step are added
// back when they lie in the range, and every point logged at a chosen step
// is returned: run by run in request order, each run's points by step, then
// timestamp, then value, at most 25000 per run. A run that does not exist
// or never logged the metric contributes nothing, as in MLflow.
func (s *Service) SampleMetricHistory(ctx context.Context, req BulkIntervalRequest) ([]MetricWithRunID, error) {
	limit, err := validateBulkInterval(req)
	if err != nil {
		return nil, err
	}
	runIDs := uniqueStrings(req.RunIDs)
	all, edges, err := s.runSteps(ctx, runIDs, req.MetricKey)
	if err != nil {
		return nil, err
	}
	var start, end int64
	if req.StartStep != nil {
		start, end = *req.StartStep, *req.EndStep
	} else if len(all) > 0 {
		end = all[len(all)-1]
	}
	keep := SampleSteps(start, end, limit, all)
	for _, step := range edges {
		if start <= step && step <= end {
			keep[step] = true
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	steps := make([]int64, 0, len(keep))
	for step := range keep {
		steps = append(steps, step)
	}
	slices.Sort(steps)

	in, stepArgs := inList(steps)
	query := `SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? AND step IN (` + in + `)
		ORDER BY step, timestamp, value, is_nan LIMIT ?`
	points := make(map[string][]Metric, len(runIDs))
	for _, id := range runIDs {
		args := append([]any{id, req.MetricKey}, stepArgs...)
		args = append(args, maxPointsPerRunInterval)
		var ms []Metric
		err := s.db.EachRow(ctx, query, args, func(rows *sql.Rows) error {
			m := Metric{Key: req.MetricKey}
			var isNaN int
			if err := rows.Scan(&m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
				return err
			}
			m.Value = loadedValue(m.Value, isNaN)
			ms = append(ms, m)
			return nil
		})
		if err != nil {
			return nil, err
		}
		points[id] = ms
	}
	var out []MetricWithRunID
	for _, id := range req.RunIDs { // MLflow answers a run named twice twice
		for _, m := range points[id] {
			out = append(out, MetricWithRunID{Metric: m, RunID: id})
		}
	}
	return out, nil
}

// validateBulkInterval checks a request in the order MLflow's handler does
// and returns the number of steps to sample.
func validateBulkInterval(req BulkIntervalRequest) (int, error) {
	if len(req.RunIDs) == 0 {
		return 0, MissingValue("run_ids")
	}
	if len(req.RunIDs) > MaxRunsPerBulkInterval {
		return 0, errs.Invalid("GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids.", MaxRunsPerBulkInterval, len(req.RunIDs))
	}
	if req.MetricKey == "" {
		return 0, MissingValue("metric_key")
	}
	limit := MaxResultsPerRunInterval
	if req.MaxResults != nil {
		n := *req.MaxResults
		if n < 1 || n > MaxResultsPerRunInterval {
			return 0, errs.Invalid("max_results must be between 1 and %d.", MaxResultsPerRunInterval)
		}
		limit = int(n)
	}
	switch {
	case (req.StartStep == nil) != (req.EndStep == nil):
		return 0, errs.Invalid("If either start step or end step are specified, both must be specified.")
	case req.StartStep != nil && *req.StartStep > *req.EndStep:
		return 0, errs.Invalid("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *req.StartStep, *req.EndStep)
	}
	for _, id := range req.RunIDs {
		if err := ValidateRunID(id); err != nil {
			return 0, err
		}
	}
	return limit, nil
}

// runSteps returns the distinct steps at which any of runIDs logged key, in
// ascending order, and each run's smallest and largest such step.
func (s *Service) runSteps(ctx context.Context, runIDs []string, key string) (all, edges []int64, err error) {
	in, idArgs := inList(runIDs)
	args := append([]any{key}, idArgs...)
	err = s.db.EachRow(ctx, `SELECT DISTINCT step FROM metrics WHERE key = ? AND run_uuid IN (`+in+`) ORDER BY step`, args, func(rows *sql.Rows) error {
		var step int64
		if err := rows.Scan(&step); err != nil {
			return err
		}
		all = append(all, step)
		return nil
	})
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	err = s.db.EachRow(ctx, `SELECT MIN(step), MAX(step) FROM metrics WHERE key = ? AND run_uuid IN (`+in+`) GROUP BY run_uuid`, args, func(rows *sql.Rows) error {
		var lo, hi int64
		if err := rows.Scan(&lo, &hi); err != nil {
			return err
		}
		edges = append(edges, lo, hi)
		return nil
	})
	return all, edges, err
}

// SampleSteps is MLflow's _get_sampled_steps_from_steps: of the sorted,
// distinct steps in allSteps that lie in [start, end], all of them if there
// are at most maxResults, else maxResults of them picked at a fixed
// fractional stride from the first, plus the last. It keeps MLflow's
// arithmetic exactly, including its quirk of comparing the absolute index
// of a pick with the number of steps in the range, which drops the picks
// past that index when the range does not start at the first step.
func SampleSteps(start, end int64, maxResults int, allSteps []int64) map[int64]bool {
	startIdx, _ := slices.BinarySearch(allSteps, start) // bisect_left
	endIdx, found := slices.BinarySearch(allSteps, end) // bisect_right
	if found {
		endIdx++
	}
	keep := make(map[int64]bool, min(max(endIdx-startIdx, 0), maxResults+1))
	if endIdx-startIdx <= maxResults {
		for _, step := range allSteps[startIdx:max(endIdx, startIdx)] {
			keep[step] = true
		}
		return keep
	}
	numSteps := endIdx - startIdx
	interval := float64(numSteps) / float64(maxResults)
	for i := range maxResults {
		if idx := startIdx + int(float64(i)*interval); idx < numSteps {
			keep[allSteps[idx]] = true
		}
	}
	keep[allSteps[endIdx-1]] = true
	return keep
}

// GetMetricHistoryBulk returns every point of one metric of several runs,
// as MLflow's get-history-bulk (a route of its UI) does: ordered by run id,
// then timestamp, step and value, at most maxResults points in all
// (MaxResultsBulk when larger). Runs that do not exist contribute nothing.
func (s *Service) GetMetricHistoryBulk(ctx context.Context, runIDs []string, key string, maxResults int64) ([]MetricWithRunID, error) {
	if len(runIDs) == 0 {
		return nil, errs.Invalid("GetMetricHistoryBulk request must specify at least one run_id.")
	}
	if len(runIDs) > MaxRunsPerBulk {
		return nil, errs.Invalid("GetMetricHistoryBulk request cannot specify more than %d run_ids. Received %d run_ids.", MaxRunsPerBulk, len(runIDs))
	}
	if key == "" {
		return nil, errs.Invalid("GetMetricHistoryBulk request must specify a metric_key.")
	}
	if maxResults < 0 {
		return nil, errs.Invalid("Invalid value %d for parameter 'max_results' supplied: must not be negative.", maxResults)
	}
	for _, id := range runIDs {
		if err := ValidateRunID(id); err != nil {
			return nil, err
		}
	}
	limit := min(maxResults, MaxResultsBulk)
	if limit == 0 {
		return nil, nil
	}
	in, idArgs := inList(uniqueStrings(runIDs))
	args := append([]any{key}, idArgs...)
	args = append(args, limit)
	var out []MetricWithRunID
	err := s.db.EachRow(ctx, `SELECT run_uuid, value, is_nan, timestamp, step FROM metrics WHERE key = ? AND run_uuid IN (`+in+`)
		ORDER BY run_uuid, timestamp, step, value, is_nan LIMIT ?`, args, func(rows *sql.Rows) error {
		p := MetricWithRunID{Metric: Metric{Key: key}}
		var isNaN int
		if err := rows.Scan(&p.RunID, &p.Value, &isNaN, &p.Timestamp, &p.Step); err != nil {
			return err
		}
		p.Value = loadedValue(p.Value, isNaN)
		out = append(out, p)
		return nil
	})
	return out, err
}

// inList returns placeholders and arguments for an IN list of vals. The
// list is padded, by repeating its last value, to a power of two, so that
// the few thousand list lengths these queries see make a dozen distinct
// statements rather than thousands (the store caches each one's text).
func inList[T any](vals []T) (string, []any) {
	if len(vals) == 0 {
		return "NULL", nil
	}
	n := 1
	for n < len(vals) {
		n *= 2
	}
	args := make([]any, n)
	for i := range args {
		args[i] = vals[min(i, len(vals)-1)]
	}
	return placeholders(n), args
}

func uniqueStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
