package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

func record(t *testing.T, db *store.DB, ctx context.Context, c audit.Change) {
	t.Helper()
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return audit.New(db).Record(ctx, tx, c) }); err != nil {
		t.Fatal(err)
	}
}

// The database itself refuses to change or remove a recorded entry.
func TestAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		record(t, db, ctx, audit.Change{Time: 5, Action: "registered_model.create", Target: audit.Model("m"), After: map[string]string{"name": "m"}})
		stmts := []string{`UPDATE audit_log SET actor = 'mallory'`, `DELETE FROM audit_log`}
		if db.Dialect == store.Postgres {
			stmts = append(stmts, `TRUNCATE audit_log`)
		}
		for _, q := range stmts {
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: got %v, want the append-only refusal", q, err)
			}
		}
		es, _, err := audit.New(db).List(ctx, audit.Filter{})
		if err != nil || len(es) != 1 || es[0].Actor != audit.Anonymous || string(es[0].After) != `{"name":"m"}` {
			t.Fatalf("after refused changes: %+v %v", es, err)
		}
	})
}

func TestListFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		bob := auth.WithPrincipal(ctx, auth.Principal{Username: "bob", Role: auth.RoleEditor})
		record(t, db, ctx, audit.Change{Time: 10, Action: "registered_model.create", Target: audit.Model("a"), After: 1})
		record(t, db, bob, audit.Change{Time: 20, Action: "model_version.create", Target: audit.ModelVersion("a", 1), After: 1})
		record(t, db, bob, audit.Change{Time: 30, Action: "registered_model.set_tag", Target: audit.Model("a"), Before: 1, After: 2})
		record(t, db, ctx, audit.Change{Time: 40, Action: "dataset_version.create", Target: audit.DatasetVersion("a", 1), After: 1})
		record(t, db, ctx, audit.Change{Time: 50, Action: "registered_model.create", Target: audit.Model("b"), After: 1})
		// A change whose before equals its after changed nothing.
		record(t, db, ctx, audit.Change{Time: 60, Action: "registered_model.set_tag", Target: audit.Model("b"), Before: 1, After: 1})

		l := audit.New(db)
		for _, c := range []struct {
			name string
			f    audit.Filter
			want []int64 // times, newest first
		}{
			{"all", audit.Filter{}, []int64{50, 40, 30, 20, 10}},
			{"model a", audit.Filter{Target: &audit.Target{Type: audit.TypeModel, Name: "a"}}, []int64{30, 20, 10}},
			{"version a/1", audit.Filter{Target: &audit.Target{Type: audit.TypeModel, Name: "a", Version: 1}}, []int64{20}},
			{"dataset a", audit.Filter{Target: &audit.Target{Type: audit.TypeDataset, Name: "a"}}, []int64{40}},
			{"action prefix", audit.Filter{Action: "registered_model."}, []int64{50, 30, 10}},
			{"action underscore is literal", audit.Filter{Action: "registered_model_"}, nil},
			{"actor", audit.Filter{Actor: "bob"}, []int64{30, 20}},
			{"since until", audit.Filter{Since: 20, Until: 40}, []int64{30, 20}},
		} {
			es, next, err := l.List(ctx, c.f)
			if err != nil || next != "" {
				t.Fatalf("%s: %v %q", c.name, err, next)
			}
			var got []int64
			for _, e := range es {
				got = append(got, e.Time)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: times %v, want %v", c.name, got, c.want)
			}
		}

		// Pages follow one another without gaps or repeats.
		var seen []int64
		token := ""
		for {
			es, next, err := l.List(ctx, audit.Filter{MaxResults: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				seen = append(seen, e.Time)
			}
			if next == "" {
				break
			}
			token = next
		}
		if fmt.Sprint(seen) != "[50 40 30 20 10]" {
			t.Fatalf("paged: %v", seen)
		}
		for _, f := range []audit.Filter{{MaxResults: -1}, {MaxResults: audit.MaxListResults + 1}, {PageToken: "x"}} {
			if _, _, err := l.List(ctx, f); !errs.Is(err, errs.InvalidArgument) {
				t.Errorf("%+v: %v, want invalid argument", f, err)
			}
		}
	})
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		in   string
		want audit.Target
	}{
		{"models:/credit", audit.Model("credit")},
		{"models:/credit/4", audit.ModelVersion("credit", 4)},
		{"models:/team/credit", audit.Model("team/credit")},
		{"models:/team/credit/4", audit.ModelVersion("team/credit", 4)},
		{"data:churn", audit.Dataset("churn")},
		{"data:churn@v3", audit.DatasetVersion("churn", 3)},
	} {
		got, err := audit.ParseTarget(c.in)
		if err != nil || got != c.want || got.String() != c.in {
			t.Errorf("%s: %+v (%q) %v", c.in, got, got.String(), err)
		}
	}
	for _, in := range []string{"data:/churn", "data:/churn@v3"} {
		if got, err := audit.ParseTarget(in); err != nil || "data:/"+strings.TrimPrefix(got.String(), "data:") != in {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "credit", "models:/", "data:", "data:/", "runs:/x", "models:/a/0"} {
		if _, err := audit.ParseTarget(bad); !errs.Is(err, errs.InvalidArgument) {
			t.Errorf("%q: %v, want invalid argument", bad, err)
		}
	}
}
