package serving

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/errs"
)

// Rollout states.
const (
	RolloutRunning    = "running"
	RolloutSucceeded  = "succeeded"
	RolloutRolledBack = "rolled_back"
	RolloutCancelled  = "cancelled"
)

// Rollout defaults: the shares Argo Rollouts and Flagger users start
// from, a minute at each, judged once the canary has answered enough
// requests for its error rate to mean something.
var DefaultRolloutSteps = []int{10, 25, 50, 100}

const (
	DefaultRolloutInterval      = time.Minute
	DefaultRolloutMinRequests   = 100
	DefaultMaxErrorRateIncrease = 0.01
	DefaultMaxLatencyRatio      = 1.5
	// LatencySlack is added to the stable version's p99 before comparing:
	// sub-millisecond native models differ by bucket widths, not by
	// anything a user would call slower.
	LatencySlack = time.Millisecond
)

// RolloutSpec says how a progressive rollout raises a canary. Zero
// values take the defaults.
type RolloutSpec struct {
	Model string `json:"model"`
	// Steps are the canary's shares in percent, rising; the last is 100,
	// at which the canary is promoted.
	Steps           []int   `json:"steps"`
	IntervalSeconds float64 `json:"interval_seconds"`
	// MinRequests is how many requests the canary must answer in a step
	// before the step is judged or passed.
	MinRequests int64 `json:"min_requests"`
	// MaxErrorRateIncrease is how far the canary's error rate may exceed
	// the stable version's (0.01: one percentage point).
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase"`
	// MaxLatencyRatio bounds the canary's p99 latency by this multiple of
	// the stable version's (plus LatencySlack).
	MaxLatencyRatio float64 `json:"max_latency_ratio"`
}

func (sp *RolloutSpec) normalize() error {
	if _, err := ParseModelRef("model", sp.Model); err != nil {
		return err
	}
	if len(sp.Steps) == 0 {
		sp.Steps = slices.Clone(DefaultRolloutSteps)
	}
	if len(sp.Steps) > 20 {
		return errs.Invalid("steps: %d steps; at most 20", len(sp.Steps))
	}
	for i, p := range sp.Steps {
		if p < 1 || p > 100 {
			return errs.Invalid("steps[%d]: %d must be between 1 and 100", i, p)
		}
		if i > 0 && p <= sp.Steps[i-1] {
			return errs.Invalid("steps[%d]: %d must be above the step before it (%d)", i, p, sp.Steps[i-1])
		}
	}
	if sp.Steps[0] == 100 || sp.Steps[len(sp.Steps)-1] != 100 {
		return errs.Invalid("steps: %v must rise to 100 (promotion) from a first step below it", sp.Steps)
	}
	switch {
	case sp.IntervalSeconds == 0:
		sp.IntervalSeconds = DefaultRolloutInterval.Seconds()
	case sp.IntervalSeconds < 1 || sp.IntervalSeconds > 7*24*3600:
		return errs.Invalid("interval_seconds: %g must be between 1 and 604800", sp.IntervalSeconds)
	}
	switch {
	case sp.MinRequests == 0:
		sp.MinRequests = DefaultRolloutMinRequests
	case sp.MinRequests < 0:
		return errs.Invalid("min_requests: %d must not be negative", sp.MinRequests)
	}
	switch {
	case sp.MaxErrorRateIncrease == 0:
		sp.MaxErrorRateIncrease = DefaultMaxErrorRateIncrease
	case sp.MaxErrorRateIncrease < 0 || sp.MaxErrorRateIncrease > 1:
		return errs.Invalid("max_error_rate_increase: %g must be between 0 and 1 (a share of requests)", sp.MaxErrorRateIncrease)
	}
	switch {
	case sp.MaxLatencyRatio == 0:
		sp.MaxLatencyRatio = DefaultMaxLatencyRatio
	case sp.MaxLatencyRatio < 1:
		return errs.Invalid("max_latency_ratio: %g must be at least 1", sp.MaxLatencyRatio)
	}
	return nil
}

func (sp RolloutSpec) interval() time.Duration {
	return time.Duration(sp.IntervalSeconds * float64(time.Second))
}

// breach says how the canary's window is out of bounds of the stable
// version's, or "" when it is within them.
func (sp RolloutSpec) breach(canary, stable window) string {
	if ce, se := canary.ErrorRate(), stable.ErrorRate(); ce > se+sp.MaxErrorRateIncrease {
		return fmt.Sprintf("canary error rate %.2f%% (%d of %d requests) exceeds the stable version's %.2f%% by more than %.2f points",
			100*ce, canary.Errors, canary.Requests, 100*se, 100*sp.MaxErrorRateIncrease)
	}
	if stable.Requests == 0 {
		return ""
	}
	cp, sp99 := canary.Quantile(.99), stable.Quantile(.99)
	if limit := time.Duration(float64(sp99)*sp.MaxLatencyRatio) + LatencySlack; cp > limit {
		return fmt.Sprintf("canary p99 latency %s exceeds %g x the stable version's %s plus %s",
			cp.Round(time.Microsecond), sp.MaxLatencyRatio, sp99.Round(time.Microsecond), LatencySlack)
	}
	return ""
}

// Rollout is a deployment's latest progressive rollout.
type Rollout struct {
	Deployment string      `json:"deployment"`
	Spec       RolloutSpec `json:"spec"`
	// Step indexes Spec.Steps: the share the canary has now.
	Step        int    `json:"step"`
	Percent     int    `json:"percent"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Revision    int64  `json:"revision"`
	StartedTime int64  `json:"started_time"`
	StepTime    int64  `json:"step_time"`
	UpdatedTime int64  `json:"updated_time"`
	StartedBy   string `json:"started_by,omitempty"`
	// Canary and Stable are what this server has seen of each since the
	// current step began, while the rollout runs.
	Canary *WindowStats `json:"canary,omitempty"`
	Stable *WindowStats `json:"stable,omitempty"`
}

// WindowStats summarises a version's requests over a rollout step.
type WindowStats struct {
	Version   string  `json:"version"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P99Millis float64 `json:"p99_ms"`
}

func windowStats(m *Loaded, w window) *WindowStats {
	return &WindowStats{Version: m.VersionString(), Requests: w.Requests, Errors: w.Errors, ErrorRate: w.ErrorRate(),
		P99Millis: float64(w.Quantile(.99).Microseconds()) / 1000}
}

// stepBase is where a rollout step's window starts on this server: the
// counters when this server first saw the step. After a restart a step's
// window starts again, which only ever makes a rollout more careful.
type stepBase struct {
	revision       int64
	since          time.Time
	canary, stable window
}

type rolloutBases struct {
	mu sync.Mutex
	m  map[string]*stepBase
}

func (b *rolloutBases) get(name string, revision int64, now time.Time, canary, stable *VersionStats) *stepBase {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sb := b.m[name]; sb != nil && sb.revision == revision {
		return sb
	}
	if b.m == nil {
		b.m = map[string]*stepBase{}
	}
	sb := &stepBase{revision: revision, since: now, canary: canary.read(), stable: stable.read()}
	b.m[name] = sb
	return sb
}

func (b *rolloutBases) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, name)
}

// StartRollout sends the first step's share of the traffic to spec.Model
// and records the rollout; the service then raises the share step by step
// (checking every RolloutCheckEvery) while the canary stays within bounds,
// promotes it after the last step, and rolls back at once when it does
// not.
func (s *Service) StartRollout(ctx context.Context, name string, spec RolloutSpec) (Rollout, error) {
	if err := spec.normalize(); err != nil {
		return Rollout{}, err
	}
	if r, err := s.GetRollout(ctx, name); err == nil && r.State == RolloutRunning {
		return Rollout{}, errs.New(errs.FailedPrecondition,
			"deployment %q has a rollout of %s running (slipway deploy rollout %s --cancel stops it)", name, r.Spec.Model, name)
	}
	raw, _ := json.Marshal(spec)
	now, by := s.nowMillis(), audit.Actor(ctx)
	action := fmt.Sprintf("rollout %s at %d%% (step 1 of %d)", spec.Model, spec.Steps[0], len(spec.Steps))
	_, err := s.applyWith(ctx, name, action, func(cur *Deployment) (Split, error) {
		return cur.withCanary(spec.Model, spec.Steps[0])
	}, func(tx *sql.Tx, rev int64) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO deployment_rollouts
			(deployment, spec, step, state, reason, revision, started_time, step_time, updated_time, started_by)
			VALUES (?, ?, 0, ?, '', ?, ?, ?, ?, ?)
			ON CONFLICT (deployment) DO UPDATE SET spec = excluded.spec, step = 0, state = excluded.state, reason = '',
				revision = excluded.revision, started_time = excluded.started_time, step_time = excluded.step_time,
				updated_time = excluded.updated_time, started_by = excluded.started_by`),
			name, string(raw), RolloutRunning, rev, now, now, now, by)
		return err
	})
	if err != nil {
		return Rollout{}, err
	}
	return s.GetRollout(ctx, name)
}

const rolloutColumns = `deployment, spec, step, state, reason, revision, started_time, step_time, updated_time, started_by`

func scanRollout(r interface{ Scan(...any) error }) (Rollout, error) {
	var ro Rollout
	var raw string
	if err := r.Scan(&ro.Deployment, &raw, &ro.Step, &ro.State, &ro.Reason, &ro.Revision, &ro.StartedTime, &ro.StepTime,
		&ro.UpdatedTime, &ro.StartedBy); err != nil {
		return ro, err
	}
	if err := json.Unmarshal([]byte(raw), &ro.Spec); err != nil {
		return ro, err
	}
	if ro.Step >= 0 && ro.Step < len(ro.Spec.Steps) {
		ro.Percent = ro.Spec.Steps[ro.Step]
	}
	return ro, nil
}

// GetRollout returns a deployment's latest rollout, with what this server
// has seen of the canary and the stable version in the current step.
func (s *Service) GetRollout(ctx context.Context, name string) (Rollout, error) {
	ro, err := scanRollout(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+rolloutColumns+` FROM deployment_rollouts WHERE deployment = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.Get(ctx, name); err != nil {
			return ro, err
		}
		return ro, errs.NotFoundf("deployment %q has no rollout (slipway deploy rollout starts one)", name)
	}
	if err != nil {
		return ro, errs.Wrap(err, "reading rollout")
	}
	if ro.State == RolloutRunning {
		if t := s.table(name); t != nil && t.revision == ro.Revision {
			if canary, stable := t.byRole(RoleCanary), t.byRole(RoleStable); canary != nil && stable != nil {
				cs, ss := s.Stats(name, canary), s.Stats(name, stable)
				sb := s.bases.get(name, ro.Revision, s.Now(), cs, ss)
				ro.Canary = windowStats(canary, cs.read().since(sb.canary))
				ro.Stable = windowStats(stable, ss.read().since(sb.stable))
			}
		}
	}
	return ro, nil
}

// CancelRollout stops a running rollout where it is: the split stays as
// it is (slipway deploy rollback restores the one before).
func (s *Service) CancelRollout(ctx context.Context, name string) (Rollout, error) {
	ro, err := s.GetRollout(ctx, name)
	if err != nil {
		return ro, err
	}
	if ro.State != RolloutRunning {
		return ro, errs.New(errs.FailedPrecondition, "deployment %q has no running rollout (its last one %s)", name, ro.State)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.finishRollout(ctx, tx, ro, RolloutCancelled, "cancelled by "+orSomeone(audit.Actor(ctx))); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Change{Time: s.nowMillis(), Action: "deployment.rollout_cancel",
			Target: audit.Deployment(name), Before: map[string]any{"rollout": ro.Spec.Model, "percent": ro.Percent}})
	})
	if err != nil {
		return ro, errs.Wrap(err, "cancelling rollout")
	}
	return s.GetRollout(ctx, name)
}

func orSomeone(actor string) string {
	if actor == "" {
		return "a user"
	}
	return actor
}

// finishRollout ends a running rollout, unless another server already
// moved it on.
func (s *Service) finishRollout(ctx context.Context, tx *sql.Tx, ro Rollout, state, reason string) error {
	_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE deployment_rollouts SET state = ?, reason = ?, updated_time = ?
		WHERE deployment = ? AND state = ? AND step = ?`), state, reason, s.nowMillis(), ro.Deployment, RolloutRunning, ro.Step)
	return err
}

// RolloutCheckEvery is how often running rollouts are judged.
var RolloutCheckEvery = time.Second

// checkRollouts judges every running rollout once.
func (s *Service) checkRollouts(ctx context.Context) {
	var running []Rollout
	err := s.db.EachRow(ctx, `SELECT `+rolloutColumns+` FROM deployment_rollouts WHERE state = ?`, []any{RolloutRunning}, func(rows *sql.Rows) error {
		ro, err := scanRollout(rows)
		running = append(running, ro)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("reading rollouts", "err", err)
		}
		return
	}
	for _, ro := range running {
		if err := s.judge(ctx, ro); err != nil && ctx.Err() == nil {
			s.Log.Warn("judging rollout", "deployment", ro.Deployment, "err", err)
		}
	}
}

// judge rolls a rollout back when its canary is out of bounds, and moves
// it to its next step when the step's time is up and the canary has
// answered enough requests.
func (s *Service) judge(ctx context.Context, ro Rollout) error {
	name := ro.Deployment
	d, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	if d.Revision != ro.Revision {
		s.bases.forget(name)
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			return s.finishRollout(ctx, tx, ro, RolloutCancelled,
				fmt.Sprintf("the deployment was changed by hand (revision %d), so the rollout stopped", d.Revision))
		})
	}
	t := s.table(name)
	if t == nil || t.revision != ro.Revision {
		return nil // this server has not loaded the step yet
	}
	canary, stable := t.byRole(RoleCanary), t.byRole(RoleStable)
	if canary == nil || stable == nil {
		return nil
	}
	cs, ss := s.Stats(name, canary), s.Stats(name, stable)
	sb := s.bases.get(name, ro.Revision, s.Now(), cs, ss)
	cw, sw := cs.read().since(sb.canary), ss.read().since(sb.stable)
	if cw.Requests >= ro.Spec.MinRequests {
		if why := ro.Spec.breach(cw, sw); why != "" {
			return s.rollBack(ctx, d, ro, why)
		}
	}
	if s.Now().Sub(sb.since) < ro.Spec.interval() {
		return nil
	}
	if cw.Requests < ro.Spec.MinRequests {
		why := fmt.Sprintf("waiting for %d canary requests at %d%% (%d so far)", ro.Spec.MinRequests, ro.Percent, cw.Requests)
		if ro.Reason == why {
			return nil
		}
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE deployment_rollouts SET reason = ?
				WHERE deployment = ? AND state = ? AND step = ?`), why, name, RolloutRunning, ro.Step)
			return err
		})
	}
	return s.nextStep(ctx, ro)
}

// nextStep raises the canary to the next share, or promotes it after the
// last step.
func (s *Service) nextStep(ctx context.Context, ro Rollout) error {
	step := ro.Step + 1
	percent := ro.Spec.Steps[step]
	last := step == len(ro.Spec.Steps)-1
	action := fmt.Sprintf("rollout %s at %d%% (step %d of %d)", ro.Spec.Model, percent, step+1, len(ro.Spec.Steps))
	if last {
		action = fmt.Sprintf("rollout %s promoted (step %d of %d)", ro.Spec.Model, step+1, len(ro.Spec.Steps))
	}
	_, err := s.applyWith(ctx, ro.Deployment, action, func(cur *Deployment) (Split, error) {
		if cur.Revision != ro.Revision {
			return Split{}, errs.New(errs.FailedPrecondition, "deployment %q changed meanwhile", ro.Deployment)
		}
		if last {
			next := cur.Split
			next.Routes = []Route{{Model: ro.Spec.Model, Weight: 100, Role: RoleStable}}
			return next, nil
		}
		return cur.withCanary(ro.Spec.Model, percent)
	}, func(tx *sql.Tx, rev int64) error {
		state, reason := RolloutRunning, ""
		if last {
			state, reason = RolloutSucceeded, "promoted after every step stayed within bounds"
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE deployment_rollouts SET step = ?, state = ?, reason = ?, revision = ?,
			step_time = ?, updated_time = ? WHERE deployment = ? AND state = ? AND step = ?`),
			step, state, reason, rev, s.nowMillis(), s.nowMillis(), ro.Deployment, RolloutRunning, ro.Step)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.New(errs.FailedPrecondition, "rollout of %q moved on meanwhile", ro.Deployment)
		}
		return nil
	})
	if errs.CodeOf(err) == errs.FailedPrecondition {
		return nil // another server took the step
	}
	if err == nil {
		s.Log.Info("rollout step", "deployment", ro.Deployment, "model", ro.Spec.Model, "percent", percent)
	}
	return err
}

// rollBack sends all traffic back to the stable route and records why.
func (s *Service) rollBack(ctx context.Context, d Deployment, ro Rollout, why string) error {
	stable, ok := d.stable()
	if !ok {
		return errs.New(errs.FailedPrecondition, "deployment %q has no stable route", d.Name)
	}
	_, err := s.applyWith(ctx, d.Name, "rollout rolled back: "+why, func(cur *Deployment) (Split, error) {
		if cur.Revision != ro.Revision {
			return Split{}, errs.New(errs.FailedPrecondition, "deployment %q changed meanwhile", d.Name)
		}
		next := cur.Split
		next.Routes = []Route{{Model: stable.Model, Weight: 100, Role: RoleStable}}
		return next, nil
	}, func(tx *sql.Tx, rev int64) error {
		return s.finishRollout(ctx, tx, ro, RolloutRolledBack, why)
	})
	if errs.CodeOf(err) == errs.FailedPrecondition {
		return nil
	}
	if err == nil {
		s.bases.forget(d.Name)
		s.Log.Warn("rollout rolled back", "deployment", d.Name, "model", ro.Spec.Model, "reason", why)
	}
	return err
}

// byRole is the model of the first route with role.
func (t *table) byRole(role string) *Loaded {
	for _, r := range t.routes {
		if r.Role == role {
			return r.model
		}
	}
	return nil
}
