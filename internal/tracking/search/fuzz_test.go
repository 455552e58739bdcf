package search

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// The fuzz targets check more than "no panic": every error must be a coded
// InvalidArgument (so the API answers 400, never 500), and every filter that
// parses must compile for both dialects, bind exactly one argument per
// placeholder, and run on SQLite against the test fixture.

func FuzzParseRunFilter(f *testing.F) {
	for _, c := range validRunFilters {
		f.Add(c.in)
	}
	for _, c := range invalidRunFilters {
		f.Add(c.in)
	}
	db := fuzzDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseRunFilter(s)
		if err != nil {
			checkCoded(t, s, err)
			return
		}
		for _, d := range []Dialect{SQLite, Postgres} {
			c, err := CompileRuns(flt, nil, d)
			if err != nil {
				t.Fatalf("ParseRunFilter(%q) parsed to %#v, which does not compile: %v", s, flt, err)
			}
			checkPlaceholders(t, s, c)
		}
		c, _ := CompileRuns(flt, nil, SQLite)
		execRuns(t, db, s, c)
	})
}

func FuzzParseExperimentFilter(f *testing.F) {
	for _, c := range validExperimentFilters {
		f.Add(c.in)
	}
	for _, c := range invalidExperimentFilters {
		f.Add(c.in)
	}
	for _, c := range validRunFilters {
		f.Add(c.in)
	}
	db := fuzzDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseExperimentFilter(s)
		if err != nil {
			checkCoded(t, s, err)
			return
		}
		for _, d := range []Dialect{SQLite, Postgres} {
			c, err := CompileExperiments(flt, nil, d)
			if err != nil {
				t.Fatalf("ParseExperimentFilter(%q) parsed to %#v, which does not compile: %v", s, flt, err)
			}
			checkPlaceholders(t, s, c)
		}
		c, _ := CompileExperiments(flt, nil, SQLite)
		q := "SELECT e.experiment_id FROM experiments e " + c.Joins + " WHERE e.lifecycle_stage = 'active'"
		if c.Where != "" {
			q += " AND (" + c.Where + ")"
		}
		execQuery(t, db, s, q+" ORDER BY "+c.OrderBy, append(c.JoinArgs, c.WhereArgs...))
	})
}

func FuzzParseOrderBy(f *testing.F) {
	for _, c := range validRunOrderBys {
		f.Add(c.in)
	}
	for _, c := range invalidRunOrderBys {
		f.Add(c.in)
	}
	for _, c := range validExperimentOrderBys {
		f.Add(c.in)
	}
	db := fuzzDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		if ob, err := ParseRunOrderBy(s); err != nil {
			checkCoded(t, s, err)
		} else {
			c, err := CompileRuns(Filter{}, []OrderBy{ob}, Postgres)
			if err != nil {
				t.Fatalf("ParseRunOrderBy(%q) = %+v, which does not compile: %v", s, ob, err)
			}
			checkPlaceholders(t, s, c)
			c, _ = CompileRuns(Filter{}, []OrderBy{ob}, SQLite)
			execRuns(t, db, s, c)
		}
		if ob, err := ParseExperimentOrderBy(s); err != nil {
			checkCoded(t, s, err)
		} else if _, err := CompileExperiments(Filter{}, []OrderBy{ob}, SQLite); err != nil {
			t.Fatalf("ParseExperimentOrderBy(%q) = %+v, which does not compile: %v", s, ob, err)
		}
	})
}

func fuzzDB(f *testing.F) *store.DB {
	db := storetest.SQLite(f)
	seed(f, db)
	return db
}

func checkCoded(t *testing.T, s string, err error) {
	t.Helper()
	if !errs.Is(err, errs.InvalidArgument) || errs.Message(err) == "" {
		t.Fatalf("%q: error %v (code %v) is not an invalid-argument error with a message", s, err, errs.CodeOf(err))
	}
}

// checkPlaceholders makes sure no input text reached the SQL: the fragments
// are built only from fixed text, so their placeholders and arguments must
// pair up exactly.
func checkPlaceholders(t *testing.T, s string, c SQL) {
	t.Helper()
	if n := countPlaceholders(c.Joins); n != len(c.JoinArgs) {
		t.Fatalf("%q: Joins %q has %d placeholders for %d args", s, c.Joins, n, len(c.JoinArgs))
	}
	if n := countPlaceholders(c.Where); n != len(c.WhereArgs) {
		t.Fatalf("%q: Where %q has %d placeholders for %d args", s, c.Where, n, len(c.WhereArgs))
	}
	if n := countPlaceholders(c.OrderBy); n != 0 {
		t.Fatalf("%q: OrderBy %q has placeholders", s, c.OrderBy)
	}
}

func countPlaceholders(q string) int {
	// Rebind knows which question marks are placeholders.
	return strings.Count(store.Rebind(q), "$")
}

func execRuns(t *testing.T, db *store.DB, s string, c SQL) {
	t.Helper()
	q := "SELECT r.run_uuid FROM runs r " + c.Joins + " WHERE r.experiment_id IN (1, 2) AND r.lifecycle_stage = 'active'"
	if c.Where != "" {
		q += " AND (" + c.Where + ")"
	}
	execQuery(t, db, s, q+" ORDER BY "+c.OrderBy, append(append([]any{}, c.JoinArgs...), c.WhereArgs...))
}

func execQuery(t *testing.T, db *store.DB, s, q string, args []any) {
	t.Helper()
	rows, err := db.Read.Query(q, args...)
	if err != nil {
		t.Fatalf("%q: query %s %v: %v", s, q, args, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id sql.RawBytes
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%q: query %s %v: %v", s, q, args, err)
	}
}
