package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/server"
)

// quickstartFiles are the quickstart's project: its pipeline, the model's
// promotion policy and the data (docs/quickstart.md says where the data
// comes from and under which licence).
//
//go:embed quickstart/pipeline.yaml quickstart/policy.yaml quickstart/cancer.csv
var quickstartFiles embed.FS

// The quickstart's data: the rows of cancer.csv in a fixed shuffled order.
// The first v1Rows are the first data version, the first v2Rows the
// second ("new labelled cases arrived"), and the rest a holdout set no
// version contains.
const (
	quickstartModel   = "cancer"
	quickstartDataset = "cancer"
	v1Rows            = 300
	v2Rows            = 455
)

// quickstartMarker marks a folder as the quickstart's, so that running it
// again may replace it and nothing else is ever deleted.
const quickstartMarker = ".slipway-quickstart"

func newQuickstartCmd() *cobra.Command {
	var dir string
	var port int
	var noServe bool
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run the whole lifecycle on a small real dataset, then leave the server running",
		Long: `Start a Slipway server on the embedded default (SQLite and a local folder)
and run the model lifecycle end to end on a real public dataset (the
Wisconsin breast cancer data, docs/quickstart.md):

  1. add the first version of the data;
  2. run a pipeline: validate the data against the first version's profile,
     train a gradient-boosted model, evaluate it on a holdout set, gate it,
     register it, promote it to staging and then, under the model's
     promotion policy, to production;
  3. deploy the production model and send it the holdout cases as
     Open Inference Protocol requests, their true labels following as
     feedback;
  4. add a second version with more labelled rows and run the pipeline
     again: the holdout check comes from the cache, and a retrained
     challenger must beat the production model on the same holdout to
     replace it;
  5. roll the new production version out to the deployment as a canary
     whose share rises step by step under traffic;
  6. print the runs, metrics, model versions and lineage, and leave the
     server running at its URL (--no-serve stops it and exits).

Everything lands in --dir (./slipway-quickstart): the server's data, and
the pipeline project you can edit and run again with
slipway pipeline run DIR/project/pipeline.yaml.`,
		Example: `  slipway quickstart
  slipway quickstart --no-serve --dir /tmp/qs --port 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQuickstart(cmd.Context(), cmd.OutOrStdout(), dir, port, noServe)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "slipway-quickstart", "folder for the server's data and the pipeline project; replaced if a quickstart made it")
	cmd.Flags().IntVar(&port, "port", 5000, "port for the server (0: any free port; a busy port falls back to a free one)")
	cmd.Flags().BoolVar(&noServe, "no-serve", false, "stop the server and exit once the lifecycle has run")
	return cmd
}

func runQuickstart(ctx context.Context, out io.Writer, dir string, port int, noServe bool) error {
	start := time.Now()
	dir, err := prepareQuickstartDir(dir)
	if err != nil {
		return err
	}
	project := filepath.Join(dir, "project")
	if err := writeQuickstartProject(dir, project); err != nil {
		return err
	}

	// The server runs in this process; its log goes to a file so the
	// story stays readable.
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cfg := server.Defaults()
	cfg.DataDir = filepath.Join(dir, "server")
	cfg.Port = freePort(cfg.Host, port)
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- server.Run(srvCtx, cfg, server.NewLogger(logFile, cfg), ready) }()
	var url string
	select {
	case addr := <-ready:
		url = "http://" + addr
	case err := <-served:
		return fmt.Errorf("starting the server: %w", err)
	}
	stop := func() error {
		stopServer()
		return <-served
	}
	// Steps and the commands below find the server as users do.
	os.Setenv("SLIPWAY_URL", url)
	os.Setenv("MLFLOW_TRACKING_URI", url)
	c, err := client.New(url, client.WithUserAgent("slipway-quickstart"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Slipway quickstart: server at %s, files in %s\n\n", url, dir)

	qs := &quickstart{ctx: ctx, out: out, c: c, dir: dir, project: project}
	if err := qs.lifecycle(); err != nil {
		stop()
		return err
	}
	fmt.Fprintf(out, "\nDone in %s.\n", fmtDuration(time.Since(start)))
	if noServe {
		return stop()
	}
	fmt.Fprintf(out, "\nThe server keeps running at %s (Ctrl-C stops it). Try:\n", url)
	fmt.Fprintf(out, "  export SLIPWAY_URL=%s\n", url)
	fmt.Fprintf(out, "  slipway pipeline show quickstart\n")
	fmt.Fprintf(out, "  slipway lineage models:/%s@production\n", quickstartModel)
	fmt.Fprintf(out, "  slipway pipeline run %s -p max_depth=4\n", filepath.Join(project, "pipeline.yaml"))
	fmt.Fprintf(out, "  slipway deploy show %s\n", quickstartModel)
	fmt.Fprintf(out, "  curl -s %s/v2/models/%s\n", url, quickstartModel)
	fmt.Fprintf(out, "  curl -s %s/metrics | grep slipway_deployment_requests_total\n", url)
	fmt.Fprintf(out, "  MLFLOW_TRACKING_URI=%s python -c 'import mlflow; print(mlflow.search_runs(search_all_experiments=True))'\n", url)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping the server")
		return stop()
	case err := <-served:
		return err
	}
}

// prepareQuickstartDir makes dir empty for the quickstart: a new folder,
// an empty one, or one an earlier quickstart made (which is replaced).
func prepareQuickstartDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", errs.Invalid("--dir %s: %v", dir, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(abs, quickstartMarker)); err != nil {
			return "", errs.Invalid("--dir %s: the folder is not empty and no quickstart made it; give an empty or new folder", dir)
		}
		if err := os.RemoveAll(abs); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	return abs, os.WriteFile(filepath.Join(abs, quickstartMarker), []byte("made by slipway quickstart; running it again replaces this folder\n"), 0o644)
}

// writeQuickstartProject writes the pipeline project (spec, policy and
// holdout set) and the two data versions' folders.
func writeQuickstartProject(dir, project string) error {
	data, err := quickstartFiles.ReadFile("quickstart/cancer.csv")
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	header, rows := lines[0], lines[1:]
	files := map[string][]string{
		filepath.Join(dir, "data", "v1", "cancer.csv"): rows[:v1Rows],
		filepath.Join(dir, "data", "v2", "cancer.csv"): rows[:v2Rows],
		filepath.Join(project, "holdout.csv"):          rows[v2Rows:],
	}
	for path, part := range files {
		if err := writeFileAll(path, []byte(header+strings.Join(part, "")+"\n")); err != nil {
			return err
		}
	}
	for _, name := range []string{"pipeline.yaml", "policy.yaml"} {
		b, err := quickstartFiles.ReadFile("quickstart/" + name)
		if err != nil {
			return err
		}
		if err := writeFileAll(filepath.Join(project, name), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAll(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, bytes.TrimSuffix(data, []byte("\n\n")), 0o644)
}

// freePort is port if it can be bound on host, else any free port.
func freePort(host string, port int) int {
	if port == 0 {
		return 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return 0
	}
	ln.Close()
	return port
}

// quickstart tells the lifecycle's story against a running server.
type quickstart struct {
	ctx          context.Context
	out          io.Writer
	c            *client.Client
	dir, project string
	runs         []*client.PipelineRun
}

// slipway runs a slipway command in this process, as a user would type
// it, returning its output.
func (q *quickstart) slipway(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	root := newRoot(&stdout, &stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(q.ctx); err != nil {
		return stdout.String(), fmt.Errorf("slipway %s: %s", strings.Join(args, " "), message(err))
	}
	return stdout.String(), nil
}

func (q *quickstart) lifecycle() error {
	out := q.out
	fmt.Fprintf(out, "1. Data: the first %d labelled cases become data:%s@v1\n", v1Rows, quickstartDataset)
	if _, err := q.slipway("data", "add", quickstartDataset, filepath.Join(q.dir, "data", "v1"), "-m", "first labelled cases"); err != nil {
		return err
	}
	// The model's promotion policy is in place before anything can be
	// promoted: production is governed from the first version.
	if _, err := q.c.CreateRegisteredModel(q.ctx, quickstartModel, "Classifies breast tumour samples as malignant (1) or benign (0)."); err != nil {
		return err
	}
	if _, err := q.slipway("models", "policy", "set", quickstartModel, "-f", filepath.Join(q.project, "policy.yaml")); err != nil {
		return err
	}

	fmt.Fprintf(out, "\n2. Pipeline run: validate -> train -> evaluate -> gate -> register -> staging -> production\n")
	if err := q.runPipeline(); err != nil {
		return err
	}
	if err := q.deploy(); err != nil {
		return err
	}

	fmt.Fprintf(out, "\n4. New data: %d more labelled cases arrive as data:%s@v2; the same pipeline runs again\n", v2Rows-v1Rows, quickstartDataset)
	if _, err := q.slipway("data", "add", quickstartDataset, filepath.Join(q.dir, "data", "v2"), "-m", "more labelled cases"); err != nil {
		return err
	}
	if err := q.runPipeline(); err != nil {
		return err
	}
	if err := q.canary(); err != nil {
		return err
	}
	return q.summary()
}

// runPipeline runs the project's pipeline and prints its steps as they
// end. A run the gate stops is a result, not an error: the champion
// stays.
func (q *quickstart) runPipeline() error {
	spec := filepath.Join(q.project, "pipeline.yaml")
	p, err := register(q.ctx, q.c, spec, nil)
	if err != nil {
		return err
	}
	run, err := q.c.StartPipelineRun(q.ctx, p.Name, nil, false)
	if err != nil {
		return err
	}
	ended, err := follow(q.ctx, q.c, run.ID, q.out, false)
	if err != nil {
		return err
	}
	q.runs = append(q.runs, ended)
	hits := 0
	for _, st := range ended.Steps {
		if st.Status == "cached" {
			hits++
		}
	}
	fmt.Fprintf(q.out, "   %s#%d %s in %s; %d of %d steps from the cache\n", ended.Pipeline, ended.Number, ended.Status,
		runDuration(ended.StartTime, ended.EndTime), hits, len(ended.Steps))
	if len(q.runs) > 1 {
		// Why each step ran again: the cache's explanation.
		for _, st := range ended.Steps {
			if st.Result != nil && st.Status == "succeeded" {
				fmt.Fprintf(q.out, "     %s ran: %s\n", st.Name, st.Result.Decision.Reason)
			}
		}
	}
	for _, st := range ended.Steps {
		if st.Status == "failed" {
			q.printLogTail(ended.ID, st.Name, 15)
		}
	}
	if ended.Status != client.PipelineSucceeded && stepStatus(ended, "gate") != "failed" {
		return runOutcome(ended)
	}
	return nil
}

// printLogTail prints the last lines of a step's log, which say why it
// failed.
func (q *quickstart) printLogTail(runID, step string, n int) {
	var log []byte
	for offset := int64(0); ; {
		chunk, err := q.c.ReadStepLog(q.ctx, runID, step, offset)
		if err != nil || len(chunk.Data) == 0 {
			break
		}
		log, offset = append(log, chunk.Data...), chunk.Next
	}
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	for _, line := range lines[max(0, len(lines)-n):] {
		fmt.Fprintf(q.out, "     %s | %s\n", step, line)
	}
}

func stepStatus(run *client.PipelineRun, step string) string {
	for _, st := range run.Steps {
		if st.Name == step {
			return st.Status
		}
	}
	return ""
}

func stepMetric(run *client.PipelineRun, step, metric string) string {
	for _, st := range run.Steps {
		if st.Name == step && st.Result != nil {
			if v, ok := st.Result.Metrics[metric]; ok {
				return fmtMetric(v)
			}
		}
	}
	return "-"
}

func (q *quickstart) summary() error {
	out := q.out
	fmt.Fprintf(out, "\n6. Summary\n")
	fmt.Fprintf(out, "   Pipeline runs (experiment pipelines/quickstart, one child run per step):\n")
	t := newTable(out)
	tableRow(t, "     RUN", "STATUS", "DATA", "HOLDOUT AUC", "HOLDOUT ACCURACY", "TRACKING RUN")
	for i, r := range q.runs {
		tableRow(t, fmt.Sprintf("     #%d", r.Number), r.Status, fmt.Sprintf("v%d", i+1), stepMetric(r, "evaluate", "auc"),
			stepMetric(r, "evaluate", "accuracy"), r.MLflowRunID)
	}
	t.Flush()

	versions, err := q.c.SearchModelVersions(q.ctx, client.SearchModelVersionsRequest{Filter: fmt.Sprintf("name = '%s'", quickstartModel)})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   Model versions of %s:\n", quickstartModel)
	t = newTable(out)
	for i := len(versions.ModelVersions) - 1; i >= 0; i-- {
		v := versions.ModelVersions[i]
		aliases := strings.Join(v.Aliases, ", ")
		if aliases == "" {
			aliases = "-"
		}
		tableRow(t, "     v"+v.Version, "aliases: "+aliases, "from run "+v.RunID)
	}
	t.Flush()

	d, err := q.c.GetDeployment(q.ctx, quickstartModel)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   Deployment %s (revision %d, every change audited): %s\n", d.Name, d.Revision, servingSummary(*d))

	g, err := q.c.Lineage(q.ctx, client.LineageKindModel, quickstartModel+"@production", client.LineageOptions{Direction: client.LineageUp})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   Lineage of models:/%s@production:\n", quickstartModel)
	for _, e := range g.Edges {
		fmt.Fprintf(out, "     %s  -%s->  %s\n", describeNode(g, e.From), e.Relation, describeNode(g, e.To))
	}
	return nil
}

func describeNode(g *client.LineageGraph, ref client.LineageRef) string {
	for _, n := range g.Nodes {
		if n.LineageRef != ref {
			continue
		}
		switch {
		case n.Data != nil:
			return fmt.Sprintf("data:%s@v%d", n.Data.Name, n.Data.Version)
		case n.Model != nil:
			return fmt.Sprintf("models:/%s/%d", n.Model.Name, n.Model.Version)
		case n.Run != nil:
			return fmt.Sprintf("run %s (%s)", shortID(n.Run.RunID), n.Run.Name)
		}
	}
	return ref.String()
}
