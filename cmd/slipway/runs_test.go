package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/client"
)

// seed makes experiment "churn" with three runs that differ in lr and auc,
// one of them still running with a NaN metric, and artifacts on the first.
func seed(t *testing.T, url string) (ids []string) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 11, 5, 0, 0, time.Local).UnixMilli()
	for i, lr := range []string{"0.1", "0.05", "0.01"} {
		r, err := c.CreateRun(ctx, client.CreateRunRequest{ExperimentID: exp, RunName: []string{"baseline", "tuned", "slow"}[i], StartTime: start + int64(i)*60_000})
		if err != nil {
			t.Fatal(err)
		}
		id := r.Info.RunID
		ms := []client.Metric{{Key: "auc", Value: 0.78 + 0.03*float64(i), Step: 3}, {Key: "loss", Value: 0.5}}
		if i == 2 {
			ms = append(ms, client.Metric{Key: "f1", Value: math.NaN()})
		}
		if err := c.LogBatch(ctx, id, ms, []client.Param{{Key: "lr", Value: lr}, {Key: "depth", Value: "6"}}, []client.Tag{{Key: "team", Value: "risk"}}); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if _, err := c.UpdateRun(ctx, client.UpdateRunRequest{RunID: id, Status: client.RunStatusFinished, EndTime: start + int64(i)*60_000 + 80_000}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, id)
	}
	if err := c.LogInputs(ctx, ids[0], []client.DatasetInput{{
		Tags: []client.Tag{{Key: "mlflow.data.context", Value: "training"}}, Dataset: client.Dataset{Name: "churn-nov", Digest: "d1g3st", SourceType: "local", Source: "data.csv"},
	}}); err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]string{"model/model.json": strings.Repeat("x", 3000), "report.txt": "ok"} {
		if err := c.UploadArtifact(ctx, ids[0], path, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestRunsList(t *testing.T) {
	clearEnv(t)
	url, _ := startServer(t, false)
	ids := seed(t, url)

	r := run(t, "runs", "list", "--experiment", "churn", "--url", url).ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	// Newest first; auc and lr differ between runs so they come first, and
	// f1, which only one run has, does not fit in 120 columns.
	header := regexp.MustCompile(`^RUN\s+NAME\s+STATUS\s+STARTED\s+DURATION\s+metrics.auc\s+params.lr\s+metrics.loss\s+params.depth$`)
	if len(lines) != 4 || !header.MatchString(lines[0]) || !strings.Contains(r.stderr, "1 more metric and param columns not shown") {
		t.Fatalf("list:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	want := []string{
		fmt.Sprintf(`^%s\s+slow\s+RUNNING\s+2026-11-22 11:07\s+-\s+0.84\s+0.01\s+0.5\s+6$`, ids[2][:8]),
		fmt.Sprintf(`^%s\s+tuned\s+FINISHED\s+2026-11-22 11:06\s+1m20s\s+0.81\s+0.05\s+0.5\s+6$`, ids[1][:8]),
		fmt.Sprintf(`^%s\s+baseline\s+FINISHED\s+2026-11-22 11:05\s+1m20s\s+0.78\s+0.1\s+0.5\s+6$`, ids[0][:8]),
	}
	for i, w := range want {
		if !regexp.MustCompile(w).MatchString(lines[i+1]) {
			t.Fatalf("row %d = %q, want %s", i+1, lines[i+1], w)
		}
	}

	// Filter, order, chosen columns; the experiment column shows when
	// several experiments are searched (here: all of them).
	r = run(t, "runs", "list", "--filter", "metrics.auc > 0.8", "--order-by", "metrics.auc ASC",
		"--columns", "metrics.auc,params.lr,tags.team,metrics.f1", "--url", url).ok(t)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^RUN\s+NAME\s+EXPERIMENT\s+STATUS\s+STARTED\s+DURATION\s+metrics.auc\s+params.lr\s+tags.team\s+metrics.f1$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^`+ids[1][:8]+`\s+tuned\s+churn\s+FINISHED\s.*\s0.81\s+0.05\s+risk\s+-$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^`+ids[2][:8]+`\s+slow\s+churn\s+RUNNING\s.*\s0.84\s+0.01\s+risk\s+NaN$`).MatchString(lines[2]) {
		t.Fatalf("filtered list:\n%s", r.stdout)
	}

	// A narrow terminal keeps the fixed columns and drops the rest.
	t.Setenv("COLUMNS", "70")
	r = run(t, "runs", "list", "--url", url).ok(t)
	if strings.Contains(r.stdout, "metrics.") || !strings.Contains(r.stderr, "5 more metric and param columns not shown") {
		t.Fatalf("narrow list:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	t.Setenv("COLUMNS", "")

	r = run(t, "runs", "list", "--max", "2", "--url", url).ok(t)
	if n := strings.Count(r.stdout, "\n"); n != 3 || !strings.Contains(r.stderr, "more runs match than --max 2 shows") {
		t.Fatalf("--max 2: %d lines, stderr %q", n, r.stderr)
	}

	r = run(t, "runs", "list", "--experiment", "churn", "--json", "--url", url).ok(t)
	var listed struct {
		Runs []client.Run `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r.stdout)
	}
	if len(listed.Runs) != 3 || listed.Runs[0].Info.RunID != ids[2] || !strings.Contains(r.stdout, `"value": "NaN"`) {
		t.Fatalf("--json:\n%s", r.stdout)
	}
	if m, _ := listed.Runs[0].Data.Metric("f1"); !math.IsNaN(m.Value) {
		t.Fatalf("f1 = %v", m.Value)
	}

	r = run(t, "runs", "list", "--experiment", "Default", "--url", url).ok(t)
	if r.stdout != "" || !strings.Contains(r.stderr, "no runs found") {
		t.Fatalf("empty list: %q %q", r.stdout, r.stderr)
	}
	r = run(t, "runs", "list", "--experiment", "Default", "--json", "--url", url).ok(t)
	if strings.TrimSpace(r.stdout) != "{\n  \"runs\": []\n}" {
		t.Fatalf("empty --json = %q", r.stdout)
	}

	run(t, "runs", "list", "--filter", "metrics.auc >>> 1", "--url", url).fails(t, 2, "Invalid comparator")
	run(t, "runs", "list", "--experiment", "nope", "--url", url).fails(t, 2, `no experiment with id or name "nope"`)
	run(t, "runs", "list", "--columns", "auc", "--url", url).fails(t, 2, "metrics.KEY")
	run(t, "runs", "list", "--max", "-1", "--url", url).fails(t, 2, "--max")
}

func TestRunsShow(t *testing.T) {
	clearEnv(t)
	url, _ := startServer(t, false)
	ids := seed(t, url)

	r := run(t, "runs", "show", ids[0][:8], "--url", url).ok(t)
	for _, want := range []string{
		`(?m)^Run:\s+` + ids[0] + `$`,
		`(?m)^Name:\s+baseline$`,
		`(?m)^Experiment:\s+churn \(1\)$`,
		`(?m)^Status:\s+FINISHED$`,
		`(?m)^Duration:\s+1m20s$`,
		`(?m)^Params:\n\s+depth\s+6\n\s+lr\s+0.1\n`,
		`(?m)^Metrics \(latest\):\n\s+KEY\s+VALUE\s+STEP\s+LOGGED\n\s+auc\s+0.78\s+3\s+\d{4}-`,
		`(?m)^Tags:\n\s+team\s+risk\n\n`,
		`(?m)^Inputs:\n\s+DATASET.*\n\s+churn-nov\s+d1g3st\s+local\s+data.csv\s+mlflow.data.context=training$`,
		`(?m)^Artifacts:\n\s+model/\n\s+model/model.json\s+2.9 KiB\n\s+report.txt\s+2 B\n?$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Fatalf("show output does not match %s:\n%s", want, r.stdout)
		}
	}

	r = run(t, "runs", "show", ids[2], "--json", "--url", url).ok(t)
	var shown struct {
		Run       client.Run        `json:"run"`
		Artifacts []client.FileInfo `json:"artifacts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show --json is not JSON: %v\n%s", err, r.stdout)
	}
	if shown.Run.Info.RunID != ids[2] || shown.Artifacts == nil || len(shown.Artifacts) != 0 || shown.Run.Info.EndTime != 0 {
		t.Fatalf("show --json = %+v", shown)
	}
	r = run(t, "runs", "show", ids[0], "--json", "--url", url).ok(t)
	if !strings.Contains(r.stdout, `"path": "model/model.json"`) || !strings.Contains(r.stdout, `"file_size": 3000`) {
		t.Fatalf("show --json artifacts:\n%s", r.stdout)
	}

	run(t, "runs", "show", "0123456789abcdef0123456789abcdef", "--url", url).fails(t, 2, "no run with id or id prefix")
	run(t, "runs", "show", "7", "--url", url).fails(t, 2, `no run with id "7"`)
	run(t, "runs", "show", "it's", "--url", url).fails(t, 2, "is not a run id")
}

func TestRunsCompare(t *testing.T) {
	clearEnv(t)
	url, _ := startServer(t, false)
	ids := seed(t, url)

	r := run(t, "runs", "compare", ids[0][:8], ids[2], "--url", url).ok(t)
	for _, want := range []string{
		fmt.Sprintf(`(?m)^\s+run\s+%s\s+%s$`, ids[0][:8], ids[2][:8]),
		`(?m)^\s+name\s+baseline\s+slow$`,
		`(?m)^\s+duration\s+1m20s\s+-$`,
		`(?m)^\s+params.depth\s+6\s+6$`,
		`(?m)^\*\s+params.lr\s+0.1\s+0.01$`,
		`(?m)^\*\s+metrics.auc\s+0.78\s+0.84$`,
		`(?m)^\*\s+metrics.f1\s+-\s+NaN$`,
		`(?m)^\s+metrics.loss\s+0.5\s+0.5$`,
		`3 of 5 params and metrics differ`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Fatalf("compare output does not match %s:\n%s", want, r.stdout)
		}
	}

	r = run(t, "runs", "compare", ids[0], ids[1], ids[2], "--json", "--url", url).ok(t)
	var cmp struct {
		Runs   []client.Run `json:"runs"`
		Params []struct {
			Key     string    `json:"key"`
			Values  []*string `json:"values"`
			Differs bool      `json:"differs"`
		} `json:"params"`
		Metrics []struct {
			Key     string            `json:"key"`
			Values  []json.RawMessage `json:"values"`
			Differs bool              `json:"differs"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cmp); err != nil {
		t.Fatalf("compare --json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(cmp.Runs) != 3 || len(cmp.Params) != 2 || cmp.Params[0].Key != "depth" || cmp.Params[0].Differs ||
		cmp.Params[1].Key != "lr" || !cmp.Params[1].Differs || *cmp.Params[1].Values[1] != "0.05" {
		t.Fatalf("compare --json params = %+v", cmp.Params)
	}
	f1 := cmp.Metrics[1]
	if f1.Key != "f1" || !f1.Differs || string(f1.Values[0]) != "null" || string(f1.Values[2]) != `"NaN"` {
		t.Fatalf("compare --json f1 = %+v", f1)
	}

	run(t, "runs", "compare", ids[0], "--url", url).fails(t, 2, "requires at least 2 arg(s), only received 1; usage: slipway runs compare")
	run(t, "runs", "compare", ids[0], ids[1], "--jsn", "--url", url).fails(t, 2, "unknown flag: --jsn")
	run(t, "runs", "compare", ids[0], ids[0][:8], "--url", url).fails(t, 2, "named twice")
}
