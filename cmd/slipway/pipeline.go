package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pipeline",
		Aliases: []string{"pipelines"},
		Short:   "Validate and run pipelines, and follow, cancel and resume their runs",
	}
	return clientGroup(cmd, newPipelineValidateCmd(), newPipelineRunCmd(), newPipelineListCmd(), newPipelineShowCmd(),
		newPipelineLogsCmd(), newPipelineCancelCmd(), newPipelineResumeCmd(), newPipelineWebhookCmd())
}

func newPipelineValidateCmd() *cobra.Command {
	var overrides []string
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a pipeline spec and print its steps in the order they would run",
		Long: `Check a pipeline spec: unknown keys, bad references, cycles, type
mismatches, paths outside the project and the -p overrides. Every problem is
printed as FILE:LINE:COLUMN: where: what (hint: ...), and the command exits 2;
a valid spec prints its steps level by level (steps of one level can run at
the same time). See docs/pipelines.md for the format.`,
		Example: `  slipway pipeline validate pipeline.yaml
  slipway pipeline validate pipeline.yaml -p lr=0.05 -p max_depth=4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := spec.ParseFile(args[0])
			if err != nil {
				return specError(err)
			}
			set, err := spec.ParseOverrides(overrides)
			if err != nil {
				return specError(err)
			}
			if err := p.ApplyOverrides(set); err != nil {
				return specError(err)
			}
			levels, err := p.Order()
			if err != nil {
				return specError(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: pipeline %q is valid: %d steps, %d params\n", args[0], p.Name, len(p.Steps), len(p.Params))
			for i, level := range levels {
				fmt.Fprintf(out, "  %d. %s\n", i+1, strings.Join(level, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&overrides, "param", "p", nil, "override a param, NAME=VALUE (repeatable)")
	return cmd
}

// specError prints every problem of a spec, one per line, as an invalid
// argument (exit 2).
func specError(err error) error {
	var list spec.ErrorList
	if errors.As(err, &list) && len(list) > 1 {
		return errs.Invalid("%d problems:\n%s", len(list), list.Error())
	}
	return errs.Invalid("%v", err)
}
