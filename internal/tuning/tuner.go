package tuning

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
)

// Trial is one training of one configuration.
type Trial struct {
	// Index numbers trials in the order they are launched, from 0 and
	// across rungs; ties in score go to the lower index.
	Index int
	// Config numbers the configuration, from 0; a configuration keeps its
	// number as successive halving promotes it from rung to rung.
	Config int
	// Rung is 0 for grid and random search.
	Rung int
	// Resource is the number of boosting rounds to train, 0 meaning the
	// trial function's own (grid and random search).
	Resource int
	// Params are the configuration's values by parameter name; the trial
	// owns the map.
	Params map[string]string
	// Threads is the trial's share of the machine: GOMAXPROCS divided by
	// the parallel trials, at least 1, so parallel trials that each train
	// with Threads goroutines do not fight over cores.
	Threads int
}

// TrialResult is what a trial function reports.
type TrialResult struct {
	// Score is the validation score trials are ranked by; every trial of
	// a search must report the same Metric and direction.
	Score          float64
	Metric         string
	HigherIsBetter bool
	// Metrics are other numbers worth logging with the trial.
	Metrics map[string]float64
	// Artifact is anything the caller wants back, such as the trained
	// model. OnTrialEnd sees every trial's; the summary keeps only the
	// best trial's, so a large search does not hold every model.
	Artifact any
}

// TrialFunc trains and scores one trial. It should return soon after ctx
// is cancelled.
type TrialFunc func(ctx context.Context, t Trial) (TrialResult, error)

// Status is how a trial ended.
type Status string

const (
	Succeeded Status = "succeeded"
	// Failed trials returned an error (or a NaN score, or panicked); the
	// search goes on without them.
	Failed Status = "failed"
	// Cancelled trials were stopped by the search's context.
	Cancelled Status = "cancelled"
)

// RunStatus is the MLflow run status that records a trial that ended so.
func (s Status) RunStatus() string {
	switch s {
	case Succeeded:
		return "FINISHED"
	case Cancelled:
		return "KILLED"
	}
	return "FAILED"
}

// TrialRecord is a trial and how it went.
type TrialRecord struct {
	Trial
	Status         Status
	Score          float64
	Metric         string
	HigherIsBetter bool
	Metrics        map[string]float64
	// Err is why a trial failed or was cancelled.
	Err      error
	Duration time.Duration
	Artifact any
}

// MetricValues are the numbers to log for the trial: its score under the
// metric's name, with its other metrics.
func (r *TrialRecord) MetricValues() map[string]float64 {
	if r.Status != Succeeded {
		return maps.Clone(r.Metrics)
	}
	m := make(map[string]float64, len(r.Metrics)+1)
	maps.Copy(m, r.Metrics)
	m[r.Metric] = r.Score
	return m
}

// Tuner runs a search.
type Tuner struct {
	Space    Space
	Strategy Strategy
	// Parallel is how many trials run at once; 0 is 1.
	Parallel int
	// OnTrialStart and OnTrialEnd, when set, are called on the goroutine
	// that runs the trial, just before and just after it, so with
	// Parallel above 1 they are called concurrently. They are
	// notifications (printing progress, starting and ending an MLflow
	// child run); work whose failure should fail the trial belongs in the
	// trial function, which can wrap another.
	OnTrialStart func(Trial)
	OnTrialEnd   func(TrialRecord)
	// Now is the clock trials are timed with; nil is time.Now.
	Now func() time.Time
}

// Run runs the search and returns its summary. Trials that fail are
// recorded and the search goes on; when every trial of a rung fails it
// stops, with an error carrying the first failure's code and message.
// When ctx is cancelled no more trials start, the running ones are
// cancelled, and Run returns the summary of what finished with ctx's
// error. The summary is returned whenever the search started.
func (t *Tuner) Run(ctx context.Context, fn TrialFunc) (*Summary, error) {
	if t.Strategy == nil {
		return nil, errs.Invalid("tuning: no strategy (grid, random or successive_halving)")
	}
	if fn == nil {
		return nil, errs.Invalid("tuning: no trial function")
	}
	parallel := t.Parallel
	if parallel == 0 {
		parallel = 1
	}
	if parallel < 0 || parallel > 1024 {
		return nil, errs.Invalid("tuning: parallel %d: must be from 1 to 1024", t.Parallel)
	}
	if err := t.Space.Validate(); err != nil {
		return nil, err
	}
	pl, err := t.Strategy.plan(t.Space)
	if err != nil {
		return nil, err
	}
	r := &runner{t: t, fn: fn, parallel: parallel, threads: max(1, runtime.GOMAXPROCS(0)/parallel), now: t.Now}
	if r.now == nil {
		r.now = time.Now
	}
	sum := &Summary{Strategy: t.Strategy.Name(), Params: t.Space.Names(), Rungs: len(pl.rungs), BestIndex: -1}
	survivors := make([]int, len(pl.configs))
	for i := range survivors {
		survivors[i] = i
	}
	for ri, rg := range pl.rungs {
		survivors = survivors[:min(rg.size, len(survivors))]
		trials := make([]Trial, len(survivors))
		for i, c := range survivors {
			trials[i] = Trial{Index: len(sum.Trials) + i, Config: c, Rung: ri, Resource: rg.resource,
				Params: maps.Clone(pl.configs[c]), Threads: r.threads}
		}
		recs := r.runRung(ctx, trials)
		sum.Trials = append(sum.Trials, recs...)
		if err := sum.checkMetrics(); err != nil {
			return sum, err
		}
		ranked := rank(recs)
		if len(ranked) > 0 {
			if sum.BestIndex >= 0 {
				sum.Trials[sum.BestIndex].Artifact = nil
			}
			sum.BestIndex = ranked[0].Index
		}
		// A cancellation that came after the last trial finished stopped
		// nothing, so the search stands complete.
		stopped := len(recs) < len(trials) || slices.ContainsFunc(recs, func(r TrialRecord) bool { return r.Status == Cancelled })
		if err := ctx.Err(); err != nil && (stopped || ri < len(pl.rungs)-1) {
			return sum, err
		}
		if len(ranked) == 0 {
			return sum, allFailed(recs)
		}
		survivors = survivors[:0]
		for _, rec := range ranked {
			survivors = append(survivors, rec.Config)
		}
	}
	return sum, nil
}

type runner struct {
	t        *Tuner
	fn       TrialFunc
	parallel int
	threads  int
	now      func() time.Time

	mu   sync.Mutex
	best *TrialRecord // the rung's best so far, the only one keeping its artifact
}

// runRung runs trials in order, at most parallel at once, and returns the
// records of those that were launched: all of them unless ctx ended first.
func (r *runner) runRung(ctx context.Context, trials []Trial) []TrialRecord {
	recs := make([]TrialRecord, len(trials))
	r.best = nil
	sem := make(chan struct{}, r.parallel)
	var wg sync.WaitGroup
	launched := 0
	for i := range trials {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		launched++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec := &recs[i]
			*rec = r.runTrial(ctx, trials[i])
			// The hook's copy is taken before keepIfBest publishes rec,
			// after which other trials may clear its artifact.
			seen := *rec
			r.keepIfBest(rec)
			if r.t.OnTrialEnd != nil {
				r.t.OnTrialEnd(seen)
			}
		}()
	}
	wg.Wait()
	return recs[:launched]
}

// keepIfBest drops the artifact of whichever of rec and the rung's best
// so far is worse, so a rung holds at most one artifact at a time.
func (r *runner) keepIfBest(rec *TrialRecord) {
	if rec.Status != Succeeded {
		rec.Artifact = nil
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.best != nil && !beats(rec, r.best) {
		rec.Artifact = nil
		return
	}
	if r.best != nil {
		r.best.Artifact = nil
	}
	r.best = rec
}

func (r *runner) runTrial(ctx context.Context, tr Trial) (rec TrialRecord) {
	if r.t.OnTrialStart != nil {
		r.t.OnTrialStart(tr)
	}
	rec.Trial = tr
	rec.Params = maps.Clone(tr.Params)
	start := r.now()
	defer func() {
		rec.Duration = r.now().Sub(start)
		if p := recover(); p != nil {
			rec.Status, rec.Err = Failed, fmt.Errorf("trial function panicked: %v", p)
		}
	}()
	res, err := r.fn(ctx, tr)
	switch {
	case err != nil && ctx.Err() != nil:
		rec.Status, rec.Err = Cancelled, err
	case err != nil:
		rec.Status, rec.Err = Failed, err
	case math.IsNaN(res.Score):
		rec.Status, rec.Err = Failed, fmt.Errorf("%s is NaN; a trial needs a score to be ranked", cmp.Or(res.Metric, "the score"))
		rec.Metric, rec.Metrics = res.Metric, res.Metrics
	default:
		rec.Status = Succeeded
		rec.Score, rec.Metric, rec.HigherIsBetter = res.Score, res.Metric, res.HigherIsBetter
		rec.Metrics, rec.Artifact = res.Metrics, res.Artifact
	}
	return rec
}

// beats orders succeeded trials: the better score first, then the lower
// index, so rankings do not depend on which trial finished first.
func beats(a, b *TrialRecord) bool {
	if a.Score != b.Score {
		if a.HigherIsBetter {
			return a.Score > b.Score
		}
		return a.Score < b.Score
	}
	return a.Index < b.Index
}

// rank returns the succeeded records, best first.
func rank(recs []TrialRecord) []*TrialRecord {
	var ok []*TrialRecord
	for i := range recs {
		if recs[i].Status == Succeeded {
			ok = append(ok, &recs[i])
		}
	}
	slices.SortFunc(ok, func(a, b *TrialRecord) int {
		if beats(a, b) {
			return -1
		}
		return 1
	})
	return ok
}

// checkMetrics sets the summary's metric from the first succeeded trial
// and refuses a search whose trials disagree: their scores could not be
// ranked against each other.
func (s *Summary) checkMetrics() error {
	var ref *TrialRecord
	for i := range s.Trials {
		rec := &s.Trials[i]
		if rec.Status != Succeeded {
			continue
		}
		if ref == nil {
			ref = rec
			s.Metric, s.HigherIsBetter = rec.Metric, rec.HigherIsBetter
			continue
		}
		if rec.Metric != ref.Metric || rec.HigherIsBetter != ref.HigherIsBetter {
			return errs.New(errs.Internal, "tuning: trial %d reports %q (higher is better: %v) but trial %d reported %q (higher is better: %v); every trial must report the same metric",
				rec.Index, rec.Metric, rec.HigherIsBetter, ref.Index, ref.Metric, ref.HigherIsBetter)
		}
	}
	return nil
}

// allFailed is the error for a rung none of whose trials succeeded: the
// first failure's code and message, since every trial usually fails for
// the same reason (a parameter out of range, data that will not load).
func allFailed(recs []TrialRecord) error {
	if len(recs) == 0 {
		return errs.New(errs.Internal, "tuning: no trials ran")
	}
	first := recs[0]
	msg := first.Err.Error()
	var e *errs.Error
	if errors.As(first.Err, &e) {
		msg = e.Message
	}
	which := fmt.Sprintf("all %d trials failed", len(recs))
	if first.Rung > 0 {
		which = fmt.Sprintf("all %d trials of rung %d failed", len(recs), first.Rung)
	}
	return errs.New(errs.CodeOf(first.Err), "%s; trial %d: %s", which, first.Index, msg)
}
