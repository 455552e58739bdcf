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

func newModelsCmd() *cobra.Command {
	return clientGroup(&cobra.Command{
		Use:     "models",
		Aliases: []string{"model"},
		Short:   "Register, list, show, verify, gate and promote registered models on a Slipway server",
	}, newModelsListCmd(), newModelsShowCmd(), newModelsVersionsCmd(), newModelsVerifyCmd(),
		newModelsPolicyCmd(), newModelsApproveCmd(), newModelsPromoteCmd(), newModelsRegisterCmd(), newModelsGateCmd())
}

// nameFilter quotes s for a registry filter, doubling single quotes.
func nameFilter(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func newModelsListCmd() *cobra.Command {
	var (
		filter  string
		orderBy []string
		max     int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered models",
		Example: `  slipway models list
  slipway models list --filter "tags.team = 'risk'" --json`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if max < 0 {
				return errs.Invalid("--max %d: must be 0 (no limit) or more", max)
			}
			req := client.SearchRegisteredModelsRequest{Filter: filter, OrderBy: orderBy, MaxResults: min(pageSize(max), 1000)}
			models, more, err := take(c.IterRegisteredModels(ctx, req), max)
			if err != nil {
				return err
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "more models exist than --max %d shows; raise --max to see them\n", max)
			}
			if asJSON {
				if models == nil {
					models = []client.RegisteredModel{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"registered_models": models})
			}
			w := newTable(cmd.OutOrStdout())
			tableRow(w, "NAME", "LATEST", "STAGES", "ALIASES", "UPDATED", "TAGS")
			for _, m := range models {
				latest := "-"
				var stages []string
				for _, v := range m.LatestVersions {
					if latest == "-" || versionLess(latest, v.Version) {
						latest = v.Version
					}
					if v.CurrentStage != client.StageNone {
						stages = append(stages, v.CurrentStage+"="+v.Version)
					}
				}
				tableRow(w, m.Name, latest, orDash(strings.Join(stages, ",")), orDash(aliasList(m.Aliases)), fmtTime(m.LastUpdatedTimestamp), userTags(m.Tags, 50))
			}
			return w.Flush()
		}),
	}
	f := cmd.Flags()
	f.StringVar(&filter, "filter", "", `filter in MLflow's registry grammar, e.g. "name LIKE 'churn%'" or "tags.team = 'risk'"`)
	f.StringArrayVar(&orderBy, "order-by", nil, `order, e.g. "last_updated_timestamp DESC" (repeatable)`)
	f.IntVar(&max, "max", 0, "show at most N models (0: all)")
	f.BoolVar(&asJSON, "json", false, `print JSON ({"registered_models": [...]}, MLflow's wire shape)`)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func aliasList(as []client.ModelAlias) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Alias + "=" + a.Version
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// versionLess compares decimal version strings numerically.
func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func newModelsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a registered model: description, tags, aliases and latest versions",
		Args:  cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			m, err := c.GetRegisteredModel(ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"registered_model": m})
			}
			out := cmd.OutOrStdout()
			w := newTable(out)
			tableRow(w, "Name:", m.Name)
			tableRow(w, "Description:", orDash(m.Description))
			tableRow(w, "Created:", fmtTimeLong(m.CreationTimestamp))
			tableRow(w, "Updated:", fmtTimeLong(m.LastUpdatedTimestamp))
			tableRow(w, "Aliases:", orDash(aliasList(m.Aliases)))
			tableRow(w, "Tags:", orDash(userTags(m.Tags, 200)))
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(out)
			fmt.Fprintln(out, "Latest versions:")
			return versionTable(out, m.LatestVersions)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (MLflow's wire shape)")
	return cmd
}

func versionTable(out interface{ Write([]byte) (int, error) }, vs []client.ModelVersion) error {
	w := newTable(out)
	tableRow(w, "VERSION", "STAGE", "STATUS", "ALIASES", "CREATED", "RUN", "SOURCE")
	for _, v := range vs {
		tableRow(w, v.Version, v.CurrentStage, v.Status, orDash(strings.Join(v.Aliases, ",")), fmtTime(v.CreationTimestamp), orDash(shortID(v.RunID)), truncate(v.Source, 60))
	}
	return w.Flush()
}

func newModelsVersionsCmd() *cobra.Command {
	var (
		filter string
		max    int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "versions NAME",
		Short:   "List the versions of a registered model, newest first",
		Example: `  slipway models versions churn --filter "tags.validation = 'passed'"`,
		Args:    cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if max < 0 {
				return errs.Invalid("--max %d: must be 0 (no limit) or more", max)
			}
			// A missing model would otherwise list as empty.
			if _, err := c.GetRegisteredModel(ctx, args[0]); err != nil {
				return err
			}
			f := "name = " + nameFilter(args[0])
			if filter != "" {
				f += " AND " + filter
			}
			req := client.SearchModelVersionsRequest{Filter: f, OrderBy: []string{"version_number DESC"}, MaxResults: pageSize(max)}
			vs, more, err := take(c.IterModelVersions(ctx, req), max)
			if err != nil {
				return err
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "more versions exist than --max %d shows; raise --max to see them\n", max)
			}
			if asJSON {
				if vs == nil {
					vs = []client.ModelVersion{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"model_versions": vs})
			}
			return versionTable(cmd.OutOrStdout(), vs)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&filter, "filter", "", `more conditions, e.g. "tags.validation = 'passed'" or "run_id = '...'"`)
	f.IntVar(&max, "max", 0, "show at most N versions (0: all)")
	f.BoolVar(&asJSON, "json", false, `print JSON ({"model_versions": [...]})`)
	return cmd
}

// splitModelRef reads NAME/VERSION (the version after the last slash, so
// names may contain slashes) or NAME@ALIAS.
func splitModelRef(ref string) (name, version, alias string, err error) {
	ref = strings.TrimPrefix(ref, "models:/")
	if i := strings.LastIndexByte(ref, '/'); i > 0 && numericID.MatchString(ref[i+1:]) {
		return ref[:i], ref[i+1:], "", nil
	}
	if i := strings.LastIndexByte(ref, '@'); i > 0 && i < len(ref)-1 {
		return ref[:i], "", ref[i+1:], nil
	}
	return "", "", "", errs.Invalid("%q: want NAME/VERSION (e.g. churn/3) or NAME@ALIAS", ref)
}

func newModelsVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify NAME/VERSION",
		Short: "Check a model version's stored files against the manifest written when it was registered",
		Long: `Check a model version's stored files against the SHA-256 manifest written
when it was registered. Prints each changed, missing or unexpected file and
exits 1 if there is any; exits 0 when every file matches.`,
		Example: `  slipway models verify churn/3
  slipway models verify churn@champion`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, version, alias, err := splitModelRef(args[0])
			if err != nil {
				return err
			}
			if alias != "" {
				v, err := c.GetModelVersionByAlias(ctx, name, alias)
				if err != nil {
					return err
				}
				version = v.Version
			}
			rep, err := c.VerifyModelVersion(ctx, name, version)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				for _, ch := range rep.Changed {
					fmt.Fprintf(out, "changed     %s (sha256 %s, %d bytes; registered %s, %d bytes)\n", ch.Path, shortDigest(ch.SHA256), ch.Size, shortDigest(ch.RegisteredSHA256), ch.RegisteredSize)
				}
				for _, p := range rep.Missing {
					fmt.Fprintf(out, "missing     %s\n", p)
				}
				for _, p := range rep.Extra {
					fmt.Fprintf(out, "unexpected  %s\n", p)
				}
				if !rep.ManifestFileIntact {
					fmt.Fprintf(out, "changed     MANIFEST.json (the database's copy still holds)\n")
				}
			}
			if !rep.OK {
				return &errs.Error{Code: errs.Internal, Message: fmt.Sprintf("model %s version %s does not match its manifest: its files were changed after registration", rep.Name, rep.Version)}
			}
			if !asJSON {
				fmt.Fprintf(out, "ok: model %s version %s, %d files match manifest %s\n", rep.Name, rep.Version, rep.Files, shortDigest(rep.Digest))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
