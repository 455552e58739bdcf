// Command slipway is the Slipway binary: the server and the client CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/internal/errs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "slipway:", message(err))
		os.Exit(exitCode(err))
	}
}

// message is the one line the user sees. Uncoded errors are printed whole:
// the CLI runs on the user's own machine, where detail helps and leaks
// nothing.
func message(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// exitCode maps an error to the CLI's exit status: 2 for what the user can
// fix in the command, 1 for everything else.
func exitCode(err error) int {
	switch errs.CodeOf(err) {
	case errs.InvalidArgument, errs.NotFound, errs.AlreadyExists, errs.FailedPrecondition:
		return 2
	case errs.Unauthenticated, errs.PermissionDenied:
		return 3
	}
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "slipway",
		Short:         "Slipway: the ML lifecycle in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return errs.Invalid("%v (see '%s --help')", err, cmd.CommandPath())
	})
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServerCmd(), newVersionCmd(), newTokensCmd(), newPipelineCmd(), newQuickstartCmd(), newServeCmd())
	root.AddCommand(newSchedulesCmd())
	for _, c := range clientCommands() {
		root.AddCommand(c)
	}
	codeUsageErrors(root)
	return root
}

// codeUsageErrors marks every command's argument-count errors as invalid
// arguments, so they print as themselves and exit 2 like other usage errors.
func codeUsageErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return errs.Invalid("%v; usage: %s", err, c.UseLine())
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		codeUsageErrors(sub)
	}
}
