package tracking

import (
	"context"
	"database/sql"

	"github.com/slipwayml/slipway/internal/errs"
)

// GetMetricHistory returns every point of one metric of one run in step
// order. Without maxResults and pageToken it returns the whole history, as
// MLflow does; with either it pages, at most MaxHistoryPage points a page.
func (s *Service) GetMetricHistory(ctx context.Context, runID, key string, maxResults int64, pageToken string) ([]Metric, string, error) {
	if err := ValidateRunID(runID); err != nil {
		return nil, "", err
	}
	if key == "" {
		return nil, "", MissingValue("metric_key")
	}
	if _, err := s.readRunInfo(ctx, s.db.Read, runID); err != nil {
		return nil, "", err
	}
	paged := maxResults != 0 || pageToken != ""
	limit, offset := -1, 0
	if paged {
		var err error
		if limit, err = maxResults0(maxResults, MaxHistoryPage, MaxHistoryPage); err != nil {
			return nil, "", err
		}
		if offset, err = decodePageToken(pageToken); err != nil {
			return nil, "", err
		}
	}
	query := `SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step, timestamp, value`
	args := []any{runID, key}
	if paged {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, limit+1, offset)
	}
	var out []Metric
	err := s.eachRow(ctx, query, args, func(rows *sql.Rows) error {
		m := Metric{Key: key}
		var isNaN int
		if err := rows.Scan(&m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
			return err
		}
		m.Value = loadedValue(m.Value, isNaN)
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if paged && len(out) > limit {
		out = out[:limit]
		next = encodePageToken(offset + limit)
	}
	return out, next, nil
}

func maxResults0(n int64, def, limit int) (int, error) {
	if n > int64(limit) {
		return 0, errs.Invalid("Invalid value %d for parameter 'max_results' supplied. It must be at most %d.", n, limit)
	}
	return maxResults(n, def, limit)
}

// Limits of get-history-bulk-interval, as in MLflow's handler.
const (
	MaxRunsPerBulkInterval   = 100
	MaxResultsPerRunInterval = 2500
	DefaultResultsPerRun     = 320
)

// GetMetricHistoryBulkInterval samples one metric across runs for charts:
// for each run, at most maxResults steps spread evenly over the steps logged
// in [startStep, endStep], always keeping the first and last.
func (s *Service) GetMetricHistoryBulkInterval(ctx context.Context, runIDs []string, key string, startStep, endStep *int64, maxResults int64) ([]MetricWithRunID, error) {
	if len(runIDs) == 0 {
		return nil, MissingValue("run_ids")
	}
	if len(runIDs) > MaxRunsPerBulkInterval {
		return nil, errs.Invalid("GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids.", MaxRunsPerBulkInterval, len(runIDs))
	}
	if key == "" {
		return nil, MissingValue("metric_key")
	}
	if (startStep == nil) != (endStep == nil) {
		return nil, errs.Invalid("If either start step or end step are specified, both must be specified.")
	}
	if startStep != nil && *startStep > *endStep {
		return nil, errs.Invalid("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *startStep, *endStep)
	}
	limit := DefaultResultsPerRun
	if maxResults != 0 {
		if maxResults < 0 || maxResults > MaxResultsPerRunInterval {
			return nil, errs.Invalid("max_results must be between 1 and %d.", MaxResultsPerRunInterval)
		}
		limit = int(maxResults)
	}
	var out []MetricWithRunID
	for _, id := range runIDs {
		if err := ValidateRunID(id); err != nil {
			return nil, err
		}
		history, _, err := s.GetMetricHistory(ctx, id, key, 0, "")
		if err != nil {
			return nil, err
		}
		var steps []int64
		for _, m := range history {
			if startStep != nil && (m.Step < *startStep || m.Step > *endStep) {
				continue
			}
			if len(steps) == 0 || steps[len(steps)-1] != m.Step {
				steps = append(steps, m.Step)
			}
		}
		keep := sampleSteps(steps, limit)
		for _, m := range history {
			if keep[m.Step] {
				out = append(out, MetricWithRunID{Metric: m, RunID: id})
			}
		}
	}
	return out, nil
}

// sampleSteps picks at most n of the sorted distinct steps, evenly spaced,
// always including the smallest and largest.
func sampleSteps(steps []int64, n int) map[int64]bool {
	keep := make(map[int64]bool, min(n, len(steps)))
	if len(steps) <= n {
		for _, s := range steps {
			keep[s] = true
		}
		return keep
	}
	if n == 1 {
		keep[steps[0]] = true
		return keep
	}
	for i := range n {
		keep[steps[i*(len(steps)-1)/(n-1)]] = true
	}
	return keep
}
