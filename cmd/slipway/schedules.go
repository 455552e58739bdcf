package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

func newSchedulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedules",
		Aliases: []string{"schedule"},
		Short:   "Start pipeline runs on a cron schedule or on new data versions",
		Long: `Schedules start runs of a registered pipeline without a person: on a cron
schedule, or whenever a dataset gets a new version. The server fires them,
once each, however many servers share its database; a server that was down
when a schedule was due fires it once when it comes back, not once per
missed slot. Push webhooks are set with slipway pipeline webhook. See
docs/triggers.md.`,
	}
	return clientGroup(cmd, newSchedulesCreateCmd(), newSchedulesListCmd(), newSchedulesDeleteCmd(),
		newSchedulesEnableCmd("pause", false), newSchedulesEnableCmd("resume", true))
}

func newSchedulesCreateCmd() *cobra.Command {
	var cronText, timezone, dataset string
	var overrides []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create PIPELINE (--cron CRON [--timezone ZONE] | --on-data DATASET)",
		Short: "Run a pipeline on a cron schedule, or on each new version of a dataset",
		Long: `Run a registered pipeline on a cron schedule, or on each new version of a
dataset.

--cron takes five fields (minute hour day-of-month month day-of-week), or
@yearly, @monthly, @weekly, @daily, @hourly, or "@every DURATION" (such as
@every 10m, at least 1s). Times are in --timezone, an IANA zone name such
as Europe/Paris (default UTC); across daylight-saving changes a slot that
does not exist that day is skipped.

--on-data starts a run for every version of DATASET committed from now on
(not for the versions it has already), with the version in the run's
trigger. -p sets params for the runs, checked against the spec now.`,
		Example: `  slipway schedules create train-credit --cron '0 3 * * *' --timezone Europe/Paris
  slipway schedules create train-credit --cron '@every 6h' -p lr=0.05
  slipway schedules create train-credit --on-data credit-raw`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if (cronText == "") == (dataset == "") {
				return errs.Invalid("give --cron CRON for a schedule or --on-data DATASET for runs on new data versions (one of the two)")
			}
			if dataset != "" && timezone != "" {
				return errs.Invalid("--timezone applies to --cron schedules, not to --on-data")
			}
			params, err := spec.ParseOverrides(overrides)
			if err != nil {
				return specError(err)
			}
			s, err := c.CreateSchedule(ctx, args[0], client.ScheduleRequest{Cron: cronText, Timezone: timezone, Dataset: dataset, Params: params})
			if err != nil || asJSON {
				return jsonOr(cmd.OutOrStdout(), asJSON, s, err)
			}
			out := cmd.OutOrStdout()
			if s.Kind == client.ScheduleKindData {
				fmt.Fprintf(out, "created data trigger %s: each new version of dataset %s (now at v%d) starts a run of %s\n",
					s.ID, s.Dataset, s.LastVersion, s.Pipeline)
				return nil
			}
			fmt.Fprintf(out, "created schedule %s: %s runs at %s; next run %s\n", s.ID, s.Pipeline, scheduleWhen(*s), scheduleNext(*s))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&cronText, "cron", "", `cron schedule: five fields ("0 3 * * *"), @daily, @hourly, "@every 10m", ...`)
	f.StringVar(&timezone, "timezone", "", "IANA time zone of the cron schedule, such as Europe/Paris (default UTC)")
	f.StringVar(&dataset, "on-data", "", "run on each new version of this dataset instead of on a schedule")
	f.StringArrayVarP(&overrides, "param", "p", nil, "set a param for the runs, NAME=VALUE (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the schedule as JSON")
	return cmd
}

func newSchedulesListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [PIPELINE]",
		Short: "List schedules, data triggers and webhooks, of all pipelines or of one",
		Example: `  slipway schedules list
  slipway schedules list train-credit --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			pipeline := ""
			if len(args) == 1 {
				pipeline = args[0]
			}
			list, err := c.ListSchedules(ctx, pipeline)
			if err != nil || asJSON {
				if list == nil {
					list = []client.Schedule{}
				}
				return jsonOr(cmd.OutOrStdout(), asJSON, map[string]any{"schedules": list}, err)
			}
			return printSchedules(cmd.OutOrStdout(), list)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON ({"schedules": [...]})`)
	return cmd
}

func printSchedules(out io.Writer, list []client.Schedule) error {
	if len(list) == 0 {
		fmt.Fprintln(out, "no schedules (create one with slipway schedules create PIPELINE --cron CRON)")
		return nil
	}
	t := newTable(out)
	tableRow(t, "ID", "PIPELINE", "KIND", "WHEN", "STATE", "NEXT", "LAST FIRED")
	var failed []client.Schedule
	for _, s := range list {
		state := "active"
		if !s.Enabled {
			state = "paused"
		}
		next := "-"
		if s.Kind == client.ScheduleKindCron && s.Enabled {
			next = scheduleNext(s)
		}
		tableRow(t, shortID(s.ID), s.Pipeline, s.Kind, scheduleWhen(s), state, next, fmtTime(s.LastFired))
		if s.LastError != "" {
			failed = append(failed, s)
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, s := range failed {
		fmt.Fprintf(out, "%s: its last firing queued no run: %s\n", shortID(s.ID), s.LastError)
	}
	return nil
}

// scheduleWhen says when a schedule fires, in a few words.
func scheduleWhen(s client.Schedule) string {
	switch s.Kind {
	case client.ScheduleKindCron:
		tz := s.Timezone
		if tz == "" {
			tz = "UTC"
		}
		return s.Cron + " " + tz
	case client.ScheduleKindData:
		return "new versions of " + s.Dataset + " (after v" + strconv.FormatInt(s.LastVersion, 10) + ")"
	case client.ScheduleKindWebhook:
		if s.Branch != "" {
			return "push to " + s.Branch
		}
		return "push"
	}
	return "-"
}

// scheduleNext shows a schedule's next firing in its own time zone.
func scheduleNext(s client.Schedule) string {
	if s.NextTime == 0 {
		return "never"
	}
	t := time.UnixMilli(s.NextTime)
	if loc, err := time.LoadLocation(s.Timezone); err == nil && s.Timezone != "" {
		t = t.In(loc)
	} else {
		t = t.UTC()
	}
	return t.Format("2006-01-02 15:04 MST")
}

func newSchedulesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a schedule (deleting a webhook also removes its secret)",
		Long: `Delete a schedule, data trigger or webhook. ID may be a unique prefix,
such as the 8 characters slipway schedules list prints. Deleting a
pipeline's webhook also removes its secret, so pushes are refused.`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			s, err := findSchedule(ctx, c, args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteSchedule(ctx, s.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s of pipeline %s\n", s.Kind, s.ID, s.Pipeline)
			return nil
		}),
	}
}

func newSchedulesEnableCmd(verb string, enabled bool) *cobra.Command {
	short := "Pause a schedule: it fires no runs until resumed"
	long := `Pause a schedule, data trigger or webhook: it starts no runs until it is
resumed. ID may be a unique prefix.`
	if enabled {
		short = "Resume a paused schedule, from now on"
		long = `Resume a paused schedule, data trigger or webhook. A schedule next fires
at its first slot after now and a data trigger on the first version
committed after now: what came while it was paused starts no run. ID may be
a unique prefix.`
	}
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			s, err := findSchedule(ctx, c, args[0])
			if err != nil {
				return err
			}
			s, err = c.SetScheduleEnabled(ctx, s.ID, enabled)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !enabled {
				fmt.Fprintf(out, "paused %s %s of pipeline %s\n", s.Kind, s.ID, s.Pipeline)
				return nil
			}
			fmt.Fprintf(out, "resumed %s %s of pipeline %s", s.Kind, s.ID, s.Pipeline)
			if s.Kind == client.ScheduleKindCron {
				fmt.Fprintf(out, "; next run %s", scheduleNext(*s))
			}
			fmt.Fprintln(out)
			return nil
		}),
	}
}

// findSchedule takes a schedule id or a unique prefix of one.
func findSchedule(ctx context.Context, c *client.Client, ref string) (*client.Schedule, error) {
	s, err := c.GetSchedule(ctx, ref)
	if err == nil || !client.IsNotFound(err) || len(ref) < 4 {
		return s, err
	}
	list, lerr := c.ListSchedules(ctx, "")
	if lerr != nil {
		return nil, err
	}
	var found []client.Schedule
	for _, x := range list {
		if strings.HasPrefix(x.ID, ref) {
			found = append(found, x)
		}
	}
	switch len(found) {
	case 0:
		return nil, err
	case 1:
		return &found[0], nil
	}
	return nil, errs.Invalid("schedule id prefix %q matches %d schedules; give more characters", ref, len(found))
}

// newPipelineWebhookCmd is `slipway pipeline webhook`: the secret comes
// from an environment variable, never from the command line, where other
// users of the machine and shell history would see it.
func newPipelineWebhookCmd() *cobra.Command {
	var secretEnv, branch string
	var remove bool
	cmd := &cobra.Command{
		Use:   "webhook PIPELINE --secret-env VAR [--branch GLOB]",
		Short: "Let GitHub or GitLab pushes start runs of a pipeline",
		Long: `Set the secret that push webhooks for PIPELINE must be signed with, read
from the environment variable named by --secret-env (at least 16
characters; openssl rand -hex 32 makes a good one). Then add a webhook to
the repository:

  GitHub: Settings > Webhooks: Payload URL the URL printed below, content
          type application/json, Secret the same secret, event "push".
  GitLab: Settings > Webhooks: URL the URL printed below, Secret token the
          same secret (or a signing token whsec_..., set here too), trigger
          "Push events".

Each signed push queues a run that records the repository, ref, commit and
pusher; a delivery with a missing or wrong signature is refused with 401.
--branch only lets pushes to matching branches start runs (a glob such as
main or release/*). --remove turns webhooks off.`,
		Example: `  export HOOK_SECRET=$(openssl rand -hex 32)
  slipway pipeline webhook train-credit --secret-env HOOK_SECRET --branch main
  slipway pipeline webhook train-credit --remove`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			secret := ""
			switch {
			case remove && (secretEnv != "" || branch != ""):
				return errs.Invalid("--remove takes no --secret-env or --branch")
			case !remove && secretEnv == "":
				return errs.Invalid("--secret-env VAR is required: the name of an environment variable that holds the secret (it is never read from the command line)")
			case !remove:
				secret = os.Getenv(secretEnv)
				if secret == "" {
					return errs.Invalid("--secret-env %s: the environment variable is not set or empty", secretEnv)
				}
			}
			hook, err := c.SetPipelineWebhook(ctx, args[0], secret, branch)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if remove {
				fmt.Fprintf(out, "webhooks of pipeline %s are off: pushes are refused\n", hook.Pipeline)
				return nil
			}
			fmt.Fprintf(out, "pipeline %s takes push webhooks at\n  %s\n", hook.Pipeline, c.WebhookURL(hook.Pipeline))
			if branch != "" {
				fmt.Fprintf(out, "only pushes to branches matching %s start runs\n", branch)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&secretEnv, "secret-env", "", "name of the environment variable that holds the webhook secret")
	f.StringVar(&branch, "branch", "", "only pushes to branches matching this glob start runs (main, release/*)")
	f.BoolVar(&remove, "remove", false, "turn the pipeline's webhooks off (removes the secret)")
	return cmd
}
