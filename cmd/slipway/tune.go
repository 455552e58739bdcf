package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/training"
	"github.com/slipwayml/slipway/internal/tuning"
)

func newTuneCmd() *cobra.Command {
	var (
		o          trainOptions
		configPath string
		space      []string
		cfg        tuning.Config
	)
	cmd := &cobra.Command{
		Use:   "tune --data DATA --target COLUMN -s PARAM=VALUES ...",
		Short: "Search GBDT parameters, each trial a child run, and keep the best model",
		Long: `Train gradient-boosted trees with each combination of parameters a search
picks, score each on the validation data, and keep the best.

The search space comes from -s flags or a --config file (flags win):
  -s max_depth=3,4,6                  a choice
  -s eta=loguniform(0.01,0.3)         log-uniform between two bounds
  -s subsample=uniform(0.5,1)         uniform
  -s min_child_weight=intuniform(1,10)
--strategy grid tries every combination of choices; random draws --trials
configurations with --seed; halving (successive halving) trains --trials
configurations with few rounds, keeps the best third (--reduction-factor) and
gives them three times the rounds, until --max-rounds.

The search is a parent run in --experiment, each trial a child run (tag
mlflow.parentRunId) with its parameters and validation score; the parent
holds the summary, the best trial's parameters and metrics, its model under
model/ and its evaluation. --register NAME registers the best model.
Parameters given with -p are fixed for every trial.

In a pipeline step (MLFLOW_RUN_ID set), the step's run is the parent run:
--experiment is ignored, the trials are its child runs, and the runner
ends it.`,
		Example: `  slipway tune --data data:credit@latest --target default -s max_depth=3,4,6 -s eta=0.05,0.1,0.3 --parallel 2
  slipway tune --data train.csv --target default --strategy halving --trials 27 --max-rounds 270 -s max_depth=2,4,6,8 -s eta=loguniform(0.01,0.3) --register credit`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if o.data == "" || o.target == "" {
				return errs.Invalid("--data and --target are required")
			}
			conf := tuning.Config{}
			if configPath != "" {
				raw, err := os.ReadFile(configPath)
				if err != nil {
					return errs.Invalid("--config: %v", err)
				}
				parsed, err := tuning.ParseConfig(raw)
				if err != nil {
					return errs.Invalid("--config %s: %s", configPath, message(err))
				}
				conf = *parsed
			}
			flags := cmd.Flags()
			for name, apply := range map[string]func(){
				"strategy": func() { conf.Strategy = cfg.Strategy }, "trials": func() { conf.Trials = cfg.Trials },
				"parallel":         func() { conf.Parallel = cfg.Parallel },
				"reduction-factor": func() { conf.ReductionFactor = cfg.ReductionFactor },
				"min-rounds":       func() { conf.MinResource = cfg.MinResource }, "max-rounds": func() { conf.MaxResource = cfg.MaxResource },
			} {
				if flags.Changed(name) {
					apply()
				}
			}
			if conf.Strategy == "" {
				conf.Strategy = "grid"
			}
			// The seed also seeds the validation split and sampling, so a
			// grid takes it too, though its search does not use one.
			o.seed = conf.Seed
			if flags.Changed("seed") {
				o.seed = cfg.Seed
				if conf.Strategy != "grid" {
					conf.Seed = cfg.Seed
				}
			}
			fromFlags, err := tuning.ParseFlags(space)
			if err != nil {
				return err
			}
			conf.Space = conf.Space.Merge(fromFlags)
			if len(conf.Space.Params) == 0 {
				return errs.Invalid("no search space: give -s PARAM=VALUES or --config")
			}
			tuner, err := conf.Tuner()
			if err != nil {
				return err
			}
			return runTune(ctx, cmd, c, o, tuner)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "training data: a CSV or Parquet file (or a directory holding one), or data:NAME@vN")
	f.StringVar(&o.target, "target", "", "the column to predict")
	f.StringVar(&o.valid, "valid", "", "validation data the trials are scored on (default: --valid-fraction of --data)")
	f.Float64Var(&o.validShare, "valid-fraction", 0.2, "share of --data held out for validation when --valid is not given")
	f.StringVar(&o.objective, "objective", "", "binary:logistic, multi:softprob, reg:squarederror or count:poisson (default: from the target)")
	f.StringArrayVarP(&o.params, "param", "p", nil, "a parameter fixed for every trial, NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.drop, "drop", nil, "a column that is not a feature (repeatable)")
	f.StringArrayVarP(&space, "space", "s", nil, "a parameter to search, NAME=V1,V2,... or NAME=uniform|loguniform|intuniform(LOW,HIGH) (repeatable)")
	f.StringVar(&configPath, "config", "", "a YAML file with strategy, trials, seed, parallel, ... and space")
	f.StringVar(&cfg.Strategy, "strategy", "grid", "grid, random or halving")
	f.IntVar(&cfg.Trials, "trials", 0, "configurations to try (random, halving)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the search, the validation split and sampling")
	f.IntVar(&cfg.Parallel, "parallel", 1, "trials run at once (each gets the cores divided among them)")
	f.IntVar(&cfg.ReductionFactor, "reduction-factor", tuning.DefaultReductionFactor, "halving: keep 1 in this many per rung")
	f.IntVar(&cfg.MinResource, "min-rounds", 0, "halving: boosting rounds of the first rung (default: from --max-rounds)")
	f.IntVar(&cfg.MaxResource, "max-rounds", 0, "halving: boosting rounds of the last rung")
	f.StringVar(&o.experiment, "experiment", "tuning", "experiment to log the runs to (ignored when MLFLOW_RUN_ID names the parent run)")
	f.StringVar(&o.runName, "run-name", "", "name of the parent run (default: generated; ignored when MLFLOW_RUN_ID names the run)")
	f.StringVar(&o.register, "register", "", "register the best model as the next version of this registered model")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	return clientGroupFlags(cmd)
}

func runTune(ctx context.Context, cmd *cobra.Command, c *client.Client, o trainOptions, tuner *tuning.Tuner) error {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "slipway-tune-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	d, err := loadTrainingData(ctx, c, &o, tmp)
	if err != nil {
		return err
	}
	if d.valid == nil {
		return errs.Invalid("trials are scored on validation data: give --valid or a --valid-fraction above 0")
	}
	base, err := gbdtParams(&o, d)
	if err != nil {
		return err
	}
	parent, err := startRun(ctx, c, o.experiment, o.runName, "tune")
	if err != nil {
		return err
	}
	sum, err := func() (*tuning.Summary, error) {
		params := map[string]string{"data": o.data, "target": o.target, "strategy": tuner.Strategy.Name(), "rows": strconv.Itoa(d.train.Rows())}
		for k, v := range tuner.Strategy.Settings() {
			params["search."+k] = v
		}
		for _, p := range tuner.Space.Params {
			params["space."+p.Name] = p.String()
		}
		if err := parent.logBatch(ctx, params, nil, 0); err != nil {
			return nil, err
		}
		if err := parent.logData(ctx, o.data, "training"); err != nil {
			return nil, err
		}
		if err := parent.logData(ctx, o.valid, "validation"); err != nil {
			return nil, err
		}
		children := trialRuns{c: c, parent: parent, experiment: o.experiment, stderr: cmd.ErrOrStderr(), runs: map[int]*trackedRun{}}
		tuner.OnTrialStart = children.start
		tuner.OnTrialEnd = children.end
		sum, err := tuner.Run(ctx, tuning.GBDTTrial(d.train, d.valid, base))
		if err != nil {
			return sum, err
		}
		best := sum.Best()
		if best == nil {
			return sum, errs.New(errs.FailedPrecondition, "no trial succeeded")
		}
		t := &trained{table: d.table, valid: d.valid, result: best.Artifact.(*training.Result)}
		if err := t.pack(ctx, tmp); err != nil {
			return sum, err
		}
		if err := t.stampRun(parent.ID()); err != nil {
			return sum, err
		}
		metrics := map[string]float64{"best_" + best.Metric: best.Score, "trials": float64(len(sum.Trials))}
		if t.report != nil {
			for k, v := range t.report.Metrics() {
				metrics[k] = v
			}
		}
		bestParams := map[string]string{"best_trial": strconv.Itoa(best.Index)}
		for k, v := range best.Params {
			bestParams["best."+k] = v
		}
		if err := parent.logBatch(ctx, bestParams, metrics, 0); err != nil {
			return sum, err
		}
		if err := parent.upload(ctx, "tuning/summary.md", sum.Markdown()); err != nil {
			return sum, err
		}
		return sum, t.publish(ctx, parent)
	}()
	if err := parent.finish(ctx, err); err != nil {
		return err
	}
	var registered string
	if o.register != "" {
		v, err := registerRunModel(ctx, c, o.register, parent.ID(), "model")
		if err != nil {
			return err
		}
		registered = versionRef(v)
	}
	out := cmd.OutOrStdout()
	best := sum.Best()
	if o.asJSON {
		return writeJSON(out, map[string]any{"run_id": parent.ID(), "registered": registered, "best_trial": best.Index,
			"best_params": best.Params, "best_score": best.Score, "metric": best.Metric, "trials": len(sum.Trials)})
	}
	fmt.Fprint(out, sum.Markdown())
	fmt.Fprintf(out, "\nbest: trial %d, %s %.6g, %v (%d trials in %s)\n", best.Index, best.Metric, best.Score, best.Params,
		len(sum.Trials), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "logged as run %s, trials as its child runs\n", parent)
	if registered != "" {
		fmt.Fprintf(out, "registered %s\n", registered)
	}
	return nil
}

// trialRuns makes each trial an MLflow child run of the search's run. The
// tuner calls its hooks from its workers, so they take turns on runs.
type trialRuns struct {
	c          *client.Client
	parent     *trackedRun
	experiment string
	stderr     io.Writer
	mu         sync.Mutex
	runs       map[int]*trackedRun
}

func (tr *trialRuns) start(t tuning.Trial) {
	ctx := context.Background()
	run, err := tr.c.CreateRun(ctx, client.CreateRunRequest{ExperimentID: tr.parent.run.Info.ExperimentID,
		RunName: fmt.Sprintf("trial-%d", t.Index),
		Tags: []client.Tag{{Key: "mlflow.parentRunId", Value: tr.parent.ID()}, {Key: "mlflow.source.name", Value: "slipway tune"},
			{Key: "slipway.trial", Value: strconv.Itoa(t.Index)}, {Key: "slipway.rung", Value: strconv.Itoa(t.Rung)}}})
	if err != nil {
		fmt.Fprintf(tr.stderr, "slipway: trial %d: could not create its run: %v\n", t.Index, err)
		return
	}
	child := &trackedRun{c: tr.c, run: run}
	params := map[string]string{}
	for k, v := range t.Params {
		params[k] = v
	}
	if t.Resource > 0 {
		params["num_boost_round"] = strconv.Itoa(t.Resource)
	}
	if err := child.logBatch(ctx, params, nil, 0); err != nil {
		fmt.Fprintf(tr.stderr, "slipway: trial %d: logging its params: %v\n", t.Index, err)
	}
	tr.mu.Lock()
	tr.runs[t.Index] = child
	tr.mu.Unlock()
}

func (tr *trialRuns) end(rec tuning.TrialRecord) {
	tr.mu.Lock()
	child := tr.runs[rec.Index]
	tr.mu.Unlock()
	if child == nil {
		return
	}
	ctx := context.Background()
	if err := child.logBatch(ctx, nil, rec.MetricValues(), 0); err != nil {
		fmt.Fprintf(tr.stderr, "slipway: trial %d: logging its metrics: %v\n", rec.Index, err)
	}
	if _, err := tr.c.UpdateRun(ctx, client.UpdateRunRequest{RunID: child.ID(), Status: rec.Status.RunStatus(), EndTime: time.Now().UnixMilli()}); err != nil {
		fmt.Fprintf(tr.stderr, "slipway: trial %d: ending its run: %v\n", rec.Index, err)
	}
}
