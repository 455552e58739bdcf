package datasets_test

import (
	"context"
	"testing"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// Each new data version is audited in its commit's transaction; a commit of
// unchanged content creates no version and no audit row.
func TestCommitAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.push(t, "churn", tree{"a.csv": "x,y\n1,2\n"})
		f.push(t, "churn", tree{"a.csv": "x,y\n1,2\n"})
		ctx := auth.WithPrincipal(context.Background(), auth.Principal{Username: "dana", Role: auth.RoleEditor})
		files := tree{"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n1,2\n"}.files()
		if _, created, err := f.svc.Commit(ctx, "churn", datasets.Commit{Files: files, Message: "add b"}, "dana"); err != nil || !created {
			t.Fatalf("commit: %v %v", created, err)
		}
		es, _, err := audit.New(db).List(context.Background(), audit.Filter{Target: &audit.Target{Type: audit.TypeDataset, Name: "churn"}})
		if err != nil || len(es) != 2 {
			t.Fatalf("audit: %+v %v", es, err)
		}
		if es[0].Action != "dataset_version.create" || es[0].Target.String() != "data:churn@v2" || es[0].Actor != "dana" ||
			es[0].Before != nil || es[1].Actor != audit.Anonymous || es[1].Target.Version != 1 {
			t.Fatalf("audit rows: %+v", es)
		}
		v2, err := f.svc.Version(context.Background(), "churn", 2, false)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"digest":"` + v2.Digest + `","file_count":2,"message":"add b","total_size":16}`
		if string(es[0].After) != want || es[0].Time != v2.CreationTime {
			t.Fatalf("after %s at %d, want %s at %d", es[0].After, es[0].Time, want, v2.CreationTime)
		}
	})
}
