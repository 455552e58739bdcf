package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/models/xgboost"
	"github.com/slipwayml/slipway/internal/tabular"
	"github.com/slipwayml/slipway/internal/training"
)

// xgboostVersion is the XGBoost release whose JSON format the trainers
// write; MLflow's loader checks the installed XGBoost against it.
const xgboostVersion = "1.7.4"

// trainOptions are the flags of slipway train.
type trainOptions struct {
	data, valid, target, algo, objective, experiment, runName, register, out string
	params, drop                                                             []string
	validShare                                                               float64
	seed                                                                     uint64
	noTrack, asJSON                                                          bool
}

func newTrainCmd() *cobra.Command {
	var o trainOptions
	cmd := &cobra.Command{
		Use:   "train --data DATA --target COLUMN",
		Short: "Train a gradient-boosted tree or linear model, as a tracked run",
		Long: `Train a model on DATA to predict the TARGET column, in Slipway's own
trainers: histogram gradient-boosted trees (--algo gbdt, XGBoost's hist method)
or L2-regularised linear and logistic regression (--algo linear). The model is
written in XGBoost's JSON format, which XGBoost itself loads and scores the
same.

Every other column is a feature (--drop leaves some out); text columns are
categorical. The objective follows the target unless --objective says: 0/1
labels are binary:logistic, class indices or text classes multi:softprob,
other numbers reg:squarederror.

Parameters take XGBoost's names: -p max_depth=6 -p eta=0.1 -p
num_boost_round=200 -p early_stopping_rounds=20. A share of the rows
(--valid-fraction, 0.2) or --valid DATA is held out: it is scored after every
round (early stopping watches it) and evaluated at the end.

The training is a run in --experiment: its parameters, the validation metric
per round, the evaluation's metrics, the model in MLflow's format under
model/ (xgboost flavor, with a signature, and the run's id as MLmodel's
run_id), the evaluation report, and the data versions it read as dataset
inputs. --register NAME registers the model as the next version of NAME;
-o DIR also writes the model directory to DIR, which
'slipway models register NAME DIR' can register later.

In a pipeline step (MLFLOW_RUN_ID set, as the pipeline runner sets it), the
training is logged into that run instead, --experiment is ignored, and the
run is left for the runner to end.`,
		Example: `  slipway train --data data:credit@latest --target default --register credit
  slipway train --data train.csv --valid test.csv --target price -p max_depth=4 -p eta=0.05 -p num_boost_round=500 -p early_stopping_rounds=20
  slipway train --data data:churn@v3 --target churned --algo linear -p lambda=0.01
  slipway train --data data:credit@latest --target default -o model && slipway models register credit model`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			return runTrain(ctx, cmd, c, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "training data: a CSV or Parquet file (or a directory holding one), or data:NAME@vN")
	f.StringVar(&o.target, "target", "", "the column to predict")
	f.StringVar(&o.valid, "valid", "", "validation data (default: --valid-fraction of --data)")
	f.Float64Var(&o.validShare, "valid-fraction", 0.2, "share of --data held out for validation when --valid is not given; 0 holds out none")
	f.StringVar(&o.algo, "algo", "gbdt", "gbdt or linear")
	f.StringVar(&o.objective, "objective", "", "binary:logistic, multi:softprob, reg:squarederror or count:poisson (default: from the target)")
	f.StringArrayVarP(&o.params, "param", "p", nil, "a training parameter as NAME=VALUE, XGBoost's names (repeatable)")
	f.StringArrayVar(&o.drop, "drop", nil, "a column that is not a feature (repeatable)")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the validation split and of row and column sampling")
	f.StringVar(&o.experiment, "experiment", "training", "experiment to log the run to (ignored when MLFLOW_RUN_ID names the run)")
	f.StringVar(&o.runName, "run-name", "", "name of the run (default: generated; ignored when MLFLOW_RUN_ID names the run)")
	f.StringVar(&o.register, "register", "", "register the model as the next version of this registered model")
	f.StringVarP(&o.out, "out", "o", "", "also write the model directory here")
	f.BoolVar(&o.noTrack, "no-track", false, "train without logging a run (needs --out)")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return clientGroupFlags(cmd)
}

// trained is a finished training: the model, its data and its report.
type trained struct {
	table    *training.Table
	result   *training.Result
	model    *training.Model
	params   map[string]string
	valid    *training.Dataset
	report   *evaluation.Report
	modelDir string
	pkg      modeldir.Package
}

func runTrain(ctx context.Context, cmd *cobra.Command, c *client.Client, o trainOptions) error {
	switch {
	case o.data == "" || o.target == "":
		return errs.Invalid("--data and --target are required")
	case o.algo != "gbdt" && o.algo != "linear":
		return errs.Invalid("--algo %q: must be gbdt or linear", o.algo)
	case o.noTrack && o.out == "":
		return errs.Invalid("--no-track needs --out, or the model would be thrown away")
	case o.noTrack && o.register != "":
		return errs.Invalid("--register needs a run to register from; drop --no-track")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp("", "slipway-train-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	t, err := train(ctx, c, &o, tmp)
	if err != nil {
		return err
	}
	var (
		run        *trackedRun
		runID      string
		registered string
	)
	if !o.noTrack {
		if run, registered, err = logTraining(ctx, c, o, t); err != nil {
			return err
		}
		runID = run.ID()
	}
	// Written after logging, so that MLmodel names the run.
	if o.out != "" {
		if err := os.CopyFS(o.out, os.DirFS(t.modelDir)); err != nil {
			return errs.Invalid("--out %s: %v", o.out, err)
		}
	}
	out := cmd.OutOrStdout()
	if o.asJSON {
		metrics := map[string]float64{}
		if t.report != nil {
			metrics = t.report.Metrics()
		}
		return writeJSON(out, map[string]any{"run_id": runID, "registered": registered, "rounds": t.result.Rounds,
			"best_iteration": t.result.BestIteration, "metrics": metrics, "params": t.params})
	}
	fmt.Fprintf(out, "trained %s (%s) on %d rows, %d features in %s\n", o.algo, t.model.Objective(), t.table.Data.Rows(),
		t.table.Data.NumFeatures(), time.Since(start).Round(time.Millisecond))
	if t.result.Metric != "" && len(t.result.History) > 0 {
		fmt.Fprintf(out, "  %d rounds; best validation %s %.6g at round %d\n", t.result.Rounds, t.result.Metric, t.result.BestScore, t.result.BestIteration+1)
	}
	if t.report != nil {
		m := t.report.Metrics()
		var parts []string
		for _, k := range []string{"auc", "log_loss", "accuracy", "f1", "f1_macro", "rmse", "mae", "r2"} {
			if v, ok := m[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %.6g", k, v))
			}
		}
		fmt.Fprintf(out, "  validation (%d rows): %s\n", t.valid.Rows(), strings.Join(parts, ", "))
	}
	if run != nil {
		fmt.Fprintf(out, "  logged as run %s\n", run)
	}
	if registered != "" {
		fmt.Fprintf(out, "  registered %s\n", registered)
	}
	if o.out != "" {
		fmt.Fprintf(out, "  model written to %s\n", o.out)
	}
	return nil
}

// trainingData is what a training or a search reads: the table, the
// training and validation sets, and the objective.
type trainingData struct {
	table        *training.Table
	train, valid *training.Dataset
	objective    string
	numClass     int
}

// loadTrainingData reads o's data (resolving data references to the
// versions read, which the run then records) and holds out validation
// rows.
func loadTrainingData(ctx context.Context, c *client.Client, o *trainOptions, tmp string) (*trainingData, error) {
	path, resolved, err := fetchData(ctx, c, o.data, filepath.Join(tmp, "data"))
	if err != nil {
		return nil, err
	}
	o.data = resolved
	table, err := tabular.ReadFile(path)
	if err != nil {
		return nil, errs.Invalid("data %s: %v", o.data, err)
	}
	tt, err := training.FromTable(table, o.target, o.drop)
	if err != nil {
		return nil, errs.Invalid("data %s: %s", o.data, errs.Message(err))
	}
	d := &trainingData{table: tt, train: tt.Data}
	switch {
	case o.valid != "":
		vpath, vresolved, err := fetchData(ctx, c, o.valid, filepath.Join(tmp, "valid"))
		if err != nil {
			return nil, err
		}
		o.valid = vresolved
		vt, err := tabular.ReadFile(vpath)
		if err != nil {
			return nil, errs.Invalid("valid %s: %v", o.valid, err)
		}
		if d.valid, err = tt.Recode(vt, o.target); err != nil {
			return nil, errs.Invalid("valid %s: %s", o.valid, message(err))
		}
	case o.validShare > 0:
		if d.train, d.valid, err = tt.Data.Split(o.validShare, o.seed); err != nil {
			return nil, err
		}
	}
	d.objective, d.numClass = tt.InferObjective()
	if o.objective != "" {
		inferredClasses := d.numClass
		d.objective, d.numClass = o.objective, 0
		if d.objective == training.MultiSoftprob {
			d.numClass = inferredClasses
		}
	}
	return d, nil
}

// gbdtParams are the GBDT parameters o asks for on d.
func gbdtParams(o *trainOptions, d *trainingData) (training.GBDTParams, error) {
	p := training.DefaultGBDTParams()
	p.Objective, p.NumClass, p.Seed = d.objective, d.numClass, o.seed
	return p, setParams(o.params, p.Set)
}

// train reads the data, trains, writes the model directory under tmp and
// evaluates the model on the validation data.
func train(ctx context.Context, c *client.Client, o *trainOptions, tmp string) (*trained, error) {
	d, err := loadTrainingData(ctx, c, o, tmp)
	if err != nil {
		return nil, err
	}
	t := &trained{table: d.table, valid: d.valid}
	if o.algo == "gbdt" {
		p, err := gbdtParams(o, d)
		if err != nil {
			return nil, err
		}
		if t.result, err = training.TrainGBDT(ctx, p, d.train, d.valid); err != nil {
			return nil, err
		}
		t.params = p.Values()
	} else {
		p := training.DefaultLinearParams()
		p.Objective, p.NumClass = d.objective, d.numClass
		if err := setParams(o.params, p.Set); err != nil {
			return nil, err
		}
		lr, err := training.TrainLinear(ctx, p, d.train)
		if err != nil {
			return nil, err
		}
		t.result = &training.Result{Model: lr.Model, Rounds: lr.Iterations, BestIteration: -1}
		t.params = map[string]string{"objective": p.Objective, "lambda": strconv.FormatFloat(p.Lambda, 'g', -1, 64),
			"standardize": strconv.FormatBool(p.Standardize)}
		if p.NumClass > 0 {
			t.params["num_class"] = strconv.Itoa(p.NumClass)
		}
	}
	return t, t.pack(ctx, tmp)
}

// pack writes the trained model as an MLflow model directory under tmp,
// with what prediction needs to read text columns, and evaluates it on
// the validation data.
func (t *trained) pack(ctx context.Context, tmp string) error {
	t.model = t.result.Model
	if len(t.table.Levels) > 0 {
		raw, _ := json.Marshal(t.table.Levels)
		t.model.SetAttribute(modeldir.CategoriesAttribute, string(raw))
	}
	if t.table.Classes != nil {
		raw, _ := json.Marshal(t.table.Classes)
		t.model.SetAttribute(modeldir.ClassesAttribute, string(raw))
	}
	modelJSON := t.model.JSON()
	runtime, err := xgboost.Load(modelJSON)
	if err != nil {
		return fmt.Errorf("reading back the trained model: %w", err)
	}
	t.modelDir = filepath.Join(tmp, "model")
	t.pkg = modeldir.Package{ModelJSON: modelJSON, Signature: runtime.Signature(), XGBoostVersion: xgboostVersion, Now: time.Now()}
	if err := modeldir.Write(t.modelDir, t.pkg); err != nil {
		return err
	}
	if t.valid != nil {
		if t.report, err = evaluateTrained(ctx, runtime, t.valid); err != nil {
			return err
		}
	}
	return nil
}

// stampRun writes the run that produced the model into its MLmodel as
// run_id, as MLflow does, so that the directory names its run wherever it
// is copied: 'slipway models register' registers it with that run.
func (t *trained) stampRun(runID string) error {
	t.pkg.RunID = runID
	return modeldir.Write(t.modelDir, t.pkg)
}

func setParams(params []string, set func(name, value string) error) error {
	for _, kv := range params {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return errs.Invalid("-p %q: write NAME=VALUE", kv)
		}
		if err := set(strings.TrimSpace(name), strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return nil
}

// evaluateTrained scores the validation set with the model as the runtime
// reads it, so the report describes exactly what will be served.
func evaluateTrained(ctx context.Context, m *xgboost.Model, valid *training.Dataset) (*evaluation.Report, error) {
	nf, n := valid.NumFeatures(), valid.Rows()
	x := make([]float32, n*nf)
	for j, col := range valid.Columns {
		for r, v := range col {
			x[r*nf+j] = v
		}
	}
	in := &evaluationInput{model: m, x: x, spec: evaluation.Spec{Task: taskOf(m), Outputs: m.NumOutputs(),
		Labels: make([]float64, n), Predictions: make([]float32, n*m.NumOutputs())}}
	for r, v := range valid.Labels {
		in.spec.Labels[r] = float64(v)
	}
	if err := m.Predict(x, in.spec.Predictions); err != nil {
		return nil, err
	}
	return in.run(ctx, "", 0)
}

// logTraining records the training as a run and registers the model if
// asked.
func logTraining(ctx context.Context, c *client.Client, o trainOptions, t *trained) (*trackedRun, string, error) {
	run, err := startRun(ctx, c, o.experiment, o.runName, "train")
	if err != nil {
		return nil, "", err
	}
	var registered string
	err = func() error {
		if err := t.stampRun(run.ID()); err != nil {
			return err
		}
		params := map[string]string{"algo": o.algo, "data": o.data, "target": o.target, "rows": strconv.Itoa(t.table.Data.Rows())}
		if o.valid != "" {
			params["valid"] = o.valid
		} else if t.valid != nil {
			params["valid_fraction"] = strconv.FormatFloat(o.validShare, 'g', -1, 64)
		}
		for k, v := range t.params {
			params[k] = v
		}
		metrics := map[string]float64{}
		if t.report != nil {
			metrics = t.report.Metrics()
		}
		if t.result.BestIteration >= 0 {
			metrics["best_iteration"] = float64(t.result.BestIteration)
		}
		if err := run.logBatch(ctx, params, metrics, 0); err != nil {
			return err
		}
		if err := run.logHistory(ctx, "valid_"+t.result.Metric, t.result.History); err != nil {
			return err
		}
		if err := run.logData(ctx, o.data, "training"); err != nil {
			return err
		}
		if err := run.logData(ctx, o.valid, "validation"); err != nil {
			return err
		}
		return t.publish(ctx, run)
	}()
	if err := run.finish(ctx, err); err != nil {
		return run, "", err
	}
	if o.register != "" {
		v, err := registerRunModel(ctx, c, o.register, run.ID(), "model")
		if err != nil {
			return run, "", err
		}
		registered = versionRef(v)
	}
	return run, registered, nil
}

// publish uploads the model directory and the evaluation report to run.
func (t *trained) publish(ctx context.Context, run *trackedRun) error {
	if err := run.uploadDir(ctx, t.modelDir, "model"); err != nil {
		return err
	}
	if t.report == nil {
		return nil
	}
	raw, err := json.MarshalIndent(t.report, "", "  ")
	if err != nil {
		return err
	}
	if err := run.upload(ctx, "evaluation/report.md", t.report.Markdown()); err != nil {
		return err
	}
	return run.upload(ctx, "evaluation/report.json", string(raw))
}

// registerRunModel registers the directory artifactPath of a run's
// artifacts (model/ for what train and tune log) as the next version of
// name, with the run as its run_id, creating the registered model if
// needed. The server copies the files into registry storage and hashes
// them; the version is READY when this returns.
func registerRunModel(ctx context.Context, c *client.Client, name, runID, artifactPath string) (*client.ModelVersion, error) {
	if _, err := c.CreateRegisteredModel(ctx, name, ""); err != nil && !client.IsAlreadyExists(err) {
		return nil, err
	}
	return c.CreateModelVersion(ctx, client.CreateModelVersionRequest{Name: name, Source: "runs:/" + runID + "/" + artifactPath, RunID: runID})
}

// versionRef names a model version as models:/NAME/VERSION.
func versionRef(v *client.ModelVersion) string {
	return fmt.Sprintf("models:/%s/%s", v.Name, v.Version)
}
