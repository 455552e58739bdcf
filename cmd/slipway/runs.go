package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

func newRunsCmd() *cobra.Command {
	return clientGroup(&cobra.Command{
		Use:     "runs",
		Aliases: []string{"run"},
		Short:   "List, show and compare runs on a Slipway server",
	}, newRunsListCmd(), newRunsShowCmd(), newRunsCompareCmd())
}

// column is one table column of `runs list`.
type column struct {
	header string
	value  func(client.Run) string
}

func newRunsListCmd() *cobra.Command {
	var (
		experiments, orderBy, columns []string
		filter, view                  string
		max                           int
		asJSON                        bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first, with their metrics and params",
		Example: `  slipway runs list --experiment churn
  slipway runs list --experiment churn --filter "metrics.auc > 0.8" --order-by "metrics.auc DESC"
  slipway runs list --columns metrics.auc,params.lr --max 20`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			vt, err := parseView(view)
			if err != nil {
				return err
			}
			if max < 0 {
				return errs.Invalid("--max %d: must be 0 (no limit) or more", max)
			}
			chosen, err := parseColumns(columns)
			if err != nil {
				return err
			}
			exps, err := selectExperiments(ctx, c, experiments, vt)
			if err != nil {
				return err
			}
			ids := make([]string, len(exps))
			names := make(map[string]string, len(exps))
			for i, e := range exps {
				ids[i], names[e.ID] = e.ID, e.Name
			}
			runs, more, err := take(c.IterRuns(ctx, client.SearchRunsRequest{
				ExperimentIDs: ids, Filter: filter, ViewType: vt, OrderBy: orderBy, MaxResults: pageSize(max),
			}), max)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if more {
				fmt.Fprintf(stderr, "more runs match than --max %d shows; raise --max to see them\n", max)
			}
			if asJSON {
				if runs == nil {
					runs = []client.Run{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"runs": runs})
			}
			if len(runs) == 0 {
				fmt.Fprintln(stderr, "no runs found")
				return nil
			}
			cols := []column{
				{"RUN", func(r client.Run) string { return shortID(r.Info.RunID) }},
				{"NAME", func(r client.Run) string { return truncate(r.Info.RunName, 40) }},
			}
			if len(exps) > 1 {
				cols = append(cols, column{"EXPERIMENT", func(r client.Run) string { return truncate(names[r.Info.ExperimentID], 30) }})
			}
			cols = append(cols,
				column{"STATUS", func(r client.Run) string { return r.Info.Status }},
				column{"STARTED", func(r client.Run) string { return fmtTime(r.Info.StartTime) }},
				column{"DURATION", func(r client.Run) string { return runDuration(r.Info.StartTime, r.Info.EndTime) }},
			)
			if chosen != nil {
				cols = append(cols, chosen...)
			} else {
				fitted, hidden := fitColumns(cols, defaultColumns(runs), runs, termWidth())
				cols = fitted
				if hidden > 0 {
					fmt.Fprintf(stderr, "%d more metric and param columns not shown; pick columns with --columns (e.g. --columns metrics.auc,params.lr)\n", hidden)
				}
			}
			w := newTable(cmd.OutOrStdout())
			row := make([]string, len(cols))
			for i, col := range cols {
				row[i] = col.header
			}
			tableRow(w, row...)
			for _, r := range runs {
				for i, col := range cols {
					row[i] = col.value(r)
				}
				tableRow(w, row...)
			}
			return w.Flush()
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&experiments, "experiment", nil, "experiment id or name (repeatable; default: every experiment)")
	f.StringVar(&filter, "filter", "", `filter in MLflow's grammar, e.g. "metrics.auc > 0.8 AND params.model = 'gbdt'"`)
	f.StringArrayVar(&orderBy, "order-by", nil, `order, e.g. "metrics.auc DESC" (repeatable; default: newest first)`)
	f.IntVar(&max, "max", 100, "show at most N runs (0: all)")
	f.StringVar(&view, "view", "active", "active, deleted or all")
	f.BoolVar(&asJSON, "json", false, "print JSON ({\"runs\": [...]}, MLflow's wire shape)")
	f.StringSliceVar(&columns, "columns", nil, "metric, param and tag columns to show, e.g. metrics.auc,params.lr,tags.team (default: the runs' metrics and params, as many as fit)")
	return cmd
}

// selectExperiments resolves --experiment refs, or takes every experiment
// when none are given (deleted ones too when deleted runs are asked for).
func selectExperiments(ctx context.Context, c *client.Client, refs []string, vt client.ViewType) ([]client.Experiment, error) {
	if len(refs) == 0 {
		ev := client.ViewActiveOnly
		if vt != client.ViewActiveOnly {
			ev = client.ViewAll
		}
		return c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{ViewType: ev})
	}
	out := make([]client.Experiment, 0, len(refs))
	for _, ref := range refs {
		e, err := resolveExperiment(ctx, c, ref)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, nil
}

func parseColumns(specs []string) ([]column, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	var cols []column
	for _, s := range specs {
		s = strings.TrimSpace(s)
		kind, key, ok := strings.Cut(s, ".")
		if !ok || key == "" {
			return nil, errs.Invalid("--columns %q: must be metrics.KEY, params.KEY or tags.KEY", s)
		}
		switch kind {
		case "metrics", "metric":
			cols = append(cols, metricColumn(key))
		case "params", "param":
			cols = append(cols, paramColumn(key))
		case "tags", "tag":
			cols = append(cols, column{"tags." + key, func(r client.Run) string {
				if v, ok := r.Data.Tag(key); ok {
					return truncate(v, 40)
				}
				return "-"
			}})
		default:
			return nil, errs.Invalid("--columns %q: must be metrics.KEY, params.KEY or tags.KEY", s)
		}
	}
	return cols, nil
}

func metricColumn(key string) column {
	return column{"metrics." + key, func(r client.Run) string {
		if m, ok := r.Data.Metric(key); ok {
			return fmtMetric(m.Value)
		}
		return "-"
	}}
}

func paramColumn(key string) column {
	return column{"params." + key, func(r client.Run) string {
		if v, ok := r.Data.Param(key); ok {
			return truncate(v, 30)
		}
		return "-"
	}}
}

// defaultColumns are the listed runs' metrics and params, most telling
// first: keys whose values differ between runs, then keys more runs have,
// metrics before params.
func defaultColumns(runs []client.Run) []column {
	type stat struct {
		metric bool
		key    string
		count  int
		values map[string]bool
	}
	stats := map[string]*stat{}
	add := func(metric bool, key, value string) {
		id := fmt.Sprint(metric, key)
		s := stats[id]
		if s == nil {
			s = &stat{metric: metric, key: key, values: map[string]bool{}}
			stats[id] = s
		}
		s.count++
		s.values[value] = true
	}
	for _, r := range runs {
		for _, m := range r.Data.Metrics {
			add(true, m.Key, fmtMetric(m.Value))
		}
		for _, p := range r.Data.Params {
			add(false, p.Key, p.Value)
		}
	}
	all := make([]*stat, 0, len(stats))
	for _, s := range stats {
		all = append(all, s)
	}
	varies := func(s *stat) bool { return len(s.values) > 1 }
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		switch {
		case varies(a) != varies(b):
			return varies(a)
		case a.count != b.count:
			return a.count > b.count
		case a.metric != b.metric:
			return a.metric
		}
		return a.key < b.key
	})
	cols := make([]column, len(all))
	for i, s := range all {
		if s.metric {
			cols[i] = metricColumn(s.key)
		} else {
			cols[i] = paramColumn(s.key)
		}
	}
	return cols
}

// fitColumns appends extra columns, in order, while the table stays within
// width, and says how many did not fit.
func fitColumns(base, extra []column, runs []client.Run, width int) ([]column, int) {
	const gap = 2 // the table's padding
	used := 0
	for _, c := range base {
		used += columnWidth(c, runs) + gap
	}
	for i, c := range extra {
		w := columnWidth(c, runs) + gap
		if used+w > width {
			return base, len(extra) - i
		}
		used += w
		base = append(base, c)
	}
	return base, 0
}

func columnWidth(c column, runs []client.Run) int {
	w := len([]rune(c.header))
	for _, r := range runs {
		w = max(w, len([]rune(c.value(r))))
	}
	return w
}

func newRunsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: info, params, latest metrics, tags, inputs and artifacts",
		Long: "Show a run: info, params, latest metrics, tags, dataset inputs and its artifact files.\n" +
			"RUN_ID may be a unique prefix, such as the 8 characters `runs list` prints.",
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			run, err := resolveRun(ctx, c, args[0])
			if err != nil {
				return err
			}
			files, truncated, err := walkArtifacts(ctx, c, run.Info.RunID, maxListedArtifacts)
			if err != nil {
				return err
			}
			if asJSON {
				if files == nil {
					files = []client.FileInfo{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"run": run, "artifacts": files})
			}
			exp := run.Info.ExperimentID
			if e, err := c.GetExperiment(ctx, exp); err == nil {
				exp = fmt.Sprintf("%s (%s)", e.Name, e.ID)
			}
			printRun(cmd.OutOrStdout(), run, exp, files, truncated)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON ({\"run\": ..., \"artifacts\": [...]})")
	return cmd
}

// maxListedArtifacts bounds the artifact walk of `runs show`: a run with
// thousands of files would otherwise bury everything else.
const maxListedArtifacts = 200

// walkArtifacts lists a run's artifact files depth first, directories
// before their content, stopping after limit entries.
func walkArtifacts(ctx context.Context, c *client.Client, runID string, limit int) ([]client.FileInfo, bool, error) {
	var out []client.FileInfo
	var walk func(dir string) (bool, error)
	walk = func(dir string) (bool, error) {
		listing, err := c.ListRunArtifacts(ctx, runID, dir)
		if err != nil {
			return false, err
		}
		files := listing.Files
		sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
		for _, f := range files {
			if len(out) == limit {
				return true, nil
			}
			out = append(out, f)
			if f.IsDir {
				if full, err := walk(f.Path); full || err != nil {
					return full, err
				}
			}
		}
		return false, nil
	}
	truncated, err := walk("")
	var api *client.APIError
	if errors.As(err, &api) && api.Code == client.CodeInvalidState {
		// The run's artifacts live where this server does not serve them
		// (an experiment with its own artifact location): show the rest.
		return nil, false, nil
	}
	return out, truncated, err
}

func printRun(w io.Writer, run *client.Run, exp string, files []client.FileInfo, truncated bool) {
	ri := run.Info
	t := newTable(w)
	tableRow(t, "Run:", ri.RunID)
	tableRow(t, "Name:", ri.RunName)
	tableRow(t, "Experiment:", exp)
	tableRow(t, "Status:", ri.Status)
	if ri.LifecycleStage != client.StageActive {
		tableRow(t, "Stage:", ri.LifecycleStage)
	}
	if ri.UserID != "" {
		tableRow(t, "User:", ri.UserID)
	}
	tableRow(t, "Started:", fmtTimeLong(ri.StartTime))
	tableRow(t, "Ended:", fmtTimeLong(ri.EndTime))
	tableRow(t, "Duration:", runDuration(ri.StartTime, ri.EndTime))
	tableRow(t, "Artifact URI:", ri.ArtifactURI)
	t.Flush()

	section := func(title string, header []string, rows [][]string) {
		fmt.Fprintf(w, "\n%s:\n", title)
		if len(rows) == 0 {
			fmt.Fprintln(w, "   (none)")
			return
		}
		t := newTable(w)
		if header != nil {
			tableRow(t, append([]string{" "}, header...)...)
		}
		for _, r := range rows {
			tableRow(t, append([]string{" "}, r...)...)
		}
		t.Flush()
	}

	params := slices.Clone(run.Data.Params)
	sort.Slice(params, func(i, j int) bool { return params[i].Key < params[j].Key })
	var rows [][]string
	for _, p := range params {
		rows = append(rows, []string{p.Key, truncate(p.Value, 100)})
	}
	section("Params", nil, rows)

	metrics := slices.Clone(run.Data.Metrics)
	sort.Slice(metrics, func(i, j int) bool { return metrics[i].Key < metrics[j].Key })
	rows = nil
	for _, m := range metrics {
		rows = append(rows, []string{m.Key, fmtMetric(m.Value), fmt.Sprint(m.Step), fmtTimeLong(m.Timestamp)})
	}
	section("Metrics (latest)", []string{"KEY", "VALUE", "STEP", "LOGGED"}, rows)

	tags := slices.Clone(run.Data.Tags)
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	rows = nil
	for _, tg := range tags {
		if tg.Key == client.TagRunName {
			continue // shown as Name
		}
		rows = append(rows, []string{tg.Key, truncate(tg.Value, 100)})
	}
	section("Tags", nil, rows)

	rows = nil
	for _, in := range run.Inputs.DatasetInputs {
		d := in.Dataset
		var ctxTags []string
		for _, tg := range in.Tags {
			ctxTags = append(ctxTags, tg.Key+"="+tg.Value)
		}
		rows = append(rows, []string{d.Name, d.Digest, d.SourceType, truncate(d.Source, 60), strings.Join(ctxTags, ",")})
	}
	section("Inputs", []string{"DATASET", "DIGEST", "SOURCE TYPE", "SOURCE", "TAGS"}, rows)

	rows = nil
	for _, f := range files {
		if f.IsDir {
			rows = append(rows, []string{f.Path + "/", ""})
		} else {
			rows = append(rows, []string{f.Path, fmtBytes(f.FileSize)})
		}
	}
	if truncated {
		rows = append(rows, []string{fmt.Sprintf("... (first %d entries shown)", len(files)), ""})
	}
	section("Artifacts", nil, rows)
}

// fmtBytes prints a size in binary units, exact below 1 KiB.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// metricValue is a metric for compare's JSON, where NaN and ±Inf must
// still be valid JSON; they are written as MLflow writes them.
type metricValue float64

func (v metricValue) MarshalJSON() ([]byte, error) {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(f)
}

// comparison is compare's JSON: one row per key, values in the order of
// runs, null where a run lacks the key.
type comparison struct {
	Runs    []client.Run     `json:"runs"`
	Params  []comparedParam  `json:"params"`
	Metrics []comparedMetric `json:"metrics"`
}

type comparedParam struct {
	Key     string    `json:"key"`
	Values  []*string `json:"values"`
	Differs bool      `json:"differs"`
}

type comparedMetric struct {
	Key     string         `json:"key"`
	Values  []*metricValue `json:"values"`
	Differs bool           `json:"differs"`
}

func compareRuns(runs []client.Run) comparison {
	cmp := comparison{Runs: runs, Params: []comparedParam{}, Metrics: []comparedMetric{}}
	paramKeys, metricKeys := map[string]bool{}, map[string]bool{}
	for _, r := range runs {
		for _, p := range r.Data.Params {
			paramKeys[p.Key] = true
		}
		for _, m := range r.Data.Metrics {
			metricKeys[m.Key] = true
		}
	}
	for _, k := range sortedKeys(paramKeys) {
		row := comparedParam{Key: k}
		for i, r := range runs {
			var vp *string
			if v, ok := r.Data.Param(k); ok {
				vp = &v
			}
			row.Values = append(row.Values, vp)
			if i > 0 && !equalPtr(vp, row.Values[0], func(a, b string) bool { return a == b }) {
				row.Differs = true
			}
		}
		cmp.Params = append(cmp.Params, row)
	}
	for _, k := range sortedKeys(metricKeys) {
		row := comparedMetric{Key: k}
		for i, r := range runs {
			var vp *metricValue
			if m, ok := r.Data.Metric(k); ok {
				v := metricValue(m.Value)
				vp = &v
			}
			row.Values = append(row.Values, vp)
			if i > 0 && !equalPtr(vp, row.Values[0], func(a, b metricValue) bool {
				return a == b || math.IsNaN(float64(a)) && math.IsNaN(float64(b))
			}) {
				row.Differs = true
			}
		}
		cmp.Metrics = append(cmp.Metrics, row)
	}
	return cmp
}

func equalPtr[T any](a, b *T, eq func(T, T) bool) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return eq(*a, *b)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func newRunsCompareCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compare RUN_ID RUN_ID...",
		Short: "Compare runs side by side; rows marked * differ",
		Long: "Compare the params and latest metrics of runs side by side. Rows marked * differ\n" +
			"between the runs (a value one run lacks counts as different). Run ids may be\n" +
			"unique prefixes, such as the 8 characters `runs list` prints.",
		Args: cobra.MinimumNArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			runs := make([]client.Run, 0, len(args))
			seen := map[string]bool{}
			for _, ref := range args {
				r, err := resolveRun(ctx, c, ref)
				if err != nil {
					return err
				}
				if seen[r.Info.RunID] {
					return errs.Invalid("run %s is named twice", r.Info.RunID)
				}
				seen[r.Info.RunID] = true
				runs = append(runs, *r)
			}
			cmp := compareRuns(runs)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), cmp)
			}
			w := newTable(cmd.OutOrStdout())
			row := func(mark, key string, values []string) { tableRow(w, append([]string{mark, key}, values...)...) }
			each := func(f func(client.Run) string) []string {
				out := make([]string, len(runs))
				for i, r := range runs {
					out[i] = f(r)
				}
				return out
			}
			row("", "run", each(func(r client.Run) string { return shortID(r.Info.RunID) }))
			row("", "name", each(func(r client.Run) string { return truncate(r.Info.RunName, 30) }))
			row("", "status", each(func(r client.Run) string { return r.Info.Status }))
			row("", "started", each(func(r client.Run) string { return fmtTime(r.Info.StartTime) }))
			row("", "duration", each(func(r client.Run) string { return runDuration(r.Info.StartTime, r.Info.EndTime) }))
			differs := 0
			mark := func(d bool) string {
				if d {
					differs++
					return "*"
				}
				return ""
			}
			for _, p := range cmp.Params {
				vals := make([]string, len(p.Values))
				for i, v := range p.Values {
					vals[i] = "-"
					if v != nil {
						vals[i] = truncate(*v, 30)
					}
				}
				row(mark(p.Differs), "params."+p.Key, vals)
			}
			for _, m := range cmp.Metrics {
				vals := make([]string, len(m.Values))
				for i, v := range m.Values {
					vals[i] = "-"
					if v != nil {
						vals[i] = fmtMetric(float64(*v))
					}
				}
				row(mark(m.Differs), "metrics."+m.Key, vals)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d of %d params and metrics differ (marked *)\n", differs, len(cmp.Params)+len(cmp.Metrics))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON ({"runs": [...], "params": [{"key", "values", "differs"}], "metrics": [...]})`)
	return cmd
}
