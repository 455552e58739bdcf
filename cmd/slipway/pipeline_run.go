package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// pollEvery is how often a followed run is asked for news.
const pollEvery = 250 * time.Millisecond

func newPipelineRunCmd() *cobra.Command {
	var overrides []string
	var force, detach, quiet, asJSON, explain bool
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Register a pipeline spec with the server and run it, following its steps",
		Long: `Validate FILE, register it with the server (replacing an earlier spec of
the same name) and queue a run, then follow it: each step's status as it
changes and its output as it is written, and at the end why every step ran
or was restored from the cache.

The server runs the steps, in the directory that holds FILE, so the server
must run on this machine (as with slipway quickstart, or a server started
here). Each pipeline run is an MLflow run in the experiment pipelines/NAME
with one child run per step; a step's process gets MLFLOW_TRACKING_URI,
MLFLOW_RUN_ID and MLFLOW_EXPERIMENT_ID, so code that logs with an MLflow
client logs to its step.

Ctrl-C cancels the run (its steps' processes are ended) and waits for it
to be recorded; --detach queues the run and returns at once. The exit code
is 0 when the run succeeded and 2 when it failed or was cancelled.`,
		Example: `  slipway pipeline run pipeline.yaml
  slipway pipeline run pipeline.yaml -p lr=0.05 --force
  slipway pipeline run pipeline.yaml --detach`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			set, err := spec.ParseOverrides(overrides)
			if err != nil {
				return specError(err)
			}
			p, err := register(ctx, c, args[0], set)
			if err != nil {
				return err
			}
			run, err := c.StartPipelineRun(ctx, p.Name, set, force)
			if err != nil {
				return err
			}
			return followOrReport(ctx, cmd, c, run, followOptions{detach: detach, quiet: quiet, asJSON: asJSON, explain: explain})
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&explain, "explain", false, "end with each step's cache key and everything that changed since its previous run")
	f.StringArrayVarP(&overrides, "param", "p", nil, "override a param, NAME=VALUE (repeatable)")
	f.BoolVar(&force, "force", false, "run every step even when its outputs are in the cache")
	f.BoolVar(&detach, "detach", false, "queue the run and return without following it")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print the steps' output, only their status")
	f.BoolVar(&asJSON, "json", false, "print the ended run as JSON")
	return cmd
}

// register validates the spec here, where errors can name lines of the
// file, and registers it with the directory that holds it as the project.
func register(ctx context.Context, c *client.Client, file string, overrides map[string]string) (*client.Pipeline, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, errs.Invalid("%v", err)
	}
	p, err := spec.Parse(file, text)
	if err != nil {
		return nil, specError(err)
	}
	if err := p.ApplyOverrides(overrides); err != nil {
		return nil, specError(err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return c.PutPipeline(ctx, p.Name, filepath.Base(file), string(text), filepath.Dir(abs))
}

// followOptions say how a started run is reported.
type followOptions struct {
	detach, quiet, asJSON, explain bool
}

func followOrReport(ctx context.Context, cmd *cobra.Command, c *client.Client, run *client.PipelineRun, o followOptions) error {
	out := cmd.OutOrStdout()
	if o.detach {
		if o.asJSON {
			return writeJSON(out, run)
		}
		fmt.Fprintf(out, "queued %s#%d (run %s)\n", run.Pipeline, run.Number, run.ID)
		return nil
	}
	if !o.asJSON {
		fmt.Fprintf(out, "%s#%d: run %s\n", run.Pipeline, run.Number, run.ID)
	}
	var progress io.Writer = out
	if o.asJSON {
		progress = cmd.ErrOrStderr()
	}
	ended, err := follow(ctx, c, run.ID, progress, !o.quiet)
	if err != nil {
		return err
	}
	if o.asJSON {
		if err := writeJSON(out, ended); err != nil {
			return err
		}
	} else {
		printExplain(out, ended, o.explain)
	}
	return runOutcome(ended)
}

// runOutcome turns a run that did not succeed into the command's error.
func runOutcome(run *client.PipelineRun) error {
	switch run.Status {
	case client.PipelineSucceeded:
		return nil
	case client.PipelineCancelled:
		return errs.New(errs.FailedPrecondition, "%s#%d %s", run.Pipeline, run.Number, run.Error)
	}
	return errs.New(errs.FailedPrecondition, "%s#%d failed: %s (logs: slipway pipeline logs %s)", run.Pipeline, run.Number, run.Error, run.ID)
}

// follow prints a run's step changes (and, with logs, its steps' output
// prefixed by step name) until it ends. The first interrupt cancels the
// run and keeps following until the cancellation is recorded; a second
// one stops following.
func follow(ctx context.Context, c *client.Client, id string, out io.Writer, logs bool) (*client.PipelineRun, error) {
	bg := context.WithoutCancel(ctx)
	interrupted := ctx.Done()
	var hardStop chan os.Signal
	seen := map[string]string{}
	offsets := map[string]int64{}
	width := 0
	for {
		run, err := c.GetPipelineRun(bg, id)
		if err != nil {
			return nil, err
		}
		for _, st := range run.Steps {
			width = max(width, len(st.Name))
		}
		for _, st := range run.Steps {
			if logs && (st.HasLog || st.Status == "running") {
				if err := printLog(bg, c, run.ID, st.Name, width, offsets, out); err != nil {
					return nil, err
				}
			}
			if seen[st.Name] != st.Status && st.Status != "pending" {
				seen[st.Name] = st.Status
				fmt.Fprintf(out, "%s %-*s  %s\n", stepMark(st.Status), width, st.Name, stepSummary(st))
			}
		}
		if run.Done() {
			return run, nil
		}
		select {
		case <-interrupted:
			interrupted = nil
			fmt.Fprintf(out, "interrupted: cancelling %s#%d (interrupt again to stop waiting)\n", run.Pipeline, run.Number)
			if _, err := c.CancelPipelineRun(bg, id); err != nil && !client.IsNotFound(err) {
				fmt.Fprintf(out, "cancel: %v\n", err)
			}
			hardStop = make(chan os.Signal, 1)
			signal.Notify(hardStop, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(hardStop)
		case <-hardStop:
			return run, errs.New(errs.FailedPrecondition, "stopped waiting; the run is being cancelled: slipway pipeline show %s", id)
		case <-time.After(pollEvery):
		}
	}
}

func printLog(ctx context.Context, c *client.Client, runID, step string, width int, offsets map[string]int64, out io.Writer) error {
	for {
		chunk, err := c.ReadStepLog(ctx, runID, step, offsets[step])
		if err != nil {
			return err
		}
		data := chunk.Data
		// Print whole lines only, so steps' output interleaves by line.
		if !chunk.Complete {
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				data = data[:i+1]
			} else {
				data = nil
			}
		}
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			fmt.Fprintf(out, "  %-*s | %s", width, step, strings.TrimSuffix(line, "\n")+"\n")
		}
		offsets[step] += int64(len(data))
		if len(data) == 0 || chunk.Complete && offsets[step] >= chunk.Next {
			return nil
		}
	}
}

func stepMark(status string) string {
	switch status {
	case "succeeded":
		return "✓"
	case "cached", "reused":
		return "="
	case "failed":
		return "✗"
	case "running":
		return "▸"
	}
	return "-"
}

func stepSummary(st client.PipelineStep) string {
	r := st.Result
	if r == nil {
		return st.Status
	}
	d := fmtDuration(time.Duration(r.Duration))
	switch r.Status {
	case "cached":
		return fmt.Sprintf("cached (key %.12s)", r.Decision.Key)
	case "reused":
		return "reused from the resumed run"
	case "failed":
		return fmt.Sprintf("failed after %s: %s", d, r.Error)
	case "skipped", "cancelled":
		return r.Status + ": " + r.Error
	}
	return fmt.Sprintf("%s in %s", r.Status, d)
}

// printExplain says for every step why it ran or was restored, and where
// the run is tracked; in full, with each step's cache key and every
// component that changed since its previous run.
func printExplain(out io.Writer, run *client.PipelineRun, full bool) {
	fmt.Fprintf(out, "\n%s#%d %s in %s\n", run.Pipeline, run.Number, run.Status, runDuration(run.StartTime, run.EndTime))
	t := newTable(out)
	for _, st := range run.Steps {
		why := st.Status
		if r := st.Result; r != nil {
			why = r.Decision.Reason
			if why == "" {
				why = r.Error
			}
			if len(r.Metrics) > 0 {
				why += "; " + fmtMetrics(r.Metrics)
			}
		}
		tableRow(t, "  "+st.Name, st.Status, why)
		if r := st.Result; full && r != nil && r.Decision.Key != "" {
			tableRow(t, "", "", "key "+r.Decision.Key)
			if len(r.Decision.Changed) > 0 {
				tableRow(t, "", "", "changed: "+strings.Join(r.Decision.Changed, ", "))
			}
		}
	}
	t.Flush()
	if run.MLflowRunID != "" {
		fmt.Fprintf(out, "tracked as run %s in experiment %s (slipway runs show %s)\n", run.MLflowRunID, run.ExperimentID, run.MLflowRunID)
	}
}

func fmtMetrics(m map[string]float64) string { return fmtPairs(m, fmtMetric) }

// fmtPairs prints a map as key=value pairs sorted by key.
func fmtPairs[V any](m map[string]V, value func(V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + value(m[k])
	}
	return strings.Join(parts, " ")
}

func newPipelineListCmd() *cobra.Command {
	var asJSON bool
	var max int
	cmd := &cobra.Command{
		Use:   "list [PIPELINE]",
		Short: "List registered pipelines, or one pipeline's runs",
		Example: `  slipway pipeline list
  slipway pipeline list train-credit`,
		Args: cobra.MaximumNArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				ps, err := c.ListPipelines(ctx)
				if err != nil || asJSON {
					return jsonOr(out, asJSON, ps, err)
				}
				t := newTable(out)
				tableRow(t, "NAME", "STEPS", "LAST RUN", "STATUS", "WHEN", "PROJECT")
				for _, p := range ps {
					last, status, when := "-", "-", "-"
					if r := p.LatestRun; r != nil {
						last, status, when = fmt.Sprintf("#%d", r.Number), r.Status, fmtTime(r.CreatedTime)
					}
					tableRow(t, p.Name, fmt.Sprint(len(p.Steps)), last, status, when, p.ProjectDir)
				}
				return t.Flush()
			}
			runs, _, err := c.ListPipelineRuns(ctx, client.ListPipelineRunsRequest{Pipeline: args[0], MaxResults: max})
			if err != nil || asJSON {
				return jsonOr(out, asJSON, runs, err)
			}
			if len(runs) == 0 {
				if _, err := c.GetPipeline(ctx, args[0]); err != nil {
					return err
				}
			}
			t := newTable(out)
			tableRow(t, "RUN", "STATUS", "TRIGGER", "STARTED", "DURATION", "ID")
			for _, r := range runs {
				tableRow(t, fmt.Sprintf("#%d", r.Number), r.Status, r.Trigger.Kind, fmtTime(r.CreatedTime), runDuration(r.StartTime, r.EndTime), r.ID)
			}
			return t.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&max, "max", 50, "most runs to list")
	return cmd
}

func jsonOr(out io.Writer, asJSON bool, v any, err error) error {
	if err != nil {
		return err
	}
	return writeJSON(out, v)
}

func newPipelineShowCmd() *cobra.Command {
	var asJSON, explain bool
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a pipeline run: its trigger, params, and why every step ran or hit the cache",
		Long: `Show a pipeline run. RUN is a run id, PIPELINE#NUMBER, or a pipeline
name for its latest run.`,
		Example: `  slipway pipeline show train-credit
  slipway pipeline show 'train-credit#3' --json`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			run, err := c.GetPipelineRun(ctx, args[0])
			if err != nil || asJSON {
				return jsonOr(cmd.OutOrStdout(), asJSON, run, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s#%d  %s\n", run.Pipeline, run.Number, run.ID)
			fmt.Fprintf(out, "status:    %s\n", run.Status)
			if run.Error != "" {
				fmt.Fprintf(out, "error:     %s\n", run.Error)
			}
			trigger := run.Trigger.Kind
			if len(run.Trigger.Detail) > 0 {
				trigger += " (" + fmtDetail(run.Trigger.Detail) + ")"
			}
			fmt.Fprintf(out, "trigger:   %s\n", trigger)
			if run.CreatedBy != "" {
				fmt.Fprintf(out, "by:        %s\n", run.CreatedBy)
			}
			fmt.Fprintf(out, "queued:    %s\n", fmtTimeLong(run.CreatedTime))
			if len(run.Params) > 0 {
				fmt.Fprintf(out, "params:    %s\n", fmtDetail(run.Params))
			}
			if run.ResumedFrom != "" {
				fmt.Fprintf(out, "resumes:   %s\n", run.ResumedFrom)
			}
			printExplain(out, run, explain)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	cmd.Flags().BoolVar(&explain, "explain", false, "also show each step's cache key and everything that changed since its previous run")
	return cmd
}

func fmtDetail(m map[string]string) string {
	return fmtPairs(m, func(v string) string { return v })
}

func newPipelineLogsCmd() *cobra.Command {
	var followFlag bool
	cmd := &cobra.Command{
		Use:   "logs RUN [STEP]",
		Short: "Print the output of a run's steps (or one step), optionally following it",
		Example: `  slipway pipeline logs train-credit
  slipway pipeline logs 'train-credit#3' train -f`,
		Args: cobra.RangeArgs(1, 2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			run, err := c.GetPipelineRun(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				found := false
				for _, st := range run.Steps {
					found = found || st.Name == args[1]
				}
				if !found && (run.Done() || len(run.Steps) > 0) {
					return errs.NotFoundf("%s#%d has no step %q", run.Pipeline, run.Number, args[1])
				}
			}
			offsets := map[string]int64{}
			for {
				for _, st := range run.Steps {
					if len(args) == 2 && st.Name != args[1] {
						continue
					}
					if err := printRawLog(ctx, c, run.ID, st.Name, len(args) == 1, offsets, out); err != nil {
						return err
					}
				}
				if !followFlag || run.Done() {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(pollEvery):
				}
				if run, err = c.GetPipelineRun(ctx, run.ID); err != nil {
					return err
				}
			}
		}),
	}
	cmd.Flags().BoolVarP(&followFlag, "follow", "f", false, "keep printing until the run ends")
	return cmd
}

// printRawLog prints what is new in a step's log; with prefix, each line
// is prefixed by the step's name.
func printRawLog(ctx context.Context, c *client.Client, runID, step string, prefix bool, offsets map[string]int64, out io.Writer) error {
	for {
		chunk, err := c.ReadStepLog(ctx, runID, step, offsets[step])
		if err != nil {
			return err
		}
		if len(chunk.Data) == 0 {
			return nil
		}
		if prefix {
			for _, line := range strings.SplitAfter(string(chunk.Data), "\n") {
				if line != "" {
					fmt.Fprintf(out, "%s | %s", step, line)
				}
			}
		} else {
			out.Write(chunk.Data)
		}
		offsets[step] = chunk.Next
	}
}

func newPipelineCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a queued or running pipeline run; its steps' processes are ended",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			run, err := c.GetPipelineRun(ctx, args[0])
			if err != nil {
				return err
			}
			if run, err = c.CancelPipelineRun(ctx, run.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancelling %s#%d (%s)\n", run.Pipeline, run.Number, run.Status)
			return nil
		}),
	}
}

func newPipelineResumeCmd() *cobra.Command {
	var o followOptions
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Run a failed or cancelled pipeline run again from its failed steps",
		Long: `Queue a new run with the spec and params of a failed or cancelled run.
Steps that succeeded in it are kept, as long as their outputs in the project
still have the digests it recorded; the rest run (or hit the cache).`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			old, err := c.GetPipelineRun(ctx, args[0])
			if err != nil {
				return err
			}
			run, err := c.ResumePipelineRun(ctx, old.ID)
			if err != nil {
				return err
			}
			return followOrReport(ctx, cmd, c, run, o)
		}),
	}
	cmd.Flags().BoolVar(&o.detach, "detach", false, "queue the run and return without following it")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "do not print the steps' output")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the ended run as JSON")
	cmd.Flags().BoolVar(&o.explain, "explain", false, "end with each step's cache key and what changed")
	return cmd
}
