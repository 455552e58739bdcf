package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
)

func newModelsGateCmd() *cobra.Command {
	var (
		candidate, dataRef, target, metric, champion, metricsOut string
		requires                                                 []string
		margin                                                   float64
		asJSON                                                   bool
	)
	cmd := &cobra.Command{
		Use:   "gate --candidate MODEL --data DATA --target COLUMN --metric NAME [--champion models:/NAME@ALIAS] [--margin D] [--require 'METRIC>=X' ...]",
		Short: "Pass a candidate model only if it meets thresholds and beats the champion on the same data",
		Long: `Score the candidate model and the champion on the same labelled DATA, with
the metrics of 'slipway evaluate', and pass only when:
  - every --require threshold holds on the candidate's metrics
    ('auc>=0.8', 'log_loss<0.4'; operators >=, >, <=, <, ==), and
  - the candidate beats the champion on --metric by at least --margin:
    candidate >= champion + margin for metrics where higher is better,
    candidate <= champion - margin for error and loss metrics (log_loss,
    brier, ece, mse, rmse, mae, mape). A --margin of 0 (the default) lets
    a candidate as good as the champion pass; a negative margin tolerates
    a regression of up to its size.

With no champion yet (no --champion, the alias is not set, or the model is
not registered) the gate passes on the thresholds alone and says so; so it
does when the champion's --metric is undefined on DATA. A candidate whose
--metric or a required metric is undefined on DATA fails.

The candidate is an MLflow model directory (what 'slipway train -o DIR'
writes), models:/NAME/VERSION or models:/NAME@ALIAS; so is the champion,
though in a pipeline it is best written as models:/NAME@ALIAS in the
command rather than as a step input, so that a missing champion is the
gate's to judge. DATA is a CSV or Parquet file, a directory holding one,
or a data version (data:NAME@vN), as for 'slipway evaluate'.

Prints one row per rule: metric, candidate, champion, rule, pass or FAIL.
Exits 0 when the gate passes, 2 when it fails (or on a usage error), 1 when
the server cannot be reached. --metrics-out FILE writes the candidate's
metrics as a flat JSON object of name to number (a pipeline step's metrics
output), pass or fail. In a pipeline step (MLFLOW_RUN_ID set), the
candidate's and champion's metrics (candidate.auc, champion.auc, ...) and
gate_passed (1 or 0) are logged to the step's run.`,
		Example: `  slipway models gate --candidate model --data data:credit-holdout@v4 --target default --metric auc --champion models:/credit@champion --margin 0.005
  slipway models gate --candidate models:/credit/7 --data holdout.csv --target default --metric log_loss --require 'auc>=0.8' --require 'log_loss<0.45' --champion models:/credit@champion
  slipway models gate --candidate model --data test.csv --target price --metric rmse --require 'r2>=0.6' --metrics-out metrics.json`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			switch {
			case candidate == "" || dataRef == "" || target == "" || metric == "":
				return errs.Invalid("--candidate, --data, --target and --metric are required")
			case math.IsNaN(margin) || math.IsInf(margin, 0):
				return errs.Invalid("--margin %v: must be a finite number", margin)
			}
			reqs := make([]requirement, len(requires))
			for i, r := range requires {
				var err error
				if reqs[i], err = parseRequirement(r); err != nil {
					return err
				}
			}
			tmp, err := os.MkdirTemp("", "slipway-gate-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			table, err := readTable(ctx, c, dataRef, filepath.Join(tmp, "data"))
			if err != nil {
				return err
			}
			cand, err := evaluationOn(ctx, c, candidate, dataRef, table, target, nil, filepath.Join(tmp, "candidate"))
			if err != nil {
				return err
			}
			candReport, err := cand.run(ctx, "", 0)
			if err != nil {
				return err
			}
			g := gateInput{task: candReport.Task, candidate: candReport.Metrics(), metric: metric, margin: margin, requires: reqs}
			if champion != "" {
				ref, why, err := resolveChampion(ctx, c, champion)
				if err != nil {
					return err
				}
				g.noChampion = why
				if ref != "" {
					g.championRef = ref
					champ, err := evaluationOn(ctx, c, ref, dataRef, table, target, nil, filepath.Join(tmp, "champion"))
					if err != nil {
						return championError(ref, err)
					}
					champReport, err := champ.run(ctx, "", 0)
					if err != nil {
						return championError(ref, err)
					}
					g.champion = champReport.Metrics()
				}
			} else {
				g.noChampion = "no --champion given"
			}
			res, err := decideGate(g)
			if err != nil {
				return err
			}
			if metricsOut != "" {
				if err := writeMetricsFile("--metrics-out", metricsOut, g.candidate); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, map[string]any{"passed": res.Passed, "candidate": candidate, "champion": g.championRef,
					"no_champion": g.noChampion, "metric": metric, "margin": margin, "rules": res.Rules,
					"candidate_metrics": g.candidate, "champion_metrics": g.champion}); err != nil {
					return err
				}
			} else {
				printGate(out, res)
				switch {
				case g.championRef == "" && res.Passed:
					fmt.Fprintf(out, "passed on the thresholds alone: no champion (%s)\n", g.noChampion)
				case res.Passed:
					fmt.Fprintf(out, "passed: %s against champion %s\n", candidate, g.championRef)
				}
			}
			if err := logGate(ctx, c, g, res, candidate, champion, dataRef); err != nil {
				return err
			}
			if !res.Passed {
				return errs.New(errs.FailedPrecondition, "gate failed for %s: %s", candidate, strings.Join(res.failures(), "; "))
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&candidate, "candidate", "", "the model to gate: a model directory, models:/NAME/VERSION or models:/NAME@ALIAS")
	f.StringVar(&dataRef, "data", "", "labelled data: a CSV or Parquet file (or a directory holding one), or data:NAME@vN")
	f.StringVar(&target, "target", "", "the column holding the true labels or values")
	f.StringVar(&metric, "metric", "", "the metric the candidate must beat the champion on (auc, log_loss, rmse, ...)")
	f.StringVar(&champion, "champion", "", "the model to beat, models:/NAME@ALIAS (or models:/NAME/VERSION or a model directory); none yet passes on thresholds alone")
	f.Float64Var(&margin, "margin", 0, "how much better than the champion the candidate must be on --metric (absolute)")
	f.StringArrayVar(&requires, "require", nil, "a threshold on the candidate, METRIC>=VALUE (operators >=, >, <=, <, ==; repeatable)")
	f.StringVar(&metricsOut, "metrics-out", "", "write the candidate's metrics to this file as a flat JSON object of name to number")
	f.BoolVar(&asJSON, "json", false, "print the outcome as JSON")
	return cmd
}

// requirement is a threshold on a metric: auc >= 0.8.
type requirement struct {
	Metric string  `json:"metric"`
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
}

var requirementOps = []string{">=", "<=", "==", ">", "<"}

// parseRequirement reads METRIC OP VALUE, spaces allowed around OP.
func parseRequirement(s string) (requirement, error) {
	bad := func(why string) (requirement, error) {
		return requirement{}, errs.Invalid("--require %q: %s; write METRIC>=VALUE, e.g. 'auc>=0.8' (operators >=, >, <=, <, ==)", s, why)
	}
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return bad("no operator")
	}
	r := requirement{Metric: strings.TrimSpace(s[:i])}
	for _, op := range requirementOps {
		if strings.HasPrefix(s[i:], op) {
			r.Op = op
			break
		}
	}
	if r.Op == "" {
		return bad(fmt.Sprintf("unknown operator at %q", s[i:]))
	}
	if r.Metric == "" {
		return bad("no metric before the operator")
	}
	raw := strings.TrimSpace(s[i+len(r.Op):])
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return bad(fmt.Sprintf("%q is not a finite number", raw))
	}
	r.Value = v
	return r, nil
}

func (r requirement) holds(v float64) bool {
	switch r.Op {
	case ">=":
		return v >= r.Value
	case ">":
		return v > r.Value
	case "<=":
		return v <= r.Value
	case "<":
		return v < r.Value
	case "==":
		return v == r.Value
	}
	return false
}

func (r requirement) String() string { return r.Op + " " + fmtMetric(r.Value) }

// gateInput is what a gate decides on: both models' metrics on the same
// data (champion nil when there is none, noChampion saying why).
type gateInput struct {
	task                evaluation.Task
	candidate, champion map[string]float64
	championRef         string
	noChampion          string
	metric              string
	margin              float64
	requires            []requirement
}

// metricSynonyms are other tools' names (scikit-learn's scorers, XGBoost's
// eval metrics) for the evaluation's metrics, for a hint when a gate names
// one: the gate itself takes the evaluation's names only, the names its
// metrics are logged and written under.
var metricSynonyms = map[string]string{
	"auc": "auc_ovr_macro", "roc_auc": "auc", "roc_auc_ovr": "auc_ovr_macro", "logloss": "log_loss", "neg_log_loss": "log_loss",
	"mlogloss": "log_loss", "f1_score": "f1", "f1": "f1_macro", "accuracy_score": "accuracy", "neg_root_mean_squared_error": "rmse",
	"root_mean_squared_error": "rmse", "neg_mean_squared_error": "mse", "mean_squared_error": "mse", "neg_mean_absolute_error": "mae",
	"mean_absolute_error": "mae", "r2_score": "r2", "aucpr": "average_precision",
}

// gateRule is one row of the outcome.
type gateRule struct {
	Metric    string   `json:"metric"`
	Candidate *float64 `json:"candidate"`
	Champion  *float64 `json:"champion"`
	Rule      string   `json:"rule"`
	Passed    bool     `json:"passed"`
	// Detail says why a rule failed, or passed without a comparison.
	Detail string `json:"detail,omitempty"`
}

type gateResult struct {
	Passed bool
	Rules  []gateRule
}

func (r gateResult) failures() []string {
	var out []string
	for _, rule := range r.Rules {
		if !rule.Passed {
			out = append(out, rule.Detail)
		}
	}
	return out
}

// decideGate applies the thresholds and the comparison with the champion.
// A metric the task does not report is a usage error; one the task
// reports but the data leaves undefined fails its rule.
func decideGate(g gateInput) (gateResult, error) {
	known := evaluation.MetricNames(g.task)
	check := func(flag, m string) error {
		if slices.Contains(known, m) {
			return nil
		}
		hint := ""
		if alt, ok := metricSynonyms[strings.ToLower(m)]; ok && slices.Contains(known, alt) {
			hint = fmt.Sprintf(" (did you mean %s?)", alt)
		}
		return errs.Invalid("%s %s: a %s model's evaluation has no such metric%s; it has %s", flag, m, g.task, hint, strings.Join(known, ", "))
	}
	if err := check("--metric", g.metric); err != nil {
		return gateResult{}, err
	}
	for _, r := range g.requires {
		if err := check("--require", r.Metric); err != nil {
			return gateResult{}, err
		}
	}
	value := func(ms map[string]float64, m string) *float64 {
		if v, ok := ms[m]; ok {
			return &v
		}
		return nil
	}
	res := gateResult{Passed: true}
	add := func(r gateRule) {
		res.Rules = append(res.Rules, r)
		res.Passed = res.Passed && r.Passed
	}
	for _, req := range g.requires {
		r := gateRule{Metric: req.Metric, Candidate: value(g.candidate, req.Metric), Champion: value(g.champion, req.Metric), Rule: req.String()}
		switch {
		case r.Candidate == nil:
			r.Detail = fmt.Sprintf("%s is undefined on this data, so %s %s cannot hold", req.Metric, req.Metric, req)
		case !req.holds(*r.Candidate):
			r.Detail = fmt.Sprintf("%s is %s, not %s", req.Metric, fmtMetric(*r.Candidate), req)
		default:
			r.Passed = true
		}
		add(r)
	}
	higher, _ := evaluation.HigherIsBetter(g.metric)
	r := gateRule{Metric: g.metric, Candidate: value(g.candidate, g.metric), Champion: value(g.champion, g.metric)}
	op, sign, dir := ">=", "+", "higher is better"
	if !higher {
		op, sign, dir = "<=", "-", "lower is better"
	}
	if g.margin < 0 { // a tolerated regression: champion - 0.01 for auc
		sign = map[string]string{"+": "-", "-": "+"}[sign]
	}
	r.Rule = op + " champion"
	if g.margin != 0 {
		r.Rule += " " + sign + " " + fmtMetric(math.Abs(g.margin))
	}
	switch {
	case g.champion == nil:
		r.Rule, r.Passed, r.Detail = "no champion", true, g.noChampion
	case r.Candidate == nil:
		r.Detail = fmt.Sprintf("the candidate's %s is undefined on this data, so it cannot be compared with the champion's", g.metric)
	case r.Champion == nil:
		r.Passed, r.Detail = true, fmt.Sprintf("the champion's %s is undefined on this data: nothing to beat", g.metric)
	default:
		bar := *r.Champion + g.margin
		r.Passed = *r.Candidate >= bar
		if !higher {
			bar = *r.Champion - g.margin
			r.Passed = *r.Candidate <= bar
		}
		if !r.Passed {
			r.Detail = fmt.Sprintf("%s is %s against the champion's %s (%s), not %s %s", g.metric, fmtMetric(*r.Candidate),
				fmtMetric(*r.Champion), dir, op, fmtMetric(bar))
			if g.margin != 0 {
				r.Detail += fmt.Sprintf(" (margin %s)", fmtMetric(g.margin))
			}
		}
	}
	add(r)
	return res, nil
}

// resolveChampion finds the version a champion reference names, as
// models:/NAME/VERSION, or says why there is none: the alias is not set
// or the model is not registered. A missing version number is an error:
// models:/NAME/N names a version that should exist. A local model
// directory is its own champion.
func resolveChampion(ctx context.Context, c *client.Client, ref string) (string, string, error) {
	if !strings.HasPrefix(ref, "models:/") {
		if _, err := os.Stat(ref); err != nil {
			return "", "", errs.Invalid("--champion %s: not models:/NAME@ALIAS, models:/NAME/VERSION or a model directory: %v", ref, err)
		}
		return ref, "", nil
	}
	name, version, alias, err := splitModelRef(ref)
	if err != nil {
		return "", "", errs.Invalid("--champion %s", errs.Message(err))
	}
	if alias == "" {
		v, err := c.GetModelVersion(ctx, name, version)
		if err != nil {
			return "", "", err
		}
		return versionRef(v), "", nil
	}
	// The model's aliases tell an unset alias from other failures (MLflow
	// answers INVALID_PARAMETER_VALUE for an unknown alias, not
	// RESOURCE_DOES_NOT_EXIST).
	m, err := c.GetRegisteredModel(ctx, name)
	switch {
	case client.IsNotFound(err):
		return "", fmt.Sprintf("model %s is not registered", name), nil
	case err != nil:
		return "", "", err
	}
	if !slices.ContainsFunc(m.Aliases, func(a client.ModelAlias) bool { return a.Alias == alias }) {
		return "", fmt.Sprintf("alias %s of model %s is not set", alias, name), nil
	}
	v, err := c.GetModelVersionByAlias(ctx, name, alias)
	if err != nil {
		return "", "", err
	}
	return versionRef(v), "", nil
}

// championError says that err concerns the champion, keeping its code
// (and so the exit status).
func championError(ref string, err error) error {
	return &errs.Error{Code: errs.CodeOf(err), Message: "champion " + ref + ": " + message(err), Err: err}
}

func printGate(out io.Writer, res gateResult) {
	w := newTable(out)
	tableRow(w, "METRIC", "CANDIDATE", "CHAMPION", "RULE", "RESULT")
	for _, r := range res.Rules {
		verdict := "pass"
		if !r.Passed {
			verdict = "FAIL"
		}
		tableRow(w, r.Metric, optNum(r.Candidate), optNum(r.Champion), r.Rule, verdict)
	}
	w.Flush()
}

// logGate logs both models' metrics and the verdict to the step's run,
// when the command runs as a pipeline step (MLFLOW_RUN_ID).
func logGate(ctx context.Context, c *client.Client, g gateInput, res gateResult, candidate, champion, dataRef string) error {
	run, err := stepRun(ctx, c)
	if err != nil || run == nil {
		return err
	}
	metrics := map[string]float64{}
	for k, v := range g.candidate {
		metrics["candidate."+k] = v
	}
	for k, v := range g.champion {
		metrics["champion."+k] = v
	}
	metrics["gate_passed"] = 0
	if res.Passed {
		metrics["gate_passed"] = 1
	}
	params := map[string]string{"gate.candidate": candidate, "gate.metric": g.metric, "gate.margin": strconv.FormatFloat(g.margin, 'g', -1, 64)}
	if champion != "" {
		params["gate.champion"] = champion
	}
	if g.championRef != "" {
		params["gate.champion_version"] = g.championRef
	}
	for i, r := range g.requires {
		params["gate.require."+strconv.Itoa(i)] = r.Metric + r.Op + fmtMetric(r.Value)
	}
	if err := run.logBatch(ctx, params, metrics, 0); err != nil {
		return err
	}
	return run.logData(ctx, dataRef, "evaluation")
}
