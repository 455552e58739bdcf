package serving

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

type fixture struct {
	t     testing.TB
	ctx   context.Context
	s     *Service
	tr    *tracking.Service
	reg   *registry.Service
	blobs *blob.Store
	audit *audit.Log
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	blobs, err := blob.Open(ctx, t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(db, blobs, tr)
	log := audit.New(db)
	s := New(db, reg, log, t.TempDir())
	s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fixture{t: t, ctx: ctx, s: s, tr: tr, reg: reg, blobs: blobs, audit: log}
}

// register registers file (a path under testdata of the XGBoost runtime)
// as the next version of name, as model/<base of file>.
func (f *fixture) register(name, file string) int64 {
	f.t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		f.t.Fatal(err)
	}
	run, err := f.tr.CreateRun(f.ctx, tracking.CreateRunRequest{ExperimentID: tracking.DefaultExperimentID})
	if err != nil {
		f.t.Fatal(err)
	}
	root, _ := blob.ResolveLocation(run.Info.ArtifactURI)
	base := file[strings.LastIndexByte(file, '/')+1:]
	if _, err := f.blobs.Put(f.ctx, root+"/model/"+base, strings.NewReader(string(body))); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.CreateRegisteredModel(f.ctx, name, nil, nil); err != nil && !errs.Is(err, errs.AlreadyExists) {
		f.t.Fatal(err)
	}
	v, err := f.reg.CreateModelVersion(f.ctx, registry.CreateModelVersionRequest{Name: name, Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID})
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Version
}

const smallModel = "../models/xgboost/testdata/small.json"

// shares routes n requests without a routing key and returns the share
// each version answered, in percent.
func (f *fixture) shares(name string, n int) map[string]float64 {
	f.t.Helper()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		m, _, err := f.s.Route(name, "")
		if err != nil {
			f.t.Fatal(err)
		}
		counts[m.VersionString()]++
	}
	out := map[string]float64{}
	for v, c := range counts {
		out[v] = 100 * float64(c) / float64(n)
	}
	return out
}

// Create, canary, promote, shadow and rollback move traffic as they say:
// over 10,000 requests each version's share is within 2 points of its
// weight, a routing key always lands on the same version, and every change
// is a revision in the audit log.
func TestCanaryPromoteRollback(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.register("credit", smallModel)
		f.register("credit", smallModel)
		d, err := f.s.Create(f.ctx, "credit", "models:/credit/1")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Serving) != 1 || d.Serving[0].Version != "1" || d.Serving[0].Platform != "xgboost" {
			t.Fatalf("serving after create: %+v", d.Serving)
		}
		if got := f.shares("credit", 1000); got["1"] != 100 {
			t.Fatalf("shares after create: %v", got)
		}
		if _, err := f.s.Canary(f.ctx, "credit", "models:/credit/2", 10); err != nil {
			t.Fatal(err)
		}
		got := f.shares("credit", 10000)
		if math.Abs(got["2"]-10) > 2 || math.Abs(got["1"]-90) > 2 {
			t.Errorf("canary at 10%%: shares %v", got)
		}
		for i := 0; i < 50; i++ {
			key := "user-" + strconv.Itoa(i)
			first, _, _ := f.s.Route("credit", key)
			for j := 0; j < 5; j++ {
				again, _, _ := f.s.Route("credit", key)
				if again != first {
					t.Fatalf("routing key %s went to v%d, then v%d", key, first.Version, again.Version)
				}
			}
		}
		if _, err := f.s.SetShadow(f.ctx, "credit", "models:/credit/2", 50); err != nil {
			t.Fatal(err)
		}
		shadowed := 0
		for i := 0; i < 2000; i++ {
			if _, sh, _ := f.s.Route("credit", ""); sh != nil {
				shadowed++
			}
		}
		if shadowed < 850 || shadowed > 1150 {
			t.Errorf("shadow at 50%%: %d of 2000 mirrored", shadowed)
		}
		d, err = f.s.Promote(f.ctx, "credit")
		if err != nil {
			t.Fatal(err)
		}
		if got := f.shares("credit", 1000); got["2"] != 100 || d.Split.Shadow == nil {
			t.Errorf("after promote: shares %v, shadow %+v", got, d.Split.Shadow)
		}
		d, err = f.s.Rollback(f.ctx, "credit")
		if err != nil {
			t.Fatal(err)
		}
		if d.Revision != 5 || len(d.Split.Routes) != 2 {
			t.Errorf("rollback restored %+v at revision %d", d.Split, d.Revision)
		}
		revs, err := f.s.Revisions(f.ctx, "credit")
		if err != nil || len(revs) != 5 || revs[0].Action != "rollback to revision 3" {
			t.Errorf("revisions: %+v %v", revs, err)
		}
		entries, _, err := f.audit.List(f.ctx, audit.Filter{Target: &audit.Target{Type: audit.TypeDeployment, Name: "credit"}})
		if err != nil || len(entries) != 5 {
			t.Errorf("audit entries: %d %v", len(entries), err)
		}
	})
}

// A deployment that follows an alias serves the alias's new version once
// it moves, and a version that cannot be served is refused with nothing
// changed.
func TestAliasFollowAndRefusals(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.register("credit", smallModel)
	f.register("credit", smallModel)
	if err := f.reg.SetAlias(f.ctx, "credit", "production", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Create(f.ctx, "credit", "models:/credit@production"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.SetAlias(f.ctx, "credit", "production", 2); err != nil {
		t.Fatal(err)
	}
	f.s.sync(f.ctx)
	if m, _, _ := f.s.Route("credit", ""); m.Version != 2 {
		t.Fatalf("after the alias moved: serving v%d", m.Version)
	}

	broken := t.TempDir() + "/notes.json"
	os.WriteFile(broken, []byte(`{"not": "a model"}`), 0o644)
	f.register("notes", broken)
	cases := []struct {
		name, model string
		percent     int
		want        errs.Code
		contains    string
	}{
		{"credit", "models:/notes/1", 10, errs.InvalidArgument, "cannot be served"},
		{"credit", "models:/credit/9", 10, errs.NotFound, "split.routes[1].model models:/credit/9"},
		{"credit", "credit.json", 10, errs.InvalidArgument, "not a registry reference"},
		{"credit", "models:/credit/2", 100, errs.InvalidArgument, "percent: 100"},
		{"nope", "models:/credit/2", 10, errs.NotFound, `deployment "nope" does not exist`},
	}
	for _, c := range cases {
		_, err := f.s.Canary(f.ctx, c.name, c.model, c.percent)
		if errs.CodeOf(err) != c.want || !strings.Contains(errs.Message(err), c.contains) {
			t.Errorf("canary %s %s: %v, want %v mentioning %q", c.name, c.model, err, c.want, c.contains)
		}
	}
	if d, _ := f.s.Get(f.ctx, "credit"); d.Revision != 1 {
		t.Errorf("refused changes were recorded: revision %d", d.Revision)
	}
	if _, err := f.s.Create(f.ctx, "credit", "models:/credit/1"); errs.CodeOf(err) != errs.AlreadyExists {
		t.Errorf("second create: %v", err)
	}
	if _, err := f.s.Create(f.ctx, "bad/name", "models:/credit/1"); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("bad name: %v", err)
	}
}
