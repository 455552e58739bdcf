package tracking_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func seq(from, to, step int64) []int64 {
	var out []int64
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

func sortedSteps(keep map[int64]bool) []int64 {
	out := make([]int64, 0, len(keep))
	for s := range keep {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// The cases of MLflow's test_get_sampled_steps_from_steps, and what its
// formula gives where the range does not start at the first step.
func TestSampleSteps(t *testing.T) {
	for _, tc := range []struct {
		start, end int64
		maxResults int
		steps      []int64
		want       []int64
	}{
		{0, 10, 5, seq(0, 10, 1), []int64{0, 2, 4, 6, 8, 9}},
		{4, 8, 5, seq(0, 10, 1), []int64{4, 5, 6, 7, 8}},
		{0, 100, 5, seq(0, 101, 20), []int64{0, 20, 40, 60, 80, 100}},
		{0, 1000, 5, seq(0, 1001, 10), []int64{0, 200, 400, 600, 800, 1000}},
		// Fewer steps than maxResults: all of those in range.
		{3, 5, 10, seq(0, 10, 1), []int64{3, 4, 5}},
		// MLflow compares the absolute index of a pick with the number of
		// steps in range: start_idx 5, 10 steps, stride 2 keeps indexes
		// 5, 7, 9 and drops 11 and 13; the last step is always added.
		{5, 14, 5, seq(0, 20, 1), []int64{5, 7, 9, 14}},
		// Bounds between logged steps.
		{1, 9, 2, []int64{0, 2, 4, 6, 8, 10}, []int64{2, 6, 8}},
		// Nothing in range, or an empty range.
		{11, 20, 5, seq(0, 10, 1), []int64{}},
		{0, -1, 5, seq(-5, 0, 1), []int64{}},
		{0, 0, 5, nil, []int64{}},
		// Stride 1.2: int(i*1.2) for i < 2500 never repeats an index, so
		// 2500 picks and the last.
		{0, 2999, 2500, seq(0, 3000, 1), append(pickEvery(3000, 2500), 2999)},
	} {
		got := sortedSteps(tracking.SampleSteps(tc.start, tc.end, tc.maxResults, tc.steps))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SampleSteps(%d, %d, %d, %d steps) = %v, want %v", tc.start, tc.end, tc.maxResults, len(tc.steps), got, tc.want)
		}
	}
}

func pickEvery(n, k int) []int64 {
	var out []int64
	for i := range k {
		out = append(out, int64(float64(i)*(float64(n)/float64(k))))
	}
	return out
}

type point struct {
	run       string
	step, ts  int64
	value     float64
	valueNaN  bool
	metricKey string
}

func points(ms []tracking.MetricWithRunID) []point {
	out := make([]point, len(ms))
	for i, m := range ms {
		out[i] = point{run: m.RunID, step: m.Step, ts: m.Timestamp, value: m.Value, metricKey: m.Key}
		if math.IsNaN(m.Value) {
			out[i].value, out[i].valueNaN = 0, true
		}
	}
	return out
}

func stepsOf(ms []tracking.MetricWithRunID, run string) []int64 {
	var out []int64
	for _, m := range ms {
		if m.RunID == run {
			out = append(out, m.Step)
		}
	}
	return out
}

func logSteps(t *testing.T, s *tracking.Service, run, key string, ts int64, steps []int64) {
	t.Helper()
	for c := 0; c < len(steps); c += 1000 {
		var ms []tracking.Metric
		for _, step := range steps[c:min(c+1000, len(steps))] {
			ms = append(ms, tracking.Metric{Key: key, Value: float64(step), Timestamp: ts, Step: step})
		}
		if err := s.LogBatch(context.Background(), run, ms, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr(n int64) *int64 { return &n }

func TestSampleMetricHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		exp := must[string](t)(s.CreateExperiment(ctx, "sampling", "", nil))
		newRun := func() string {
			return must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp})).Info.RunID
		}
		sample := func(req tracking.BulkIntervalRequest) []tracking.MetricWithRunID {
			t.Helper()
			if req.MetricKey == "" {
				req.MetricKey = "m"
			}
			got, err := s.SampleMetricHistory(ctx, req)
			if err != nil {
				t.Fatalf("SampleMetricHistory(%+v): %v", req, err)
			}
			return got
		}

		r1, r2 := newRun(), newRun()
		logSteps(t, s, r1, "m", 1, seq(0, 10, 1))
		if got := stepsOf(sample(tracking.BulkIntervalRequest{RunIDs: []string{r1}, MaxResults: ptr(5)}), r1); !reflect.DeepEqual(got, []int64{0, 2, 4, 6, 8, 9}) {
			t.Errorf("one run, max 5: steps %v", got)
		}
		logSteps(t, s, r2, "m", 1, seq(0, 20, 1))
		// The steps are sampled once over the union of both runs' steps
		// (0, 4, 8, 12, 16, 19); each run's own last step (9 for r1) is added.
		got := sample(tracking.BulkIntervalRequest{RunIDs: []string{r1, r2}, MaxResults: ptr(5)})
		if a, b := stepsOf(got, r1), stepsOf(got, r2); !reflect.DeepEqual(a, []int64{0, 4, 8, 9}) || !reflect.DeepEqual(b, []int64{0, 4, 8, 9, 12, 16, 19}) {
			t.Errorf("two runs, max 5: r1 %v, r2 %v", a, b)
		}
		// Runs come in request order, not sorted by id.
		got = sample(tracking.BulkIntervalRequest{RunIDs: []string{r2, r1}, MaxResults: ptr(5)})
		if got[0].RunID != r2 || got[len(got)-1].RunID != r1 {
			t.Errorf("runs out of request order: first %s, last %s", got[0].RunID, got[len(got)-1].RunID)
		}
		// A run named twice is answered twice, as MLflow answers it.
		if got := sample(tracking.BulkIntervalRequest{RunIDs: []string{r1, r1}, MaxResults: ptr(5)}); len(got) != 12 {
			t.Errorf("run named twice: %d points, want 12", len(got))
		}
		// An explicit range; r2's first and last steps lie outside it.
		got = sample(tracking.BulkIntervalRequest{RunIDs: []string{r2}, StartStep: ptr(4), EndStep: ptr(8), MaxResults: ptr(5)})
		if s := stepsOf(got, r2); !reflect.DeepEqual(s, []int64{4, 5, 6, 7, 8}) {
			t.Errorf("range [4, 8]: steps %v", s)
		}
		// The default: 2500 steps.
		r3 := newRun()
		logSteps(t, s, r3, "m", 1, seq(0, 3000, 1))
		got = sample(tracking.BulkIntervalRequest{RunIDs: []string{r3}})
		if len(got) != 2501 || got[0].Step != 0 || got[1].Step != 1 || got[2500].Step != 2999 {
			t.Errorf("default max_results: %d points, from %d to %d", len(got), got[0].Step, got[len(got)-1].Step)
		}

		// Every point at a chosen step, by step, then timestamp, then value.
		r4 := newRun()
		for _, m := range []tracking.Metric{
			{Key: "m", Value: 3, Timestamp: 2, Step: 1}, {Key: "m", Value: 2, Timestamp: 2, Step: 1},
			{Key: "m", Value: 1, Timestamp: 5, Step: 0}, {Key: "m", Value: math.NaN(), Timestamp: 1, Step: 1},
			{Key: "other", Value: 9, Timestamp: 1, Step: 0},
		} {
			if err := s.LogMetric(ctx, r4, m); err != nil {
				t.Fatal(err)
			}
		}
		want := []point{
			{run: r4, step: 0, ts: 5, value: 1, metricKey: "m"},
			{run: r4, step: 1, ts: 1, valueNaN: true, metricKey: "m"},
			{run: r4, step: 1, ts: 2, value: 2, metricKey: "m"},
			{run: r4, step: 1, ts: 2, value: 3, metricKey: "m"},
		}
		if got := points(sample(tracking.BulkIntervalRequest{RunIDs: []string{r4}})); !reflect.DeepEqual(got, want) {
			t.Errorf("points:\n got %+v\nwant %+v", got, want)
		}

		// Without a range MLflow samples [0, largest step]: negative steps
		// are left out.
		r5 := newRun()
		logSteps(t, s, r5, "m", 1, seq(-3, 3, 1))
		if got := stepsOf(sample(tracking.BulkIntervalRequest{RunIDs: []string{r5}}), r5); !reflect.DeepEqual(got, []int64{0, 1, 2}) {
			t.Errorf("negative steps, default range: %v", got)
		}
		if got := stepsOf(sample(tracking.BulkIntervalRequest{RunIDs: []string{r5}, StartStep: ptr(-3), EndStep: ptr(0)}), r5); !reflect.DeepEqual(got, []int64{-3, -2, -1, 0}) {
			t.Errorf("negative steps, range [-3, 0]: %v", got)
		}

		// Runs that do not exist or lack the metric contribute nothing.
		if got := sample(tracking.BulkIntervalRequest{RunIDs: []string{"0123456789abcdef0123456789abcdef"}}); len(got) != 0 {
			t.Errorf("unknown run: %v", got)
		}
		if got := sample(tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "nope"}); len(got) != 0 {
			t.Errorf("unknown metric: %v", got)
		}

		many := make([]string, 101)
		for i := range many {
			many[i] = fmt.Sprintf("run%d", i)
		}
		for _, tc := range []struct {
			req  tracking.BulkIntervalRequest
			want string
		}{
			{tracking.BulkIntervalRequest{MetricKey: "m"}, "Missing value for required parameter 'run_ids'"},
			{tracking.BulkIntervalRequest{RunIDs: many, MetricKey: "m"}, "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}}, "Missing value for required parameter 'metric_key'"},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", MaxResults: ptr(0)}, "max_results must be between 1 and 2500."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", MaxResults: ptr(-1)}, "max_results must be between 1 and 2500."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", MaxResults: ptr(2501)}, "max_results must be between 1 and 2500."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", StartStep: ptr(1)}, "If either start step or end step are specified, both must be specified."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", EndStep: ptr(1)}, "If either start step or end step are specified, both must be specified."},
			{tracking.BulkIntervalRequest{RunIDs: []string{r1}, MetricKey: "m", StartStep: ptr(1), EndStep: ptr(0)}, "end_step must be greater than start_step. Found start_step=1 and end_step=0."},
			{tracking.BulkIntervalRequest{RunIDs: []string{"../x"}, MetricKey: "m"}, "Invalid run ID"},
		} {
			_, err := s.SampleMetricHistory(ctx, tc.req)
			if errs.CodeOf(err) != errs.InvalidArgument || err == nil || !strings.Contains(errs.Message(err), tc.want) {
				t.Errorf("SampleMetricHistory(%+v) = %v, want InvalidArgument %q", tc.req, err, tc.want)
			}
		}
		if got := sample(tracking.BulkIntervalRequest{RunIDs: []string{r1}, MaxResults: ptr(2500)}); len(got) != 10 {
			t.Errorf("max_results 2500: %d points", len(got))
		}
	})
}

func TestGetMetricHistoryBulk(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		exp := must[string](t)(s.CreateExperiment(ctx, "bulk", "", nil))
		var runs []string
		for range 3 {
			runs = append(runs, must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp})).Info.RunID)
		}
		slices.Sort(runs)
		// MLflow's test_get_metric_history_bulk_returns_expected_metrics_in_expected_order.
		a := []tracking.Metric{{Key: "a", Value: 10, Timestamp: 1, Step: 2}, {Key: "a", Value: 11, Timestamp: 1, Step: 3}, {Key: "a", Value: 12, Timestamp: 1, Step: 3}, {Key: "a", Value: 12, Timestamp: 2, Step: 3}}
		for _, run := range []string{runs[2], runs[0]} { // logged out of id order
			for i := len(a) - 1; i >= 0; i-- {
				if err := s.LogMetric(ctx, run, a[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		bulk := func(ids []string, key string, maxResults int64) []point {
			t.Helper()
			got, err := s.GetMetricHistoryBulk(ctx, ids, key, maxResults)
			if err != nil {
				t.Fatal(err)
			}
			return points(got)
		}
		var want []point
		for _, run := range []string{runs[0], runs[2]} {
			for _, m := range a {
				want = append(want, point{run: run, step: m.Step, ts: m.Timestamp, value: m.Value, metricKey: "a"})
			}
		}
		if got := bulk([]string{runs[2], runs[1], runs[0]}, "a", tracking.MaxResultsBulk); !reflect.DeepEqual(got, want) {
			t.Errorf("bulk:\n got %+v\nwant %+v", got, want)
		}
		if got := bulk([]string{runs[2], runs[0]}, "a", 5); !reflect.DeepEqual(got, want[:5]) {
			t.Errorf("max_results 5 (over all runs):\n got %+v\nwant %+v", got, want[:5])
		}
		if got := bulk([]string{runs[0]}, "a", 0); len(got) != 0 {
			t.Errorf("max_results 0: %v", got)
		}
		if got := bulk([]string{runs[0]}, "a", 1<<40); len(got) != 4 {
			t.Errorf("max_results above the limit: %d points", len(got))
		}
		if got := bulk([]string{"0123456789abcdef0123456789abcdef"}, "a", 10); len(got) != 0 {
			t.Errorf("unknown run: %v", got)
		}
		many := make([]string, 101)
		for i := range many {
			many[i] = runs[0]
		}
		for _, tc := range []struct {
			ids        []string
			key        string
			maxResults int64
			want       string
		}{
			{nil, "a", 10, "GetMetricHistoryBulk request must specify at least one run_id."},
			{many, "a", 10, "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids."},
			{runs[:1], "", 10, "GetMetricHistoryBulk request must specify a metric_key."},
			{runs[:1], "a", -1, "max_results"},
			{[]string{"a b"}, "a", 10, "Invalid run ID"},
		} {
			_, err := s.GetMetricHistoryBulk(ctx, tc.ids, tc.key, tc.maxResults)
			if errs.CodeOf(err) != errs.InvalidArgument || err == nil || !strings.Contains(errs.Message(err), tc.want) {
				t.Errorf("GetMetricHistoryBulk(%d ids, %q, %d) = %v, want InvalidArgument %q", len(tc.ids), tc.key, tc.maxResults, err, tc.want)
			}
		}
	})
}

// EachMetricHistoryPoint reads ahead on another goroutine: it must give the
// unpaged GetMetricHistory's points in order (NaN included), stop at fn's
// error or a cancelled context, and give its connection back either way.
func TestEachMetricHistoryPointStops(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		run := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: "0"})).Info.RunID
		var ms []tracking.Metric
		for i := range 5000 { // five batches, in reverse step order
			v := float64(i) / 3
			if i%997 == 0 {
				v = math.NaN()
			}
			ms = append(ms, tracking.Metric{Key: "k", Value: v, Timestamp: int64(i % 5), Step: int64(5000 - i)})
			if len(ms) == 1000 {
				if err := s.LogBatch(ctx, run, ms, nil, nil); err != nil {
					t.Fatal(err)
				}
				ms = ms[:0]
			}
		}
		all, _, err := s.GetMetricHistory(ctx, run, "k", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []tracking.Metric
		if err := s.EachMetricHistoryPoint(ctx, run, "k", func(m *tracking.Metric) error {
			got = append(got, *m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 5000 || len(all) != 5000 {
			t.Fatalf("got %d and %d points, want 5000", len(got), len(all))
		}
		for i := range got {
			g, w := got[i], all[i]
			if g.Key != w.Key || g.Step != w.Step || g.Timestamp != w.Timestamp || math.Float64bits(g.Value) != math.Float64bits(w.Value) && !(math.IsNaN(g.Value) && math.IsNaN(w.Value)) {
				t.Fatalf("point %d: %+v, want %+v", i, g, w)
			}
			if i > 0 && got[i-1].Step > g.Step {
				t.Fatalf("point %d: step %d after %d", i, g.Step, got[i-1].Step)
			}
		}

		stop := fmt.Errorf("stop")
		for range 20 { // more than the reader pool holds, if connections leaked
			n := 0
			err := s.EachMetricHistoryPoint(ctx, run, "k", func(*tracking.Metric) error {
				if n++; n == 1500 {
					return stop
				}
				return nil
			})
			if err != stop || n != 1500 {
				t.Fatalf("err %v after %d points, want %v after 1500", err, n, stop)
			}
			cctx, cancel := context.WithCancel(ctx)
			n = 0
			err = s.EachMetricHistoryPoint(cctx, run, "k", func(*tracking.Metric) error {
				if n++; n == 10 {
					cancel()
				}
				return nil
			})
			cancel()
			if err == nil && n == 5000 {
				t.Fatalf("a cancelled read went on to the end")
			}
		}
		if _, _, err := s.GetMetricHistory(ctx, run, "k", 10, ""); err != nil {
			t.Fatal(err)
		}
	})
}
