package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
)

// Gate kinds, as GateResult.Gate names them.
const (
	GateMetric       = "metric"
	GateTag          = "tag"
	GateApprovals    = "approvals"
	GateNoRegression = "no_regression"
)

// GateResult is one gate's verdict on a version.
type GateResult struct {
	Gate   string
	Met    bool
	Detail string
}

// Evaluation is a policy's verdict on promoting a version to a target.
type Evaluation struct {
	Name    string
	Version int64
	Target  Target
	// Governed is false when the model's policy has no gates for Target;
	// the promotion is then free.
	Governed bool
	Gates    []GateResult
}

// Passed reports whether every gate is met.
func (e Evaluation) Passed() bool {
	for _, g := range e.Gates {
		if !g.Met {
			return false
		}
	}
	return true
}

// refusal is the error a promotion that fails e returns: FailedPrecondition
// naming every unmet gate, so one attempt tells the user all that is left.
func (e Evaluation) refusal() error {
	var unmet []string
	for _, g := range e.Gates {
		if !g.Met {
			unmet = append(unmet, g.Detail)
		}
	}
	what := fmt.Sprintf("cannot move alias %q of model %s to version %d", e.Target.Alias, e.Name, e.Version)
	if e.Target.Stage != "" {
		what = fmt.Sprintf("cannot transition model %s version %d to stage %s", e.Name, e.Version, e.Target.Stage)
	}
	return errs.New(errs.FailedPrecondition, "%s: %s", what, strings.Join(unmet, "; "))
}

// Approval is one user's approval of a version for a target.
type Approval struct {
	Target       Target
	Approver     string
	ApproverRole string
	Comment      string
	CreationTime int64
}

// StoredPolicy is a policy with who last set it and when.
type StoredPolicy struct {
	Policy      Policy
	UpdatedTime int64
	UpdatedBy   string
}

// MaxApprovalComment bounds an approval's comment, as a tag value is bounded.
const MaxApprovalComment = MaxTagValueLength

// loadPolicy reads a model's policy; ok is false when it has none.
func (s *Service) loadPolicy(ctx context.Context, q queryer, modelID int64) (StoredPolicy, bool, error) {
	var raw string
	var sp StoredPolicy
	err := q.QueryRowContext(ctx, s.db.Q(`SELECT policy, updated_time, updated_by FROM promotion_policies WHERE model_id = ?`), modelID).
		Scan(&raw, &sp.UpdatedTime, &sp.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredPolicy{}, false, nil
	}
	if err != nil {
		return StoredPolicy{}, false, err
	}
	if err := json.Unmarshal([]byte(raw), &sp.Policy); err != nil {
		return StoredPolicy{}, false, errs.Wrap(err, "reading a promotion policy")
	}
	return sp, true, nil
}

// GetPolicy returns a model's promotion policy.
func (s *Service) GetPolicy(ctx context.Context, name string) (StoredPolicy, error) {
	id, err := s.modelID(ctx, s.db.Read, name)
	if err != nil {
		return StoredPolicy{}, err
	}
	sp, ok, err := s.loadPolicy(ctx, s.db.Read, id)
	if err != nil {
		return StoredPolicy{}, err
	}
	if !ok {
		return StoredPolicy{}, errs.NotFoundf("Registered Model with name=%s has no promotion policy", name)
	}
	return sp, nil
}

// requireRole refuses an authenticated caller below role. A caller with no
// principal passes: the server runs without authentication and trusts
// everyone, which the docs say governance then cannot change.
func requireRole(ctx context.Context, role, what string) error {
	if p, ok := auth.PrincipalFrom(ctx); ok && !p.Can(role) {
		return errs.New(errs.PermissionDenied, "%s needs role %s or above; %s has role %s", what, role, p.Username, p.Role)
	}
	return nil
}

// SetPolicy replaces a model's promotion policy. Only admins may: an
// editor who could edit the policy could lift any gate.
func (s *Service) SetPolicy(ctx context.Context, name string, p Policy) (StoredPolicy, error) {
	if err := requireRole(ctx, auth.RoleAdmin, "changing a promotion policy"); err != nil {
		return StoredPolicy{}, err
	}
	p, err := p.Normalize()
	if err != nil {
		return StoredPolicy{}, err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return StoredPolicy{}, errs.Wrap(err, "encoding a promotion policy")
	}
	sp := StoredPolicy{Policy: p, UpdatedBy: audit.Actor(ctx)}
	err = s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, had, err := s.loadPolicy(ctx, tx, id)
		if err != nil {
			return err
		}
		sp.UpdatedTime = s.nowMillis()
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO promotion_policies (model_id, policy, updated_time, updated_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (model_id) DO UPDATE SET policy = excluded.policy, updated_time = excluded.updated_time, updated_by = excluded.updated_by`),
			id, string(raw), sp.UpdatedTime, sp.UpdatedBy); err != nil {
			return err
		}
		var before any
		if had {
			before = old.Policy
		}
		return s.record(ctx, tx, "registered_model.set_policy", audit.Model(name), before, p)
	})
	if err != nil {
		return StoredPolicy{}, err
	}
	return sp, nil
}

// DeletePolicy removes a model's policy; a model without one is not an
// error. Only admins may.
func (s *Service) DeletePolicy(ctx context.Context, name string) error {
	if err := requireRole(ctx, auth.RoleAdmin, "deleting a promotion policy"); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, had, err := s.loadPolicy(ctx, tx, id)
		if err != nil || !had {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM promotion_policies WHERE model_id = ?`), id); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.delete_policy", audit.Model(name), old.Policy, nil)
	})
}

// Approve records the caller's approval of a version for a target. The
// caller must be authenticated with role approver or admin, and must not be
// the user who registered the version: an approval is a second pair of
// eyes. Approving again replaces the comment.
func (s *Service) Approve(ctx context.Context, name string, version int64, target Target, comment string) (Approval, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return Approval{}, errs.New(errs.PermissionDenied, "approving needs an API token with role approver or admin; this request carried none")
	}
	if !p.Can(auth.RoleApprover) {
		return Approval{}, errs.New(errs.PermissionDenied, "approving needs role approver or above; %s has role %s", p.Username, p.Role)
	}
	t, err := target.normalize()
	if err != nil {
		return Approval{}, err
	}
	if err := checkText("comment", comment, MaxApprovalComment); err != nil {
		return Approval{}, err
	}
	a := Approval{Target: t, Approver: p.Username, ApproverRole: p.Role, Comment: comment}
	err = s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		if v.UserID != nil && *v.UserID == p.Username {
			return errs.New(errs.PermissionDenied, "%s registered model %s version %d and cannot also approve it; another approver must", p.Username, name, version)
		}
		var before any
		var oldComment string
		var oldTime int64
		err = tx.QueryRowContext(ctx, s.db.Q(`SELECT comment, creation_time FROM model_version_approvals
			WHERE model_id = ? AND version = ? AND target = ? AND approver = ?`), v.modelID, version, t.key(), p.Username).Scan(&oldComment, &oldTime)
		switch {
		case err == nil:
			before = map[string]any{"target": t.key(), "approver": p.Username, "comment": oldComment}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		a.CreationTime = s.nowMillis()
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO model_version_approvals
			(model_id, version, target, approver, approver_role, comment, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (model_id, version, target, approver) DO UPDATE SET
			approver_role = excluded.approver_role, comment = excluded.comment, creation_time = excluded.creation_time`),
			v.modelID, version, t.key(), p.Username, p.Role, comment, a.CreationTime); err != nil {
			return err
		}
		after := map[string]any{"target": t.key(), "approver": p.Username, "comment": comment}
		return s.record(ctx, tx, "model_version.approve", audit.ModelVersion(name, version), before, after)
	})
	if err != nil {
		return Approval{}, err
	}
	return a, nil
}

// Approvals lists a version's approvals, by target and then approver.
func (s *Service) Approvals(ctx context.Context, name string, version int64) ([]Approval, error) {
	v, err := s.versionRow(ctx, s.db.Read, name, version)
	if err != nil {
		return nil, err
	}
	out := []Approval{}
	err = s.db.EachRow(ctx, `SELECT target, approver, approver_role, comment, creation_time FROM model_version_approvals
		WHERE model_id = ? AND version = ? ORDER BY target, approver`, []any{v.modelID, version}, func(rows *sql.Rows) error {
		var a Approval
		var key string
		if err := rows.Scan(&key, &a.Approver, &a.ApproverRole, &a.Comment, &a.CreationTime); err != nil {
			return err
		}
		a.Target = targetFromKey(key)
		out = append(out, a)
		return nil
	})
	return out, err
}

// EvaluateGates answers whether version could be promoted to target now,
// gate by gate, without changing anything.
func (s *Service) EvaluateGates(ctx context.Context, name string, version int64, target Target) (Evaluation, error) {
	t, err := target.normalize()
	if err != nil {
		return Evaluation{}, err
	}
	v, err := s.versionRow(ctx, s.db.Read, name, version)
	if err != nil {
		return Evaluation{}, err
	}
	return s.evaluate(ctx, s.db.Read, v, t)
}

// enforce refuses, inside the promotion's own transaction, a promotion
// that the model's policy does not allow.
func (s *Service) enforce(ctx context.Context, tx *sql.Tx, v ModelVersion, t Target) error {
	e, err := s.evaluate(ctx, tx, v, t)
	if err != nil {
		return err
	}
	if !e.Passed() {
		return e.refusal()
	}
	return nil
}

// evaluate judges v against its model's gates for t. Registry state (the
// policy, tags, approvals, the current holder) is read through q, the
// promotion's transaction when enforcing; run metrics come from tracking,
// which the registry does not write.
func (s *Service) evaluate(ctx context.Context, q queryer, v ModelVersion, t Target) (Evaluation, error) {
	e := Evaluation{Name: v.Name, Version: v.Version, Target: t}
	sp, ok, err := s.loadPolicy(ctx, q, v.modelID)
	if err != nil || !ok {
		return e, err
	}
	g, ok := sp.Policy.gatesFor(t)
	if !ok {
		return e, nil
	}
	e.Governed = true

	var metrics map[string]float64
	var metricsWhy string
	if len(g.Metrics) > 0 || g.NoRegression != nil {
		metrics, metricsWhy, err = s.runMetrics(ctx, versionRunID(v))
		if err != nil {
			return e, err
		}
	}
	for _, m := range g.Metrics {
		e.Gates = append(e.Gates, metricResult(m, metrics, metricsWhy))
	}

	if len(g.Tags) > 0 {
		have := map[string]string{}
		err := eachRow(ctx, q, s.db.Q(`SELECT key, value FROM model_version_tags WHERE model_id = ? AND version = ?`), []any{v.modelID, v.Version}, func(rows *sql.Rows) error {
			var k, val string
			if err := rows.Scan(&k, &val); err != nil {
				return err
			}
			have[k] = val
			return nil
		})
		if err != nil {
			return e, err
		}
		for _, k := range sortedKeys(g.Tags) {
			e.Gates = append(e.Gates, tagResult(k, g.Tags[k], have))
		}
	}

	if g.Approvals > 0 {
		r, err := s.approvalResult(ctx, q, v, t, g.Approvals)
		if err != nil {
			return e, err
		}
		e.Gates = append(e.Gates, r)
	}

	if g.NoRegression != nil {
		r, err := s.regressionResult(ctx, q, v, t, *g.NoRegression, metrics, metricsWhy)
		if err != nil {
			return e, err
		}
		e.Gates = append(e.Gates, r)
	}
	return e, nil
}

func eachRow(ctx context.Context, q queryer, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// versionRunID is the run a version came from: its run_id, or the run a
// runs:/ source names when the client sent no run_id.
func versionRunID(v ModelVersion) string {
	if v.RunID != nil && *v.RunID != "" {
		return *v.RunID
	}
	if rest, ok := strings.CutPrefix(v.Source, "runs:/"); ok {
		id, _, _ := strings.Cut(rest, "/")
		return id
	}
	return ""
}

// runMetrics returns the latest value of each metric of run runID. When
// there is nothing to read, metrics is nil and why says what is missing.
func (s *Service) runMetrics(ctx context.Context, runID string) (metrics map[string]float64, why string, err error) {
	if runID == "" {
		return nil, "the version has no source run", nil
	}
	if s.tracking == nil {
		return nil, "runs are not available to the registry", nil
	}
	run, err := s.tracking.GetRun(ctx, runID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.InvalidArgument) {
		return nil, fmt.Sprintf("source run %s no longer exists", runID), nil
	}
	if err != nil {
		return nil, "", err
	}
	metrics = make(map[string]float64, len(run.Metrics))
	for _, m := range run.Metrics {
		metrics[m.Key] = m.Value
	}
	return metrics, "run " + runID + " did not log it", nil
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func metricResult(m MetricGate, metrics map[string]float64, why string) GateResult {
	want := *m.Value
	r := GateResult{Gate: GateMetric}
	got, ok := metrics[m.Metric]
	switch {
	case !ok:
		r.Detail = fmt.Sprintf("metric %s %s %s required, but %s", m.Metric, m.Op, fmtValue(want), why)
	case compare(got, m.Op, want):
		r.Met = true
		r.Detail = fmt.Sprintf("metric %s is %s (%s %s required)", m.Metric, fmtValue(got), m.Op, fmtValue(want))
	default:
		r.Detail = fmt.Sprintf("metric %s is %s, but %s %s is required", m.Metric, fmtValue(got), m.Op, fmtValue(want))
	}
	return r
}

func tagResult(key, want string, have map[string]string) GateResult {
	r := GateResult{Gate: GateTag}
	got, ok := have[key]
	switch {
	case !ok:
		r.Detail = fmt.Sprintf("tag %s=%s is missing", key, want)
	case got != want:
		r.Detail = fmt.Sprintf("tag %s is %q, but %q is required", key, got, want)
	default:
		r.Met = true
		r.Detail = fmt.Sprintf("tag %s=%s is set", key, want)
	}
	return r
}

// approvalResult counts distinct approvers of v for t with role approver
// or admin, leaving out the registrant. Approve already refuses the
// registrant; counting is checked again here so that the gate's meaning
// does not rest on how the rows got there.
func (s *Service) approvalResult(ctx context.Context, q queryer, v ModelVersion, t Target, need int) (GateResult, error) {
	var names []string
	err := eachRow(ctx, q, s.db.Q(`SELECT approver, approver_role FROM model_version_approvals
		WHERE model_id = ? AND version = ? AND target = ? ORDER BY approver`), []any{v.modelID, v.Version, t.key()}, func(rows *sql.Rows) error {
		var who, role string
		if err := rows.Scan(&who, &role); err != nil {
			return err
		}
		if (role == auth.RoleApprover || role == auth.RoleAdmin) && (v.UserID == nil || *v.UserID != who) {
			names = append(names, who)
		}
		return nil
	})
	if err != nil {
		return GateResult{}, err
	}
	r := GateResult{Gate: GateApprovals, Met: len(names) >= need}
	plural := "s"
	if need == 1 {
		plural = ""
	}
	r.Detail = fmt.Sprintf("needs %d approval%s from an approver, has %d", need, plural, len(names))
	if len(names) > 0 {
		r.Detail += " (" + strings.Join(names, ", ") + ")"
	}
	return r, nil
}

// holder is the version that holds t now, other than v: the alias's
// version, or the newest other version in the stage. ok is false when
// there is none.
func (s *Service) holder(ctx context.Context, q queryer, v ModelVersion, t Target) (ModelVersion, bool, error) {
	var n int64
	var err error
	if t.Alias != "" {
		err = q.QueryRowContext(ctx, s.db.Q(`SELECT version FROM registered_model_aliases WHERE model_id = ? AND alias = ?`), v.modelID, t.Alias).Scan(&n)
	} else {
		var max sql.NullInt64
		err = q.QueryRowContext(ctx, s.db.Q(`SELECT MAX(version) FROM model_versions WHERE model_id = ? AND current_stage = ? AND version <> ?`),
			v.modelID, t.Stage, v.Version).Scan(&max)
		n = max.Int64
	}
	if errors.Is(err, sql.ErrNoRows) || err == nil && (n == 0 || n == v.Version) {
		return ModelVersion{}, false, nil
	}
	if err != nil {
		return ModelVersion{}, false, err
	}
	h, err := s.versionRow(ctx, q, v.Name, n)
	if errs.Is(err, errs.NotFound) {
		return ModelVersion{}, false, nil
	}
	return h, err == nil, err
}

func (s *Service) regressionResult(ctx context.Context, q queryer, v ModelVersion, t Target, g RegressionGate, metrics map[string]float64, why string) (GateResult, error) {
	r := GateResult{Gate: GateNoRegression}
	h, ok, err := s.holder(ctx, q, v, t)
	if err != nil {
		return r, err
	}
	if !ok {
		r.Met = true
		r.Detail = fmt.Sprintf("no other version holds %s, so there is nothing to regress from", t)
		return r, nil
	}
	got, ok := metrics[g.Metric]
	if !ok {
		r.Detail = fmt.Sprintf("metric %s must be compared with version %d (which holds %s), but %s", g.Metric, h.Version, t, why)
		return r, nil
	}
	hm, _, err := s.runMetrics(ctx, versionRunID(h))
	if err != nil {
		return r, err
	}
	base, ok := hm[g.Metric]
	if !ok || math.IsNaN(base) {
		r.Met = true
		r.Detail = fmt.Sprintf("version %d (which holds %s) has no %s to compare with", h.Version, t, g.Metric)
		return r, nil
	}
	worse := base - got
	if !*g.HigherIsBetter {
		worse = got - base
	}
	// A relative slack of 1e-9 keeps binary rounding (0.83 - 0.82 is
	// 0.010000000000000009) from failing a difference equal to the
	// tolerance.
	r.Met = worse <= g.Tolerance+1e-9*math.Max(1, math.Abs(base))
	if r.Met {
		r.Detail = fmt.Sprintf("metric %s is %s against %s of version %d (which holds %s), within tolerance %s", g.Metric, fmtValue(got), fmtValue(base), h.Version, t, fmtValue(g.Tolerance))
	} else {
		r.Detail = fmt.Sprintf("metric %s is %s, worse than %s of version %d (which holds %s) by %s, more than tolerance %s", g.Metric, fmtValue(got), fmtValue(base), h.Version, t, strconv.FormatFloat(worse, 'g', 6, 64), fmtValue(g.Tolerance))
	}
	return r, nil
}
