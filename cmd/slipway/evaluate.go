package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/tabular"
)

func newEvaluateCmd() *cobra.Command {
	var (
		modelRef, dataRef, target, experiment, runName, importanceMetric, metricsOut string
		slices                                                                       []string
		threshold                                                                    float64
		repeats                                                                      int
		noTrack, asJSON                                                              bool
	)
	cmd := &cobra.Command{
		Use:   "evaluate --model MODEL --data DATA --target COLUMN",
		Short: "Evaluate a model on labelled data, as a tracked run",
		Long: `Score DATA with MODEL and compare the predictions with the TARGET column:
AUC, average precision, log-loss, accuracy, precision, recall, F1, confusion
matrix and calibration for classifiers; RMSE, MAE, R2 and MAPE for regression;
the same per value of each --slice column; gain importance and permutation
importance.

The evaluation is a run in --experiment (created if needed): the metrics are
logged as run metrics, the report as evaluation/report.md and
evaluation/report.json, and a data version given as DATA as the run's
dataset input, so lineage links the evaluation to its data. --no-track only
prints the report. In a pipeline step (MLFLOW_RUN_ID set), the evaluation is
logged into that run instead, --experiment is ignored, and the run is left
for the runner to end.

--metrics-out FILE also writes the metrics as one flat JSON object of name
to number ("auc", "log_loss", ..., "slice.<column>.<value>.<metric>"), the
form of a pipeline step's metrics output.

MODEL and DATA are as for slipway predict.`,
		Example: `  slipway evaluate --model models:/credit/3 --data data:credit-holdout@latest --target default --slice region
  slipway evaluate --model model.json --data test.csv --target price --no-track
  slipway evaluate --model model --data data:credit-holdout@v2 --target default --metrics-out metrics.json`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if modelRef == "" || dataRef == "" || target == "" {
				return errs.Invalid("--model, --data and --target are required")
			}
			tmp, err := os.MkdirTemp("", "slipway-evaluate-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			ev, err := prepareEvaluation(ctx, c, modelRef, dataRef, target, slices, tmp)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("threshold") {
				ev.spec.Threshold = &threshold
			}
			report, err := ev.run(ctx, importanceMetric, repeats)
			if err != nil {
				return err
			}
			md := report.Markdown()
			raw, err := json.MarshalIndent(report, "", "  ")
			if err != nil {
				return err
			}
			if metricsOut != "" {
				if err := writeMetricsFile("--metrics-out", metricsOut, report.Metrics()); err != nil {
					return err
				}
			}
			var run *trackedRun
			if !noTrack {
				if run, err = logEvaluation(ctx, c, experiment, runName, modelRef, dataRef, target, report, md, raw); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_, err = fmt.Fprintf(out, "%s\n", raw)
				return err
			}
			fmt.Fprintf(out, "# Evaluation of %s on %s (target %s)\n\n%s", modelRef, dataRef, target, md)
			if run != nil {
				fmt.Fprintf(out, "\nlogged as run %s\n", run)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&modelRef, "model", "", "models:/NAME/VERSION, models:/NAME@ALIAS, a model directory or a model file")
	f.StringVar(&dataRef, "data", "", "a labelled CSV or Parquet file (or a directory holding one), or data:NAME@vN")
	f.StringVar(&target, "target", "", "the column holding the true labels or values")
	f.StringArrayVar(&slices, "slice", nil, "a categorical column to report the metrics per value of (repeatable)")
	f.Float64Var(&threshold, "threshold", evaluation.DefaultThreshold, "probability from which a row is predicted positive (binary classifiers)")
	f.IntVar(&repeats, "permutation-repeats", evaluation.DefaultRepeats, "shuffles per feature for permutation importance; 0 skips it")
	f.StringVar(&importanceMetric, "importance-metric", "", "metric permutation importance measures (default: auc, accuracy or rmse by task)")
	f.StringVar(&experiment, "experiment", "evaluation", "experiment to log the run to (ignored when MLFLOW_RUN_ID names the run)")
	f.StringVar(&runName, "run-name", "", "name of the run (default: generated; ignored when MLFLOW_RUN_ID names the run)")
	f.BoolVar(&noTrack, "no-track", false, "print the report without logging a run")
	f.StringVar(&metricsOut, "metrics-out", "", "also write the metrics to this file as a flat JSON object of name to number")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return clientGroupFlags(cmd)
}

// evaluationInput is a model, its inputs and the labelled data.
type evaluationInput struct {
	model models.Model
	x     []float32
	spec  evaluation.Spec
}

func prepareEvaluation(ctx context.Context, c *client.Client, modelRef, dataRef, target string, sliceCols []string, tmp string) (*evaluationInput, error) {
	table, err := readTable(ctx, c, dataRef, filepath.Join(tmp, "data"))
	if err != nil {
		return nil, err
	}
	return evaluationOn(ctx, c, modelRef, dataRef, table, target, sliceCols, filepath.Join(tmp, "model"))
}

// readTable reads a data argument (a file, a directory holding one, or a
// data version) as a table.
func readTable(ctx context.Context, c *client.Client, dataRef, dir string) (*tabular.Table, error) {
	dataPath, _, err := fetchData(ctx, c, dataRef, dir)
	if err != nil {
		return nil, err
	}
	table, err := tabular.ReadFile(dataPath)
	if err != nil {
		return nil, errs.Invalid("data %s: %v", dataRef, err)
	}
	return table, nil
}

// evaluationOn scores table with a model, downloading a registered one
// into modelDir, and pairs the predictions with the target's labels.
func evaluationOn(ctx context.Context, c *client.Client, modelRef, dataRef string, table *tabular.Table, target string, sliceCols []string, modelDir string) (*evaluationInput, error) {
	modelPath, err := fetchModel(ctx, c, modelRef, modelDir)
	if err != nil {
		return nil, err
	}
	opened, err := modeldir.Open(modelPath)
	if err != nil {
		return nil, errs.Invalid("model %s: %v", modelRef, err)
	}
	labels, err := labelColumn(table, target)
	if err != nil {
		return nil, errs.Invalid("data %s: %v", dataRef, err)
	}
	x, err := table.Matrix(opened.Features)
	if err != nil {
		return nil, errs.Invalid("data %s: %v", dataRef, err)
	}
	m := opened.Model
	spec := evaluation.Spec{Task: taskOf(m), Labels: labels, Outputs: m.NumOutputs()}
	if spec.Task == evaluation.TaskMulticlass && m.NumOutputs() == 1 {
		return nil, errs.Invalid("model %s predicts class indices (multi:softmax); evaluation needs class probabilities (multi:softprob)", modelRef)
	}
	spec.Predictions = make([]float32, table.Rows*m.NumOutputs())
	if err := m.Predict(x, spec.Predictions); err != nil {
		return nil, err
	}
	for _, name := range sliceCols {
		i := table.Index(name)
		if i < 0 {
			return nil, errs.Invalid("--slice %s: the data has no such column (it has %s)", name, strings.Join(table.Names(), ", "))
		}
		spec.Slices = append(spec.Slices, sliceColumn(&table.Columns[i]))
	}
	return &evaluationInput{model: m, x: x, spec: spec}, nil
}

// run computes the report with its importances.
func (e *evaluationInput) run(ctx context.Context, metric string, repeats int) (*evaluation.Report, error) {
	report, err := evaluation.Evaluate(e.spec)
	if err != nil {
		return nil, err
	}
	imp := &evaluation.Importance{}
	if g, ok := e.model.(evaluation.GainImporter); ok {
		if stats := g.FeatureGain(); stats != nil {
			if imp.Gain, err = evaluation.Gain(stats); err != nil {
				return nil, err
			}
		}
	}
	if repeats > 0 {
		if metric == "" {
			metric = map[evaluation.Task]string{evaluation.TaskBinary: "auc", evaluation.TaskMulticlass: "accuracy", evaluation.TaskRegression: "rmse"}[e.spec.Task]
		}
		scorer, err := evaluation.ScorerFor(metric)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, in := range e.model.Signature().Inputs {
			names = append(names, in.Name)
		}
		if imp.Permutation, err = evaluation.Permutation(ctx, e.model, e.x, e.spec.Labels, scorer,
			evaluation.PermutationOptions{Repeats: repeats, Seed: 1, Features: names}); err != nil {
			return nil, err
		}
	}
	if imp.Gain != nil || imp.Permutation != nil {
		report.Importance = imp
	}
	return report, nil
}

// taskOf reads the task from the model's XGBoost objective.
func taskOf(m models.Model) evaluation.Task {
	obj := ""
	if o, ok := m.(interface{ Objective() string }); ok {
		obj = o.Objective()
	}
	switch {
	case strings.HasPrefix(obj, "multi:"):
		return evaluation.TaskMulticlass
	case strings.HasPrefix(obj, "binary:"):
		return evaluation.TaskBinary
	}
	return evaluation.TaskRegression
}

// labelColumn reads the target as numbers; a missing value is an error
// naming its row.
func labelColumn(t *tabular.Table, target string) ([]float64, error) {
	i := t.Index(target)
	if i < 0 {
		return nil, fmt.Errorf("no target column %q (it has %s)", target, strings.Join(t.Names(), ", "))
	}
	c := &t.Columns[i]
	if c.Kind == tabular.Categorical {
		return nil, fmt.Errorf("target column %q, row %d: %q is not a number; labels must be numbers (class indices for classifiers)", target, c.TextRow+1, c.Text)
	}
	out := make([]float64, len(c.Values))
	for r, v := range c.Values {
		if v != v {
			return nil, fmt.Errorf("target column %q, row %d: the label is missing", target, r+1)
		}
		out[r] = float64(v)
	}
	return out, nil
}

func sliceColumn(c *tabular.Column) evaluation.Column {
	out := evaluation.Column{Name: c.Name, Strings: make([]string, len(c.Values))}
	for r, v := range c.Values {
		switch {
		case v != v:
			out.Strings[r] = "(missing)"
		case c.Kind == tabular.Categorical:
			out.Strings[r] = c.Levels[int(v)]
		default:
			out.Strings[r] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
	}
	return out
}

func logEvaluation(ctx context.Context, c *client.Client, experiment, runName, modelRef, dataRef, target string,
	report *evaluation.Report, md string, raw []byte) (*trackedRun, error) {
	run, err := startRun(ctx, c, experiment, runName, "evaluate")
	if err != nil {
		return nil, err
	}
	err = func() error {
		params := map[string]string{"model": modelRef, "data": dataRef, "target": target, "task": string(report.Task),
			"rows": strconv.Itoa(report.Rows)}
		if err := run.logBatch(ctx, params, report.Metrics(), 0); err != nil {
			return err
		}
		if err := run.logData(ctx, dataRef, "evaluation"); err != nil {
			return err
		}
		if err := run.upload(ctx, "evaluation/report.md", md); err != nil {
			return err
		}
		return run.upload(ctx, "evaluation/report.json", string(raw))
	}()
	return run, run.finish(ctx, err)
}

// writeMetricsFile writes metrics as a flat JSON object of name to
// number, a pipeline step's metrics output. NaN and infinities, which
// JSON cannot hold, are left out (reports already leave out undefined
// metrics).
func writeMetricsFile(flag, path string, metrics map[string]float64) error {
	clean := make(map[string]float64, len(metrics))
	for k, v := range metrics {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			clean[k] = v
		}
	}
	return writeJSONFile(flag, path, clean)
}
