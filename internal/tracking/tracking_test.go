package tracking_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func newService(t *testing.T, db *store.DB) *tracking.Service {
	t.Helper()
	s, err := tracking.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantCode(t *testing.T, err error, code errs.Code) {
	t.Helper()
	if errs.CodeOf(err) != code || err == nil {
		t.Fatalf("got error %v (code %v), want code %v", err, errs.CodeOf(err), code)
	}
}

func TestExperimentLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)

		def := must[tracking.Experiment](t)(s.GetExperiment(ctx, "0"))
		if def.Name != "Default" || def.ArtifactLocation != "mlflow-artifacts:/0" {
			t.Fatalf("default experiment = %+v", def)
		}
		id := must[string](t)(s.CreateExperiment(ctx, "churn", "", []tracking.Tag{{Key: "team", Value: "risk"}}))
		e := must[tracking.Experiment](t)(s.GetExperimentByName(ctx, "churn"))
		if e.ID != id || e.ArtifactLocation != "mlflow-artifacts:/"+id || len(e.Tags) != 1 || e.Tags[0].Value != "risk" {
			t.Fatalf("created experiment = %+v", e)
		}
		_, err := s.CreateExperiment(ctx, "churn", "", nil)
		wantCode(t, err, errs.AlreadyExists)
		_, err = s.CreateExperiment(ctx, "", "", nil)
		wantCode(t, err, errs.InvalidArgument)
		_, err = s.CreateExperiment(ctx, "elsewhere", "file:///etc", nil)
		wantCode(t, err, errs.InvalidArgument)
		_, err = s.GetExperiment(ctx, "424242")
		wantCode(t, err, errs.NotFound)
		_, err = s.GetExperimentByName(ctx, "nope")
		wantCode(t, err, errs.NotFound)

		if err := s.UpdateExperiment(ctx, id, "churn-v2"); err != nil {
			t.Fatal(err)
		}
		run := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: id}))
		if err := s.DeleteExperiment(ctx, id); err != nil {
			t.Fatal(err)
		}
		// Deleting an experiment takes its runs with it, and forbids new ones.
		got := must[tracking.Run](t)(s.GetRun(ctx, run.Info.RunID))
		if got.Info.LifecycleStage != tracking.StageDeleted {
			t.Fatalf("run stage after experiment delete = %s", got.Info.LifecycleStage)
		}
		_, err = s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: id})
		wantCode(t, err, errs.InvalidArgument)
		wantCode(t, s.UpdateExperiment(ctx, id, "again"), errs.InvalidArgument)
		_, err = s.CreateExperiment(ctx, "churn-v2", "", nil)
		wantCode(t, err, errs.AlreadyExists)

		if err := s.RestoreExperiment(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.RestoreExperiment(ctx, id), errs.InvalidArgument)
		got = must[tracking.Run](t)(s.GetRun(ctx, run.Info.RunID))
		if got.Info.LifecycleStage != tracking.StageActive {
			t.Fatalf("run stage after restore = %s", got.Info.LifecycleStage)
		}

		if err := s.SetExperimentTag(ctx, id, tracking.Tag{Key: "team", Value: "growth"}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteExperimentTag(ctx, id, "missing"), errs.NotFound)
		if err := s.DeleteExperimentTag(ctx, id, "team"); err != nil {
			t.Fatal(err)
		}
		e = must[tracking.Experiment](t)(s.GetExperiment(ctx, id))
		if e.Name != "churn-v2" || len(e.Tags) != 0 {
			t.Fatalf("after rename and untag: %+v", e)
		}
	})
}

func TestSearchExperiments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		for i := range 5 {
			must[string](t)(s.CreateExperiment(ctx, fmt.Sprintf("exp-%d", i), "", []tracking.Tag{{Key: "parity", Value: []string{"even", "odd"}[i%2]}}))
		}
		exps, next, err := s.SearchExperiments(ctx, tracking.SearchExperimentsRequest{Filter: "tags.parity = 'even'", OrderBy: []string{"name DESC"}})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range exps {
			names = append(names, e.Name)
		}
		if fmt.Sprint(names) != "[exp-4 exp-2 exp-0]" || next != "" {
			t.Fatalf("filtered search = %v (next %q)", names, next)
		}
		// Paging visits every experiment exactly once.
		seen := map[string]bool{}
		tok := ""
		for {
			page, next, err := s.SearchExperiments(ctx, tracking.SearchExperimentsRequest{MaxResults: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				if seen[e.Name] {
					t.Fatalf("%s seen twice", e.Name)
				}
				seen[e.Name] = true
			}
			if next == "" {
				break
			}
			tok = next
		}
		if len(seen) != 6 { // five plus Default
			t.Fatalf("paging saw %d experiments, want 6", len(seen))
		}
		_, _, err = s.SearchExperiments(ctx, tracking.SearchExperimentsRequest{MaxResults: 50001})
		wantCode(t, err, errs.InvalidArgument)
		_, _, err = s.SearchExperiments(ctx, tracking.SearchExperimentsRequest{PageToken: "%%%"})
		wantCode(t, err, errs.InvalidArgument)
	})
}

func TestRunLogging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		run := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{UserID: "ana", StartTime: 1000}))
		id := run.Info.RunID
		if run.Info.RunName == "" || run.Info.ArtifactURI != "mlflow-artifacts:/0/"+id+"/artifacts" {
			t.Fatalf("new run info = %+v", run.Info)
		}

		err := s.LogBatch(ctx, id,
			[]tracking.Metric{
				{Key: "loss", Value: 0.9, Timestamp: 10, Step: 0},
				{Key: "loss", Value: 0.5, Timestamp: 20, Step: 1},
				{Key: "loss", Value: 0.7, Timestamp: 15, Step: 1}, // same step, earlier: not latest
				{Key: "gap", Value: math.NaN(), Timestamp: 5, Step: 0},
				{Key: "loss", Value: 0.9, Timestamp: 10, Step: 0}, // exact duplicate: kept once
			},
			[]tracking.Param{{Key: "lr", Value: "0.1"}},
			[]tracking.Tag{{Key: "mlflow.runName", Value: "baseline"}})
		if err != nil {
			t.Fatal(err)
		}
		// Re-logging a param with the same value is fine; another value is not,
		// and the refused batch must leave no trace.
		if err := s.LogParam(ctx, id, tracking.Param{Key: "lr", Value: "0.1"}); err != nil {
			t.Fatal(err)
		}
		err = s.LogBatch(ctx, id, []tracking.Metric{{Key: "ghost", Value: 1, Timestamp: 1}}, []tracking.Param{{Key: "lr", Value: "0.2"}}, nil)
		wantCode(t, err, errs.InvalidArgument)

		got := must[tracking.Run](t)(s.GetRun(ctx, id))
		if got.Info.RunName != "baseline" {
			t.Fatalf("run name = %q, want baseline (set through mlflow.runName)", got.Info.RunName)
		}
		latest := map[string]float64{}
		for _, m := range got.Metrics {
			latest[m.Key] = m.Value
		}
		if latest["loss"] != 0.5 || !math.IsNaN(latest["gap"]) || len(latest) != 2 {
			t.Fatalf("latest metrics = %v", latest)
		}
		history, _, err := s.GetMetricHistory(ctx, id, "loss", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != 3 {
			t.Fatalf("history has %d points, want 3: %+v", len(history), history)
		}

		// Invalid keys and limits are refused before anything is written.
		for _, bad := range []struct {
			name    string
			metrics []tracking.Metric
			params  []tracking.Param
		}{
			{"bad char", []tracking.Metric{{Key: "a*b", Value: 1}}, nil},
			{"path escape", []tracking.Metric{{Key: "../x", Value: 1}}, nil},
			{"not normal", []tracking.Metric{{Key: "a//b", Value: 1}}, nil},
			{"long param", nil, []tracking.Param{{Key: "p", Value: string(make([]byte, 6001))}}},
			{"too many", make([]tracking.Metric, 1001), nil},
		} {
			wantCode(t, s.LogBatch(ctx, id, bad.metrics, bad.params, nil), errs.InvalidArgument)
		}

		if err := s.DeleteRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.LogMetric(ctx, id, tracking.Metric{Key: "loss", Value: 1, Timestamp: 1}), errs.InvalidArgument)
		if err := s.RestoreRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteTag(ctx, id, "nope"), errs.NotFound)
		_, err = s.GetRun(ctx, "0123456789abcdef0123456789abcdef")
		wantCode(t, err, errs.NotFound)
		_, err = s.GetRun(ctx, "../../etc")
		wantCode(t, err, errs.InvalidArgument)

		end := int64(5000)
		info, err := s.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: id, Status: tracking.StatusFinished, EndTime: &end})
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != tracking.StatusFinished || info.EndTime == nil || *info.EndTime != 5000 {
			t.Fatalf("updated run info = %+v", info)
		}
		_, err = s.UpdateRun(ctx, tracking.UpdateRunRequest{RunID: id, Status: "DONE"})
		wantCode(t, err, errs.InvalidArgument)
	})
}

func TestMetricHistoryPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		run := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{}))
		id := run.Info.RunID
		for b := range 3 {
			var ms []tracking.Metric
			for i := range 1000 {
				step := int64(b*1000 + i)
				ms = append(ms, tracking.Metric{Key: "acc", Value: float64(step) / 3000, Timestamp: step, Step: step})
			}
			if err := s.LogBatch(ctx, id, ms, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		var all []tracking.Metric
		tok := ""
		for {
			page, next, err := s.GetMetricHistory(ctx, id, "acc", 700, tok)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			tok = next
		}
		if len(all) != 3000 {
			t.Fatalf("paged history has %d points, want 3000", len(all))
		}
		for i, m := range all {
			if m.Step != int64(i) {
				t.Fatalf("point %d has step %d: not in step order", i, m.Step)
			}
		}
		ten := int64(10)
		sampled, err := s.SampleMetricHistory(ctx, tracking.BulkIntervalRequest{RunIDs: []string{id}, MetricKey: "acc", MaxResults: &ten})
		if err != nil {
			t.Fatal(err)
		}
		// MLflow's sampling: 10 steps at a stride of 300, plus the last.
		if len(sampled) != 11 || sampled[0].Step != 0 || sampled[9].Step != 2700 || sampled[10].Step != 2999 {
			t.Fatalf("sampled %d points from %d to %d", len(sampled), sampled[0].Step, sampled[len(sampled)-1].Step)
		}
		run = must[tracking.Run](t)(s.GetRun(ctx, id))
		if run.Metrics[0].Step != 2999 {
			t.Fatalf("latest step = %d, want 2999", run.Metrics[0].Step)
		}
	})
}

func TestSearchRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		exp := must[string](t)(s.CreateExperiment(ctx, "search", "", nil))
		var ids []string
		for i := range 6 {
			run := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp, RunName: fmt.Sprintf("r%d", i), StartTime: int64(1000 + i)}))
			ids = append(ids, run.Info.RunID)
			metrics := []tracking.Metric{{Key: "auc", Value: float64(i) / 10, Timestamp: 1}}
			if i == 5 {
				metrics = nil // no auc at all
			}
			if err := s.LogBatch(ctx, run.Info.RunID, metrics, []tracking.Param{{Key: "model", Value: []string{"gbdt", "linear"}[i%2]}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		names := func(runs []tracking.Run) string {
			var out []string
			for _, r := range runs {
				out = append(out, r.Info.RunName)
			}
			return fmt.Sprint(out)
		}
		runs, _, err := s.SearchRuns(ctx, tracking.SearchRunsRequest{
			ExperimentIDs: []string{exp}, Filter: "metrics.auc > 0.15 and params.model = 'gbdt'", OrderBy: []string{"metrics.auc DESC"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(runs); got != "[r4 r2]" {
			t.Fatalf("filtered runs = %s, want [r4 r2]", got)
		}
		runs, _, err = s.SearchRuns(ctx, tracking.SearchRunsRequest{ExperimentIDs: []string{exp}, OrderBy: []string{"metrics.auc ASC"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(runs); got != "[r0 r1 r2 r3 r4 r5]" {
			t.Fatalf("ordered runs = %s, want the run without auc last", got)
		}
		if err := s.DeleteRun(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		runs, _, _ = s.SearchRuns(ctx, tracking.SearchRunsRequest{ExperimentIDs: []string{exp}})
		if len(runs) != 5 {
			t.Fatalf("active runs = %d, want 5", len(runs))
		}
		runs, _, _ = s.SearchRuns(ctx, tracking.SearchRunsRequest{ExperimentIDs: []string{exp}, ViewType: tracking.DeletedOnly})
		if got := names(runs); got != "[r0]" {
			t.Fatalf("deleted runs = %s", got)
		}
		_, _, err = s.SearchRuns(ctx, tracking.SearchRunsRequest{ExperimentIDs: []string{exp}, Filter: "metrics.auc > 0.1 OR params.a = 'b'"})
		wantCode(t, err, errs.InvalidArgument)
	})
}

// Concurrent writers share commits; none may fail or lose points.
func TestConcurrentLogBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		const clients, batches, perBatch = 20, 10, 100
		runIDs := make([]string, clients)
		for i := range runIDs {
			runIDs[i] = must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{})).Info.RunID
		}
		var wg sync.WaitGroup
		errc := make(chan error, clients*batches)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					ms := make([]tracking.Metric, perBatch)
					for i := range ms {
						step := int64(b*perBatch + i)
						ms[i] = tracking.Metric{Key: "m", Value: float64(step), Timestamp: step, Step: step}
					}
					errc <- s.LogBatch(ctx, runIDs[c], ms, nil, nil)
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range runIDs {
			h, _, err := s.GetMetricHistory(ctx, id, "m", 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != batches*perBatch {
				t.Fatalf("run %s has %d points, want %d", id, len(h), batches*perBatch)
			}
		}
	})
}
