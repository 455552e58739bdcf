package search

import (
	"context"
	"database/sql"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// The fixture: experiment 1 holds runs r1..r6 and the deleted r8; r7 is in
// experiment 2. The default order (start_time DESC, run_uuid) is
// r6 r5 r3 r4 r2 r1: r3 and r4 share a start time.
//
//	run  name     user   status    start end   acc   lr     env      datasets (context)
//	r1   alpha    alice  FINISHED  10    20    0.9   0.01   prod     train_ds (training)
//	r2   Alpha-2  bob    FAILED    20    NULL  0.5   0.1    Prod     eval_ds (eval)
//	r3   beta     alice  RUNNING   30    NULL  NaN   abc    staging  train_ds
//	r4   alphA    carol  FINISHED  30    40    0     ABC    -        Train_DS (Training)
//	r5   gamma    bob    FINISHED  50    60    -     -      prod     -
//	r6   delta    alice  KILLED    60    70    -1.5  -      -        -
func seed(t testing.TB, db *store.DB) {
	t.Helper()
	nan := math.NaN()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		exec := func(q string, args ...any) {
			if _, err := tx.Exec(db.Q(q), args...); err != nil {
				t.Fatalf("%s %v: %v", q, args, err)
			}
		}
		for _, e := range []struct {
			id       int
			name     string
			stage    string
			ct, last int64
		}{
			{1, "exp-one", "active", 100, 500},
			{2, "exp-two", "active", 200, 400},
			{3, "Exp-Three", "active", 200, 300},
			{4, "other", "active", 50, 600},
			{5, "deleted-exp", "deleted", 300, 300},
		} {
			exec(`INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, ?, '', ?, ?, ?)`,
				e.id, e.name, e.stage, e.ct, e.last)
		}
		for _, tg := range [][3]any{{1, "team", "ml"}, {2, "team", "ML"}, {3, "team", "data"}} {
			exec(`INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)`, tg[0], tg[1], tg[2])
		}
		for _, r := range []struct {
			id, name, user, status string
			exp                    int
			start                  int64
			end                    any
			uri, stage             string
		}{
			{"r1", "alpha", "alice", "FINISHED", 1, 10, 20, "s3://b/1/r1/artifacts", "active"},
			{"r2", "Alpha-2", "bob", "FAILED", 1, 20, nil, "s3://b/1/r2/artifacts", "active"},
			{"r3", "beta", "alice", "RUNNING", 1, 30, nil, `C:\runs\r3`, "active"},
			{"r4", "alphA", "carol", "FINISHED", 1, 30, 40, "s3://b/1/r4/artifacts", "active"},
			{"r5", "gamma", "bob", "FINISHED", 1, 50, 60, "file:///tmp/r5_x", "active"},
			{"r6", "delta", "alice", "KILLED", 1, 60, 70, "s3://b/1/r6/artifacts", "active"},
			{"r7", "alpha", "alice", "FINISHED", 2, 70, 80, "s3://b/2/r7/artifacts", "active"},
			{"r8", "alpha", "alice", "FINISHED", 1, 80, 90, "s3://b/1/r8/artifacts", "deleted"},
		} {
			exec(`INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.id, r.exp, r.name, r.user, r.status, r.start, r.end, r.stage, r.uri)
		}
		for _, m := range []struct {
			run, key string
			v        float64
		}{
			{"r1", "acc", 0.9}, {"r2", "acc", 0.5}, {"r3", "acc", nan}, {"r4", "acc", 0}, {"r6", "acc", -1.5},
			{"r7", "acc", 0.9}, {"r8", "acc", 0.9},
			{"r1", "my metric", 1}, {"r2", "my metric", 2},
			{"r1", "big", math.Inf(1)}, {"r2", "big", math.Inf(-1)}, {"r3", "big", 5},
			{"r1", "loss", 1}, {"r2", "loss", 1}, {"r3", "loss", 2}, {"r4", "loss", 2}, {"r5", "loss", 3}, {"r6", "loss", 3},
		} {
			isNaN, v := 0, m.v
			if math.IsNaN(v) {
				isNaN, v = 1, 0
			}
			exec(`INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES (?, ?, 0, 0, ?, ?)`, m.run, m.key, v, isNaN)
		}
		for _, p := range [][3]string{
			{"r1", "lr", "0.01"}, {"r2", "lr", "0.1"}, {"r3", "lr", "abc"}, {"r4", "lr", "ABC"},
			{"r1", "model", "lr"}, {"r2", "model", "rf"}, {"r3", "model", "lr"},
			{"r6", "a b", "x"}, {"r7", "lr", "abc"},
		} {
			exec(`INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)`, p[0], p[1], p[2])
		}
		for _, tg := range [][3]string{
			{"r1", "env", "prod"}, {"r2", "env", "Prod"}, {"r3", "env", "staging"}, {"r5", "env", "prod"},
			{"r1", "mlflow.runName", "alpha"},
		} {
			exec(`INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)`, tg[0], tg[1], tg[2])
		}
		for _, d := range [][3]string{{"d1", "train_ds", "abc123"}, {"d2", "eval_ds", "def456"}, {"d3", "Train_DS", "ghi789"}} {
			exec(`INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source) VALUES (?, 1, ?, ?, 'local', 's')`, d[0], d[1], d[2])
		}
		for _, in := range [][3]string{{"r1", "d1", "training"}, {"r2", "d2", "eval"}, {"r3", "d1", ""}, {"r4", "d3", "Training"}} {
			exec(`INSERT INTO run_inputs (run_uuid, dataset_uuid) VALUES (?, ?)`, in[0], in[1])
			if in[2] != "" {
				exec(`INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES (?, ?, 'mlflow.data.context', ?)`, in[0], in[1], in[2])
			}
		}
		// An unrelated input tag must not count as a context.
		exec(`INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES ('r3', 'd1', 'other', 'training')`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dialectOf(db *store.DB) Dialect {
	if db.Dialect == store.Postgres {
		return Postgres
	}
	return SQLite
}

func searchRuns(t *testing.T, db *store.DB, filter string, orderBy ...string) []string {
	t.Helper()
	f, err := ParseRunFilter(filter)
	if err != nil {
		t.Fatalf("ParseRunFilter(%q): %v", filter, err)
	}
	obs := make([]OrderBy, 0, len(orderBy))
	for _, s := range orderBy {
		ob, err := ParseRunOrderBy(s)
		if err != nil {
			t.Fatalf("ParseRunOrderBy(%q): %v", s, err)
		}
		obs = append(obs, ob)
	}
	c, err := CompileRuns(f, obs, dialectOf(db))
	if err != nil {
		t.Fatalf("CompileRuns(%q, %q): %v", filter, orderBy, err)
	}
	q := "SELECT r.run_uuid FROM runs r " + c.Joins + " WHERE r.experiment_id IN (?) AND r.lifecycle_stage = 'active'"
	args := append(append([]any{}, c.JoinArgs...), 1)
	if c.Where != "" {
		q += " AND (" + c.Where + ")"
		args = append(args, c.WhereArgs...)
	}
	q += " ORDER BY " + c.OrderBy
	return queryIDs(t, db, q, args)
}

func searchExperiments(t *testing.T, db *store.DB, filter string, orderBy ...string) []string {
	t.Helper()
	f, err := ParseExperimentFilter(filter)
	if err != nil {
		t.Fatalf("ParseExperimentFilter(%q): %v", filter, err)
	}
	obs := make([]OrderBy, 0, len(orderBy))
	for _, s := range orderBy {
		ob, err := ParseExperimentOrderBy(s)
		if err != nil {
			t.Fatalf("ParseExperimentOrderBy(%q): %v", s, err)
		}
		obs = append(obs, ob)
	}
	c, err := CompileExperiments(f, obs, dialectOf(db))
	if err != nil {
		t.Fatalf("CompileExperiments(%q, %q): %v", filter, orderBy, err)
	}
	q := "SELECT CAST(e.experiment_id AS TEXT) FROM experiments e " + c.Joins + " WHERE e.lifecycle_stage = 'active'"
	args := append([]any{}, c.JoinArgs...)
	if c.Where != "" {
		q += " AND (" + c.Where + ")"
		args = append(args, c.WhereArgs...)
	}
	q += " ORDER BY " + c.OrderBy
	return queryIDs(t, db, q, args)
}

func queryIDs(t *testing.T, db *store.DB, q string, args []any) []string {
	t.Helper()
	rows, err := db.Read.Query(db.Q(q), args...)
	if err != nil {
		t.Fatalf("%s %v: %v", q, args, err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func ids(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

func TestRunSearchSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		seed(t, db)
		for _, c := range []struct {
			filter string
			want   string
		}{
			{"", "r6 r5 r3 r4 r2 r1"},
			{"metrics.acc > 0.4", "r2 r1"},
			// NaN is stored as 0 but must not compare as 0.
			{"metrics.acc = 0", "r4"},
			{"metrics.acc != 0", "r6 r3 r2 r1"},
			{"metrics.acc <= 0", "r6 r4"},
			{"metrics.acc >= -1.5", "r6 r4 r2 r1"},
			{"metrics.acc < 100", "r6 r4 r2 r1"},
			{"metrics.`my metric` >= 2", "r2"},
			{`metrics."my metric" = 1`, "r1"},
			{"metrics.big > 1e308", "r1"},
			{"metrics.big < 0", "r2"},
			{"metrics.big >= 1e999", "r1"},
			{"metrics.big > -1e999", "r3 r1"},
			{"metrics.nothing != 1", ""},
			{"params.lr = 'abc'", "r3"},
			{"params.lr != 'abc'", "r4 r2 r1"},
			{"params.lr LIKE 'a%'", "r3"},
			{"params.lr LIKE 'A%'", "r4"},
			{"params.lr ILIKE 'a%'", "r3 r4"},
			{"params.lr LIKE '0._1'", "r1"},
			{"params.lr IS NULL", "r6 r5"},
			{"params.lr IS NOT NULL", "r3 r4 r2 r1"},
			{`params."a b" = 'x'`, "r6"},
			{"params.lr = 'abc' AND params.model = 'lr'", "r3"},
			{"tags.env = 'prod'", "r5 r1"},
			{"tags.env ILIKE 'PROD'", "r5 r2 r1"},
			{"tags.env IS NULL", "r6 r4"},
			{"tags.mlflow.runName = 'alpha'", "r1"},
			{"attributes.status = 'FINISHED'", "r5 r4 r1"},
			{"status != 'FINISHED'", "r6 r3 r2"},
			{"run_name LIKE 'alpha%'", "r1"},
			{"run_name ILIKE 'alpha%'", "r4 r2 r1"},
			{"run_name LIKE 'alph_'", "r4 r1"},
			{"attributes.`Run Name` = 'beta'", "r3"},
			{"run_id IN ('r1', 'r3')", "r3 r1"},
			{"run_id NOT IN ('r1', 'r3')", "r6 r5 r4 r2"},
			{"attributes.run_id = 'r7'", ""},
			{"start_time >= 30", "r6 r5 r3 r4"},
			{"created < 30", "r2 r1"},
			{"start_time = 29.5", ""},
			{"start_time > 29.5", "r6 r5 r3 r4"},
			{"start_time < 1e30", "r6 r5 r3 r4 r2 r1"},
			{"end_time > 0", "r6 r5 r4 r1"},
			{"end_time != 40", "r6 r5 r1"},
			{"user_id = 'alice'", "r6 r3 r1"},
			// Backslashes are literal in LIKE patterns on both dialects.
			{`artifact_uri LIKE 'C:\runs\%'`, "r3"},
			{`artifact_uri LIKE '%\_x'`, ""},
			{`artifact_uri LIKE '%r5_x'`, "r5"},
			{"artifact_uri LIKE '%'", "r6 r5 r3 r4 r2 r1"},
			{"datasets.name = 'train_ds'", "r3 r1"},
			{"datasets.name ILIKE 'TRAIN_DS'", "r3 r4 r1"},
			{"datasets.name LIKE '%_ds'", "r3 r2 r1"},
			{"datasets.digest IN ('def456', 'ghi789')", "r4 r2"},
			{"datasets.name NOT IN ('train_ds')", "r4 r2"},
			{"datasets.name != 'train_ds'", "r4 r2"},
			{"datasets.context = 'training'", "r1"},
			{"datasets.context ILIKE 'training'", "r4 r1"},
			{"datasets.context IN ('eval')", "r2"},
			{"datasets.name = 'train_ds' AND datasets.context = 'training'", "r1"},
			{"metrics.acc > 0 AND params.model = 'lr' AND tags.env = 'prod' AND status = 'FINISHED' AND start_time < 50", "r1"},
			{"params.a = 'it''s'", ""},
		} {
			if got := searchRuns(t, db, c.filter); !reflect.DeepEqual(got, ids(c.want)) {
				t.Errorf("filter %q: got %v, want %v", c.filter, got, ids(c.want))
			}
		}
		for _, c := range []struct {
			filter  string
			orderBy []string
			want    string
		}{
			// Metrics: values, then NaN, then missing, in either direction.
			{"", []string{"metrics.acc"}, "r6 r4 r2 r1 r3 r5"},
			{"", []string{"metrics.acc DESC"}, "r1 r2 r4 r6 r3 r5"},
			{"", []string{"metrics.big"}, "r2 r3 r1 r6 r5 r4"},
			{"", []string{"metrics.big DESC"}, "r1 r3 r2 r6 r5 r4"},
			// Text sorts by code point and missing values come last.
			{"", []string{"params.lr"}, "r1 r2 r4 r3 r6 r5"},
			{"", []string{"params.lr DESC"}, "r3 r4 r2 r1 r6 r5"},
			{"", []string{"tags.env"}, "r2 r5 r1 r3 r6 r4"},
			{"", []string{"tags.env DESC", "metrics.acc"}, "r3 r1 r5 r2 r6 r4"},
			{"", []string{"tags.nothing"}, "r6 r5 r3 r4 r2 r1"},
			{"", []string{"end_time"}, "r1 r4 r5 r6 r3 r2"},
			{"", []string{"end_time DESC"}, "r6 r5 r4 r1 r3 r2"},
			{"", []string{"start_time"}, "r1 r2 r3 r4 r5 r6"},
			{"", []string{"created DESC"}, "r6 r5 r3 r4 r2 r1"},
			{"", []string{"run_name"}, "r2 r4 r1 r3 r6 r5"},
			{"", []string{"attributes.run_id DESC"}, "r6 r5 r4 r3 r2 r1"},
			{"", []string{"status", "user_id DESC"}, "r2 r4 r5 r1 r6 r3"},
			{"", []string{"metrics.loss", "params.model"}, "r1 r2 r3 r4 r6 r5"},
			// Join arguments come before the filter's.
			{"params.lr IS NOT NULL", []string{"metrics.acc DESC"}, "r1 r2 r4 r3"},
			{"metrics.acc != 0", []string{"tags.env", "params.lr DESC"}, "r2 r1 r3 r6"},
		} {
			if got := searchRuns(t, db, c.filter, c.orderBy...); !reflect.DeepEqual(got, ids(c.want)) {
				t.Errorf("filter %q order_by %q: got %v, want %v", c.filter, c.orderBy, got, ids(c.want))
			}
		}
	})
}

func TestExperimentSearchSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		seed(t, db)
		for _, c := range []struct {
			filter  string
			orderBy []string
			want    string
		}{
			{"", nil, "2 3 1 4"},
			{"name = 'exp-one'", nil, "1"},
			{"name LIKE 'exp%'", nil, "2 1"},
			{"attribute.name ILIKE 'exp%'", nil, "2 3 1"},
			{"name != 'other'", nil, "2 3 1"},
			{"creation_time >= 200", nil, "2 3"},
			{"last_update_time < 450 AND creation_time > 100", nil, "2 3"},
			{"creation_time > 99.5", nil, "2 3 1"},
			{"tags.team = 'ml'", nil, "1"},
			{"tags.team ILIKE 'ML'", nil, "2 1"},
			{"tags.team != 'ml'", nil, "2 3"},
			{"tag.team LIKE '%a%'", nil, "3"},
			{"", []string{"name"}, "3 1 2 4"},
			{"", []string{"name DESC"}, "4 2 1 3"},
			{"", []string{"creation_time"}, "4 1 3 2"},
			{"", []string{"creation_time", "experiment_id"}, "4 1 2 3"},
			{"", []string{"last_update_time DESC"}, "4 1 2 3"},
			{"name LIKE '%-%'", []string{"experiment_id DESC"}, "3 2 1"},
		} {
			if got := searchExperiments(t, db, c.filter, c.orderBy...); !reflect.DeepEqual(got, ids(c.want)) {
				t.Errorf("filter %q order_by %q: got %v, want %v", c.filter, c.orderBy, got, ids(c.want))
			}
		}
	})
}

// TestCompiledSQL pins the shape of the SQL so that changes to it are
// deliberate.
func TestCompiledSQL(t *testing.T) {
	f, err := ParseRunFilter("metrics.acc > 1 AND params.p ILIKE 'x%' AND run_id IN ('a', 'b') AND datasets.context = 'train'")
	if err != nil {
		t.Fatal(err)
	}
	ob, err := ParseRunOrderBy("metrics.acc DESC")
	if err != nil {
		t.Fatal(err)
	}
	got, err := CompileRuns(f, []OrderBy{ob}, Postgres)
	if err != nil {
		t.Fatal(err)
	}
	want := SQL{
		Joins:    "LEFT JOIN latest_metrics o1 ON o1.run_uuid = r.run_uuid AND o1.key = ?",
		JoinArgs: []any{"acc"},
		Where: "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? AND m.is_nan = 0 AND m.value > ?)" +
			" AND EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = ? AND p.value ILIKE ? ESCAPE '')" +
			" AND r.run_uuid IN (?, ?)" +
			" AND EXISTS (SELECT 1 FROM run_input_tags it WHERE it.run_uuid = r.run_uuid AND it.key = ? AND it.value = ?)",
		WhereArgs: []any{"acc", 1.0, "p", "x%", "a", "b", "mlflow.data.context", "train"},
		OrderBy:   "CASE WHEN o1.is_nan = 1 THEN 1 WHEN o1.run_uuid IS NULL THEN 2 ELSE 0 END, o1.value DESC, r.start_time DESC, r.run_uuid",
		Tiers: []Tier{
			{From: "latest_metrics o1 JOIN runs r ON r.run_uuid = o1.run_uuid", Cond: "o1.key = ? AND o1.is_nan <> 1", CondArgs: []any{"acc"},
				OrderBy: "o1.value DESC, r.start_time DESC, r.run_uuid"},
			{From: "latest_metrics o1 JOIN runs r ON r.run_uuid = o1.run_uuid", Cond: "o1.key = ? AND o1.is_nan = 1", CondArgs: []any{"acc"},
				OrderBy: "o1.value DESC, r.start_time DESC, r.run_uuid"},
			{From: "runs r", Cond: "NOT EXISTS (SELECT 1 FROM latest_metrics o1 WHERE o1.run_uuid = r.run_uuid AND o1.key = ?)", CondArgs: []any{"acc"},
				OrderBy: "r.start_time DESC, r.run_uuid"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CompileRuns\n got %#v\nwant %#v", got, want)
	}

	got, err = CompileRuns(Filter{}, nil, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if got.Where != "" || got.Joins != "" || got.OrderBy != "r.start_time DESC, r.run_uuid" {
		t.Errorf("empty CompileRuns = %#v", got)
	}
	got, err = CompileExperiments(Filter{}, nil, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if got.Where != "" || got.OrderBy != "e.creation_time DESC, e.experiment_id" {
		t.Errorf("empty CompileExperiments = %#v", got)
	}
}
