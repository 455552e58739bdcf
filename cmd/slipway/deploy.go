package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

func newDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deploy",
		Aliases: []string{"deployments"},
		Short:   "Serve registered models: create deployments, canary, promote, roll back, shadow",
		Long: `A deployment is a named endpoint that serves model versions from the
registry, never files: models:/NAME/VERSION, or models:/NAME@ALIAS to follow
an alias (a promotion rolls the deployment to the new version without
dropping a request). Its traffic is split by weight between a stable route
and at most one canary, set by hand (canary, promote) or raised step by
step by a progressive rollout that rolls back by itself; a shadow route
sees a share of the requests and its answers are never returned. Every
change is a revision: rollback restores the one before. The server answers the Open Inference Protocol at
/v2/models/NAME/infer and MLflow's scoring format at
/deployments/NAME/invocations; see docs/serving.md.`,
	}
	return clientGroup(cmd, newDeployCreateCmd(), newDeployListCmd(), newDeployShowCmd(), newDeployCanaryCmd(),
		newDeployChangeCmd("promote", "Send all traffic to the canary", func(ctx context.Context, c *client.Client, name string) (*client.Deployment, error) {
			return c.PromoteDeployment(ctx, name)
		}),
		newDeployChangeCmd("rollback", "Restore the split the deployment had before its last change", func(ctx context.Context, c *client.Client, name string) (*client.Deployment, error) {
			return c.RollbackDeployment(ctx, name)
		}),
		newDeployRolloutCmd(), newDeployShadowCmd(), newDeployDeleteCmd())
}

func newDeployCreateCmd() *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:     "create NAME --model MODEL",
		Short:   "Create a deployment serving one model version (or alias) with all its traffic",
		Example: `  slipway deploy create credit --model models:/credit@production`,
		Args:    cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if model == "" {
				return errs.Invalid("--model is required: models:/NAME/VERSION or models:/NAME@ALIAS")
			}
			d, err := c.CreateDeployment(ctx, args[0], model)
			if err != nil {
				return err
			}
			printDeployment(cmd.OutOrStdout(), d)
			return nil
		}),
	}
	cmd.Flags().StringVar(&model, "model", "", "models:/NAME/VERSION or models:/NAME@ALIAS")
	return cmd
}

func newDeployCanaryCmd() *cobra.Command {
	var model string
	var percent int
	cmd := &cobra.Command{
		Use:     "canary NAME --model MODEL --percent P",
		Short:   "Send P percent of a deployment's traffic to another model version",
		Example: `  slipway deploy canary credit --model models:/credit/4 --percent 10`,
		Args:    cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			d, err := c.CanaryDeployment(ctx, args[0], model, percent)
			if err != nil {
				return err
			}
			printDeployment(cmd.OutOrStdout(), d)
			return nil
		}),
	}
	cmd.Flags().StringVar(&model, "model", "", "the canary: models:/NAME/VERSION or models:/NAME@ALIAS")
	cmd.Flags().IntVar(&percent, "percent", 10, "share of the traffic, 1 to 99")
	return cmd
}

func newDeployShadowCmd() *cobra.Command {
	var model string
	var percent int
	cmd := &cobra.Command{
		Use:   "shadow NAME --model MODEL --percent P",
		Short: "Mirror P percent of the requests to a model version whose answers are never returned (0 stops)",
		Example: `  slipway deploy shadow credit --model models:/credit/5 --percent 50
  slipway deploy shadow credit --percent 0`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			d, err := c.ShadowDeployment(ctx, args[0], model, percent)
			if err != nil {
				return err
			}
			printDeployment(cmd.OutOrStdout(), d)
			return nil
		}),
	}
	cmd.Flags().StringVar(&model, "model", "", "the shadow: models:/NAME/VERSION or models:/NAME@ALIAS")
	cmd.Flags().IntVar(&percent, "percent", 100, "share of the requests mirrored, 1 to 100; 0 stops the shadow")
	return cmd
}

func newDeployChangeCmd(use, short string, change func(context.Context, *client.Client, string) (*client.Deployment, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			d, err := change(ctx, c, args[0])
			if err != nil {
				return err
			}
			printDeployment(cmd.OutOrStdout(), d)
			return nil
		}),
	}
}

func newDeployListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments and what they serve",
		Args:  cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			ds, err := c.ListDeployments(ctx)
			if err != nil || asJSON {
				return jsonOr(cmd.OutOrStdout(), asJSON, ds, err)
			}
			t := newTable(cmd.OutOrStdout())
			tableRow(t, "NAME", "REVISION", "SERVING", "UPDATED")
			for _, d := range ds {
				tableRow(t, d.Name, fmt.Sprint(d.Revision), servingSummary(d), fmtTime(d.UpdatedTime))
			}
			return t.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDeployShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a deployment: its routes, the versions behind them, and its revisions",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			d, err := c.GetDeployment(ctx, args[0])
			if err != nil {
				return err
			}
			revs, err := c.DeploymentRevisions(ctx, args[0])
			if err != nil || asJSON {
				return jsonOr(cmd.OutOrStdout(), asJSON, map[string]any{"deployment": d, "revisions": revs}, err)
			}
			out := cmd.OutOrStdout()
			printDeployment(out, d)
			if ro, err := c.GetRollout(ctx, args[0]); err == nil {
				printRollout(out, ro)
			}
			fmt.Fprintln(out, "revisions:")
			t := newTable(out)
			for _, r := range revs {
				tableRow(t, fmt.Sprintf("  %d", r.Revision), fmtTime(r.CreatedTime), r.CreatedBy, r.Action)
			}
			return t.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDeployDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a deployment; it stops answering at once",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.DeleteDeployment(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted deployment %s\n", args[0])
			return nil
		}),
	}
}

func servingSummary(d client.Deployment) string {
	var parts []string
	for _, s := range d.Serving {
		switch s.Role {
		case "shadow":
			parts = append(parts, fmt.Sprintf("shadow %d%% v%s", s.Weight, s.Version))
		default:
			parts = append(parts, fmt.Sprintf("%d%% v%s", s.Weight, s.Version))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func printDeployment(out io.Writer, d *client.Deployment) {
	fmt.Fprintf(out, "deployment %s (revision %d)\n", d.Name, d.Revision)
	t := newTable(out)
	for _, s := range d.Serving {
		share := fmt.Sprintf("%d%%", s.Weight)
		tableRow(t, "  "+s.Role, share, s.Model, "v"+s.Version, s.Platform)
	}
	t.Flush()
}

func newDeployRolloutCmd() *cobra.Command {
	var spec client.RolloutSpec
	var interval time.Duration
	var cancel, watch, asJSON bool
	cmd := &cobra.Command{
		Use:   "rollout NAME [--model MODEL]",
		Short: "Roll a model version out progressively, rolling back by itself if it fails or slows down",
		Long: `With --model, start a progressive rollout: the model becomes the canary
at the first step's share; the server raises its share step by step, each
step lasting --interval and counting at least --min-requests canary
requests, and promotes it after the last step (100). Whenever the canary's
error rate exceeds the stable version's by more than
--max-error-rate-increase, or its p99 latency exceeds --max-latency-ratio
times the stable version's (plus 1 ms), the server rolls all traffic back
to the stable version and records why.

Without --model, show the deployment's latest rollout; --cancel stops a
running one where it is; --watch follows it until it ends and fails
unless it succeeded.`,
		Example: `  slipway deploy rollout credit --model models:/credit/4 --steps 10,25,50,100 --interval 5m --watch
  slipway deploy rollout credit
  slipway deploy rollout credit --cancel`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, out := args[0], cmd.OutOrStdout()
			var ro *client.Rollout
			var err error
			switch {
			case cancel && spec.Model != "":
				return errs.Invalid("--cancel and --model: choose one")
			case cancel:
				ro, err = c.CancelRollout(ctx, name)
			case spec.Model != "":
				if interval < time.Second {
					return errs.Invalid("--interval %s: each step must last at least 1s", interval)
				}
				spec.IntervalSeconds = interval.Seconds()
				ro, err = c.StartRollout(ctx, name, spec)
			default:
				ro, err = c.GetRollout(ctx, name)
			}
			if err != nil {
				return err
			}
			switch {
			case watch:
				return watchRollout(ctx, c, out, ro)
			case asJSON:
				return writeJSON(out, ro)
			}
			printRollout(out, ro)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&spec.Model, "model", "", "the version to roll out: models:/NAME/VERSION or models:/NAME@ALIAS")
	f.IntSliceVar(&spec.Steps, "steps", nil, "the canary's shares in percent, rising to 100 (default 10,25,50,100)")
	f.DurationVar(&interval, "interval", time.Minute, "how long each step lasts at least")
	f.Int64Var(&spec.MinRequests, "min-requests", 0, "canary requests a step needs before it is judged or passed (default 100)")
	f.Float64Var(&spec.MaxErrorRateIncrease, "max-error-rate-increase", 0, "how far the canary's error rate may exceed the stable version's, as a share (default 0.01)")
	f.Float64Var(&spec.MaxLatencyRatio, "max-latency-ratio", 0, "the canary's p99 latency bound, as a multiple of the stable version's (default 1.5)")
	f.BoolVar(&cancel, "cancel", false, "stop the running rollout where it is")
	f.BoolVar(&watch, "watch", false, "follow the rollout until it ends; exit non-zero unless it succeeded")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printRollout shows a rollout's state and share, what each side
// answered in the current step, and why it stands where it does.
func printRollout(out io.Writer, ro *client.Rollout) {
	printRolloutState(out, ro)
	printRolloutWindow(out, ro)
	if ro.Reason != "" {
		fmt.Fprintf(out, "  %s\n", ro.Reason)
	}
}

func printRolloutState(out io.Writer, ro *client.Rollout) {
	fmt.Fprintf(out, "rollout of %s on %s: %s at %d%% (step %d of %d)\n", ro.Spec.Model, ro.Deployment,
		strings.ReplaceAll(ro.State, "_", " "), ro.Percent, ro.Step+1, len(ro.Spec.Steps))
}

func printRolloutWindow(out io.Writer, ro *client.Rollout) {
	for _, w := range []struct {
		role string
		w    *client.RolloutWindow
	}{{"canary", ro.Canary}, {"stable", ro.Stable}} {
		if w.w != nil {
			fmt.Fprintf(out, "  %s v%s: %d requests, %d errors (%.2f%%), p99 %.2f ms\n", w.role, w.w.Version, w.w.Requests,
				w.w.Errors, 100*w.w.ErrorRate, w.w.P99Millis)
		}
	}
}

// watchRollout follows a rollout until it ends: each step as it begins,
// and what the canary and the stable version answered in it once it is
// over (the last reading before the next step, or the rollback).
func watchRollout(ctx context.Context, c *client.Client, out io.Writer, ro *client.Rollout) error {
	printRolloutState(out, ro)
	seen, reason := ro.Step, ""
	for ro.State == "running" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		next, err := c.GetRollout(ctx, ro.Deployment)
		if err != nil {
			return err
		}
		if next.Step != seen || next.State != "running" {
			printRolloutWindow(out, ro)
			printRolloutState(out, next)
			seen, reason = next.Step, ""
		}
		if next.Reason != reason {
			reason = next.Reason
			fmt.Fprintf(out, "  %s\n", reason)
		}
		ro = next
	}
	if ro.State != "succeeded" {
		return fmt.Errorf("rollout of %s %s: %s", ro.Spec.Model, strings.ReplaceAll(ro.State, "_", " "), ro.Reason)
	}
	return nil
}
