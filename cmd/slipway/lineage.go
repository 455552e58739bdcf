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

func newLineageCmd() *cobra.Command {
	var (
		direction string
		depth     int
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "lineage REF",
		Short: "Show what a model version, run or data version came from, and what came from it",
		Long: `Show the lineage graph around a model version, a run or a data version:
for a model version, the run it was registered from (code commit, source,
params and metrics), the data versions that run consumed, and the versions
it was copied from; for a data version, the runs that consumed it and every
model version that came from them.

REF is models:/NAME/VERSION or models:/NAME@ALIAS, runs:/RUN_ID (or a
unique prefix of at least 4 characters), data:NAME@vN (data:NAME for the
latest), or deployments:/NAME (the model versions it has served). A run consumed a data version when it logged an MLflow dataset
whose digest is the version's (its first 32 hex digits); see docs/lineage.md.`,
		Example: `  slipway lineage models:/credit/3
  slipway lineage models:/credit@champion --depth 5
  slipway lineage data:credit@v3
  slipway lineage runs:/1f2e3d4c --direction up --json
  slipway lineage deployments:/credit --depth 4`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			kind, id, err := lineageRef(ctx, c, args[0])
			if err != nil {
				return err
			}
			switch direction {
			case "", client.LineageUp, client.LineageDown, client.LineageBoth:
			default:
				return errs.Invalid("--direction %q: must be up, down or both", direction)
			}
			if depth < 0 || depth > 10 {
				return errs.Invalid("--depth %d: must be from 1 to 10 (0: the server's default, 3)", depth)
			}
			g, err := c.Lineage(ctx, kind, id, client.LineageOptions{Direction: direction, Depth: depth})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), g)
			}
			if g.Truncated {
				fmt.Fprintf(cmd.ErrOrStderr(), "the graph is larger than the server returns (%d nodes); showing those, nearest first; lower --depth to see less\n", len(g.Nodes))
			}
			return printLineage(cmd.OutOrStdout(), g)
		}),
	}
	f := cmd.Flags()
	f.String("url", "", "Slipway server URL (default $SLIPWAY_URL, else $MLFLOW_TRACKING_URI, else "+client.DefaultURL+")")
	f.StringVar(&direction, "direction", "", "up (what it came from), down (what came from it) or both (default: up for a model, down for data, both for a run)")
	f.IntVar(&depth, "depth", 0, "follow at most N edges from REF, 1 to 10 (default 3)")
	f.BoolVar(&asJSON, "json", false, `print the graph as JSON ({"root", "nodes": [...], "edges": [...], ...})`)
	return cmd
}

// lineageRef reads a REF argument into the API's kind and id, resolving a
// run id prefix as the runs commands do.
func lineageRef(ctx context.Context, c *client.Client, ref string) (string, string, error) {
	switch {
	case strings.HasPrefix(ref, "models:/"):
		name, version, alias, err := splitModelRef(ref)
		if err != nil {
			return "", "", err
		}
		if alias != "" {
			return client.LineageKindModel, name + "@" + alias, nil
		}
		return client.LineageKindModel, name + "/" + version, nil
	case strings.HasPrefix(ref, "runs:/"):
		// runs:/ID/path, as a model's source reads, names the run too.
		id, _, _ := strings.Cut(strings.TrimPrefix(ref, "runs:/"), "/")
		run, err := resolveRun(ctx, c, id)
		if err != nil {
			return "", "", err
		}
		return client.LineageKindRun, run.Info.RunID, nil
	case strings.HasPrefix(ref, "data:"):
		name, n, err := parseDataRef(strings.TrimPrefix(ref, "data:"))
		if err != nil {
			return "", "", err
		}
		if n == 0 {
			return client.LineageKindData, name, nil
		}
		return client.LineageKindData, fmt.Sprintf("%s@v%d", name, n), nil
	}
	if name, ok := strings.CutPrefix(ref, "deployments:/"); ok && name != "" {
		return client.LineageKindDeployment, name, nil
	}
	return "", "", errs.Invalid("%q: want models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID, data:NAME@vN or deployments:/NAME", ref)
}

// lineageVerbs say how a node printed under another relates to it, by the
// edge's relation and which way the tree is read.
var lineageVerbs = map[bool]map[string]string{
	true: { // up: the printed node is upstream of its parent line
		client.RelationConsumedBy:     "consumed",
		client.RelationRegisteredFrom: "registered from",
		client.RelationDerivedFrom:    "derived from",
		client.RelationProduced:       "produced by",
		client.RelationServedBy:       "served",
	},
	false: {
		client.RelationConsumedBy:     "consumed by",
		client.RelationRegisteredFrom: "registered as",
		client.RelationDerivedFrom:    "copied as",
		client.RelationProduced:       "produced",
		client.RelationServedBy:       "served by",
	},
}

// printLineage draws the graph as a tree from its root, upstream and
// downstream as asked, each node's details once (a node reached again is
// named and marked "see above"), then the summary a reader came for.
func printLineage(w io.Writer, g *client.LineageGraph) error {
	nodes := make(map[string]*client.LineageNode, len(g.Nodes))
	for i := range g.Nodes {
		nodes[g.Nodes[i].String()] = &g.Nodes[i]
	}
	parents := map[string][]client.LineageEdge{}
	children := map[string][]client.LineageEdge{}
	for _, e := range g.Edges {
		parents[e.To.String()] = append(parents[e.To.String()], e)
		children[e.From.String()] = append(children[e.From.String()], e)
	}
	p := &treePrinter{w: w, nodes: nodes, shown: map[string]bool{}}
	root := g.Root.String()
	p.node(root, "", "", "")
	p.shown[root] = true
	up, down := g.Direction != client.LineageDown, g.Direction != client.LineageUp
	for _, way := range []struct {
		on    bool
		up    bool
		edges map[string][]client.LineageEdge
		title string
	}{{up, true, parents, "upstream"}, {down, false, children, "downstream"}} {
		if !way.on {
			continue
		}
		if up && down {
			fmt.Fprintf(w, "%s:\n", way.title)
		}
		if len(way.edges[root]) == 0 {
			fmt.Fprintln(w, "  (nothing recorded)")
		}
		p.tree(root, way.up, way.edges, "")
	}
	summarize(w, g)
	return p.err
}

type treePrinter struct {
	w     io.Writer
	nodes map[string]*client.LineageNode
	shown map[string]bool
	err   error
}

func (p *treePrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// tree prints the nodes linked to ref (its parents going up, its children
// going down) under prefix, recursively.
func (p *treePrinter) tree(ref string, up bool, edges map[string][]client.LineageEdge, prefix string) {
	list := edges[ref]
	for i, e := range list {
		next := e.To
		if up {
			next = e.From
		}
		branch, indent := "├─ ", "│  "
		if i == len(list)-1 {
			branch, indent = "└─ ", "   "
		}
		key := next.String()
		if p.shown[key] {
			p.printf("%s%s%s %s (see above)\n", prefix, branch, lineageVerbs[up][e.Relation], label(next))
			continue
		}
		p.shown[key] = true
		p.node(key, prefix+branch, lineageVerbs[up][e.Relation]+" ", prefix+indent)
		p.tree(key, up, edges, prefix+indent)
	}
}

// node prints one node's line and its detail lines.
func (p *treePrinter) node(key, lead, verb, detail string) {
	n := p.nodes[key]
	if n == nil {
		return
	}
	switch {
	case n.Missing && n.Kind == client.LineageKindRun:
		p.printf("%s%s%s (no longer exists)\n", lead, verb, label(n.LineageRef))
	case n.Missing:
		p.printf("%s%s%s (deleted)\n", lead, verb, label(n.LineageRef))
	case n.Data != nil:
		d := n.Data
		p.printf("%s%s%s  %s, %s, digest %s\n", lead, verb, label(n.LineageRef), count(d.FileCount, "file"), fmtBytes(d.TotalSize), dataDigest(d.Digest))
	case n.Deployment != nil:
		p.printf("%s%s%s  revision %d, updated %s\n", lead, verb, label(n.LineageRef), n.Deployment.Revision, fmtTime(n.Deployment.UpdatedTime))
	case n.Model != nil:
		m := n.Model
		facts := []string{m.Status, "stage " + m.Stage}
		for _, a := range m.Aliases {
			facts = append(facts, "@"+a)
		}
		if m.Digest != "" {
			facts = append(facts, "digest "+shortDigest(m.Digest))
		}
		p.printf("%s%s%s  %s\n", lead, verb, label(n.LineageRef), strings.Join(facts, ", "))
	case n.Run != nil:
		r := n.Run
		name := ""
		if r.Name != "" {
			name = fmt.Sprintf(" (%s)", r.Name)
		}
		p.printf("%s%s%s%s  %s, experiment %s\n", lead, verb, label(n.LineageRef), name, r.Status, r.ExperimentID)
		width := max(termWidth()-len(detail)-12, 20)
		if r.GitCommit != "" || r.SourceName != "" {
			code := []string{}
			if r.GitCommit != "" {
				code = append(code, "commit "+r.GitCommit)
			}
			if r.SourceName != "" {
				code = append(code, r.SourceName)
			}
			p.printf("%s  code:    %s\n", detail, truncate(strings.Join(code, ", "), width))
		}
		if len(r.Params) > 0 {
			parts := make([]string, len(r.Params))
			for i, pr := range r.Params {
				parts[i] = pr.Key + "=" + pr.Value
			}
			p.printf("%s  params:  %s\n", detail, truncate(strings.Join(parts, ", "), width))
		}
		if len(r.Metrics) > 0 {
			parts := make([]string, len(r.Metrics))
			for i, m := range r.Metrics {
				parts[i] = m.Key + "=" + fmtMetric(m.Value)
			}
			p.printf("%s  metrics: %s\n", detail, truncate(strings.Join(parts, ", "), width))
		}
	}
}

// label names a node as the CLI takes it back: models:/NAME/VERSION,
// runs:/ID, data:NAME@vN.
func label(r client.LineageRef) string {
	switch r.Kind {
	case client.LineageKindModel:
		return "models:/" + r.ID
	case client.LineageKindRun:
		return "runs:/" + r.ID
	case client.LineageKindDeployment:
		return "deployments:/" + r.ID
	}
	return r.Kind + ":" + r.ID
}

// summarize ends with the answer to the usual question: for a model
// version, the data behind it; for a data version, every model version
// that came from it.
func summarize(w io.Writer, g *client.LineageGraph) {
	want, noun, title := "", "", ""
	switch {
	case g.Root.Kind == client.LineageKindModel && g.Direction != client.LineageDown:
		want, noun, title = client.LineageKindData, "data version", "behind"
	case g.Root.Kind == client.LineageKindDeployment && g.Direction != client.LineageDown:
		want, noun, title = client.LineageKindData, "data version", "behind"
	case g.Root.Kind == client.LineageKindData && g.Direction != client.LineageUp:
		want, noun, title = client.LineageKindModel, "model version", "trained on"
	default:
		return
	}
	var found []string
	for _, n := range g.Nodes {
		if n.Kind == want && !n.Missing {
			found = append(found, label(n.LineageRef))
		}
	}
	if len(found) == 0 {
		fmt.Fprintf(w, "\nno %ss %s %s within depth %d\n", noun, title, label(g.Root), g.Depth)
		return
	}
	fmt.Fprintf(w, "\n%s %s %s: %s\n", count(int64(len(found)), noun), title, label(g.Root), strings.Join(found, ", "))
}

// count writes n and noun, made plural unless n is 1.
func count(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
