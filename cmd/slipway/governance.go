package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
)

// subGroup is a command group inside a client group: it inherits --url and
// fails on a mistyped subcommand instead of printing help and exiting 0.
func subGroup(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return errs.Invalid("unknown command %q for %q (see %s --help)", args[0], c.CommandPath(), c.CommandPath())
	}
	cmd.AddCommand(subs...)
	return cmd
}

func newModelsPolicyCmd() *cobra.Command {
	return subGroup(&cobra.Command{
		Use:   "policy",
		Short: "Set, show or delete a registered model's promotion policy",
		Long: `A promotion policy lists, per alias and per stage, the gates a version must
pass before it may take that alias or enter that stage: thresholds on its
source run's metrics, tags on the version, approvals by approvers, and no
regression against the current holder. See docs/governance.md.`,
	}, newPolicySetCmd(), newPolicyShowCmd(), newPolicyDeleteCmd())
}

func newPolicySetCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "set NAME -f POLICY.yaml",
		Short: "Replace a model's promotion policy with a YAML file (needs role admin)",
		Example: `  slipway models policy set credit -f credit-policy.yaml
  cat credit-policy.yaml | slipway models policy set credit -f -`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if file == "" {
				return errs.Invalid("-f is required: the policy's YAML file, or - for standard input")
			}
			raw, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			p, err := registry.ParsePolicyYAML(raw)
			if err != nil {
				return errs.Invalid("%s: %s", file, errs.Message(err))
			}
			var cp client.PromotionPolicy
			if err := convert(p, &cp); err != nil {
				return err
			}
			sp, err := c.SetPromotionPolicy(ctx, args[0], cp)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set the promotion policy of %s (%s)\n", sp.Name, policySummary(sp.Policy))
			return nil
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the policy as YAML (- reads standard input)")
	return cmd
}

func readInput(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader = cmd.InOrStdin()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, errs.Invalid("%v", err)
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, registry.MaxPolicyBytes+1))
	if err != nil {
		return nil, errs.Invalid("reading %s: %v", file, err)
	}
	return raw, nil
}

// convert copies between the registry's policy type and the SDK's through
// their shared JSON form.
func convert(from, to any) error {
	raw, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, to)
}

func policySummary(p client.PromotionPolicy) string {
	var parts []string
	for _, a := range keysOf(p.Aliases) {
		parts = append(parts, "alias "+a)
	}
	for _, s := range keysOf(p.Stages) {
		parts = append(parts, "stage "+s)
	}
	return "governs " + strings.Join(parts, ", ")
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newPolicyShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a model's promotion policy as YAML",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			sp, err := c.GetPromotionPolicy(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, sp)
			}
			var p registry.Policy
			if err := convert(sp.Policy, &p); err != nil {
				return err
			}
			fmt.Fprintf(out, "# promotion policy of %s, set by %s at %s\n", sp.Name, sp.UpdatedBy, fmtTimeLong(sp.UpdatedTime))
			enc := yaml.NewEncoder(out)
			enc.SetIndent(2)
			if err := enc.Encode(p); err != nil {
				return err
			}
			return enc.Close()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, with who set the policy and when")
	return cmd
}

func newPolicyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a model's promotion policy, so its promotions are no longer gated (needs role admin)",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.DeletePromotionPolicy(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted the promotion policy of %s\n", args[0])
			return nil
		}),
	}
}

// targetFlags reads --to ALIAS or --stage STAGE.
type targetFlags struct{ alias, stage string }

func (f *targetFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.alias, "to", "", "the alias, e.g. production")
	cmd.Flags().StringVar(&f.stage, "stage", "", "a legacy stage instead of an alias: Staging, Production or Archived")
}

func (f *targetFlags) target() (client.PromotionTarget, error) {
	switch {
	case f.alias != "" && f.stage != "":
		return client.PromotionTarget{}, errs.Invalid("give --to ALIAS or --stage STAGE, not both")
	case f.alias == "" && f.stage == "":
		return client.PromotionTarget{}, errs.Invalid("--to ALIAS (or --stage STAGE) is required")
	}
	return client.PromotionTarget{Alias: f.alias, Stage: f.stage}, nil
}

func targetName(t client.PromotionTarget) string {
	if t.Alias != "" {
		return fmt.Sprintf("alias %q", t.Alias)
	}
	return "stage " + t.Stage
}

func newModelsApproveCmd() *cobra.Command {
	var (
		to      targetFlags
		comment string
	)
	cmd := &cobra.Command{
		Use:   "approve NAME VERSION --to ALIAS",
		Short: "Approve a model version for an alias or stage (needs role approver; not the version's registrant)",
		Example: `  slipway models approve credit 4 --to production --comment "backtest reviewed"
  slipway models approve credit 4 --stage Production`,
		Args: cobra.ExactArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			t, err := to.target()
			if err != nil {
				return err
			}
			a, err := c.ApproveModelVersion(ctx, args[0], args[1], t, comment)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s version %s for %s as %s (%s)\n", args[0], args[1], targetName(a.PromotionTarget), a.Approver, a.ApproverRole)
			return nil
		}),
	}
	to.add(cmd)
	cmd.Flags().StringVar(&comment, "comment", "", "why, for the audit log")
	return cmd
}

func newModelsPromoteCmd() *cobra.Command {
	var (
		to              targetFlags
		archiveExisting bool
		dryRun          bool
		asJSON          bool
		versionFile     string
	)
	cmd := &cobra.Command{
		Use:   "promote NAME (VERSION | --version-file FILE) --to ALIAS",
		Short: "Point an alias (or move a stage) to a model version, if its promotion policy allows",
		Long: `Check a version against the gates of its model's promotion policy for the
alias (or stage), print each gate and whether it is met, and promote the
version when all are. Exits 2 without changing anything when a gate is not
met. The server checks the gates again, atomically with the promotion.

--version-file FILE takes the version from the JSON that
'slipway models register --out FILE' writes ({"name", "version", ...}),
so that a pipeline step can promote what an earlier step registered; its
name must be NAME.`,
		Example: `  slipway models promote credit 4 --to production
  slipway models promote credit 4 --to production --dry-run
  slipway models promote credit 4 --stage Production --archive-existing
  slipway models promote credit --version-file registered.json --to champion`,
		Args: cobra.RangeArgs(1, 2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			t, err := to.target()
			if err != nil {
				return err
			}
			if archiveExisting && t.Stage == "" {
				return errs.Invalid("--archive-existing applies to --stage only")
			}
			name, version, err := promotedVersion(args, versionFile)
			if err != nil {
				return err
			}
			e, err := c.EvaluateGates(ctx, name, version, t)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			promoted := false
			if e.Passed && !dryRun {
				if t.Alias != "" {
					err = c.SetRegisteredModelAlias(ctx, name, t.Alias, version)
				} else {
					_, err = c.TransitionModelVersionStage(ctx, name, version, t.Stage, archiveExisting)
				}
				if err != nil {
					return err
				}
				promoted = true
			}
			if asJSON {
				if err := writeJSON(out, map[string]any{"evaluation": e, "promoted": promoted}); err != nil {
					return err
				}
			} else {
				printGates(out, name, version, e)
			}
			switch {
			case !e.Passed:
				var unmet []string
				for _, g := range e.Gates {
					if !g.Met {
						unmet = append(unmet, g.Detail)
					}
				}
				return errs.New(errs.FailedPrecondition, "cannot promote %s version %s to %s: %s", name, version, targetName(t), strings.Join(unmet, "; "))
			case promoted && !asJSON:
				fmt.Fprintf(out, "promoted %s version %s to %s\n", name, version, targetName(t))
			case dryRun && !asJSON:
				fmt.Fprintf(out, "all gates met; --dry-run: nothing changed\n")
			}
			return nil
		}),
	}
	to.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&archiveExisting, "archive-existing", false, "with --stage, move the stage's other versions to Archived")
	f.BoolVar(&dryRun, "dry-run", false, "only show the gates; change nothing")
	f.BoolVar(&asJSON, "json", false, `print {"evaluation": ..., "promoted": true|false}`)
	f.StringVar(&versionFile, "version-file", "", "take the version from this JSON file, as 'slipway models register --out' writes it, instead of VERSION")
	return cmd
}

// promotedVersion reads the version to promote from the arguments or from
// --version-file.
func promotedVersion(args []string, versionFile string) (name, version string, err error) {
	name = args[0]
	switch {
	case len(args) == 2 && versionFile != "":
		return "", "", errs.Invalid("give VERSION or --version-file, not both")
	case len(args) == 2:
		return name, args[1], nil
	case versionFile == "":
		return "", "", errs.Invalid("VERSION (or --version-file FILE) is required; usage: slipway models promote NAME VERSION --to ALIAS")
	}
	rv, err := readVersionFile(versionFile)
	if err != nil {
		return "", "", err
	}
	if rv.Name != name {
		return "", "", errs.Invalid("--version-file %s registers model %q, not %q", versionFile, rv.Name, name)
	}
	return name, strconv.FormatInt(rv.Version, 10), nil
}

func printGates(out io.Writer, name, version string, e *client.GateEvaluation) {
	if !e.Governed {
		fmt.Fprintf(out, "%s of %s is not governed by a promotion policy\n", targetName(e.PromotionTarget), name)
		return
	}
	fmt.Fprintf(out, "gates for %s version %s to %s:\n", name, version, targetName(e.PromotionTarget))
	w := newTable(out)
	for _, g := range e.Gates {
		verdict := "met"
		if !g.Met {
			verdict = "UNMET"
		}
		tableRow(w, "  "+verdict, g.Gate, g.Detail)
	}
	w.Flush()
}

func newAuditCmd() *cobra.Command {
	var (
		target, action, actor, since, until string
		max                                 int
		asJSON                              bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of registry and data changes, newest first",
		Long: `Show who changed what in the model registry and the data versions, when,
and the state before and after, newest first. The log is append-only.`,
		Example: `  slipway audit --target models:/credit
  slipway audit --action registered_model.set_alias --since 7d
  slipway audit --actor alice --json`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if max < 0 {
				return errs.Invalid("--max %d: must be 0 (no limit) or more", max)
			}
			req := client.ListAuditRequest{Target: target, Action: action, Actor: actor, MaxResults: min(max+1, 1000)}
			if max == 0 {
				req.MaxResults = 1000
			}
			var err error
			now := time.Now()
			if req.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if req.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			entries, more, err := take(c.IterAudit(ctx, req), max)
			if err != nil {
				return err
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "older entries exist than --max %d shows; raise --max to see them\n", max)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if entries == nil {
					entries = []client.AuditEntry{}
				}
				return writeJSON(out, map[string]any{"entries": entries})
			}
			w := newTable(out)
			tableRow(w, "TIME", "ACTOR", "ACTION", "TARGET", "CHANGE")
			for _, e := range entries {
				tableRow(w, fmtTimeSeconds(e.Time), e.Actor, e.Action, e.Target, truncate(change(e.Before, e.After), 100))
			}
			return w.Flush()
		}),
	}
	f := cmd.Flags()
	f.String("url", "", "Slipway server URL (default $SLIPWAY_URL, else $MLFLOW_TRACKING_URI, else "+client.DefaultURL+")")
	f.StringVar(&target, "target", "", "only changes to models:/NAME (and its versions), models:/NAME/VERSION, data:NAME (and its versions) or data:NAME@vN")
	f.StringVar(&action, "action", "", "only actions starting with this, e.g. registered_model.set_alias or model_version.")
	f.StringVar(&actor, "actor", "", "only changes by this user (anonymous: made without a token)")
	f.StringVar(&since, "since", "", "only changes at or after: a duration ago (90m, 24h, 7d), a date (2026-01-02) or an RFC 3339 time")
	f.StringVar(&until, "until", "", "only changes before, in the same forms as --since")
	f.IntVar(&max, "max", 100, "show at most N entries (0: all)")
	f.BoolVar(&asJSON, "json", false, `print JSON ({"entries": [...]}, before and after as recorded)`)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return errs.Invalid("%v (see %s --help)", err, c.CommandPath())
	})
	return cmd
}

// parseWhen reads a --since/--until value as milliseconds since the epoch.
func parseWhen(flag, s string, now time.Time) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n).UnixMilli(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UnixMilli(), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t.UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, errs.Invalid("%s %q: want a duration ago (90m, 24h, 7d), a date (2026-01-02) or an RFC 3339 time", flag, s)
}

func fmtTimeSeconds(ms int64) string {
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}

// change shows a change on one line: the after state of a create, the
// before state of a delete, before -> after otherwise.
func change(before, after json.RawMessage) string {
	b, a := compactJSON(before), compactJSON(after)
	switch {
	case b == "null":
		return a
	case a == "null":
		return "deleted " + b
	}
	return b + " -> " + a
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return string(raw)
}
