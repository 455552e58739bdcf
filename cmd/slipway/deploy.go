package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
and at most one canary; a shadow route sees a share of the requests and its
answers are never returned. Every change is a revision: rollback restores
the one before. The server answers the Open Inference Protocol at
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
		newDeployShadowCmd(), newDeployDeleteCmd())
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
