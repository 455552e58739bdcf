package runs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

type fixture struct {
	t       *testing.T
	ctx     context.Context
	s       *Service
	tr      *tracking.Service
	data    *datasets.Service
	reg     *registry.Service
	blobs   *blob.Store
	project string
	stop    func()
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
	data := datasets.New(db, blobs)
	reg := registry.New(db, blobs, tr)
	s := New(db, blobs, tr, data, reg, t.TempDir())
	s.Executor = &engine.Local{Grace: 200 * time.Millisecond}
	s.TrackingURL = "http://127.0.0.1:1"
	s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fixture{t: t, ctx: ctx, s: s, tr: tr, data: data, reg: reg, blobs: blobs, project: t.TempDir()}
}

// work runs the service's runner until the test ends.
func (f *fixture) work() {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { f.s.Work(ctx); close(done) }()
	f.stop = func() { cancel(); <-done }
	f.t.Cleanup(f.stop)
}

func (f *fixture) write(name, body string) {
	f.t.Helper()
	p := filepath.Join(f.project, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) put(specText string) {
	f.t.Helper()
	name := strings.TrimPrefix(strings.SplitN(specText, "\n", 2)[0], "name: ")
	if _, err := f.s.PutPipeline(f.ctx, name, "pipeline.yaml", []byte(specText), f.project, "alice"); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) start(pipeline string, params map[string]string) Run {
	f.t.Helper()
	run, err := f.s.Start(f.ctx, StartRequest{Pipeline: pipeline, Params: params, Trigger: Trigger{Kind: TriggerManual}, By: "alice"})
	if err != nil {
		f.t.Fatal(err)
	}
	return run
}

// wait polls until the run has ended.
func (f *fixture) wait(id string) Run {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		run, err := f.s.GetRun(f.ctx, id)
		if err != nil {
			f.t.Fatal(err)
		}
		if run.Done() {
			return run
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("run %s still %s after 60s", id, run.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stepStatuses(run Run) map[string]string {
	out := map[string]string{}
	for _, st := range run.Steps {
		out[st.Name] = st.Status
	}
	return out
}

func (f *fixture) wantSteps(run Run, want map[string]string) {
	f.t.Helper()
	got := stepStatuses(run)
	for k, v := range want {
		if got[k] != v {
			f.t.Errorf("step %s: %s, want %s (run %s: %s)", k, got[k], v, run.Status, run.Error)
		}
	}
}

func tagsOf(run tracking.Run) map[string]string {
	out := map[string]string{}
	for _, t := range run.Tags {
		out[t.Key] = t.Value
	}
	return out
}

const trackedSpec = `name: tracked
params:
  rows: 3
steps:
  prepare:
    command: printf "$MLFLOW_RUN_ID" > run-id.txt && echo prepared ${params.rows}
    outputs:
      id: run-id.txt
  score:
    command: |
      printf '{"auc": 0.9%s}' ${params.rows} > metrics.json
      echo "experiment=$MLFLOW_EXPERIMENT_ID uri=$MLFLOW_TRACKING_URI"
    inputs:
      prev: ${steps.prepare.outputs.id}
    outputs:
      metrics: {path: metrics.json, type: metrics}
`

// A run is a parent tracking run with a child per step; steps see their
// own run through MLFLOW_RUN_ID, metrics outputs land in the child, and a
// re-run restores every step from the cache, tracked as hits.
func TestRunIsTrackedWithChildRunsPerStep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.put(trackedSpec)
		f.work()
		run := f.wait(f.start("tracked", nil).ID)
		if run.Status != Succeeded {
			t.Fatalf("run %s: %s", run.Status, run.Error)
		}
		f.wantSteps(run, map[string]string{"prepare": "succeeded", "score": "succeeded"})
		parent, err := f.tr.GetRun(f.ctx, run.MLflowRunID)
		if err != nil {
			t.Fatal(err)
		}
		if parent.Info.Status != "FINISHED" || tagsOf(parent)["slipway.pipeline_run_id"] != run.ID {
			t.Errorf("parent run: status %s, tags %v", parent.Info.Status, tagsOf(parent))
		}
		exp, err := f.tr.GetExperiment(f.ctx, run.ExperimentID)
		if err != nil || exp.Name != "pipelines/tracked" {
			t.Errorf("experiment %+v, %v; want pipelines/tracked", exp, err)
		}
		got, err := os.ReadFile(filepath.Join(f.project, "run-id.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != run.Steps[0].MLflowRunID {
			t.Errorf("the step saw MLFLOW_RUN_ID=%q, its tracking run is %q", got, run.Steps[0].MLflowRunID)
		}
		score, err := f.tr.GetRun(f.ctx, run.Steps[1].MLflowRunID)
		if err != nil {
			t.Fatal(err)
		}
		tags := tagsOf(score)
		if tags["mlflow.parentRunId"] != run.MLflowRunID || tags["slipway.step"] != "score" || tags["slipway.cache"] != "miss" {
			t.Errorf("child run tags: %v", tags)
		}
		if len(score.Metrics) != 1 || score.Metrics[0].Key != "auc" || score.Metrics[0].Value != 0.93 {
			t.Errorf("child run metrics: %+v, want auc=0.93", score.Metrics)
		}
		chunk, err := f.s.ReadLog(f.ctx, run.ID, "score", 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := "experiment=" + run.ExperimentID + " uri=http://127.0.0.1:1\n"; string(chunk.Data) != want || !chunk.Complete {
			t.Errorf("log = %q (complete %v), want %q", chunk.Data, chunk.Complete, want)
		}

		again := f.wait(f.start("tracked", nil).ID)
		f.wantSteps(again, map[string]string{"prepare": "cached", "score": "cached"})
		if again.Number != run.Number+1 {
			t.Errorf("second run is #%d, want #%d", again.Number, run.Number+1)
		}
		hit, err := f.tr.GetRun(f.ctx, again.Steps[1].MLflowRunID)
		if err != nil {
			t.Fatal(err)
		}
		if tagsOf(hit)["slipway.cache"] != "hit" || hit.Info.Status != "FINISHED" || len(hit.Metrics) != 1 {
			t.Errorf("cached step's run: tags %v status %s metrics %+v", tagsOf(hit), hit.Info.Status, hit.Metrics)
		}
		// A param the step uses changes its key: a miss, explained.
		third := f.wait(f.start("tracked", map[string]string{"rows": "4"}).ID)
		f.wantSteps(third, map[string]string{"prepare": "succeeded", "score": "succeeded"})
		if r := third.Steps[0].Result; r == nil || !strings.Contains(r.Decision.Reason, "rows") {
			t.Errorf("decision of prepare after a param change: %+v", r)
		}
	})
}

// Bad input is refused before anything is queued.
func TestBadRequestsChangeNothing(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	cases := []struct {
		name, spec, dir, want string
	}{
		{"tracked", "name: tracked\nsteps: {a: {command: true, bogus: 1}}\n", f.project, "bogus"},
		{"other", trackedSpec, f.project, `names pipeline "tracked", not "other"`},
		{"tracked", trackedSpec, "relative/dir", "must be an absolute path"},
		{"tracked", trackedSpec, filepath.Join(f.project, "missing"), "is not a directory"},
	}
	for _, c := range cases {
		_, err := f.s.PutPipeline(f.ctx, c.name, "pipeline.yaml", []byte(c.spec), c.dir, "")
		if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("put %s: %v, want invalid argument mentioning %q", c.name, err, c.want)
		}
	}
	if ps, _ := f.s.ListPipelines(f.ctx); len(ps) != 0 {
		t.Fatalf("bad specs registered %d pipelines", len(ps))
	}
	f.put(trackedSpec)
	_, err := f.s.Start(f.ctx, StartRequest{Pipeline: "tracked", Params: map[string]string{"rows": "many"}, Trigger: Trigger{Kind: TriggerManual}})
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "rows") {
		t.Errorf("bad param: %v", err)
	}
	_, err = f.s.Start(f.ctx, StartRequest{Pipeline: "nope", Trigger: Trigger{Kind: TriggerManual}})
	if errs.CodeOf(err) != errs.NotFound {
		t.Errorf("unknown pipeline: %v", err)
	}
	if runs, _, _ := f.s.ListRuns(f.ctx, ListRunsRequest{}); len(runs) != 0 {
		t.Errorf("bad starts queued %d runs", len(runs))
	}
}

const slowSpec = `name: slow
steps:
  sleep:
    command: echo $$ > pid.txt; sleep 30
`

// Cancelling a running run ends its step's processes and records the run,
// its step and its tracking runs as cancelled.
func TestCancelRunningRun(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.put(slowSpec)
	f.work()
	run := f.start("slow", nil)
	pidFile := filepath.Join(f.project, "pid.txt")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("step never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := f.s.Cancel(f.ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	ended := f.wait(run.ID)
	if ended.Status != Cancelled || ended.Steps[0].Status != "cancelled" {
		t.Fatalf("after cancel: run %s, step %s", ended.Status, ended.Steps[0].Status)
	}
	parent, _ := f.tr.GetRun(f.ctx, ended.MLflowRunID)
	if parent.Info.Status != "KILLED" {
		t.Errorf("parent tracking run %s, want KILLED", parent.Info.Status)
	}
	if _, err := f.s.Cancel(f.ctx, run.ID); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("cancelling an ended run: %v, want failed precondition", err)
	}
}

const resumeSpec = `name: resume
steps:
  first:
    command: date +%s%N > first.txt
    cache: false
    outputs:
      out: first.txt
  second:
    command: test -f go.txt && cp ${steps.first.outputs.out} second.txt
    outputs:
      out: second.txt
`

// Resume keeps the steps that succeeded and runs the failed one.
func TestResumeFailedRun(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.put(resumeSpec)
	f.work()
	failed := f.wait(f.start("resume", nil).ID)
	if failed.Status != Failed {
		t.Fatalf("first run %s", failed.Status)
	}
	first, _ := os.ReadFile(filepath.Join(f.project, "first.txt"))
	f.write("go.txt", "")
	resumed, err := f.s.Resume(f.ctx, failed.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	done := f.wait(resumed.ID)
	f.wantSteps(done, map[string]string{"first": "reused", "second": "succeeded"})
	if done.ResumedFrom != failed.ID || done.Trigger.Kind != TriggerResume {
		t.Errorf("resumed run: from %q trigger %+v", done.ResumedFrom, done.Trigger)
	}
	if again, _ := os.ReadFile(filepath.Join(f.project, "first.txt")); string(again) != string(first) {
		t.Errorf("the reused step ran again")
	}
	if _, err := f.s.Resume(f.ctx, done.ID, ""); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("resuming a succeeded run: %v", err)
	}
}

// A run left running by a server that died is marked failed by the next
// one, and its tracking runs are ended.
func TestAbandonedRunIsMarkedFailed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.put(slowSpec)
		run := f.start("slow", nil)
		// A previous server on this machine claimed the run and died:
		// its pid no longer exists.
		dead := deadPID(t)
		host, _ := os.Hostname()
		err := f.exec(`UPDATE pipeline_runs SET status = 'running', owner = ?, heartbeat = ? WHERE run_id = ?`,
			host+"/"+dead+"/abcdef12", time.Now().UnixMilli(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.work()
		got := f.wait(run.ID)
		if got.Status != Failed || !strings.Contains(got.Error, "stopped") {
			t.Fatalf("abandoned run: %s %q", got.Status, got.Error)
		}
		// A run whose server is elsewhere is judged by its heartbeat.
		other := f.start("slow", nil)
		f.stop()
		err = f.exec(`UPDATE pipeline_runs SET status = 'running', owner = 'elsewhere/1/x', heartbeat = ? WHERE run_id = ?`,
			time.Now().Add(-time.Hour).UnixMilli(), other.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.work()
		if got := f.wait(other.ID); got.Status != Failed {
			t.Fatalf("run with a stale heartbeat: %s", got.Status)
		}
	})
}

func (f *fixture) exec(query string, args ...any) error {
	return f.s.db.Tx(f.ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(f.ctx, f.s.db.Q(query), args...)
		return err
	})
}

func deadPID(t *testing.T) string {
	for pid := 4_000_000; pid > 3_000_000; pid -= 7919 {
		if !processAlive("h/"+strconv.Itoa(pid)+"/x", "h") {
			return strconv.Itoa(pid)
		}
	}
	t.Skip("no free pid found")
	return ""
}

const inputsSpec = `name: inputs
steps:
  read:
    command: cat ${inputs.table}/t.csv ${inputs.model}/weights.txt > seen.txt
    inputs:
      table: data:table@latest
      model: models:/scorer@champion
    outputs:
      seen: seen.txt
`

// Data and model inputs are fetched from the stores by version; a new
// data version or a moved alias misses, and the step's run records the
// versions it read (the data version as a dataset input, for lineage).
func TestDataAndModelInputs(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.dataVersion("table", "x\n1\n")
	f.modelVersion("scorer", "w=1\n", "champion")
	f.put(inputsSpec)
	f.work()
	first := f.wait(f.start("inputs", nil).ID)
	if first.Status != Succeeded {
		t.Fatalf("run: %s %s", first.Status, first.Error)
	}
	if got, _ := os.ReadFile(filepath.Join(f.project, "seen.txt")); string(got) != "x\n1\nw=1\n" {
		t.Fatalf("seen.txt = %q", got)
	}
	step, err := f.tr.GetRun(f.ctx, first.Steps[0].MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	tags := tagsOf(step)
	if tags["slipway.input.table"] != "data:table@v1" || tags["slipway.input.model"] != "models:/scorer/1" || len(step.Inputs) != 1 {
		t.Errorf("step run: tags %v, inputs %+v", tags, step.Inputs)
	}
	if again := f.wait(f.start("inputs", nil).ID); again.Steps[0].Status != "cached" {
		t.Errorf("unchanged inputs: %s", again.Steps[0].Status)
	}
	f.modelVersion("scorer", "w=2\n", "champion")
	moved := f.wait(f.start("inputs", nil).ID)
	if moved.Steps[0].Status != "succeeded" || !strings.Contains(moved.Steps[0].Result.Decision.Reason, "input model changed") {
		t.Errorf("after the alias moved: %s %+v", moved.Steps[0].Status, moved.Steps[0].Result)
	}
	if got, _ := os.ReadFile(filepath.Join(f.project, "seen.txt")); string(got) != "x\n1\nw=2\n" {
		t.Errorf("seen.txt after the alias moved = %q", got)
	}
}

func (f *fixture) dataVersion(name, content string) {
	f.t.Helper()
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	if _, err := f.data.PutObject(f.ctx, digest, int64(len(content)), strings.NewReader(content)); err != nil {
		f.t.Fatal(err)
	}
	_, _, err := f.data.Commit(f.ctx, name, datasets.Commit{Files: []datasets.File{{Path: "t.csv", Digest: digest, Size: int64(len(content))}}}, "alice")
	if err != nil {
		f.t.Fatal(err)
	}
}

// modelVersion registers a model whose one file holds weights and points
// alias at it.
func (f *fixture) modelVersion(name, weights, alias string) {
	f.t.Helper()
	run, err := f.tr.CreateRun(f.ctx, tracking.CreateRunRequest{ExperimentID: tracking.DefaultExperimentID})
	if err != nil {
		f.t.Fatal(err)
	}
	root, err := blob.ResolveLocation(run.Info.ArtifactURI)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.blobs.Put(f.ctx, root+"/model/weights.txt", strings.NewReader(weights)); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.CreateRegisteredModel(f.ctx, name, nil, nil); err != nil && !errs.Is(err, errs.AlreadyExists) {
		f.t.Fatal(err)
	}
	v, err := f.reg.CreateModelVersion(f.ctx, registry.CreateModelVersionRequest{Name: name, Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.reg.SetAlias(f.ctx, name, alias, v.Version); err != nil {
		f.t.Fatal(err)
	}
}
