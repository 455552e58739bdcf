package serving

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// rolloutFixture is a deployment serving v1 of "credit", with v2 ready to
// roll out, and a clock the test moves.
type rolloutFixture struct {
	*fixture
	clock time.Time
}

func newRolloutFixture(t *testing.T, db *store.DB) *rolloutFixture {
	f := &rolloutFixture{fixture: newFixture(t, db), clock: time.UnixMilli(1_700_000_000_000)}
	f.s.Now = func() time.Time { return f.clock }
	f.register("credit", smallModel)
	f.register("credit", smallModel)
	if _, err := f.s.Create(f.ctx, "credit", "models:/credit/1"); err != nil {
		t.Fatal(err)
	}
	return f
}

// serve routes n requests as the inference layer does and records each
// outcome in the answering version's counters: the canary (v2) fails
// canaryFails of its requests and takes canaryLatency, the stable version
// fails none and takes 200µs.
func (f *rolloutFixture) serve(n int, canaryFails float64, canaryLatency time.Duration) {
	f.t.Helper()
	failed := 0.0
	for i := 0; i < n; i++ {
		m, _, err := f.s.Route("credit", "")
		if err != nil {
			f.t.Fatal(err)
		}
		if m.Version == 2 {
			failed += canaryFails
			fail := failed >= 1
			if fail {
				failed--
			}
			f.s.Stats("credit", m).Record(canaryLatency, fail)
			continue
		}
		f.s.Stats("credit", m).Record(200*time.Microsecond, false)
	}
}

func (f *rolloutFixture) check(wantState string, wantPercent int) Rollout {
	f.t.Helper()
	f.s.checkRollouts(f.ctx)
	ro, err := f.s.GetRollout(f.ctx, "credit")
	if err != nil {
		f.t.Fatal(err)
	}
	if ro.State != wantState || ro.Percent != wantPercent {
		f.t.Fatalf("rollout is %s at %d%% (%s); want %s at %d%%", ro.State, ro.Percent, ro.Reason, wantState, wantPercent)
	}
	return ro
}

// A healthy canary is raised step by step, only once each step has lasted
// its interval and seen enough canary requests, and is then promoted.
func TestRolloutRaisesAndPromotes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRolloutFixture(t, db)
		ro, err := f.s.StartRollout(f.ctx, "credit", RolloutSpec{Model: "models:/credit/2", Steps: []int{20, 50, 100},
			IntervalSeconds: 60, MinRequests: 100})
		if err != nil {
			t.Fatal(err)
		}
		if ro.State != RolloutRunning || ro.Percent != 20 || ro.Spec.MaxLatencyRatio != DefaultMaxLatencyRatio {
			t.Fatalf("started: %+v", ro)
		}
		if got := f.shares("credit", 10000); math.Abs(got["2"]-20) > 2 {
			t.Fatalf("first step: shares %v", got)
		}
		f.check(RolloutRunning, 20)
		f.serve(200, 0, 300*time.Microsecond) // about 40 canary requests
		f.clock = f.clock.Add(61 * time.Second)
		ro = f.check(RolloutRunning, 20)
		if !strings.Contains(ro.Reason, "waiting for 100 canary requests") {
			t.Errorf("a step short of requests: reason %q", ro.Reason)
		}
		f.serve(2000, 0, 300*time.Microsecond)
		ro = f.check(RolloutRunning, 50)
		if ro.Reason != "" || ro.Step != 1 {
			t.Errorf("second step: %+v", ro)
		}
		f.serve(2000, 0, 300*time.Microsecond)
		f.clock = f.clock.Add(30 * time.Second)
		f.check(RolloutRunning, 50) // the step has not lasted its interval
		f.clock = f.clock.Add(31 * time.Second)
		ro = f.check(RolloutSucceeded, 100)
		d, err := f.s.Get(f.ctx, "credit")
		if err != nil || len(d.Split.Routes) != 1 || d.Split.Routes[0].Model != "models:/credit/2" || d.Split.Routes[0].Role != RoleStable {
			t.Fatalf("after the rollout: %+v %v", d.Split, err)
		}
		revs, _ := f.s.Revisions(f.ctx, "credit")
		if len(revs) != 4 || !strings.HasPrefix(revs[0].Action, "rollout models:/credit/2 promoted") {
			t.Errorf("revisions: %+v", revs)
		}
		entries, _, _ := f.audit.List(f.ctx, audit.Filter{Target: &audit.Target{Type: audit.TypeDeployment, Name: "credit"}})
		if len(entries) != 4 || entries[0].Action != "deployment.rollout" {
			t.Errorf("audit: %d entries, newest %+v", len(entries), entries[0])
		}
	})
}

// A canary that fails more than the stable version, or answers slower, is
// rolled back as soon as it has answered enough requests, without waiting
// for its step to end.
func TestRolloutRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fails   float64
		latency time.Duration
		reason  string
	}{
		{"errors", 0.05, 300 * time.Microsecond, "canary error rate "},
		{"latency", 0, 40 * time.Millisecond, "canary p99 latency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				f := newRolloutFixture(t, db)
				if _, err := f.s.StartRollout(f.ctx, "credit", RolloutSpec{Model: "models:/credit/2", MinRequests: 100}); err != nil {
					t.Fatal(err)
				}
				f.check(RolloutRunning, 10)
				f.serve(3000, tc.fails, tc.latency)
				ro := f.check(RolloutRolledBack, 10)
				if !strings.Contains(ro.Reason, tc.reason) || !strings.Contains(ro.Reason, "the stable version's") {
					t.Errorf("reason %q; want it to say %q", ro.Reason, tc.reason)
				}
				if got := f.shares("credit", 1000); got["1"] != 100 {
					t.Errorf("after the rollback: shares %v", got)
				}
				revs, _ := f.s.Revisions(f.ctx, "credit")
				if len(revs) != 3 || !strings.HasPrefix(revs[0].Action, "rollout rolled back: "+tc.reason) {
					t.Errorf("revisions: %+v", revs)
				}
			})
		})
	}
}

// A rollout refuses bad specs with the field named, refuses to start
// twice, stops when the deployment is changed by hand, and can be
// cancelled.
func TestRolloutRulesAndCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRolloutFixture(t, db)
		for spec, want := range map[*RolloutSpec]string{
			{Model: "credit/2"}: "model",
			{Model: "models:/credit/2", Steps: []int{50, 20, 100}}:  "steps[1]: 20 must be above",
			{Model: "models:/credit/2", Steps: []int{10, 50}}:       "must rise to 100",
			{Model: "models:/credit/2", IntervalSeconds: 0.5}:       "interval_seconds",
			{Model: "models:/credit/2", MaxErrorRateIncrease: 2}:    "max_error_rate_increase",
			{Model: "models:/credit/2", MaxLatencyRatio: 0.5}:       "max_latency_ratio",
			{Model: "models:/credit/9"}:                             "models:/credit/9",
			{Model: "models:/credit/2", Steps: []int{0, 100}}:       "steps[0]",
			{Model: "models:/credit/2", MinRequests: -1}:            "min_requests",
			{Model: "models:/credit/2", Steps: []int{100}}:          "must rise to 100",
			{Model: "models:/credit/2", Steps: []int{10, 100, 100}}: "steps[2]",
		} {
			if _, err := f.s.StartRollout(f.ctx, "credit", *spec); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: %v; want an error naming %q", *spec, err, want)
			}
		}
		if d, _ := f.s.Get(f.ctx, "credit"); d.Revision != 1 {
			t.Fatalf("a refused rollout changed the deployment: revision %d", d.Revision)
		}
		if _, err := f.s.GetRollout(f.ctx, "credit"); !errs.Is(err, errs.NotFound) {
			t.Errorf("no rollout yet: %v", err)
		}
		if _, err := f.s.StartRollout(f.ctx, "credit", RolloutSpec{Model: "models:/credit/2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.StartRollout(f.ctx, "credit", RolloutSpec{Model: "models:/credit/2"}); errs.CodeOf(err) != errs.FailedPrecondition {
			t.Errorf("a second rollout: %v", err)
		}
		if _, err := f.s.Promote(f.ctx, "credit"); err != nil {
			t.Fatal(err)
		}
		ro := f.check(RolloutCancelled, 10)
		if !strings.Contains(ro.Reason, "changed by hand (revision 3)") {
			t.Errorf("reason %q", ro.Reason)
		}
		if _, err := f.s.Rollback(f.ctx, "credit"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.StartRollout(f.ctx, "credit", RolloutSpec{Model: "models:/credit/2", Steps: []int{30, 100}}); err != nil {
			t.Fatal(err)
		}
		ro, err := f.s.CancelRollout(f.ctx, "credit")
		if err != nil || ro.State != RolloutCancelled || ro.Percent != 30 {
			t.Fatalf("cancel: %+v %v", ro, err)
		}
		if got := f.shares("credit", 10000); math.Abs(got["2"]-30) > 2 {
			t.Errorf("a cancelled rollout keeps its split: shares %v", got)
		}
		if _, err := f.s.CancelRollout(f.ctx, "credit"); errs.CodeOf(err) != errs.FailedPrecondition {
			t.Errorf("cancelling twice: %v", err)
		}
	})
}
