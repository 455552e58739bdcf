package tracking_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func TestSearchDatasets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		e1 := must[string](t)(s.CreateExperiment(ctx, "d1", "", nil))
		e2 := must[string](t)(s.CreateExperiment(ctx, "d2", "", nil))
		e3 := must[string](t)(s.CreateExperiment(ctx, "d3", "", nil))
		newRun := func(exp string) string {
			return must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp})).Info.RunID
		}
		ds := func(name, digest string) tracking.Dataset {
			return tracking.Dataset{Name: name, Digest: digest, SourceType: "local", Source: "/data/" + name}
		}
		ctxTag := func(v string) []tracking.Tag {
			return []tracking.Tag{{Key: tracking.TagContext, Value: v}, {Key: "other", Value: "x"}}
		}
		log := func(run string, inputs ...tracking.DatasetInput) {
			t.Helper()
			if err := s.LogInputs(ctx, run, inputs); err != nil {
				t.Fatal(err)
			}
		}
		a, b := newRun(e1), newRun(e1)
		log(a, tracking.DatasetInput{Dataset: ds("train", "d1"), Tags: ctxTag("training")},
			tracking.DatasetInput{Dataset: ds("eval", "d2"), Tags: ctxTag("eval")})
		// The same dataset in the same context from another run is one summary;
		// without a context tag it is another, with no context.
		log(b, tracking.DatasetInput{Dataset: ds("train", "d1"), Tags: ctxTag("training")},
			tracking.DatasetInput{Dataset: ds("raw", "d3")})
		log(newRun(e2), tracking.DatasetInput{Dataset: ds("train", "d1"), Tags: ctxTag("training")})
		log(newRun(e3), tracking.DatasetInput{Dataset: ds("other", "d4")})

		str := func(v string) *string { return &v }
		got, err := s.SearchDatasets(ctx, []string{e2, e1})
		if err != nil {
			t.Fatal(err)
		}
		want := []tracking.DatasetSummary{
			{ExperimentID: e1, Name: "eval", Digest: "d2", Context: str("eval")},
			{ExperimentID: e1, Name: "raw", Digest: "d3"},
			{ExperimentID: e1, Name: "train", Digest: "d1", Context: str("training")},
			{ExperimentID: e2, Name: "train", Digest: "d1", Context: str("training")},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SearchDatasets:\n got %s\nwant %s", summaries(got), summaries(want))
		}
		// Well-formed ids that name no experiment find nothing.
		if got, err := s.SearchDatasets(ctx, []string{"424242", "id_0"}); err != nil || len(got) != 0 {
			t.Errorf("unknown experiments: %v, %v", got, err)
		}

		many := make([]string, 21)
		for i := range many {
			many[i] = fmt.Sprint(i)
		}
		for _, tc := range []struct {
			ids  []string
			want string
		}{
			{nil, "SearchDatasets request must specify at least one experiment_id."},
			{many, "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."},
			{[]string{"1 OR 1=1"}, "experiment"},
		} {
			_, err := s.SearchDatasets(ctx, tc.ids)
			if errs.CodeOf(err) != errs.InvalidArgument || err == nil || !strings.Contains(errs.Message(err), tc.want) {
				t.Errorf("SearchDatasets(%v) = %v, want InvalidArgument %q", tc.ids, err, tc.want)
			}
		}
	})
}

func summaries(ds []tracking.DatasetSummary) string {
	var b strings.Builder
	for _, d := range ds {
		c := "<nil>"
		if d.Context != nil {
			c = *d.Context
		}
		fmt.Fprintf(&b, "{%s %s %s %s} ", d.ExperimentID, d.Name, d.Digest, c)
	}
	return b.String()
}
