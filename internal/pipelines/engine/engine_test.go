package engine

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// project is a temp project with a local artifact store.
type project struct {
	t     *testing.T
	dir   string
	store string // the artifact folder
	cache *BlobCache
	eng   *Engine
}

func newProject(t *testing.T, files map[string]string) *project {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "proj")
	store, err := blob.Open(context.Background(), filepath.Join(root, "store"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	pr := &project{t: t, dir: dir, store: filepath.Join(root, "store"), cache: NewBlobCache(store)}
	pr.eng = &Engine{Executor: &Local{Grace: 200 * time.Millisecond}, Cache: pr.cache}
	for name, body := range files {
		pr.write(name, body)
	}
	return pr
}

func (pr *project) write(name, body string) {
	pr.t.Helper()
	p := filepath.Join(pr.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		pr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		pr.t.Fatal(err)
	}
}

func (pr *project) read(name string) string {
	pr.t.Helper()
	b, err := os.ReadFile(filepath.Join(pr.dir, filepath.FromSlash(name)))
	if err != nil {
		pr.t.Fatal(err)
	}
	return string(b)
}

func (pr *project) parse(name string, overrides map[string]string) *spec.Pipeline {
	pr.t.Helper()
	p, err := spec.ParseFile(filepath.Join(pr.dir, name))
	if err != nil {
		pr.t.Fatal(err)
	}
	if overrides != nil {
		if err := p.ApplyOverrides(overrides); err != nil {
			pr.t.Fatal(err)
		}
	}
	return p
}

func (pr *project) run(p *spec.Pipeline, opts Options) (*RunResult, error) {
	pr.t.Helper()
	opts.ProjectDir = pr.dir
	if opts.RunDir == "" {
		opts.RunDir = pr.t.TempDir()
	}
	return pr.eng.Run(context.Background(), p, opts)
}

func (pr *project) mustRun(p *spec.Pipeline, opts Options) *RunResult {
	pr.t.Helper()
	r, err := pr.run(p, opts)
	if err != nil {
		pr.t.Fatalf("run: %v\n%s", err, r.Explain())
	}
	return r
}

func statuses(r *RunResult) map[string]Status {
	out := map[string]Status{}
	for _, s := range r.Steps {
		out[s.Name] = s.Status
	}
	return out
}

func wantStatuses(t *testing.T, r *RunResult, want map[string]Status) {
	t.Helper()
	got := statuses(r)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("step %s: status %s, want %s\n%s", name, got[name], w, r.Explain())
		}
	}
}

const demoSpec = `name: demo
params:
  lr: 0.1
  rows: 3
env:
  GLOBAL: g
steps:
  prepare:
    command: sh lib/prep.sh ${inputs.raw} ${outputs.train} ${params.rows}
    inputs:
      raw: data/raw.csv
    outputs:
      train: out/train.csv
    code: [lib/prep.sh]
  train:
    command: sh lib/train.sh ${inputs.train} ${outputs.model} ${params.lr} ${outputs.metrics}
    inputs:
      train: ${steps.prepare.outputs.train}
    outputs:
      model: {path: out/model, type: dir}
      metrics: {path: out/metrics.json, type: metrics}
    env: {OMP_NUM_THREADS: "2"}
    code: [lib/train.sh]
  report:
    command: [sh, -c, 'cat "$1"/weights > "$2"', report, "${inputs.model}", "${outputs.report}"]
    inputs:
      model: ${steps.train.outputs.model}
    outputs:
      report: out/report.txt
`

var demoFiles = map[string]string{
	"pipeline.yaml": demoSpec,
	"data/raw.csv":  "x,y\n1,2\n",
	"lib/prep.sh":   "cat \"$1\" > \"$2\"; echo \"rows=$3\" >> \"$2\"\n",
	"lib/train.sh": "mkdir -p \"$2\"\n" +
		"{ cat \"$1\"; echo \"lr=$3\"; echo \"threads=$OMP_NUM_THREADS\"; echo \"global=$GLOBAL\"; } > \"$2/weights\"\n" +
		"echo '{\"acc\": 0.9, \"loss\": 0.25}' > \"$4\"\n",
}

func allStatus(s Status) map[string]Status {
	return map[string]Status{"prepare": s, "train": s, "report": s}
}

func TestRunPassesOutputsAndCaches(t *testing.T) {
	pr := newProject(t, demoFiles)
	var mu sync.Mutex
	var order []string
	logs := map[string]*strings.Builder{}
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{Concurrency: 2, Logs: func(step string) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, step)
		logs[step] = &strings.Builder{}
		return lockedWriter{&mu, logs[step]}
	}})
	wantStatuses(t, r, allStatus(StatusSucceeded))
	if !slices.Equal(order, []string{"prepare", "train", "report"}) {
		t.Errorf("steps started in order %v", order)
	}
	want := "x,y\n1,2\nrows=3\nlr=0.1\nthreads=2\nglobal=g\n"
	if got := pr.read("out/report.txt"); got != want {
		t.Errorf("report = %q, want %q", got, want)
	}
	train := r.Step("train")
	if train.Metrics["acc"] != 0.9 || train.Metrics["loss"] != 0.25 || len(train.Metrics) != 2 {
		t.Errorf("metrics = %v", train.Metrics)
	}
	if train.Decision.Reason != "no previous run" || train.Attempts != 1 || train.ExitCode != 0 {
		t.Errorf("train = %+v", train)
	}
	if _, err := os.Stat(train.Log); err != nil {
		t.Errorf("train log: %v", err)
	}

	// Re-run: every step is restored, including outputs deleted meanwhile,
	// with the right bytes.
	if err := os.RemoveAll(filepath.Join(pr.dir, "out")); err != nil {
		t.Fatal(err)
	}
	r2 := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r2, allStatus(StatusCached))
	if got := pr.read("out/report.txt"); got != want {
		t.Errorf("restored report = %q, want %q", got, want)
	}
	if got := pr.read("out/model/weights"); !strings.Contains(got, "lr=0.1") {
		t.Errorf("restored weights = %q", got)
	}
	if m := r2.Step("train").Metrics; m["acc"] != 0.9 {
		t.Errorf("cached metrics = %v", m)
	}
	for _, s := range r2.Steps {
		if s.Decision.Key != r.Step(s.Name).Decision.Key || !s.Decision.Hit {
			t.Errorf("step %s: decision %+v after %+v", s.Name, s.Decision, r.Step(s.Name).Decision)
		}
	}
	if ex := r2.Explain(); !strings.Contains(ex, "prepare: cache hit") {
		t.Errorf("explain:\n%s", ex)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestCacheMisses changes one thing at a time: each must miss exactly the
// step it feeds and the steps downstream whose inputs therefore change, with
// the reason naming what changed, and nothing else may miss.
func TestCacheMisses(t *testing.T) {
	cases := []struct {
		name      string
		change    func(pr *project)
		overrides map[string]string
		reasons   map[string]string // step -> reason; absent steps must hit
	}{
		{
			name:   "input byte",
			change: func(pr *project) { pr.write("data/raw.csv", "x,y\n1,3\n") },
			reasons: map[string]string{
				"prepare": "input raw changed", "train": "input train changed", "report": "input model changed"},
		},
		{
			name:      "param",
			overrides: map[string]string{"lr": "0.2"},
			reasons:   map[string]string{"train": "param lr changed", "report": "input model changed"},
		},
		{
			name: "step env",
			change: func(pr *project) {
				pr.write("pipeline.yaml", strings.Replace(demoSpec, `OMP_NUM_THREADS: "2"`, `OMP_NUM_THREADS: "4"`, 1))
			},
			reasons: map[string]string{"train": "env OMP_NUM_THREADS changed", "report": "input model changed"},
		},
		{
			name: "pipeline env",
			change: func(pr *project) {
				pr.write("pipeline.yaml", strings.Replace(demoSpec, "GLOBAL: g", "GLOBAL: h", 1))
			},
			reasons: map[string]string{
				"prepare": "env GLOBAL changed", "train": "env GLOBAL changed", "report": "env GLOBAL changed, input model changed"},
		},
		{
			name:    "code file",
			change:  func(pr *project) { pr.write("lib/train.sh", demoFiles["lib/train.sh"]+"echo more >> \"$2/weights\"\n") },
			reasons: map[string]string{"train": "code lib/train.sh changed", "report": "input model changed"},
		},
		{
			// Same output bytes: the dependent's inputs did not change, so it hits.
			name:    "code comment only",
			change:  func(pr *project) { pr.write("lib/train.sh", "# a comment\n"+demoFiles["lib/train.sh"]) },
			reasons: map[string]string{"train": "code lib/train.sh changed"},
		},
		{
			name:    "unrelated file",
			change:  func(pr *project) { pr.write("notes.txt", "hello") },
			reasons: map[string]string{},
		},
		{
			name:    "touch without change",
			change:  func(pr *project) { pr.write("data/raw.csv", demoFiles["data/raw.csv"]) },
			reasons: map[string]string{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr := newProject(t, demoFiles)
			pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
			if c.change != nil {
				c.change(pr)
			}
			r := pr.mustRun(pr.parse("pipeline.yaml", c.overrides), Options{})
			for _, s := range r.Steps {
				want, miss := c.reasons[s.Name]
				switch {
				case !miss && s.Status != StatusCached:
					t.Errorf("step %s: %s (%s), want a cache hit", s.Name, s.Status, s.Decision.Reason)
				case miss && (s.Status != StatusSucceeded || s.Decision.Reason != want):
					t.Errorf("step %s: %s (%q), want a miss with %q", s.Name, s.Status, s.Decision.Reason, want)
				}
			}
		})
	}
}

// A file rewritten at the same path, with the same size and mtime, must
// never be served from the cache entry of its old content; and switching
// back must restore the old outputs byte for byte.
func TestSamePathChangeIsNeverStale(t *testing.T) {
	pr := newProject(t, demoFiles)
	raw := filepath.Join(pr.dir, "data/raw.csv")
	info, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	first := pr.read("out/report.txt")

	pr.write("data/raw.csv", "x,y\n9,9\n") // same length
	if err := os.Chtimes(raw, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, allStatus(StatusSucceeded))
	if got := pr.read("out/report.txt"); !strings.Contains(got, "9,9") {
		t.Fatalf("report after change = %q", got)
	}

	pr.write("data/raw.csv", demoFiles["data/raw.csv"])
	r = pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, allStatus(StatusCached))
	if got := pr.read("out/report.txt"); got != first {
		t.Fatalf("restored report = %q, want %q", got, first)
	}
	if got := r.Step("prepare").Decision.Changed; !slices.Equal(got, []string{"input raw"}) {
		t.Errorf("changed = %v", got)
	}
}

func TestForceAndCacheFalse(t *testing.T) {
	pr := newProject(t, demoFiles)
	pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{Force: true})
	wantStatuses(t, r, allStatus(StatusSucceeded))
	for _, s := range r.Steps {
		if s.Decision.Reason != "forced" || s.Decision.Hit {
			t.Errorf("step %s: decision %+v", s.Name, s.Decision)
		}
	}

	pr.write("p2.yaml", strings.Replace(demoSpec, "    code: [lib/train.sh]\n", "    code: [lib/train.sh]\n    cache: false\n", 1))
	for i := 0; i < 2; i++ {
		r = pr.mustRun(pr.parse("p2.yaml", nil), Options{})
		if s := r.Step("train"); s.Status != StatusSucceeded || s.Decision.Reason != "cache disabled (cache: false)" {
			t.Errorf("run %d: train %s (%s)", i, s.Status, s.Decision.Reason)
		}
		// Its output bytes are the same every time, so downstream still hits.
		if s := r.Step("report"); s.Status != StatusCached {
			t.Errorf("run %d: report %s (%s)", i, s.Status, s.Decision.Reason)
		}
	}
}

func TestFailureSkipsDependents(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: f
steps:
  a:
    command: echo boom >&2; exit 3
  b:
    command: "true"
    needs: a
  c:
    command: "true"
    needs: b
`})
	r, err := pr.run(pr.parse("p.yaml", nil), Options{Concurrency: 1})
	if err == nil || err.Error() != "pipeline f: step a: command exited with code 3: boom" { // its last line of output says why
		t.Fatalf("err = %v", err)
	}
	wantStatuses(t, r, map[string]Status{"a": StatusFailed, "b": StatusSkipped, "c": StatusSkipped})
	if r.Status != StatusFailed || r.Step("a").ExitCode != 3 {
		t.Errorf("run %s, a exit %d", r.Status, r.Step("a").ExitCode)
	}
	if log, _ := os.ReadFile(r.Step("a").Log); !strings.Contains(string(log), "boom") {
		t.Errorf("log = %q", log)
	}
	// The failure is remembered: the next run explains why a reruns.
	r, _ = pr.run(pr.parse("p.yaml", nil), Options{})
	if got := r.Step("a").Decision.Reason; got != "previous run failed" {
		t.Errorf("reason = %q", got)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: r
steps:
  flaky:
    command: n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "try $n"; [ $n -ge 3 ]
    retries: {max: 3, backoff: 10ms}
    cache: false
`})
	r := pr.mustRun(pr.parse("p.yaml", nil), Options{})
	s := r.Step("flaky")
	if s.Status != StatusSucceeded || s.Attempts != 3 {
		t.Fatalf("flaky: %s after %d attempts: %s", s.Status, s.Attempts, s.Error)
	}
	log, _ := os.ReadFile(s.Log)
	if !strings.Contains(string(log), "try 3") || strings.Count(string(log), "retrying") != 2 {
		t.Errorf("log:\n%s", log)
	}
}

func pidFrom(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie (exited, not yet reaped by
// whatever adopted it) counts as ended.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: t
steps:
  slow:
    command: sleep 60 & echo $! > child.pid; wait
    timeout: 500ms
`})
	r, err := pr.run(pr.parse("p.yaml", nil), Options{})
	s := r.Step("slow")
	if err == nil || s.Status != StatusFailed || !strings.Contains(s.Error, "timed out after 500ms") {
		t.Fatalf("err %v; slow %s: %s", err, s.Status, s.Error)
	}
	waitDead(t, pidFrom(t, filepath.Join(pr.dir, "child.pid")))
}

func TestCancelEndsProcesses(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: c
steps:
  long:
    command: echo $$$$ > main.pid; sleep 60 & echo $! > child.pid; wait
  after:
    command: "true"
    needs: long
`})
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		r   *RunResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := pr.eng.Run(ctx, pr.parse("p.yaml", nil), Options{ProjectDir: pr.dir, RunDir: t.TempDir()})
		done <- out{r, err}
	}()
	mainPID := pidFrom(t, filepath.Join(pr.dir, "main.pid"))
	childPID := pidFrom(t, filepath.Join(pr.dir, "child.pid"))
	cancel()
	o := <-done
	if o.err == nil || o.r.Status != StatusCancelled {
		t.Fatalf("err %v, status %s", o.err, o.r.Status)
	}
	wantStatuses(t, o.r, map[string]Status{"long": StatusCancelled, "after": StatusCancelled})
	waitDead(t, mainPID)
	waitDead(t, childPID)
	st, err := pr.cache.LoadState(context.Background(), "c", "long")
	if err != nil || st == nil || st.Status != StatusCancelled {
		t.Fatalf("state %+v, %v", st, err)
	}
}

func TestMissingOutputFails(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: m
steps:
  a:
    command: mkdir -p out
    outputs:
      x: out/x.txt
`})
	r, err := pr.run(pr.parse("p.yaml", nil), Options{})
	want := "step a: declared output x (out/x.txt) was not written"
	if err == nil || r.Step("a").Status != StatusFailed || r.Step("a").Error != want {
		t.Fatalf("err %v; a: %s", err, r.Step("a").Error)
	}
}

func TestBadMetricsFails(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: m
steps:
  a:
    command: 'echo ''{"acc": "high"}'' > m.json'
    outputs:
      m: {path: m.json, type: metrics}
`})
	r, _ := pr.run(pr.parse("p.yaml", nil), Options{})
	if s := r.Step("a"); s.Status != StatusFailed || !strings.Contains(s.Error, `value of "acc" is "high", not a number`) {
		t.Fatalf("a: %s: %s", s.Status, s.Error)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: par\nsteps:\n")
	for i := range 5 {
		name := "s" + strconv.Itoa(i)
		b.WriteString("  " + name + ":\n    command: date +%s%N > t/" + name +
			".start; sleep 0.2; date +%s%N > t/" + name + ".end\n    cache: false\n")
	}
	pr := newProject(t, map[string]string{"p.yaml": b.String(), "t/.keep": ""})
	pr.mustRun(pr.parse("p.yaml", nil), Options{Concurrency: 2})
	type span struct{ start, end int64 }
	var spans []span
	for i := range 5 {
		name := "t/s" + strconv.Itoa(i)
		st, _ := strconv.ParseInt(strings.TrimSpace(pr.read(name+".start")), 10, 64)
		en, _ := strconv.ParseInt(strings.TrimSpace(pr.read(name+".end")), 10, 64)
		spans = append(spans, span{st, en})
	}
	most := 0
	for _, a := range spans {
		n := 0
		for _, o := range spans {
			if o.start <= a.start && a.start < o.end {
				n++
			}
		}
		most = max(most, n)
	}
	if most > 2 {
		t.Errorf("%d steps overlapped, limit 2", most)
	}
	t.Logf("most overlapping: %d", most)
}

type fakeResolver struct{ dir string }

func (f fakeResolver) Resolve(_ context.Context, ref string) (string, string, error) {
	// A fresh temp path each time: the key must depend on content only.
	d, err := os.MkdirTemp(f.dir, "ref-")
	if err != nil {
		return "", "", err
	}
	p := filepath.Join(d, "data.csv")
	return p, "", os.WriteFile(p, []byte("remote "+ref+"\n"), 0o644)
}

func TestRemoteInputs(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: rem
steps:
  use:
    command: cat ${inputs.raw} > ${outputs.copy}
    inputs:
      raw: data:credit-raw@v3
    outputs:
      copy: copy.txt
`})
	_, err := pr.run(pr.parse("p.yaml", nil), Options{})
	if err == nil || !strings.Contains(err.Error(), "step use: input raw: data:credit-raw@v3 is a remote input, which needs a server") {
		t.Fatalf("err = %v", err)
	}
	pr.eng.Resolver = fakeResolver{t.TempDir()}
	pr.mustRun(pr.parse("p.yaml", nil), Options{})
	if got := pr.read("copy.txt"); got != "remote data:credit-raw@v3\n" {
		t.Errorf("copy = %q", got)
	}
	r := pr.mustRun(pr.parse("p.yaml", nil), Options{})
	wantStatuses(t, r, map[string]Status{"use": StatusCached})
}

func TestCodeGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	pr := newProject(t, map[string]string{
		"p.yaml": "name: g\nsteps:\n  a:\n    command: cat lib.sh > out.txt\n    outputs: {o: out.txt}\n    code: git\n",
		"lib.sh": "v1\n",
	})
	for _, args := range [][]string{{"init", "-q"}, {"add", "p.yaml", "lib.sh"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = pr.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	pr.mustRun(pr.parse("p.yaml", nil), Options{})
	wantStatuses(t, pr.mustRun(pr.parse("p.yaml", nil), Options{}), map[string]Status{"a": StatusCached})
	pr.write("lib.sh", "v2\n") // uncommitted edits count
	r := pr.mustRun(pr.parse("p.yaml", nil), Options{})
	if s := r.Step("a"); s.Status != StatusSucceeded || s.Decision.Reason != "code git changed" {
		t.Errorf("a: %s (%s)", s.Status, s.Decision.Reason)
	}
	pr.write("untracked.txt", "x")
	wantStatuses(t, pr.mustRun(pr.parse("p.yaml", nil), Options{}), map[string]Status{"a": StatusCached})
}

// An output left by an earlier run must not pass for one this run wrote.
func TestStaleOutputIsNotReused(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: stale
params:
  write: "yes"
steps:
  a:
    command: if [ ${params.write} = yes ]; then echo hi > out.txt; fi
    outputs:
      o: out.txt
`})
	pr.mustRun(pr.parse("p.yaml", nil), Options{})
	r, err := pr.run(pr.parse("p.yaml", map[string]string{"write": "no"}), Options{})
	if s := r.Step("a"); err == nil || s.Status != StatusFailed || s.Error != "step a: declared output o (out.txt) was not written" {
		t.Fatalf("err %v; a %s: %s", err, s.Status, s.Error)
	}
}

// A damaged stored object costs a rerun, never a wrong output.
func TestCorruptObjectReruns(t *testing.T) {
	pr := newProject(t, demoFiles)
	pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	objects, err := filepath.Glob(filepath.Join(pr.store, "pipelines", "objects", "sha256", "*"))
	if err != nil || len(objects) == 0 {
		t.Fatalf("no stored objects (%v)", err)
	}
	for _, o := range objects {
		if err := os.WriteFile(o, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(pr.dir, "out")); err != nil {
		t.Fatal(err)
	}
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	// report's output has the same bytes as train's weights, so it is one
	// object, which train's rerun stored afresh before report looked.
	for _, s := range r.Steps[:2] {
		if s.Status != StatusSucceeded || !strings.HasPrefix(s.Decision.Reason, "cache entry unusable: ") {
			t.Errorf("step %s: %s (%s)", s.Name, s.Status, s.Decision.Reason)
		}
	}
	if got := pr.read("out/report.txt"); !strings.HasPrefix(got, "x,y\n1,2\n") {
		t.Errorf("report = %q", got)
	} // The rerun replaced the damaged objects.
	if err := os.RemoveAll(filepath.Join(pr.dir, "out")); err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, pr.mustRun(pr.parse("pipeline.yaml", nil), Options{}), allStatus(StatusCached))
}
