package lineage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/lineage"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	tr    *tracking.Service
	reg   *registry.Service
	data  *datasets.Service
	blobs *blob.Store
	lin   *lineage.Service
}

func newFixture(t *testing.T, db *store.DB) *fixture {
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
	f := &fixture{t: t, ctx: ctx, tr: tr, reg: registry.New(db, blobs, tr), data: datasets.New(db, blobs), blobs: blobs}
	f.lin = lineage.New(db, f.tr, f.reg, f.data)
	return f
}

// files is a data version's content by path.
type files map[string]string

func (fs files) manifest() []datasets.File {
	var out []datasets.File
	for p, c := range fs {
		sum := sha256.Sum256([]byte(c))
		out = append(out, datasets.File{Path: p, Digest: hex.EncodeToString(sum[:]), Size: int64(len(c))})
	}
	return out
}

// dataVersion uploads content and commits it as the next version of name.
func (f *fixture) dataVersion(name string, content files) datasets.Version {
	f.t.Helper()
	m := content.manifest()
	for _, fl := range m {
		if _, err := f.data.PutObject(f.ctx, fl.Digest, fl.Size, strings.NewReader(content[fl.Path])); err != nil {
			f.t.Fatal(err)
		}
	}
	v, _, err := f.data.Commit(f.ctx, name, datasets.Commit{Files: m}, "alice")
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// run creates a finished-looking run that logged a param, a metric, the
// source tags and one MLflow dataset per digest, with model files among
// its artifacts.
func (f *fixture) run(name string, digests ...string) string {
	f.t.Helper()
	run, err := f.tr.CreateRun(f.ctx, tracking.CreateRunRequest{RunName: name, Tags: []tracking.Tag{
		{Key: lineage.TagGitCommit, Value: "c0ffee" + name}, {Key: lineage.TagSourceName, Value: "train.py"}}})
	if err != nil {
		f.t.Fatal(err)
	}
	id := run.Info.RunID
	err = f.tr.LogBatch(f.ctx, id, []tracking.Metric{{Key: "auc", Value: 0.91, Timestamp: 1, Step: 3}, {Key: "odd", Value: math.NaN(), Timestamp: 1}},
		[]tracking.Param{{Key: "lr", Value: "0.1"}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	var inputs []tracking.DatasetInput
	for i, d := range digests {
		inputs = append(inputs, tracking.DatasetInput{
			Tags:    []tracking.Tag{{Key: tracking.TagContext, Value: "training"}},
			Dataset: tracking.Dataset{Name: name + "-input-" + string(rune('a'+i)), Digest: d, SourceType: "slipway", Source: "data"},
		})
	}
	if len(inputs) > 0 {
		if err := f.tr.LogInputs(f.ctx, id, inputs); err != nil {
			f.t.Fatal(err)
		}
	}
	root, err := blob.ResolveLocation(run.Info.ArtifactURI)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.blobs.Put(f.ctx, root+"/model/MLmodel", strings.NewReader("flavors: {}\n"+name)); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// register creates the model if needed and registers source as its next
// version.
func (f *fixture) register(model, source, runID string) registry.ModelVersion {
	f.t.Helper()
	if _, err := f.reg.CreateRegisteredModel(f.ctx, model, nil, nil); err != nil && !errs.Is(err, errs.AlreadyExists) {
		f.t.Fatal(err)
	}
	v, err := f.reg.CreateModelVersion(f.ctx, registry.CreateModelVersionRequest{Name: model, Source: source, RunID: runID})
	if err != nil {
		f.t.Fatalf("register %s from %s: %v", model, source, err)
	}
	return v
}

func (f *fixture) graph(kind lineage.Kind, id string, dir lineage.Direction, depth int) lineage.Graph {
	f.t.Helper()
	g, err := f.lin.Graph(f.ctx, lineage.Query{Kind: kind, ID: id, Direction: dir, Depth: depth})
	if err != nil {
		f.t.Fatalf("lineage of %s %s: %v", kind, id, err)
	}
	return g
}

// nodes lists a graph's nodes as kind:id, sorted.
func nodes(g lineage.Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.String())
	}
	slices.Sort(out)
	return out
}

// edges lists a graph's edges as "from relation to", sorted.
func edges(g lineage.Graph) []string {
	var out []string
	for _, e := range g.Edges {
		out = append(out, e.From.String()+" "+string(e.Relation)+" "+e.To.String())
	}
	slices.Sort(out)
	return out
}

func node(t *testing.T, g lineage.Graph, ref string) lineage.Node {
	t.Helper()
	for _, n := range g.Nodes {
		if n.String() == ref {
			return n
		}
	}
	t.Fatalf("no node %s in %v", ref, nodes(g))
	return lineage.Node{}
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestModelUpToData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		v := f.dataVersion("credit", files{"train.csv": "a,b\n1,2\n", "test.csv": "a,b\n3,4\n"})
		other := f.dataVersion("other", files{"x.txt": "x"})
		// The first 32 digits, as the docs suggest; an MLflow-computed
		// digest (8 digits) names nothing.
		run := f.run("train", v.Digest[:32], "1a2b3c4d")
		f.register("credit", "runs:/"+run+"/model", run)

		g := f.graph(lineage.KindModel, "credit/1", "", 0)
		if g.Root.String() != "model:credit/1" || g.Direction != lineage.Up || g.Depth != lineage.DefaultDepth || g.Truncated {
			t.Fatalf("root %s, direction %s, depth %d, truncated %v", g.Root, g.Direction, g.Depth, g.Truncated)
		}
		same(t, "nodes", nodes(g), []string{"model:credit/1", "run:" + run, "data:credit@v1"})
		same(t, "edges", edges(g), []string{
			"data:credit@v1 consumed-by run:" + run,
			"run:" + run + " registered-from model:credit/1",
		})
		if g.Nodes[0].String() != "model:credit/1" || g.Nodes[0].Depth != 0 {
			t.Fatalf("root node first: %+v", g.Nodes[0])
		}

		m := node(t, g, "model:credit/1").Model
		if m == nil || m.Status != registry.StatusReady || m.Stage != registry.StageNone || m.RunID != run || len(m.Digest) != 64 {
			t.Fatalf("model details: %+v", m)
		}
		r := node(t, g, "run:"+run)
		if r.Depth != 1 || r.Run == nil {
			t.Fatalf("run node: %+v", r)
		}
		if r.Run.GitCommit != "c0ffeetrain" || r.Run.SourceName != "train.py" || r.Run.Name != "train" || r.Run.ExperimentID != "0" || r.Run.Status != tracking.StatusRunning {
			t.Fatalf("run details: %+v", r.Run)
		}
		if len(r.Run.Params) != 1 || r.Run.Params[0] != (lineage.Param{Key: "lr", Value: "0.1"}) {
			t.Fatalf("params: %+v", r.Run.Params)
		}
		if len(r.Run.Metrics) != 2 || r.Run.Metrics[0].Key != "auc" || r.Run.Metrics[0].Value != 0.91 || r.Run.Metrics[0].Step != 3 {
			t.Fatalf("metrics: %+v", r.Run.Metrics)
		}
		if len(r.Run.Inputs) != 2 || r.Run.Inputs[0].Context != "training" {
			t.Fatalf("inputs: %+v", r.Run.Inputs)
		}
		d := node(t, g, "data:credit@v1")
		if d.Depth != 2 || d.Data == nil || d.Data.Digest != v.Digest || d.Data.FileCount != 2 || d.Data.TotalSize != 16 {
			t.Fatalf("data node: %+v %+v", d, d.Data)
		}
		// NaN survives the JSON the API writes.
		raw, err := json.Marshal(g)
		if err != nil || !strings.Contains(string(raw), `"key":"odd","value":"NaN"`) {
			t.Fatalf("json: %v %s", err, raw)
		}

		// A data version is found by its alias too, and by NAME/latest.
		if g := f.graph(lineage.KindData, "credit", lineage.Down, 0); g.Root.String() != "data:credit@v1" {
			t.Fatalf("data credit resolves to %s", g.Root)
		}
		if g := f.graph(lineage.KindData, other.Name+"@v1", "", 0); len(g.Nodes) != 1 || len(g.Edges) != 0 {
			t.Fatalf("unused data: %v %v", nodes(g), edges(g))
		}
	})
}

func TestDataDownToEveryModel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		v := f.dataVersion("loans", files{"loans.csv": "id,amount\n1,100\n"})
		// Three ways to write the digest: 32 digits bare, sha256: with 29
		// (36 characters, MLflow's limit) and the 12 the CLI prints.
		r1 := f.run("r1", v.Digest[:32])
		r2 := f.run("r2", "sha256:"+v.Digest[:29])
		r3 := f.run("r3", v.Digest[:12])
		// Eleven digits are too few, and a wrong digit names nothing.
		f.run("short", v.Digest[:11])
		f.run("wrong", v.Digest[:31]+flip(v.Digest[31]))

		f.register("risk", "runs:/"+r1+"/model", r1)        // run_id and runs:/ source
		f.register("fraud", "runs:/"+r2+"/model", "")       // runs:/ source only
		mv := f.register("churn", "runs:/"+r3+"/model", r3) // churn/1
		f.register("churn", "runs:/"+r3+"/model", r3)       // churn/2
		f.register("prod", "models:/risk/1", "")            // derived: prod/1
		if err := f.reg.SetAlias(f.ctx, "churn", "champion", mv.Version); err != nil {
			t.Fatal(err)
		}
		f.register("prod", "models:/churn@champion", "") // derived from churn/1: prod/2
		f.register("edge", "models:/prod/2", "")         // two copies away: edge/1

		// The alias moves and the model is renamed: prod/2 still derives
		// from the version it was copied from.
		if err := f.reg.SetAlias(f.ctx, "churn", "champion", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reg.RenameRegisteredModel(f.ctx, "churn", "attrition"); err != nil {
			t.Fatal(err)
		}

		g := f.graph(lineage.KindData, "loans@v1", "", 0)
		if g.Direction != lineage.Down {
			t.Fatalf("direction %s, want down for data", g.Direction)
		}
		same(t, "edges", edges(g), []string{
			"data:loans@v1 consumed-by run:" + r1,
			"data:loans@v1 consumed-by run:" + r2,
			"data:loans@v1 consumed-by run:" + r3,
			"run:" + r1 + " registered-from model:risk/1",
			"run:" + r2 + " registered-from model:fraud/1",
			"run:" + r3 + " registered-from model:attrition/1",
			"run:" + r3 + " registered-from model:attrition/2",
			"model:risk/1 derived-from model:prod/1",
			"model:attrition/1 derived-from model:prod/2",
		})
		if g.Truncated {
			t.Fatal("truncated")
		}

		// Depth bounds the walk: one more level reaches edge/1.
		g = f.graph(lineage.KindData, "loans@v1", lineage.Down, 2)
		same(t, "depth 2", nodes(g), []string{"data:loans@v1", "run:" + r1, "run:" + r2, "run:" + r3,
			"model:risk/1", "model:fraud/1", "model:attrition/1", "model:attrition/2"})
		g = f.graph(lineage.KindData, "loans@v1", lineage.Down, 4)
		if n := node(t, g, "model:edge/1"); n.Depth != 4 || n.Model == nil {
			t.Fatalf("edge/1: %+v", n)
		}
		g = f.graph(lineage.KindData, "loans@v1", lineage.Down, 1)
		same(t, "depth 1", nodes(g), []string{"data:loans@v1", "run:" + r1, "run:" + r2, "run:" + r3})

		// Up from the twice-copied model reaches the data; the alias in
		// the query resolves to today's version.
		g = f.graph(lineage.KindModel, "edge/1", lineage.Up, 4)
		same(t, "up from edge/1", nodes(g), []string{"model:edge/1", "model:prod/2", "model:attrition/1", "run:" + r3, "data:loans@v1"})
		if g := f.graph(lineage.KindModel, "attrition@champion", "", 0); g.Root.String() != "model:attrition/2" {
			t.Fatalf("alias root %s", g.Root)
		}

		// A run's default is both ways: its data, and its models.
		g = f.graph(lineage.KindRun, r1, "", 0)
		if g.Direction != lineage.Both {
			t.Fatalf("run direction %s", g.Direction)
		}
		same(t, "run both ways", nodes(g), []string{"data:loans@v1", "run:" + r1, "model:risk/1", "model:prod/1"})

		// The cap stops the walk and says so.
		lineage.SetMaxNodes(f.lin, 3)
		g = f.graph(lineage.KindData, "loans@v1", lineage.Down, 0)
		if !g.Truncated || len(g.Nodes) != 3 {
			t.Fatalf("capped: truncated %v, %v", g.Truncated, nodes(g))
		}
		for _, e := range g.Edges {
			node(t, g, e.From.String())
			node(t, g, e.To.String())
		}
	})
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

// TestLateDataVersion: the link is computed when asked for, so a data
// version added after a run logged its digest links to that run.
func TestLateDataVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		content := files{"late.csv": "x\n1\n"}
		digest := datasets.VersionDigest(content.manifest())
		run := f.run("early", digest[:32])
		f.register("late", "runs:/"+run+"/model", run)
		if g := f.graph(lineage.KindModel, "late/1", "", 0); len(g.Nodes) != 2 {
			t.Fatalf("before the data version: %v", nodes(g))
		}
		f.dataVersion("late", content)
		g := f.graph(lineage.KindModel, "late/1", "", 0)
		same(t, "after", edges(g), []string{"data:late@v1 consumed-by run:" + run, "run:" + run + " registered-from model:late/1"})
		g = f.graph(lineage.KindData, "late@v1", "", 0)
		same(t, "down", nodes(g), []string{"data:late@v1", "run:" + run, "model:late/1"})
	})
}

// TestMissingNodes: a deleted source version and a deleted run stay in the
// graph, marked missing, so the model's origin is still told.
func TestMissingNodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		run := f.run("gone")
		f.register("base", "runs:/"+run+"/model", run)
		f.register("copy", "models:/base/1", "")
		if err := f.reg.DeleteModelVersion(f.ctx, "base", 1); err != nil {
			t.Fatal(err)
		}
		g := f.graph(lineage.KindModel, "copy/1", lineage.Up, 0)
		same(t, "nodes", nodes(g), []string{"model:copy/1", "model:base/1"})
		if n := node(t, g, "model:base/1"); !n.Missing || n.Model != nil {
			t.Fatalf("deleted source: %+v", n)
		}
		// The deleted version's row links nothing any more.
		g = f.graph(lineage.KindRun, run, lineage.Down, 0)
		same(t, "run down", nodes(g), []string{"run:" + run})
	})
}

func TestErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		run := f.run("r")
		f.dataVersion("d", files{"a": "a"})
		for _, c := range []struct {
			q    lineage.Query
			code errs.Code
			want string
		}{
			{lineage.Query{Kind: "pipeline", ID: "x"}, errs.InvalidArgument, `kind "pipeline": must be data, run, model or deployment`},
			{lineage.Query{Kind: lineage.KindRun, ID: run, Direction: "sideways"}, errs.InvalidArgument, `direction "sideways": must be up, down or both`},
			{lineage.Query{Kind: lineage.KindRun, ID: run, Depth: 11}, errs.InvalidArgument, "depth 11: must be a whole number from 1 to 10"},
			{lineage.Query{Kind: lineage.KindRun, ID: run, Depth: -1}, errs.InvalidArgument, "depth -1"},
			{lineage.Query{Kind: lineage.KindRun}, errs.InvalidArgument, "id is required"},
			{lineage.Query{Kind: lineage.KindModel, ID: "credit"}, errs.InvalidArgument, "NAME/VERSION or NAME@ALIAS"},
			{lineage.Query{Kind: lineage.KindData, ID: "d@vx"}, errs.InvalidArgument, `id "d@vx"`},
			{lineage.Query{Kind: lineage.KindRun, ID: "bad id!"}, errs.InvalidArgument, "Invalid run ID"},
			{lineage.Query{Kind: lineage.KindRun, ID: "0123456789abcdef0123456789abcdef"}, errs.NotFound, "not found"},
			{lineage.Query{Kind: lineage.KindModel, ID: "nope/1"}, errs.NotFound, "not found"},
			{lineage.Query{Kind: lineage.KindModel, ID: "nope@champion"}, errs.NotFound, "not found"},
			{lineage.Query{Kind: lineage.KindData, ID: "d@v9"}, errs.NotFound, "d@v9 not found"},
			{lineage.Query{Kind: lineage.KindData, ID: "nope@v1"}, errs.NotFound, "not found"},
		} {
			_, err := f.lin.Graph(f.ctx, c.q)
			if !errs.Is(err, c.code) || !strings.Contains(errs.Message(err), c.want) {
				t.Errorf("%+v: got %v (%v), want %v mentioning %q", c.q, errs.CodeOf(err), err, c.code, c.want)
			}
		}
		for _, c := range []struct{ kind, dir, depth, want string }{
			{"run", "", "0", "depth 0: must be a whole number from 1 to 10"},
			{"run", "", "three", "depth three"},
			{"run", "UP", "", `direction "UP"`},
			{"runs", "", "", `kind "runs"`},
		} {
			if _, err := lineage.ParseQuery(c.kind, run, c.dir, c.depth); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.want) {
				t.Errorf("ParseQuery(%q, %q, %q): %v, want %q", c.kind, c.dir, c.depth, err, c.want)
			}
		}
		q, err := lineage.ParseQuery("model", "m/1", "", "")
		if err != nil || q.Direction != lineage.Up || q.Depth != lineage.DefaultDepth {
			t.Fatalf("defaults: %+v %v", q, err)
		}
	})
}

// TestProducedData follows a data version back to the run that produced it
// (data add --run) and on to that run's own inputs, and the run forward to
// the data and the model trained on it.
func TestProducedData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		raw := f.dataVersion("raw", files{"raw.csv": "a\n1\n"})
		prep := f.run("prepare", raw.Digest[:32])
		m := files{"features.csv": "a,b\n1,2\n"}.manifest()
		for _, fl := range m {
			if _, err := f.data.PutObject(f.ctx, fl.Digest, fl.Size, strings.NewReader("a,b\n1,2\n")); err != nil {
				t.Fatal(err)
			}
		}
		features, _, err := f.data.Commit(f.ctx, "features", datasets.Commit{Files: m, RunID: prep}, "alice")
		if err != nil || features.RunID != prep {
			t.Fatalf("commit with a run: %+v, %v", features, err)
		}
		train := f.run("train", features.Digest[:32])
		f.register("churn", "runs:/"+train+"/model", train)

		g := f.graph(lineage.KindModel, "churn/1", lineage.Up, 4)
		same(t, "model up", edges(g), []string{
			"data:features@v1 consumed-by run:" + train,
			"data:raw@v1 consumed-by run:" + prep,
			"run:" + prep + " produced data:features@v1",
			"run:" + train + " registered-from model:churn/1",
		})
		g = f.graph(lineage.KindRun, prep, lineage.Down, 3)
		same(t, "prepare down", nodes(g), []string{"run:" + prep, "data:features@v1", "run:" + train, "model:churn/1"})

		if _, _, err := f.data.Commit(f.ctx, "bad", datasets.Commit{Files: m, RunID: "../etc"}, "alice"); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), "run_id") {
			t.Fatalf("a malformed run id: %v", err)
		}
	})
}
