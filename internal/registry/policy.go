package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/errs"
)

// Policy is a registered model's promotion policy: the gates a version must
// pass before an alias may point at it (Aliases) or before it may enter a
// legacy stage (Stages). Targets without gates are not governed.
type Policy struct {
	Aliases map[string]Gates `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	Stages  map[string]Gates `json:"stages,omitempty" yaml:"stages,omitempty"`
}

// Gates are the conditions of one target; every one must hold.
type Gates struct {
	// Metrics are thresholds on the latest values the version's source run
	// logged.
	Metrics []MetricGate `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	// Tags must be set on the model version with exactly these values.
	Tags map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	// Approvals is how many distinct users with role approver or admin,
	// other than the version's registrant, must have approved the version
	// for this target.
	Approvals int `json:"approvals,omitempty" yaml:"approvals,omitempty"`
	// NoRegression compares the version with the target's current holder.
	NoRegression *RegressionGate `json:"no_regression,omitempty" yaml:"no_regression,omitempty"`
}

// MetricGate requires Metric Op Value, e.g. auc >= 0.8.
type MetricGate struct {
	Metric string   `json:"metric" yaml:"metric"`
	Op     string   `json:"op" yaml:"op"`
	Value  *float64 `json:"value" yaml:"value"`
}

// RegressionGate requires the version's Metric to be no worse than the
// current holder's by more than Tolerance (an absolute difference).
type RegressionGate struct {
	Metric         string  `json:"metric" yaml:"metric"`
	HigherIsBetter *bool   `json:"higher_is_better" yaml:"higher_is_better"`
	Tolerance      float64 `json:"tolerance,omitempty" yaml:"tolerance,omitempty"`
}

// Limits of a policy, generous for any real use and small enough that
// evaluating one costs nothing.
const (
	MaxPolicyTargets = 100
	MaxGatesPerKind  = 100
	MaxApprovals     = 100
	MaxMetricName    = 250
	MaxPolicyBytes   = 1 << 20
)

var metricOps = []string{">=", ">", "<=", "<", "=="}

func compare(v float64, op string, want float64) bool {
	switch op {
	case ">=":
		return v >= want
	case ">":
		return v > want
	case "<=":
		return v <= want
	case "<":
		return v < want
	case "==":
		return v == want
	}
	return false
}

// ParsePolicyYAML reads a policy from YAML, strictly: unknown keys,
// duplicate keys, wrong types and a second document are errors, and the
// result is validated as SetPolicy would.
func ParsePolicyYAML(b []byte) (Policy, error) {
	if len(b) > MaxPolicyBytes {
		return Policy{}, errs.Invalid("policy: %d bytes; at most %d are allowed", len(b), MaxPolicyBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return Policy{}, errs.Invalid("policy: the document is empty; it needs aliases or stages")
		}
		return Policy{}, errs.Invalid("policy: %s", yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Policy{}, errs.Invalid("policy: more than one YAML document; put every target in one")
	}
	return p.Normalize()
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type registry\.(\w+)`)

// allowedKeys lists the keys of each level of a policy document, for the
// message about a key that is not one of them.
var allowedKeys = map[string]string{
	"Policy":         "aliases, stages",
	"Gates":          "metrics, tags, approvals, no_regression",
	"MetricGate":     "metric, op, value",
	"RegressionGate": "metric, higher_is_better, tolerance",
}

var goTypeWords = strings.NewReplacer(
	"map[string]registry.Gates", "a mapping of targets to gates",
	"[]registry.MetricGate", "a list of metric gates",
	"*registry.RegressionGate", "a mapping (metric, higher_is_better, tolerance)",
	"registry.RegressionGate", "a mapping (metric, higher_is_better, tolerance)",
	"registry.MetricGate", "a mapping (metric, op, value)",
	"registry.Gates", "a mapping of gates",
	"registry.Policy", "a mapping (aliases, stages)",
	"map[string]string", "a mapping of tag names to values",
)

// yamlMessage rewrites yaml.v3's errors, which name the line, in the
// policy's own words instead of Go's type names.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		return fmt.Sprintf("unknown key %q (allowed here: %s)", sub[1], allowedKeys[sub[2]])
	})
	return goTypeWords.Replace(msg)
}

// Normalize validates p and returns it with stage names spelled as MLflow
// spells them. Every error names the field and the rule.
func (p Policy) Normalize() (Policy, error) {
	if len(p.Aliases)+len(p.Stages) == 0 {
		return Policy{}, errs.Invalid("policy: names no alias and no stage; add aliases or stages, or delete the policy")
	}
	if n := len(p.Aliases) + len(p.Stages); n > MaxPolicyTargets {
		return Policy{}, errs.Invalid("policy: %d targets; at most %d are allowed", n, MaxPolicyTargets)
	}
	out := Policy{}
	for _, alias := range sortedKeys(p.Aliases) {
		if err := validateAlias(alias); err != nil {
			return Policy{}, errs.Invalid("policy: aliases.%s: %s", alias, errs.Message(err))
		}
		g, err := p.Aliases[alias].normalize("aliases." + alias)
		if err != nil {
			return Policy{}, err
		}
		if out.Aliases == nil {
			out.Aliases = map[string]Gates{}
		}
		out.Aliases[alias] = g
	}
	for _, stage := range sortedKeys(p.Stages) {
		canon, err := CanonicalStage(stage)
		if err != nil || canon == StageNone {
			return Policy{}, errs.Invalid("policy: stages.%s: not a stage a version can be promoted to; use Staging, Production or Archived", stage)
		}
		if _, dup := out.Stages[canon]; dup {
			return Policy{}, errs.Invalid("policy: stages.%s: stage %s is listed twice (stage names ignore case)", stage, canon)
		}
		g, err := p.Stages[stage].normalize("stages." + stage)
		if err != nil {
			return Policy{}, err
		}
		if out.Stages == nil {
			out.Stages = map[string]Gates{}
		}
		out.Stages[canon] = g
	}
	return out, nil
}

func (g Gates) normalize(field string) (Gates, error) {
	if len(g.Metrics) == 0 && len(g.Tags) == 0 && g.Approvals == 0 && g.NoRegression == nil {
		return Gates{}, errs.Invalid("policy: %s: no gates; give metrics, tags, approvals or no_regression, or leave the target out", field)
	}
	if len(g.Metrics) > MaxGatesPerKind || len(g.Tags) > MaxGatesPerKind {
		return Gates{}, errs.Invalid("policy: %s: at most %d metric gates and %d tags are allowed", field, MaxGatesPerKind, MaxGatesPerKind)
	}
	for i, m := range g.Metrics {
		f := fmt.Sprintf("%s.metrics[%d]", field, i)
		if err := checkMetricName(f+".metric", m.Metric); err != nil {
			return Gates{}, err
		}
		if !contains(metricOps, m.Op) {
			return Gates{}, errs.Invalid("policy: %s.op %q: must be one of %s", f, m.Op, strings.Join(metricOps, ", "))
		}
		if m.Value == nil {
			return Gates{}, errs.Invalid("policy: %s.value: required", f)
		}
		if math.IsNaN(*m.Value) || math.IsInf(*m.Value, 0) {
			return Gates{}, errs.Invalid("policy: %s.value: must be a finite number", f)
		}
	}
	for k, v := range g.Tags {
		if err := validateTag(Tag{Key: k, Value: v}, ""); err != nil {
			return Gates{}, errs.Invalid("policy: %s.tags.%s: %s", field, k, errs.Message(err))
		}
	}
	if g.Approvals < 0 || g.Approvals > MaxApprovals {
		return Gates{}, errs.Invalid("policy: %s.approvals %d: must be from 0 to %d", field, g.Approvals, MaxApprovals)
	}
	if r := g.NoRegression; r != nil {
		f := field + ".no_regression"
		if err := checkMetricName(f+".metric", r.Metric); err != nil {
			return Gates{}, err
		}
		if r.HigherIsBetter == nil {
			return Gates{}, errs.Invalid("policy: %s.higher_is_better: required (true when a larger %s is better)", f, r.Metric)
		}
		if r.Tolerance < 0 || math.IsNaN(r.Tolerance) || math.IsInf(r.Tolerance, 0) {
			return Gates{}, errs.Invalid("policy: %s.tolerance: must be a finite number of 0 or more", f)
		}
	}
	return g, nil
}

func checkMetricName(field, name string) error {
	if name == "" {
		return errs.Invalid("policy: %s: required", field)
	}
	if len(name) > MaxMetricName || strings.IndexByte(name, 0) >= 0 {
		return errs.Invalid("policy: %s: must be a metric name of at most %d characters", field, MaxMetricName)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// gatesFor returns the gates of t, if the policy has any.
func (p Policy) gatesFor(t Target) (Gates, bool) {
	if t.Alias != "" {
		g, ok := p.Aliases[t.Alias]
		return g, ok
	}
	g, ok := p.Stages[t.Stage]
	return g, ok
}

// Target is where a version is promoted: an alias or a legacy stage, one
// of the two. Two fields rather than one string because "Production" is
// both a stage and a valid alias name.
type Target struct {
	Alias string
	Stage string
}

// AliasTarget and StageTarget build targets.
func AliasTarget(alias string) Target { return Target{Alias: alias} }

// StageTarget is the legacy stage stage.
func StageTarget(stage string) Target { return Target{Stage: stage} }

// normalize checks that exactly one of alias and stage is given, and
// spells the stage canonically.
func (t Target) normalize() (Target, error) {
	switch {
	case t.Alias != "" && t.Stage != "":
		return Target{}, errs.Invalid("give an alias or a stage as the target, not both")
	case t.Alias != "":
		return t, validateAlias(t.Alias)
	case t.Stage != "":
		canon, err := CanonicalStage(t.Stage)
		if err != nil {
			return Target{}, err
		}
		if canon == StageNone {
			return Target{}, errs.Invalid("stage None is not a promotion target; use Staging, Production or Archived")
		}
		return Target{Stage: canon}, nil
	}
	return Target{}, errs.Invalid("a target is required: an alias (e.g. production) or a stage (e.g. Production)")
}

// key is how a target is stored: "alias:production" or "stage:Production".
func (t Target) key() string {
	if t.Alias != "" {
		return "alias:" + t.Alias
	}
	return "stage:" + t.Stage
}

func targetFromKey(k string) Target {
	if a, ok := strings.CutPrefix(k, "alias:"); ok {
		return Target{Alias: a}
	}
	return Target{Stage: strings.TrimPrefix(k, "stage:")}
}

// String names the target in messages.
func (t Target) String() string {
	if t.Alias != "" {
		return fmt.Sprintf("alias %q", t.Alias)
	}
	return "stage " + t.Stage
}
