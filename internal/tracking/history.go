package tracking

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
)

// GetMetricHistory returns every point of one metric of one run in step
// order. Without maxResults and pageToken it returns the whole history, as
// MLflow does; with either it pages, at most MaxHistoryPage points a page.
func (s *Service) GetMetricHistory(ctx context.Context, runID, key string, pageSize int64, pageToken string) ([]Metric, string, error) {
	if err := s.checkHistoryRequest(ctx, runID, key); err != nil {
		return nil, "", err
	}
	paged := pageSize != 0 || pageToken != ""
	limit, offset, after := -1, 0, (*point)(nil)
	if paged {
		var err error
		if limit, err = maxResults(pageSize, MaxHistoryPage, MaxHistoryPage); err != nil {
			return nil, "", err
		}
		if offset, after, err = decodeHistoryToken(pageToken); err != nil {
			return nil, "", err
		}
	}
	steps := allSteps
	if after != nil {
		steps.lo = after.step
	}
	var out []Metric
	skip := offset
	err := s.eachPoint(ctx, runID, key, steps, func(p point) error {
		switch {
		case after != nil:
			if comparePoints(p, *after) <= 0 {
				return nil
			}
		case skip > 0:
			skip--
			return nil
		}
		if paged && len(out) > limit {
			return errStopHistory
		}
		out = append(out, Metric{Key: key, Value: p.value, Timestamp: p.timestamp, Step: p.step})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if paged && len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeHistoryToken(offset+limit, point{step: last.Step, timestamp: last.Timestamp, value: last.Value})
	}
	return out, next, nil
}

// historyToken is a get-history page token. Besides the offset of the next
// page's first point it holds the point before it, so that the next page
// reads from that point's step on instead of counting from the start: a
// client walking 100,000 points in pages of 25,000, as MLflow's Python
// client does, read 250,000. A token of an offset alone (from a server
// before this one) still works.
type historyToken struct {
	Offset    *int   `json:"offset"`
	Step      *int64 `json:"step,omitempty"`
	Timestamp *int64 `json:"timestamp,omitempty"`
	Value     string `json:"value,omitempty"` // the float64's bits in hex, NaN included
}

func encodeHistoryToken(offset int, last point) string {
	b, _ := json.Marshal(historyToken{Offset: &offset, Step: &last.step, Timestamp: &last.timestamp,
		Value: strconv.FormatUint(math.Float64bits(last.value), 16)})
	return base64.StdEncoding.EncodeToString(b)
}

func decodeHistoryToken(tok string) (offset int, after *point, err error) {
	if tok == "" {
		return 0, nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return 0, nil, errs.Invalid("Invalid page token, could not base64-decode")
	}
	var t historyToken
	if err := json.Unmarshal(raw, &t); err != nil || t.Offset == nil || *t.Offset < 0 {
		return 0, nil, errs.Invalid("Invalid page token, decoded value=%s", raw)
	}
	if t.Step == nil && t.Timestamp == nil && t.Value == "" {
		return *t.Offset, nil, nil
	}
	bits, err := strconv.ParseUint(t.Value, 16, 64)
	if t.Step == nil || t.Timestamp == nil || err != nil {
		return 0, nil, errs.Invalid("Invalid page token, decoded value=%s", raw)
	}
	return *t.Offset, &point{step: *t.Step, timestamp: *t.Timestamp, value: math.Float64frombits(bits)}, nil
}

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
func (s *Service) EachMetricHistoryPoint(ctx context.Context, runID, key string, fn func(*Metric) error) error {
	if err := s.checkHistoryRequest(ctx, runID, key); err != nil {
		return err
	}
	m := Metric{Key: key}
	return s.eachPoint(ctx, runID, key, allSteps, func(p point) error {
		m.Value, m.Timestamp, m.Step = p.value, p.timestamp, p.step
		return fn(&m)
	})
}

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

	span := stepRange{steps[0], steps[len(steps)-1]}
	points := make(map[string][]Metric, len(runIDs))
	for _, id := range runIDs {
		var ms []Metric
		err := s.eachPoint(ctx, id, req.MetricKey, span, func(p point) error {
			if !keep[p.step] {
				return nil
			}
			if len(ms) == maxPointsPerRunInterval {
				return errStopHistory
			}
			ms = append(ms, Metric{Key: req.MetricKey, Value: p.value, Timestamp: p.timestamp, Step: p.step})
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
	seen := make(map[int64]bool)
	for _, id := range runIDs {
		lo, hi, found := int64(0), int64(0), false
		err := s.eachPoint(ctx, id, key, allSteps, func(p point) error {
			if !found {
				lo, found = p.step, true
			}
			hi = p.step // points come in step order
			if !seen[p.step] {
				seen[p.step] = true
				all = append(all, p.step)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if found {
			edges = append(edges, lo, hi)
		}
	}
	slices.Sort(all)
	return all, edges, nil
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
	ids := uniqueStrings(runIDs)
	slices.Sort(ids)
	var out []MetricWithRunID
	for _, id := range ids {
		ps, err := s.history(ctx, id, key, allSteps)
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(ps, func(a, b point) int {
			if c := cmp.Compare(a.timestamp, b.timestamp); c != 0 {
				return c
			}
			return comparePoints(a, b)
		})
		for _, p := range ps {
			if int64(len(out)) == limit {
				return out, nil
			}
			out = append(out, MetricWithRunID{Metric: Metric{Key: key, Value: p.value, Timestamp: p.timestamp, Step: p.step}, RunID: id})
		}
	}
	return out, nil
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
