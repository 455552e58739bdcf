package tracking_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// TestSearchRunsSeesEveryWrite warms one service's run cache with a search,
// writes through a second service on the same database (as a second server
// would), and checks after every kind of write that the first service's
// search answers what a service with no cache loads. A write path that
// does not bump the run's version leaves the cached copy in the answer.
func TestSearchRunsSeesEveryWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		searcher, writer := newService(t, db), newService(t, db)
		expID := must[string](t)(writer.CreateExperiment(ctx, "cache", "", nil))
		var ids []string
		for i := range 3 {
			r := must[tracking.Run](t)(writer.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, StartTime: int64(1000 + i)}))
			ids = append(ids, r.Info.RunID)
			if err := writer.LogBatch(ctx, r.Info.RunID, []tracking.Metric{{Key: "m", Value: float64(i), Timestamp: 1}},
				[]tracking.Param{{Key: "p", Value: "v"}}, []tracking.Tag{{Key: "t", Value: "x"}}); err != nil {
				t.Fatal(err)
			}
		}
		id := ids[1]
		search := func(s *tracking.Service) []tracking.Run {
			t.Helper()
			runs, _, err := s.SearchRuns(ctx, tracking.SearchRunsRequest{
				ExperimentIDs: []string{expID}, ViewType: tracking.All, OrderBy: []string{"metrics.m DESC"},
			})
			if err != nil {
				t.Fatal(err)
			}
			return runs
		}
		check := func(what string) {
			t.Helper()
			got, want := search(searcher), search(newService(t, db))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %s: the searching service answered\n%+v\nwhere a fresh one answers\n%+v", what, got, want)
			}
			// A second search is served from the cache where the first loaded.
			if again := search(searcher); !reflect.DeepEqual(again, want) {
				t.Fatalf("after %s, searching again: %+v, want %+v", what, again, want)
			}
		}
		check("the first search")

		end := int64(9000)
		for _, w := range []struct {
			what  string
			write func() error
		}{
			{"log-metric", func() error {
				return writer.LogMetric(ctx, id, tracking.Metric{Key: "m", Value: 7, Timestamp: 2, Step: 1})
			}},
			{"a new metric", func() error {
				return writer.LogMetric(ctx, id, tracking.Metric{Key: "n", Value: 1, Timestamp: 2})
			}},
			{"log-param", func() error { return writer.LogParam(ctx, id, tracking.Param{Key: "q", Value: "w"}) }},
			{"set-tag", func() error { return writer.SetTag(ctx, id, tracking.Tag{Key: "t", Value: "y"}) }},
			{"a rename by tag", func() error {
				return writer.SetTag(ctx, id, tracking.Tag{Key: "mlflow.runName", Value: "renamed"})
			}},
			{"delete-tag", func() error { return writer.DeleteTag(ctx, id, "t") }},
			{"log-batch", func() error {
				return writer.LogBatch(ctx, id, []tracking.Metric{{Key: "m", Value: -1, Timestamp: 3, Step: 2}},
					[]tracking.Param{{Key: "r", Value: "1"}}, []tracking.Tag{{Key: "u", Value: "2"}})
			}},
			{"log-inputs", func() error {
				return writer.LogInputs(ctx, id, []tracking.DatasetInput{{
					Tags:    []tracking.Tag{{Key: "mlflow.data.context", Value: "train"}},
					Dataset: tracking.Dataset{Name: "d", Digest: "abc", SourceType: "local", Source: "{}"},
				}})
			}},
			{"a logged model", func() error { return writer.RecordLoggedModel(ctx, id, `{"flavors":{}}`) }},
			{"update-run", func() error {
				_, err := writer.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: id, Status: tracking.StatusFinished, EndTime: &end, RunName: "final"})
				return err
			}},
			{"delete-run", func() error { return writer.DeleteRun(ctx, id) }},
			{"restore-run", func() error { return writer.RestoreRun(ctx, id) }},
			{"delete-experiment", func() error { return writer.DeleteExperiment(ctx, expID) }},
			{"restore-experiment", func() error { return writer.RestoreExperiment(ctx, expID) }},
		} {
			if err := w.write(); err != nil {
				t.Fatalf("%s: %v", w.what, err)
			}
			check(w.what)
		}

		// A refused write changes nothing, the version included.
		if err := writer.LogParam(ctx, id, tracking.Param{Key: "q", Value: "other"}); err == nil {
			t.Fatal("changing a param was accepted")
		}
		check("a refused write")

		// What a search returns is the caller's to change.
		runs := search(searcher)
		runs[0].Params[0].Value = "changed"
		runs[0].Metrics = append(runs[0].Metrics[:0], tracking.Metric{Key: "x"})
		for _, r := range runs {
			if r.Info.EndTime != nil {
				*r.Info.EndTime = 1
			}
		}
		check("changing a returned run")
	})
}

// TestSearchRunsCacheUnderConcurrentWrites searches from several goroutines
// while runs are written, then checks that the answer after the last write
// holds every run's last value: no search may have left an older copy
// cached at a newer version.
func TestSearchRunsCacheUnderConcurrentWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		expID := must[string](t)(s.CreateExperiment(ctx, "cache-concurrent", "", nil))
		var ids []string
		for range 4 {
			r := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, StartTime: 1}))
			ids = append(ids, r.Info.RunID)
		}
		req := tracking.SearchRunsRequest{ExperimentIDs: []string{expID}, OrderBy: []string{"metrics.m DESC"}}
		const steps = 40
		done := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if _, _, err := s.SearchRuns(ctx, req); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		var writers sync.WaitGroup
		for i, id := range ids {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for step := range steps {
					m := tracking.Metric{Key: "m", Value: float64(i*1000 + step), Timestamp: int64(step), Step: int64(step)}
					if err := s.LogMetric(ctx, id, m); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		writers.Wait()
		close(done)
		wg.Wait()
		runs := must[[]tracking.Run](t)(func() ([]tracking.Run, error) {
			runs, _, err := s.SearchRuns(ctx, req)
			return runs, err
		}())
		if len(runs) != len(ids) {
			t.Fatalf("%d runs, want %d", len(runs), len(ids))
		}
		for k, r := range runs {
			i := len(ids) - 1 - k // ordered by m, descending
			want := float64(i*1000 + steps - 1)
			if r.Info.RunID != ids[i] || len(r.Metrics) != 1 || r.Metrics[0].Value != want {
				t.Fatalf("run %d: %s with %+v, want %s with m = %v", k, r.Info.RunID, r.Metrics, ids[i], want)
			}
		}
	})
}
