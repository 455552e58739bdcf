package tracking_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// A search ordered by a metric is answered tier by tier (real values, NaN,
// missing); every page of it must be the page the single ORDER BY query
// gives, on data with ties, NaN, infinities, missing metrics, deleted runs
// and runs in another experiment.
func TestTieredSearchMatchesSingleQuery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tiered := newService(t, db)
		tracking.SetTiers(tiered, true)
		single := newService(t, db)
		tracking.SetTiers(single, false)
		rng := rand.New(rand.NewPCG(1, 2))

		exp1 := must[string](t)(tiered.CreateExperiment(ctx, "tiers-1", "", nil))
		exp2 := must[string](t)(tiered.CreateExperiment(ctx, "tiers-2", "", nil))
		values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 0.5, 0.5, 2, 1e10}
		for i := range 80 {
			exp := exp1
			if i%5 == 0 {
				exp = exp2
			}
			run := must[tracking.Run](t)(tiered.CreateRun(ctx, tracking.CreateRunRequest{
				ExperimentID: exp, StartTime: 1000 + int64(rng.IntN(20)), // ties on start_time
			}))
			var ms []tracking.Metric
			for _, key := range []string{"m1", "m2"} {
				if rng.IntN(4) == 0 {
					continue // missing
				}
				ms = append(ms, tracking.Metric{Key: key, Value: values[rng.IntN(len(values))], Timestamp: 1, Step: 0})
			}
			ps := []tracking.Param{{Key: "p1", Value: string(rune('a' + rng.IntN(3)))}}
			if err := tiered.LogBatch(ctx, run.Info.RunID, ms, ps, nil); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(10) == 0 {
				if err := tiered.DeleteRun(ctx, run.Info.RunID); err != nil {
					t.Fatal(err)
				}
			}
		}

		orders := [][]string{
			{"metrics.m1 DESC"},
			{"metrics.m1"},
			{"metrics.m1 ASC", "params.p1 DESC"},
			{"metrics.m1", "metrics.m2 DESC"},
			{"metrics.m1 DESC", "attributes.start_time ASC"},
			{"metrics.m1", "attributes.run_id DESC"},
			{"metrics.m1 DESC", "tags.`mlflow.runName`"},
		}
		filters := []string{"", "metrics.m2 > 0", "params.p1 = 'a'", "metrics.m1 != 0.5"}
		views := []tracking.ViewType{tracking.ActiveOnly, tracking.DeletedOnly, tracking.All}
		for _, order := range orders {
			for _, filter := range filters {
				for _, view := range views {
					for _, page := range []int64{3, 4, 17, 1000} {
						name := fmt.Sprintf("%v/%q/%v/%d", order, filter, view, page)
						req := tracking.SearchRunsRequest{ExperimentIDs: []string{exp1, exp2}, Filter: filter, ViewType: view, MaxResults: page, OrderBy: order}
						if page == 4 {
							req.ExperimentIDs = []string{exp1}
						}
						var got, want []string
						for token, n := "", 0; n == 0 || token != ""; n++ {
							req.PageToken = token
							a, ta, err := tiered.SearchRuns(ctx, req)
							if err != nil {
								t.Fatalf("%s: %v", name, err)
							}
							b, tb, err := single.SearchRuns(ctx, req)
							if err != nil {
								t.Fatalf("%s: %v", name, err)
							}
							if ta != tb || !slices.Equal(runIDs(a), runIDs(b)) {
								t.Fatalf("%s, page %d: tiered %v (next %q), single query %v (next %q)", name, n, runIDs(a), ta, runIDs(b), tb)
							}
							got, want, token = append(got, runIDs(a)...), append(want, runIDs(b)...), ta
						}
						if len(got) == 0 && view != tracking.DeletedOnly {
							t.Errorf("%s: no runs: the comparison proves nothing", name)
						}
						// Walking the pages must give exactly the one-page answer:
						// nothing skipped or repeated across page boundaries.
						whole := req
						whole.PageToken, whole.MaxResults = "", 1000
						all, _, err := single.SearchRuns(ctx, whole)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if !slices.Equal(want, runIDs(all)) {
							t.Fatalf("%s: pages %v, one page %v", name, want, runIDs(all))
						}
					}
				}
			}
		}
	})
}

func runIDs(runs []tracking.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.Info.RunID
	}
	return out
}
