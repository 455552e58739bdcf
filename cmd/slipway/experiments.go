package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

func newExperimentsCmd() *cobra.Command {
	return clientGroup(&cobra.Command{
		Use:     "experiments",
		Aliases: []string{"experiment", "exp"},
		Short:   "List, create and delete experiments on a Slipway server",
	}, newExperimentsListCmd(), newExperimentsCreateCmd(), newExperimentsDeleteCmd())
}

func newExperimentsListCmd() *cobra.Command {
	var (
		filter, view string
		orderBy      []string
		max          int
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List experiments",
		Example: `  slipway experiments list
  slipway experiments list --filter "name LIKE 'churn%'" --view all --json`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			vt, err := parseView(view)
			if err != nil {
				return err
			}
			if max < 0 {
				return errs.Invalid("--max %d: must be 0 (no limit) or more", max)
			}
			req := client.SearchExperimentsRequest{Filter: filter, OrderBy: orderBy, ViewType: vt, MaxResults: pageSize(max)}
			exps, more, err := take(c.IterExperiments(ctx, req), max)
			if err != nil {
				return err
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "more experiments exist than --max %d shows; raise --max to see them\n", max)
			}
			if asJSON {
				if exps == nil {
					exps = []client.Experiment{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"experiments": exps})
			}
			// The stage column only says something when deleted ones can show.
			showStage := vt != client.ViewActiveOnly
			row := func(id, name, stage, created, updated, tags string) []string {
				if showStage {
					return []string{id, name, stage, created, updated, tags}
				}
				return []string{id, name, created, updated, tags}
			}
			w := newTable(cmd.OutOrStdout())
			tableRow(w, row("ID", "NAME", "STAGE", "CREATED", "UPDATED", "TAGS")...)
			for _, e := range exps {
				tableRow(w, row(e.ID, e.Name, e.LifecycleStage, fmtTime(e.CreationTime), fmtTime(e.LastUpdateTime), userTags(e.Tags, 60))...)
			}
			return w.Flush()
		}),
	}
	f := cmd.Flags()
	f.StringVar(&filter, "filter", "", `filter in MLflow's grammar, e.g. "name LIKE 'churn%'" or "tags.team = 'risk'"`)
	f.StringArrayVar(&orderBy, "order-by", nil, `order, e.g. "last_update_time DESC" (repeatable)`)
	f.StringVar(&view, "view", "active", "active, deleted or all")
	f.IntVar(&max, "max", 0, "show at most N experiments (0: all)")
	f.BoolVar(&asJSON, "json", false, "print JSON ({\"experiments\": [...]}, MLflow's wire shape)")
	return cmd
}

func newExperimentsCreateCmd() *cobra.Command {
	var tags []string
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create an experiment and print its id",
		Example: `  slipway experiments create churn --tag team=risk`,
		Args:    cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			req := client.CreateExperimentRequest{Name: args[0]}
			for _, t := range tags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return errs.Invalid("--tag %q: must be KEY=VALUE", t)
				}
				req.Tags = append(req.Tags, client.Tag{Key: k, Value: v})
			}
			id, err := c.CreateExperiment(ctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		}),
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag as KEY=VALUE (repeatable)")
	return cmd
}

func newExperimentsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete an experiment and its runs (they can be restored with MLflow's restore API)",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			e, err := resolveExperiment(ctx, c, args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteExperiment(ctx, e.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted experiment %s (%s)\n", e.ID, e.Name)
			return nil
		}),
	}
}

// userTags renders the tags people set, leaving out MLflow's own
// (mlflow.*), which are long and shown elsewhere.
func userTags(tags []client.Tag, width int) string {
	var parts []string
	for _, t := range tags {
		if !strings.HasPrefix(t.Key, "mlflow.") {
			parts = append(parts, t.Key+"="+t.Value)
		}
	}
	sort.Strings(parts)
	return truncate(strings.Join(parts, ","), width)
}
