// Package engine runs pipeline specs: it schedules steps as their
// dependencies finish, up to a concurrency limit, skips steps whose
// content-addressed cache key already has stored outputs, and records why
// every step ran or was restored.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// Status is how a step ended.
type Status string

const (
	StatusRunning   Status = "running" // only in recorded State
	StatusSucceeded Status = "succeeded"
	StatusCached    Status = "cached"
	StatusFailed    Status = "failed"
	StatusSkipped   Status = "skipped"
	StatusReused    Status = "reused" // succeeded in the run being resumed
	StatusCancelled Status = "cancelled"
)

// OK says whether a step ended with its outputs in place.
func (s Status) OK() bool {
	return s == StatusSucceeded || s == StatusCached || s == StatusReused
}

// Resolver makes data and model inputs (data:NAME@vN, models:/NAME@alias)
// available locally. The digest may be empty, and is then computed from
// the local copy.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (localPath, digest string, err error)
}

// Engine runs pipelines. The zero value runs steps locally with no cache.
type Engine struct {
	Executor Executor   // nil means &Local{}
	Cache    CacheStore // nil disables caching
	Resolver Resolver   // nil makes data and model inputs an error
	Now      func() time.Time
}

// Options are per run.
type Options struct {
	ProjectDir  string // where commands run and relative paths point; required
	RunDir      string // step logs go here; default ProjectDir/.slipway/runs/<pipeline>-<time>
	Concurrency int    // steps running at once; 0 means the number of CPUs
	Force       bool   // run every step even on a cache hit (results are still stored)
	// Logs, when set, receives each step's combined output as well as its
	// log file. Writers may be called from several steps at once.
	Logs func(step string) io.Writer
	// StepEnv, when set, is called just before a step's command runs (not
	// on a cache hit) and adds variables to its environment. They are not
	// part of the cache key: they say where to report (a tracking run),
	// not what to compute. An error fails the step.
	StepEnv func(ctx context.Context, step string, d Decision) (map[string]string, error)
	// StepDone, when set, is called once for every step as it ends,
	// skipped and reused ones included, one call at a time.
	StepDone func(*StepResult)
	// Completed holds the results of steps that succeeded in an earlier
	// run of this pipeline (a resume). Such a step is not run again while
	// its outputs in the project still have the recorded digests.
	Completed map[string]*StepResult
}

// OutputResult is where a step's output is and what it holds.
type OutputResult struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// StepResult is how one step ended.
type StepResult struct {
	Name     string                  `json:"name"`
	Status   Status                  `json:"status"`
	Decision Decision                `json:"decision"`
	Attempts int                     `json:"attempts"`
	Duration time.Duration           `json:"duration"`
	ExitCode int                     `json:"exit_code"`
	Error    string                  `json:"error,omitempty"`
	Outputs  map[string]OutputResult `json:"outputs,omitempty"`
	Metrics  map[string]float64      `json:"metrics,omitempty"`
	Log      string                  `json:"log,omitempty"`
}

// RunResult is how a pipeline run ended; Steps are in file order.
type RunResult struct {
	Pipeline string        `json:"pipeline"`
	Status   Status        `json:"status"`
	RunDir   string        `json:"run_dir"`
	Steps    []*StepResult `json:"steps"`
	Duration time.Duration `json:"duration"`
}

// Step returns the named step's result, or nil.
func (r *RunResult) Step(name string) *StepResult {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Explain says for every step why it ran or was restored (--explain).
func (r *RunResult) Explain() string {
	var b strings.Builder
	for _, s := range r.Steps {
		switch s.Status {
		case StatusCached:
			fmt.Fprintf(&b, "%s: cache hit (key %.12s)\n", s.Name, s.Decision.Key)
		case StatusReused:
			fmt.Fprintf(&b, "%s: reused: %s\n", s.Name, s.Decision.Reason)
		case StatusSkipped, StatusCancelled:
			fmt.Fprintf(&b, "%s: %s: %s\n", s.Name, s.Status, s.Error)
		case StatusFailed:
			if s.Decision.Reason == "" { // failed before its key was known
				fmt.Fprintf(&b, "%s: failed: %s\n", s.Name, s.Error)
				continue
			}
			fmt.Fprintf(&b, "%s: ran (%s), failed: %s\n", s.Name, s.Decision.Reason, s.Error)
		default:
			fmt.Fprintf(&b, "%s: ran (%s), %s\n", s.Name, s.Decision.Reason, s.Status)
		}
	}
	return b.String()
}

func (e *Engine) executor() Executor {
	if e.Executor == nil {
		return &Local{}
	}
	return e.Executor
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Run runs p. Steps start as soon as their dependencies succeed; when one
// fails, steps not yet started are skipped and running ones finish. When ctx
// is cancelled running steps are ended (their whole process group) and
// recorded as cancelled. The result is returned even with an error.
func (e *Engine) Run(ctx context.Context, p *spec.Pipeline, opts Options) (*RunResult, error) {
	if opts.ProjectDir == "" {
		return nil, errs.Invalid("pipeline %s: a project directory is required", p.Name)
	}
	proj, err := filepath.Abs(opts.ProjectDir)
	if err != nil {
		return nil, errs.Wrap(err, "resolving project directory")
	}
	opts.ProjectDir = proj
	if _, err := p.Order(); err != nil {
		return nil, errs.Invalid("%v", err)
	}
	start := e.now()
	if opts.RunDir == "" {
		opts.RunDir = filepath.Join(proj, ".slipway", "runs", p.Name+"-"+start.UTC().Format("20060102T150405.000000000Z"))
	}
	if err := os.MkdirAll(opts.RunDir, 0o755); err != nil {
		return nil, errs.Wrap(err, "creating run directory")
	}
	limit := opts.Concurrency
	if limit <= 0 {
		limit = runtime.NumCPU()
	}

	// Ready queue: waiting[i] counts the steps that step i needs and that
	// have not ended; when it reaches zero the step is ready. Ready steps
	// start lowest file position first, the order a scan of the file would
	// start them in, so each step costs the same to schedule however many
	// steps the pipeline has.
	index := make(map[string]int, len(p.Steps))
	for i, st := range p.Steps {
		index[st.Name] = i
	}
	waiting := make([]int, len(p.Steps))
	users := make([][]int, len(p.Steps))
	ready := &readyQueue{}
	for i, st := range p.Steps {
		waiting[i] = len(st.Needs)
		for _, d := range st.Needs {
			users[index[d]] = append(users[index[d]], i)
		}
		if waiting[i] == 0 {
			ready.push(i)
		}
	}
	results := make(map[string]*StepResult, len(p.Steps))
	finish := func(i int, r *StepResult) {
		results[r.Name] = r
		stepDone(opts, r)
		for _, u := range users[i] {
			if waiting[u]--; waiting[u] == 0 {
				ready.push(u)
			}
		}
	}
	defer useMemo(proj)()
	done := make(chan *StepResult)
	running := 0
	stop := false // set by the first failure: start nothing more
	for {
		for !stop && ctx.Err() == nil && running < limit && ready.Len() > 0 {
			i := ready.pop()
			st := p.Steps[i]
			deps, blocked := make(map[string]*StepResult, len(st.Needs)), ""
			for _, d := range st.Needs {
				if r := results[d]; r.Status.OK() {
					deps[d] = r
				} else {
					blocked = d
				}
			}
			if blocked != "" {
				finish(i, &StepResult{Name: st.Name, Status: StatusSkipped,
					Error: fmt.Sprintf("dependency %s %s", blocked, results[blocked].Status)})
				continue
			}
			if r := reuse(st, opts); r != nil {
				finish(i, r)
				continue
			}
			running++
			go func() { done <- e.runStep(ctx, p, st, deps, opts) }()
		}
		if running == 0 {
			break
		}
		r := <-done
		running--
		finish(index[r.Name], r)
		if r.Status == StatusFailed || r.Status == StatusCancelled {
			stop = true
		}
	}

	run := &RunResult{Pipeline: p.Name, Status: StatusSucceeded, RunDir: opts.RunDir}
	var firstErr error
	for _, st := range p.Steps {
		r := results[st.Name]
		if r == nil {
			r = &StepResult{Name: st.Name, Status: StatusSkipped, Error: "not started: an earlier step failed"}
			if ctx.Err() != nil {
				r.Status, r.Error = StatusCancelled, "not started: the run was cancelled"
			}
			stepDone(opts, r)
		}
		run.Steps = append(run.Steps, r)
		switch r.Status {
		case StatusFailed:
			run.Status = StatusFailed
			if firstErr == nil {
				// r.Error already names the step.
				firstErr = errs.New(errs.FailedPrecondition, "pipeline %s: %s", p.Name, r.Error)
			}
		case StatusCancelled:
			if run.Status != StatusFailed {
				run.Status = StatusCancelled
			}
		}
	}
	run.Duration = e.now().Sub(start)
	if firstErr == nil && run.Status == StatusCancelled {
		firstErr = fmt.Errorf("pipeline %s cancelled: %w", p.Name, context.Cause(ctx))
	}
	return run, firstErr
}

func stepDone(opts Options, r *StepResult) {
	if opts.StepDone != nil {
		opts.StepDone(r)
	}
}

// reuse returns the result a resumed step keeps, or nil when the step must
// run: it did not succeed before, or an output changed since.
func reuse(st *spec.Step, opts Options) *StepResult {
	prev := opts.Completed[st.Name]
	if prev == nil || !prev.Status.OK() {
		return nil
	}
	for _, o := range st.Outputs {
		rec, ok := prev.Outputs[o.Name]
		if !ok {
			return nil
		}
		dg, err := pathDigest(filepath.Join(opts.ProjectDir, filepath.FromSlash(o.Path)))
		if err != nil || dg != rec.Digest {
			return nil
		}
	}
	r := *prev
	r.Status, r.Attempts, r.Duration = StatusReused, 0, 0
	r.Decision.Hit, r.Decision.Reason = true, "succeeded in the run being resumed; outputs unchanged"
	return &r
}

// stepRun carries one step through resolve, decide, run and store.
type stepRun struct {
	e    *Engine
	p    *spec.Pipeline
	st   *spec.Step
	opts Options
	res  *StepResult
	exec Executor
	comp Components // set once the key is known
}

func (e *Engine) runStep(ctx context.Context, p *spec.Pipeline, st *spec.Step, deps map[string]*StepResult, opts Options) *StepResult {
	sr := &stepRun{e: e, p: p, st: st, opts: opts, exec: e.executor(),
		res: &StepResult{Name: st.Name, ExitCode: -1}}
	begin := e.now()
	err := sr.run(ctx, deps)
	sr.res.Duration = e.now().Sub(begin)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		sr.res.Status, sr.res.Error = StatusCancelled, "cancelled: "+context.Cause(ctx).Error()
	default:
		sr.res.Status, sr.res.Error = StatusFailed, err.Error()
	}
	// Hits are recorded too: the next miss is explained against the run
	// that came last, whichever entry it used.
	if sr.comp.Version != "" && e.Cache != nil {
		sr.saveState(context.WithoutCancel(ctx), sr.res.Status)
	}
	return sr.res
}

func (sr *stepRun) fail(format string, args ...any) error {
	return errs.New(errs.FailedPrecondition, "step %s: "+format, append([]any{sr.st.Name}, args...)...)
}

func (sr *stepRun) run(ctx context.Context, deps map[string]*StepResult) error {
	st, proj := sr.st, sr.opts.ProjectDir
	comp := &Components{
		Version:  keyVersion,
		Executor: sr.exec.Identity(),
		Params:   map[string]string{},
		Inputs:   map[string]string{},
		Code:     map[string]string{},
		Outputs:  map[string]string{},
	}

	// Inputs: what the command sees (resolved) and what the key sees
	// (keyResolved) differ only for data and model inputs.
	resolved, keyResolved := map[string]string{}, map[string]string{}
	for _, in := range st.Inputs {
		switch in.Kind {
		case spec.InputPath:
			dg, err := pathDigest(filepath.Join(proj, filepath.FromSlash(in.Path)))
			if err != nil {
				return sr.fail("input %s: cannot read %s: %v", in.Name, in.Path, cause(err))
			}
			comp.Inputs[in.Name] = dg
		case spec.InputStep:
			o, ok := deps[in.Step].Outputs[in.Output]
			if !ok {
				return sr.fail("input %s: step %s recorded no output %s", in.Name, in.Step, in.Output)
			}
			comp.Inputs[in.Name] = o.Digest
		default:
			if sr.e.Resolver == nil {
				return sr.fail("input %s: %s is a remote input, which needs a server to resolve (run with a tracking server configured)", in.Name, in.Ref)
			}
			local, dg, err := sr.e.Resolver.Resolve(ctx, in.Ref)
			if err != nil {
				return sr.fail("input %s: resolving %s: %v", in.Name, in.Ref, err)
			}
			if dg == "" {
				if dg, err = pathDigest(local); err != nil {
					return sr.fail("input %s: reading resolved %s: %v", in.Name, in.Ref, err)
				}
			}
			comp.Inputs[in.Name] = dg
			resolved["inputs."+in.Name] = local
			keyResolved["inputs."+in.Name] = in.Ref
		}
	}
	for _, c := range st.Code {
		dg, err := pathDigest(filepath.Join(proj, filepath.FromSlash(c)))
		if err != nil {
			return sr.fail("code %s: cannot read: %v", c, cause(err))
		}
		comp.Code[c] = dg
	}
	if st.CodeGit {
		dg, err := gitDigest(ctx, proj)
		if err != nil {
			return sr.fail("code git: %v", err)
		}
		comp.Code["git"] = dg
	}
	for _, o := range st.Outputs {
		comp.Outputs[o.Name] = string(o.Type) + ":" + o.Path
	}

	used := map[string]bool{}
	cmdText := st.Shell
	if st.Argv != nil {
		b, _ := json.Marshal(st.Argv)
		cmdText = string(b)
	}
	paramRefs(cmdText, used)
	env := maps.Clone(sr.p.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, st.Env)
	for _, v := range env {
		paramRefs(v, used)
	}
	for name := range used {
		if prm := sr.p.Params[name]; prm != nil {
			comp.Params[name] = prm.Text
		}
	}
	// Another step's output named in the command (not as a declared
	// input) is read by it all the same: its content is part of the key.
	outRefs := map[string]bool{}
	stepOutputRefs(cmdText, outRefs)
	for _, v := range env {
		stepOutputRefs(v, outRefs)
	}
	for ref := range outRefs {
		parts := strings.Split(ref, ".")
		if d := deps[parts[1]]; d != nil {
			if o, ok := d.Outputs[parts[3]]; ok {
				comp.Inputs[ref] = o.Digest
			}
		}
	}
	comp.Command = cmdText
	keyCmd, err := sr.p.Render(st.Name, keyResolved)
	if err != nil {
		return sr.fail("%v", err)
	}
	comp.Rendered = keyCmd.Shell
	if keyCmd.Argv != nil {
		b, _ := json.Marshal(keyCmd.Argv)
		comp.Rendered = string(b)
	}
	comp.Env = keyCmd.Env
	cmd, err := sr.p.Render(st.Name, resolved)
	if err != nil {
		return sr.fail("%v", err)
	}

	if err := sr.decide(ctx, comp); err != nil {
		return err
	}
	if sr.res.Decision.Hit {
		return nil
	}
	return sr.execute(ctx, cmd)
}

// decide computes the key, explains it against the previous run, and on a
// hit restores the outputs.
func (sr *stepRun) decide(ctx context.Context, comp *Components) error {
	cache, st := sr.e.Cache, sr.st
	d := &sr.res.Decision
	d.Key = comp.Key()
	sr.comp = *comp
	var prev *State
	if cache != nil {
		var err error
		if prev, err = cache.LoadState(ctx, sr.p.Name, st.Name); err != nil {
			return sr.fail("reading previous state: %v", err)
		}
	}
	if prev != nil {
		d.Changed = diff(&prev.Components, comp)
	}
	switch {
	case cache == nil:
		d.Reason = "no cache store"
		return nil
	case !st.Cache:
		d.Reason = "cache disabled (cache: false)"
		return nil
	case sr.opts.Force:
		d.Reason = "forced"
		return nil
	}
	m, err := cache.Lookup(ctx, d.Key)
	if err != nil {
		return sr.fail("reading cache entry %s: %v", d.Key, err)
	}
	if m != nil {
		if err := cache.Restore(ctx, m, sr.opts.ProjectDir); err != nil {
			// A damaged entry costs a rerun, never a wrong output.
			d.Reason = "cache entry unusable: " + err.Error()
			return nil
		}
		d.Hit, d.Reason = true, "cache hit"
		sr.res.Status, sr.res.Attempts, sr.res.ExitCode = StatusCached, 0, 0
		sr.res.Metrics = m.Metrics
		sr.res.Outputs = map[string]OutputResult{}
		for _, o := range m.Outputs {
			sr.res.Outputs[o.Name] = OutputResult{Path: o.Path, Digest: o.Digest}
		}
		return nil
	}
	switch {
	case prev == nil:
		d.Reason = "no previous run"
	case len(d.Changed) > 0:
		d.Reason = changedReason(d.Changed)
	case !prev.Status.OK():
		d.Reason = "previous run " + string(prev.Status)
	default:
		d.Reason = "no cache entry for this key"
	}
	return nil
}

func (sr *stepRun) saveState(ctx context.Context, status Status) {
	// State only explains decisions; failing to write it must not fail the
	// step, whose outputs are already correct.
	_ = sr.e.Cache.SaveState(ctx, sr.p.Name, sr.st.Name, sr.state(status))
}

func (sr *stepRun) state(status Status) *State {
	return &State{Key: sr.res.Decision.Key, Components: sr.comp, Status: status, Updated: sr.e.now().UTC()}
}

// execute runs the step with retries, checks and digests its outputs, and
// stores them under the key.
func (sr *stepRun) execute(ctx context.Context, cmd *spec.Rendered) error {
	st, proj := sr.st, sr.opts.ProjectDir
	// Recorded before running, so that a crash mid-step still leaves the
	// key and its components behind for the next --explain.
	if sr.e.Cache != nil {
		if err := sr.e.Cache.SaveState(ctx, sr.p.Name, st.Name, sr.state(StatusRunning)); err != nil {
			return sr.fail("recording state: %v", err)
		}
	}

	logPath := filepath.Join(sr.opts.RunDir, st.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return sr.fail("opening log: %v", err)
	}
	defer logFile.Close()
	sr.res.Log = logPath
	var out io.Writer = logFile
	if sr.opts.Logs != nil {
		if w := sr.opts.Logs(st.Name); w != nil {
			out = io.MultiWriter(logFile, w)
		}
	}

	env := cmd.Env
	if sr.opts.StepEnv != nil {
		extra, err := sr.opts.StepEnv(ctx, st.Name, sr.res.Decision)
		if err != nil {
			return sr.fail("preparing its environment: %v", err)
		}
		env = maps.Clone(cmd.Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, extra)
	}
	var lastErr error
	for attempt := 1; attempt <= st.Retries.Max+1; attempt++ {
		if attempt > 1 {
			delay := st.Retries.Backoff << (attempt - 2)
			fmt.Fprintf(out, "== %s: retrying in %s (attempt %d of %d) ==\n", st.Name, delay, attempt, st.Retries.Max+1)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		sr.res.Attempts = attempt
		// Stale outputs from an earlier run must not pass for new ones.
		for _, o := range st.Outputs {
			target := filepath.Join(proj, filepath.FromSlash(o.Path))
			if err := os.RemoveAll(target); err != nil {
				return sr.fail("output %s: clearing %s: %v", o.Name, o.Path, err)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return sr.fail("output %s: creating the parent of %s: %v", o.Name, o.Path, err)
			}
		}
		task := Task{Step: st.Name, Argv: cmd.Argv, Shell: cmd.Shell, Env: env,
			WorkDir: proj, Stdout: out, Stderr: out, Timeout: st.Timeout}
		res, err := sr.exec.Run(ctx, task)
		sr.res.ExitCode = res.ExitCode
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			lastErr = sr.fail("could not start: %v", err)
		case res.TimedOut:
			lastErr = sr.fail("timed out after %s (the step's timeout); its processes were ended", st.Timeout)
		case res.ExitCode != 0:
			lastErr = sr.fail("command exited with code %d%s", res.ExitCode, lastLine(logPath))
		default:
			lastErr = sr.collect(ctx)
		}
		if lastErr == nil {
			sr.res.Status = StatusSucceeded
			return nil
		}
		fmt.Fprintf(out, "== %s ==\n", errs.Message(lastErr))
	}
	if st.Retries.Max > 0 {
		return fmt.Errorf("%w (after %d attempts)", lastErr, sr.res.Attempts)
	}
	return lastErr
}

// collect checks that every declared output exists with its type, digests
// it and stores it in the cache.
func (sr *stepRun) collect(ctx context.Context) error {
	st, proj := sr.st, sr.opts.ProjectDir
	m := &Manifest{Key: sr.res.Decision.Key, Pipeline: sr.p.Name, Step: st.Name, Created: sr.e.now().UTC()}
	sr.res.Outputs = map[string]OutputResult{}
	for _, o := range st.Outputs {
		target := filepath.Join(proj, filepath.FromSlash(o.Path))
		info, err := os.Stat(target)
		if err != nil {
			return sr.fail("declared output %s (%s) was not written", o.Name, o.Path)
		}
		rec := OutputRecord{Name: o.Name, Path: o.Path, Type: o.Type}
		if o.Type == spec.OutputDir {
			if !info.IsDir() {
				return sr.fail("output %s (%s) is declared as a dir but is a file", o.Name, o.Path)
			}
			if rec.Files, err = dirEntries(target); err != nil {
				return sr.fail("output %s: %v", o.Name, err)
			}
			for _, f := range rec.Files {
				if f.Mode&os.ModeSymlink != 0 {
					return sr.fail("output %s: %s is a symlink; outputs must hold regular files", o.Name, f.Path)
				}
			}
			rec.Digest = entriesDigest(rec.Files)
		} else {
			if !info.Mode().IsRegular() {
				return sr.fail("output %s (%s) is declared as a %s but is not a regular file", o.Name, o.Path, o.Type)
			}
			dg, n, err := fileDigest(target)
			if err != nil {
				return sr.fail("output %s: %v", o.Name, err)
			}
			rec.Digest = dg
			rec.Files = []FileEntry{{Digest: dg, Size: n, Mode: info.Mode().Perm()}}
		}
		if o.Type == spec.OutputMetrics {
			metrics, err := readMetrics(target)
			if err != nil {
				return sr.fail("metrics output %s (%s): %v", o.Name, o.Path, err)
			}
			if m.Metrics == nil {
				m.Metrics = map[string]float64{}
			}
			maps.Copy(m.Metrics, metrics)
		}
		m.Outputs = append(m.Outputs, rec)
		sr.res.Outputs[o.Name] = OutputResult{Path: o.Path, Digest: rec.Digest}
	}
	sr.res.Metrics = m.Metrics
	if sr.e.Cache != nil && st.Cache {
		if err := sr.e.Cache.Save(ctx, m, proj); err != nil {
			return sr.fail("storing outputs in the cache: %v", err)
		}
	}
	return nil
}

// lastLine returns ": " and the last line a failed command wrote, which
// usually says why it failed, or "" when it wrote nothing.
func lastLine(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4 << 10
	if info, err := f.Stat(); err == nil && info.Size() > tail {
		f.Seek(-tail, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "== ") { // the engine's own retry notes
			continue
		}
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		return ": " + line
	}
	return ""
}

// readMetrics parses a metrics output: one JSON object of name -> number.
func readMetrics(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("must be a JSON object of name -> number")
	}
	if dec.More() {
		return nil, fmt.Errorf("must hold one JSON object, found more after it")
	}
	out := make(map[string]float64, len(raw))
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var v float64
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return nil, fmt.Errorf("value of %q is %s, not a number", k, raw[k])
		}
		out[k] = v
	}
	return out, nil
}

// cause drops the path from an *os.PathError, whose message already names it.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
