package registry_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

func as(ctx context.Context, user, role string) context.Context {
	return auth.WithPrincipal(ctx, auth.Principal{Username: user, Role: role})
}

// candidate registers a version (as alice) from a run that logged metrics.
func (f *fixture) candidate(name string, metrics map[string]float64, tags map[string]string) int64 {
	f.t.Helper()
	runID, _ := f.run(map[string]string{"model/model.pkl": "w"})
	for k, v := range metrics {
		if err := f.tr.LogMetric(f.ctx, runID, tracking.Metric{Key: k, Value: v, Timestamp: 1}); err != nil {
			f.t.Fatal(err)
		}
	}
	var ts []registry.Tag
	for k, v := range tags {
		ts = append(ts, registry.Tag{Key: k, Value: v})
	}
	v, err := f.reg.CreateModelVersion(as(f.ctx, "alice", auth.RoleEditor), registry.CreateModelVersionRequest{
		Name: name, Source: "runs:/" + runID + "/model", RunID: runID, Tags: ts, UserID: "alice"})
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Version
}

const creditPolicy = `
aliases:
  production:
    metrics:
      - {metric: auc, op: ">=", value: 0.8}
    tags:
      validation: passed
    approvals: 1
    no_regression:
      metric: f1
      higher_is_better: true
      tolerance: 0.02
stages:
  production:
    approvals: 1
`

func auditActions(t *testing.T, db *store.DB, f audit.Filter) []audit.Entry {
	t.Helper()
	f.MaxResults = audit.MaxListResults
	es, _, err := audit.New(db).List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Each gate alone blocks the promotion, with a message naming it and
// nothing changed; all gates met promote, and the audit log shows it.
func TestPromotionGates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		f.model("credit")
		holder := f.candidate("credit", map[string]float64{"auc": 0.85, "f1": 0.70}, nil)
		if err := f.reg.SetAlias(ctx, "credit", "production", holder); err != nil {
			t.Fatal(err)
		}
		p, err := registry.ParsePolicyYAML([]byte(creditPolicy))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.reg.SetPolicy(as(ctx, "root", auth.RoleAdmin), "credit", p); err != nil {
			t.Fatal(err)
		}
		bob := as(ctx, "bob", auth.RoleApprover)
		good := map[string]float64{"auc": 0.84, "f1": 0.69}
		passed := map[string]string{"validation": "passed"}

		for _, c := range []struct {
			name    string
			metrics map[string]float64
			tags    map[string]string
			approve bool
			want    []string
		}{
			{"metric", map[string]float64{"auc": 0.75, "f1": 0.71}, passed, true, []string{"metric auc is 0.75, but >= 0.8 is required"}},
			{"metric not logged", map[string]float64{"f1": 0.71}, passed, true, []string{"metric auc >= 0.8 required, but run "}},
			{"tag missing", good, nil, true, []string{"tag validation=passed is missing"}},
			{"tag wrong", good, map[string]string{"validation": "failed"}, true, []string{`tag validation is "failed", but "passed" is required`}},
			{"approval", good, passed, false, []string{"needs 1 approval from an approver, has 0"}},
			{"regression", map[string]float64{"auc": 0.9, "f1": 0.6}, passed, true, []string{"metric f1 is 0.6, worse than 0.7 of version 1 (which holds alias \"production\") by 0.1, more than tolerance 0.02"}},
			{"all", map[string]float64{"auc": 0.5, "f1": 0.1}, nil, false, []string{"metric auc is 0.5", "tag validation=passed is missing", "has 0", "metric f1 is 0.1"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				v := f.candidate("credit", c.metrics, c.tags)
				if c.approve {
					if _, err := f.reg.Approve(bob, "credit", v, registry.AliasTarget("production"), "ok"); err != nil {
						t.Fatal(err)
					}
				}
				before := len(auditActions(t, db, audit.Filter{Action: "registered_model.set_alias"}))
				err := f.reg.SetAlias(as(ctx, "carol", auth.RoleEditor), "credit", "production", v)
				wantCode(t, "promote", err, errs.FailedPrecondition, `cannot move alias "production" of model credit to version`)
				msg := errs.Message(err)
				for _, w := range c.want {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not name %q", msg, w)
					}
				}
				if got := strings.Count(msg, "; ") + 1; got != len(c.want) {
					t.Errorf("message names %d gates, want %d: %q", got, len(c.want), msg)
				}
				if mv, err := f.reg.GetVersionByAlias(ctx, "credit", "production"); err != nil || mv.Version != holder {
					t.Fatalf("alias moved to %d (%v) after a refusal", mv.Version, err)
				}
				if after := len(auditActions(t, db, audit.Filter{Action: "registered_model.set_alias"})); after != before {
					t.Fatalf("a refused promotion was audited: %d rows, was %d", after, before)
				}
				e, err := f.reg.EvaluateGates(ctx, "credit", v, registry.AliasTarget("production"))
				if err != nil || !e.Governed || e.Passed() || len(e.Gates) != 4 {
					t.Fatalf("dry run: %+v %v", e, err)
				}
			})
		}

		t.Run("all met", func(t *testing.T) {
			v := f.candidate("credit", map[string]float64{"auc": 0.84, "f1": 0.685}, passed)
			if _, err := f.reg.Approve(bob, "credit", v, registry.AliasTarget("production"), "looks good"); err != nil {
				t.Fatal(err)
			}
			e, err := f.reg.EvaluateGates(ctx, "credit", v, registry.AliasTarget("production"))
			if err != nil || !e.Passed() {
				t.Fatalf("dry run: %+v %v", e, err)
			}
			if err := f.reg.SetAlias(as(ctx, "carol", auth.RoleEditor), "credit", "production", v); err != nil {
				t.Fatalf("promotion with every gate met: %v", err)
			}
			if mv, _ := f.reg.GetVersionByAlias(ctx, "credit", "production"); mv.Version != v {
				t.Fatalf("alias at %d, want %d", mv.Version, v)
			}
			es := auditActions(t, db, audit.Filter{Action: "registered_model.set_alias", Actor: "carol"})
			if len(es) != 1 || es[0].Target.String() != "models:/credit" ||
				string(es[0].Before) != `{"alias":"production","version":1}` || string(es[0].After) != `{"alias":"production","version":`+itoa(v)+`}` {
				t.Fatalf("audit of the promotion: %+v", es)
			}
			// Moving an alias back to where it points changes nothing and
			// is neither checked nor recorded.
			if err := f.reg.SetAlias(ctx, "credit", "production", v); err != nil {
				t.Fatal(err)
			}
			// Aliases the policy does not name are free.
			if err := f.reg.SetAlias(ctx, "credit", "canary", v-1); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("stage", func(t *testing.T) {
			v := f.candidate("credit", nil, nil)
			_, err := f.reg.TransitionStage(ctx, "credit", v, "production", true)
			wantCode(t, "stage without approval", err, errs.FailedPrecondition,
				"cannot transition model credit version "+itoa(v)+" to stage Production: needs 1 approval from an approver, has 0")
			if mv, _ := f.reg.GetModelVersion(ctx, "credit", v); mv.CurrentStage != registry.StageNone {
				t.Fatalf("stage changed to %s after a refusal", mv.CurrentStage)
			}
			// Approval for the alias does not count for the stage.
			if _, err := f.reg.Approve(bob, "credit", v, registry.AliasTarget("production"), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.reg.TransitionStage(ctx, "credit", v, "Production", false); !errs.Is(err, errs.FailedPrecondition) {
				t.Fatalf("alias approval counted for the stage: %v", err)
			}
			if _, err := f.reg.Approve(bob, "credit", v, registry.StageTarget("Production"), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.reg.TransitionStage(ctx, "credit", v, "Production", false); err != nil {
				t.Fatal(err)
			}
			// Staging is not governed.
			if _, err := f.reg.TransitionStage(ctx, "credit", v-1, "Staging", false); err != nil {
				t.Fatal(err)
			}
			es := auditActions(t, db, audit.Filter{Target: ptr(audit.ModelVersion("credit", v)), Action: "model_version.transition_stage"})
			if len(es) != 1 || string(es[0].Before) != `{"stage":"None"}` || string(es[0].After) != `{"stage":"Production"}` || es[0].Actor != audit.Anonymous {
				t.Fatalf("audit of the transition: %+v", es)
			}
		})

		t.Run("policy removed", func(t *testing.T) {
			err := f.reg.DeletePolicy(as(ctx, "bob", auth.RoleApprover), "credit")
			wantCode(t, "approver deletes policy", err, errs.PermissionDenied, "needs role admin")
			if err := f.reg.DeletePolicy(as(ctx, "root", auth.RoleAdmin), "credit"); err != nil {
				t.Fatal(err)
			}
			v := f.candidate("credit", nil, nil)
			if err := f.reg.SetAlias(ctx, "credit", "production", v); err != nil {
				t.Fatalf("ungoverned promotion: %v", err)
			}
			es := auditActions(t, db, audit.Filter{Action: "registered_model.delete_policy"})
			if len(es) != 1 || es[0].Actor != "root" || es[0].After != nil || !strings.Contains(string(es[0].Before), `"production"`) {
				t.Fatalf("audit of the policy delete: %+v", es)
			}
		})
	})
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Approvals need an authenticated approver or admin who did not register
// the version; approving again replaces the comment, and every approval
// is audited.
func TestApprovals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		f.model("credit")
		v := f.candidate("credit", nil, nil)
		prod := registry.AliasTarget("production")

		_, err := f.reg.Approve(ctx, "credit", v, prod, "")
		wantCode(t, "anonymous", err, errs.PermissionDenied, "needs an API token")
		_, err = f.reg.Approve(as(ctx, "ed", auth.RoleEditor), "credit", v, prod, "")
		wantCode(t, "editor", err, errs.PermissionDenied, "needs role approver")
		_, err = f.reg.Approve(as(ctx, "alice", auth.RoleAdmin), "credit", v, prod, "")
		wantCode(t, "registrant", err, errs.PermissionDenied, "alice registered model credit version 1 and cannot also approve it")
		_, err = f.reg.Approve(as(ctx, "bob", auth.RoleApprover), "credit", v, registry.Target{}, "")
		wantCode(t, "no target", err, errs.InvalidArgument, "a target is required")
		_, err = f.reg.Approve(as(ctx, "bob", auth.RoleApprover), "credit", v, registry.Target{Alias: "a", Stage: "Staging"}, "")
		wantCode(t, "two targets", err, errs.InvalidArgument, "not both")
		_, err = f.reg.Approve(as(ctx, "bob", auth.RoleApprover), "credit", v+1, prod, "")
		wantCode(t, "missing version", err, errs.NotFound, "")

		for _, c := range []struct{ who, role, comment string }{
			{"bob", auth.RoleApprover, "first"}, {"bob", auth.RoleApprover, "second"}, {"root", auth.RoleAdmin, ""},
		} {
			if _, err := f.reg.Approve(as(ctx, c.who, c.role), "credit", v, prod, c.comment); err != nil {
				t.Fatal(err)
			}
		}
		as_, err := f.reg.Approvals(ctx, "credit", v)
		if err != nil || len(as_) != 2 || as_[0].Approver != "bob" || as_[0].Comment != "second" || as_[1].Approver != "root" || as_[1].Target != prod {
			t.Fatalf("approvals: %+v %v", as_, err)
		}
		es := auditActions(t, db, audit.Filter{Action: "model_version.approve"})
		if len(es) != 3 || es[1].Actor != "bob" || string(es[1].Before) != `{"approver":"bob","comment":"first","target":"alias:production"}` {
			t.Fatalf("audit of approvals: %+v", es)
		}
		// Two distinct approvers meet a gate of two.
		p := registry.Policy{Aliases: map[string]registry.Gates{"production": {Approvals: 2}}}
		if _, err := f.reg.SetPolicy(ctx, "credit", p); err != nil {
			t.Fatal(err)
		}
		if err := f.reg.SetAlias(ctx, "credit", "production", v); err != nil {
			t.Fatal(err)
		}

		// Policies and approvals go with their model; the audit log stays,
		// and the delete's record holds the policy that went.
		if err := f.reg.DeleteRegisteredModel(ctx, "credit"); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"promotion_policies", "model_version_approvals"} {
			var n int
			if err := db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s after the model's delete: %d rows (%v)", table, n, err)
			}
		}
		es = auditActions(t, db, audit.Filter{Target: ptr(audit.Model("credit"))})
		if len(es) != 8 || es[0].Action != "registered_model.delete" || !strings.Contains(string(es[0].Before), `"policy":{"aliases":{"production":{"approvals":2}}}`) {
			t.Fatalf("audit after the delete: %d rows, newest %+v", len(es), es[0])
		}
	})
}

// Every registry write is recorded with who, when, what, before and after;
// a failed write records nothing.
func TestRegistryAudit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := as(f.ctx, "carol", auth.RoleEditor)
		desc := "first"
		if _, err := f.reg.CreateRegisteredModel(ctx, "churn", []registry.Tag{{Key: "team", Value: "risk"}}, &desc); err != nil {
			t.Fatal(err)
		}
		v := f.candidate("churn", nil, map[string]string{"k": "v"})
		second := "second"
		steps := []func() error{
			func() error { _, err := f.reg.UpdateRegisteredModel(ctx, "churn", &second); return err },
			func() error {
				return f.reg.SetRegisteredModelTag(ctx, "churn", registry.Tag{Key: "team", Value: "ops"})
			},
			func() error { return f.reg.DeleteRegisteredModelTag(ctx, "churn", "team") },
			func() error { return f.reg.DeleteRegisteredModelTag(ctx, "churn", "team") }, // no change, no row
			func() error { return f.reg.SetAlias(ctx, "churn", "champion", v) },
			func() error { return f.reg.DeleteAlias(ctx, "churn", "champion") },
			func() error { _, err := f.reg.UpdateModelVersion(ctx, "churn", v, &second); return err },
			func() error { return f.reg.SetModelVersionTag(ctx, "churn", v, registry.Tag{Key: "k", Value: "w"}) },
			func() error { return f.reg.DeleteModelVersionTag(ctx, "churn", v, "k") },
			func() error { _, err := f.reg.TransitionStage(ctx, "churn", v, "Staging", false); return err },
			func() error { return f.reg.SetAlias(ctx, "churn", "champion", v) },
			func() error { _, err := f.reg.RenameRegisteredModel(ctx, "churn", "churn2"); return err },
			func() error { return f.reg.DeleteModelVersion(ctx, "churn2", v) },
			func() error { return f.reg.DeleteRegisteredModel(ctx, "churn2") },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		// Failed writes leave no row.
		if err := f.reg.SetAlias(ctx, "nope", "champion", 1); !errs.Is(err, errs.NotFound) {
			t.Fatal(err)
		}
		if _, err := f.reg.CreateRegisteredModel(ctx, "churn2", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reg.CreateRegisteredModel(ctx, "churn2", nil, nil); !errs.Is(err, errs.AlreadyExists) {
			t.Fatal(err)
		}

		type row struct{ action, target, before, after string }
		want := []row{
			{"registered_model.create", "models:/churn", "", `{"description":"first","name":"churn","tags":{"team":"risk"}}`},
			{"model_version.create", "models:/churn/1", "", ""},
			{"registered_model.update", "models:/churn", `{"description":"first"}`, `{"description":"second"}`},
			{"registered_model.set_tag", "models:/churn", `{"key":"team","value":"risk"}`, `{"key":"team","value":"ops"}`},
			{"registered_model.delete_tag", "models:/churn", `{"key":"team","value":"ops"}`, ""},
			{"registered_model.set_alias", "models:/churn", "", `{"alias":"champion","version":1}`},
			{"registered_model.delete_alias", "models:/churn", `{"alias":"champion","version":1}`, ""},
			{"model_version.update", "models:/churn/1", `{"description":""}`, `{"description":"second"}`},
			{"model_version.set_tag", "models:/churn/1", `{"key":"k","value":"v"}`, `{"key":"k","value":"w"}`},
			{"model_version.delete_tag", "models:/churn/1", `{"key":"k","value":"w"}`, ""},
			{"model_version.transition_stage", "models:/churn/1", `{"stage":"None"}`, `{"stage":"Staging"}`},
			{"registered_model.set_alias", "models:/churn", "", `{"alias":"champion","version":1}`},
			{"registered_model.rename", "models:/churn2", `{"name":"churn"}`, `{"name":"churn2"}`},
			{"model_version.delete", "models:/churn2/1", "", ""},
			{"registered_model.delete", "models:/churn2", `{"aliases":{},"description":"second","tags":{},"versions":[]}`, ""},
			{"registered_model.create", "models:/churn2", "", `{"description":null,"name":"churn2","tags":{}}`},
		}
		got := auditActions(t, db, audit.Filter{})
		if len(got) != len(want) {
			for _, e := range got {
				t.Logf("%s %s %s -> %s", e.Action, e.Target, e.Before, e.After)
			}
			t.Fatalf("%d audit rows, want %d", len(got), len(want))
		}
		var lastTime int64
		for i, w := range want {
			e := got[len(got)-1-i] // List is newest first
			if e.Action != w.action || e.Target.String() != w.target || e.Actor != "carol" && e.Actor != "alice" {
				t.Errorf("row %d: %s %s by %s, want %s %s", i, e.Action, e.Target, e.Actor, w.action, w.target)
			}
			if w.before != "" && string(e.Before) != w.before {
				t.Errorf("row %d (%s): before %s, want %s", i, w.action, e.Before, w.before)
			}
			if w.after != "" && string(e.After) != w.after {
				t.Errorf("row %d (%s): after %s, want %s", i, w.action, e.After, w.after)
			}
			if e.Time < lastTime {
				t.Errorf("row %d: time %d before the previous row's %d", i, e.Time, lastTime)
			}
			lastTime = e.Time
		}
		// The version's creation and deletion carry what it was.
		create, del := got[len(got)-2], got[2]
		var c, d map[string]any
		json.Unmarshal(create.After, &c)
		json.Unmarshal(del.Before, &d)
		if create.Actor != "alice" || c["status"] != registry.StatusReady || c["digest"] == "" ||
			d["stage"] != registry.StageStaging || d["aliases"].([]any)[0] != "champion" || create.Before != nil || del.After != nil {
			t.Fatalf("version create %s / delete %s", create.After, del.Before)
		}
		// Filters: by target (a model's versions included), action prefix, actor.
		if es := auditActions(t, db, audit.Filter{Target: ptr(audit.Model("churn"))}); len(es) != 12 {
			t.Errorf("target churn: %d rows", len(es))
		}
		if es := auditActions(t, db, audit.Filter{Target: ptr(audit.ModelVersion("churn", 1))}); len(es) != 5 {
			t.Errorf("target churn/1: %d rows", len(es))
		}
		if es := auditActions(t, db, audit.Filter{Action: "model_version."}); len(es) != 6 {
			t.Errorf("action model_version.: %d rows", len(es))
		}
		if es := auditActions(t, db, audit.Filter{Actor: "alice"}); len(es) != 1 {
			t.Errorf("actor alice: %d rows", len(es))
		}
	})
}

func TestPolicyYAML(t *testing.T) {
	p, err := registry.ParsePolicyYAML([]byte(creditPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Aliases["production"]
	if len(g.Metrics) != 1 || *g.Metrics[0].Value != 0.8 || g.Tags["validation"] != "passed" || g.Approvals != 1 ||
		g.NoRegression.Metric != "f1" || !*g.NoRegression.HigherIsBetter || g.NoRegression.Tolerance != 0.02 {
		t.Fatalf("parsed %+v", g)
	}
	if _, ok := p.Stages["Production"]; !ok {
		t.Fatalf("stage not spelled canonically: %+v", p.Stages)
	}
	// The JSON form (the API's) reads back to the same policy.
	raw, _ := json.Marshal(p)
	var back registry.Policy
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(back); string(again) != string(raw) {
		t.Fatalf("JSON round trip: %s != %s", again, raw)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"empty", "", "the document is empty"},
		{"no targets", "aliases: {}\n", "names no alias and no stage"},
		{"unknown top key", "alias:\n  production: {approvals: 1}\n", `line 1: unknown key "alias" (allowed here: aliases, stages)`},
		{"unknown gate key", "aliases:\n  production:\n    approval: 1\n", `line 3: unknown key "approval" (allowed here: metrics, tags, approvals, no_regression)`},
		{"unknown metric key", "aliases:\n  p:\n    metrics: [{metric: auc, op: '>=', value: 1, min: 2}]\n", `unknown key "min" (allowed here: metric, op, value)`},
		{"duplicate key", "aliases:\n  p: {approvals: 1}\n  p: {approvals: 2}\n", `mapping key "p" already defined`},
		{"wrong type", "aliases:\n  p: {approvals: many}\n", "line 2: cannot unmarshal !!str `many` into int"},
		{"list for map", "aliases:\n  - p\n", "into a mapping of targets to gates"},
		{"two documents", "aliases: {p: {approvals: 1}}\n---\nstages: {}\n", "more than one YAML document"},
		{"no gates", "aliases:\n  p: {}\n", "aliases.p: no gates"},
		{"bad op", "aliases:\n  p:\n    metrics: [{metric: auc, op: '=>', value: 1}]\n", `aliases.p.metrics[0].op "=>": must be one of >=, >, <=, <, ==`},
		{"missing value", "aliases:\n  p:\n    metrics: [{metric: auc, op: '>='}]\n", "aliases.p.metrics[0].value: required"},
		{"nan value", "aliases:\n  p:\n    metrics: [{metric: auc, op: '>=', value: .nan}]\n", "must be a finite number"},
		{"missing metric", "aliases:\n  p:\n    metrics: [{op: '>=', value: 1}]\n", "aliases.p.metrics[0].metric: required"},
		{"bad alias", "aliases:\n  latest: {approvals: 1}\n", "aliases.latest: 'latest' alias name"},
		{"bad stage", "stages:\n  Prod: {approvals: 1}\n", "stages.Prod: not a stage"},
		{"stage None", "stages:\n  None: {approvals: 1}\n", "stages.None: not a stage"},
		{"stage twice", "stages:\n  Production: {approvals: 1}\n  production: {approvals: 2}\n", "listed twice"},
		{"negative approvals", "aliases:\n  p: {approvals: -1}\n", "aliases.p.approvals -1: must be from 0 to 100"},
		{"regression direction", "aliases:\n  p:\n    no_regression: {metric: auc}\n", "no_regression.higher_is_better: required"},
		{"regression tolerance", "aliases:\n  p:\n    no_regression: {metric: auc, higher_is_better: true, tolerance: -1}\n", "tolerance: must be a finite number of 0 or more"},
		{"bad tag", "aliases:\n  p:\n    tags: {'a/../b': x}\n", "aliases.p.tags.a/../b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := registry.ParsePolicyYAML([]byte(c.yaml))
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.want) {
				t.Fatalf("got %v, want an invalid-argument error containing %q", err, c.want)
			}
		})
	}
}
