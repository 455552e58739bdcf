package main

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

// clientCommands are the commands that talk to a running server.
func clientCommands() []*cobra.Command {
	return []*cobra.Command{newExperimentsCmd(), newRunsCmd(), newDataCmd(), newModelsCmd(), newLineageCmd(), newAuditCmd(), newTrainCmd(), newTuneCmd(), newPredictCmd(), newEvaluateCmd(), newDeployCmd()}
}

// clientGroup sets up a command group of client commands: the --url flag
// (which overrides SLIPWAY_URL and MLFLOW_TRACKING_URI), flag errors coded as
// invalid arguments, and a failing exit for a mistyped subcommand.
func clientGroup(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	urlFlag(cmd.PersistentFlags())
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return errs.Invalid("%v (see %s --help)", err, c.CommandPath())
	})
	// Without a RunE cobra prints help and exits 0 for a mistyped
	// subcommand; a typo should fail.
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return errs.Invalid("%s (see %s --help)", msg, c.CommandPath())
	}
	cmd.AddCommand(subs...)
	return cmd
}

// urlFlag adds --url, which overrides SLIPWAY_URL and MLFLOW_TRACKING_URI.
func urlFlag(f *pflag.FlagSet) {
	f.String("url", "", "Slipway server URL (default $SLIPWAY_URL, else $MLFLOW_TRACKING_URI, else "+client.DefaultURL+")")
}

// remote wraps a command body that needs a client: it connects, and turns
// whatever the body returns into one clear line and the right exit code.
func remote(fn func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, source, err := connect(cmd)
		if err != nil {
			return err
		}
		return explain(fn(cmd.Context(), cmd, args, c), c.URL(), source)
	}
}

// connect builds the client and reports where its URL came from, so that
// a connection error can say what to change.
func connect(cmd *cobra.Command) (*client.Client, string, error) {
	opts := []client.Option{client.WithUserAgent("slipway-cli")}
	if u, _ := cmd.Flags().GetString("url"); u != "" {
		c, err := client.New(u, append([]client.Option{client.WithEnvCredentials()}, opts...)...)
		if err != nil {
			return nil, "", errs.Invalid("--url: %v", err)
		}
		return c, "--url", nil
	}
	c, err := client.FromEnv(opts...)
	if err != nil {
		return nil, "", errs.Invalid("%v", err)
	}
	source := "the default"
	for _, v := range []string{"SLIPWAY_URL", "MLFLOW_TRACKING_URI"} {
		if os.Getenv(v) != "" {
			source = v
			break
		}
	}
	return c, source, nil
}

// explain maps a client error to a coded one: the server's MLflow error
// codes to the matching errs codes (and so exit codes), transport failures
// to a message naming the server tried and how to point elsewhere.
func explain(err error, serverURL, source string) error {
	if err == nil {
		return nil
	}
	var coded *errs.Error
	if errors.As(err, &coded) {
		return err
	}
	var api *client.APIError
	if errors.As(err, &api) {
		code := apiCode(api)
		if code == errs.Internal {
			// The server's own words plus the status, which is often all a
			// proxy's error page says.
			return &errs.Error{Code: code, Message: "server error: " + api.Error(), Err: err}
		}
		return &errs.Error{Code: code, Message: api.Message, Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &errs.Error{Code: errs.Internal, Message: "interrupted", Err: err}
	}
	// Every failure below HTTP (DNS, TCP, TLS) comes wrapped in a
	// *url.Error whose text repeats the request URL; the message names the
	// server instead.
	var ue *url.Error
	if errors.As(err, &ue) {
		const hint = "set SLIPWAY_URL or MLFLOW_TRACKING_URI, or pass --url"
		if errors.Is(err, syscall.ECONNREFUSED) {
			return &errs.Error{Code: errs.Internal, Err: err, Message: fmt.Sprintf(
				"cannot connect to a Slipway server at %s (connection refused; URL from %s): start one with `slipway server`, or %s",
				serverURL, source, hint)}
		}
		return &errs.Error{Code: errs.Internal, Err: err, Message: fmt.Sprintf(
			"cannot reach a Slipway server at %s (%v; URL from %s): %s", serverURL, ue.Err, source, hint)}
	}
	return &errs.Error{Code: errs.Internal, Message: err.Error(), Err: err}
}

func apiCode(e *client.APIError) errs.Code {
	switch e.Code {
	case client.CodeInvalidParameterValue:
		return errs.InvalidArgument
	case client.CodeResourceDoesNotExist:
		return errs.NotFound
	case client.CodeResourceAlreadyExists:
		return errs.AlreadyExists
	case client.CodeInvalidState:
		return errs.FailedPrecondition
	case client.CodeUnauthenticated:
		return errs.Unauthenticated
	case client.CodePermissionDenied:
		return errs.PermissionDenied
	case client.CodeResourceExhausted:
		return errs.ResourceExhausted
	}
	// Responses without an MLflow code (from a proxy in front, say) are
	// judged by their status.
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return errs.Unauthenticated
	case http.StatusForbidden:
		return errs.PermissionDenied
	case http.StatusNotFound:
		if e.Code == "" {
			return errs.NotFound
		}
	case http.StatusBadRequest:
		return errs.InvalidArgument
	}
	return errs.Internal
}

// pageSize asks for one more item than --max allows, so that take can tell
// whether more exist without a second request.
func pageSize(max int) int64 {
	if max == 0 {
		return 0
	}
	return int64(min(max+1, 50000))
}

// take collects up to max items (all when max is 0) and reports whether
// the sequence had more.
func take[T any](seq iter.Seq2[T, error], max int) ([]T, bool, error) {
	var out []T
	for it, err := range seq {
		if err != nil {
			return nil, false, err
		}
		if max > 0 && len(out) == max {
			return out, true, nil
		}
		out = append(out, it)
	}
	return out, false, nil
}

// parseView reads --view.
func parseView(s string) (client.ViewType, error) {
	switch strings.ToLower(s) {
	case "", "active":
		return client.ViewActiveOnly, nil
	case "deleted":
		return client.ViewDeletedOnly, nil
	case "all":
		return client.ViewAll, nil
	}
	return "", errs.Invalid("--view %q: must be active, deleted or all", s)
}

var numericID = regexp.MustCompile(`^[0-9]+$`)

// resolveExperiment finds an experiment by id or, failing that, by name; a
// numeric name is possible, so a digit string that is no id is tried as a
// name too.
func resolveExperiment(ctx context.Context, c *client.Client, ref string) (*client.Experiment, error) {
	if numericID.MatchString(ref) {
		e, err := c.GetExperiment(ctx, ref)
		if err == nil || !client.IsNotFound(err) {
			return e, err
		}
	}
	e, err := c.GetExperimentByName(ctx, ref)
	if client.IsNotFound(err) {
		return nil, errs.NotFoundf("no experiment with id or name %q", ref)
	}
	return e, err
}

// runIDPrefix is what a prefix lookup accepts: at least four characters,
// as git asks of short hashes, so a stray digit does not pick some run.
var runIDPrefix = regexp.MustCompile(`^[A-Za-z0-9-]{4,64}$`)

// resolveRun finds a run by its id or by a unique prefix of it, so the
// short ids `runs list` prints can be pasted back.
func resolveRun(ctx context.Context, c *client.Client, ref string) (*client.Run, error) {
	run, err := c.GetRun(ctx, ref)
	if err == nil || !client.IsNotFound(err) && !isInvalid(err) {
		return run, err
	}
	// Only characters that are neither quotes nor LIKE wildcards reach the
	// filter.
	if !runIDPrefix.MatchString(ref) {
		if err != nil && client.IsNotFound(err) {
			return nil, errs.NotFoundf("no run with id %q", ref)
		}
		return nil, errs.Invalid("%q is not a run id (nor 4 or more of its first characters)", ref)
	}
	exps, err := c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{ViewType: client.ViewAll})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(exps))
	for i, e := range exps {
		ids[i] = e.ID
	}
	page, err := c.SearchRuns(ctx, client.SearchRunsRequest{
		ExperimentIDs: ids, ViewType: client.ViewAll, MaxResults: 3,
		Filter: fmt.Sprintf("attributes.run_id LIKE '%s%%'", ref),
	})
	if err != nil {
		return nil, err
	}
	switch len(page.Runs) {
	case 0:
		return nil, errs.NotFoundf("no run with id or id prefix %q", ref)
	case 1:
		return &page.Runs[0], nil
	}
	return nil, errs.Invalid("run id prefix %q matches several runs (%s, %s, ...); give more characters",
		ref, page.Runs[0].Info.RunID, page.Runs[1].Info.RunID)
}

func isInvalid(err error) bool {
	var e *client.APIError
	return errors.As(err, &e) && e.Code == client.CodeInvalidParameterValue
}
