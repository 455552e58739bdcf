// Command slipway is the Slipway binary: the server and the client CLI.
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "slipway:", errs.Message(err))
		os.Exit(exitCode(err))
	}
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
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServerCmd(), newVersionCmd(), newTokensCmd())
	for _, c := range clientCommands() {
		root.AddCommand(c)
	}
	return root
}
