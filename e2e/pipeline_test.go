package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeProject writes files into a new project folder and returns it.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const e2ePipeline = `name: flow
params:
  factor: 2
steps:
  prepare:
    command: |
      echo "preparing with factor ${params.factor}"
      wc -l < ${inputs.rows} > count.txt
      ls ${inputs.table} > files.txt
    inputs:
      rows: rows.csv
      table: data:flowdata@latest
    outputs:
      count: count.txt
      files: files.txt
  score:
    command: |
      n=$(cat ${steps.prepare.outputs.count})
      printf '{"rows": %s, "scaled": %s}' "$n" "$((n * ${params.factor}))" > metrics.json
      echo "scored in run $MLFLOW_RUN_ID"
      test ! -f fail.txt
    outputs:
      metrics: {path: metrics.json, type: metrics}
`

// A pipeline runs on the server from the CLI: its steps' output streams
// back, every step is a child tracking run, a re-run is served from the
// cache with an explanation, a new data version misses exactly the steps
// that read it, and a failed run resumes from its failed step.
func TestPipelineRunFromCLI(t *testing.T) {
	s := Start(t)
	cli := CLI(t, s)
	proj := writeProject(t, map[string]string{
		"pipeline.yaml": e2ePipeline,
		"rows.csv":      "a,b\n1,2\n3,4\n",
		"table/t.csv":   "x\n1\n",
	})
	spec := filepath.Join(proj, "pipeline.yaml")
	cli(0, "data", "add", "flowdata", filepath.Join(proj, "table"))

	out, _ := cli(0, "pipeline", "run", spec)
	for _, want := range []string{"flow#1", "prepare | preparing with factor 2", "score   | scored in run ", "✓ score", "flow#1 succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run output lacks %q:\n%s", want, out)
		}
	}
	run := showRun(t, cli, "flow")
	if run.Status != "succeeded" || len(run.Steps) != 2 {
		t.Fatalf("run: %+v", run)
	}
	score := run.Steps[1]
	if score.Result.Metrics["rows"] != 3 || score.Result.Metrics["scaled"] != 6 {
		t.Errorf("metrics of score: %v", score.Result.Metrics)
	}
	// The step's tracking run is a child of the pipeline's and holds its
	// metrics; the data version it read is its dataset input (lineage).
	code, body := s.Do("GET", "/api/2.0/mlflow/runs/get?run_id="+score.MLflowRunID, nil)
	var child struct {
		Run struct {
			Data struct {
				Metrics []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"metrics"`
				Tags []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"run"`
	}
	json.Unmarshal(body, &child)
	tags, metrics := map[string]string{}, map[string]float64{}
	for _, tg := range child.Run.Data.Tags {
		tags[tg.Key] = tg.Value
	}
	for _, m := range child.Run.Data.Metrics {
		metrics[m.Key] = m.Value
	}
	if code != 200 || tags["mlflow.parentRunId"] != run.MLflowRunID || metrics["scaled"] != 6 {
		t.Errorf("score's tracking run: %d %s", code, body)
	}
	lineage, _ := cli(0, "lineage", "data:flowdata@v1", "--direction", "down")
	if !strings.Contains(lineage, run.Steps[0].MLflowRunID) {
		t.Errorf("lineage of the data version does not reach the step that read it:\n%s", lineage)
	}

	out, _ = cli(0, "pipeline", "run", spec)
	if !strings.Contains(out, "= prepare") || !strings.Contains(out, "cache hit") {
		t.Errorf("second run should be served from the cache:\n%s", out)
	}

	// A new data version changes prepare's input; score's input (the
	// count) is unchanged, so score hits.
	if err := os.WriteFile(filepath.Join(proj, "table", "u.csv"), []byte("x\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli(0, "data", "add", "flowdata", filepath.Join(proj, "table"))
	out, _ = cli(0, "pipeline", "run", spec, "-q")
	if !strings.Contains(out, "input table changed") || !strings.Contains(out, "= score") {
		t.Errorf("after a new data version:\n%s", out)
	}
	explained, _ := cli(0, "pipeline", "show", "flow", "--explain")
	if !strings.Contains(explained, "changed: input table") || !strings.Contains(explained, "key ") {
		t.Errorf("show --explain:\n%s", explained)
	}

	// A failing step fails the run (exit 2); resume reruns only it.
	if err := os.WriteFile(filepath.Join(proj, "fail.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut := cli(2, "pipeline", "run", spec, "-p", "factor=3")
	if !strings.Contains(errOut, "flow#4 failed") {
		t.Errorf("failed run's error: %s", errOut)
	}
	os.Remove(filepath.Join(proj, "fail.txt"))
	out, _ = cli(0, "pipeline", "resume", "flow#4")
	if !strings.Contains(out, "= prepare") || !strings.Contains(out, "reused") || !strings.Contains(out, "✓ score") {
		t.Errorf("resume:\n%s", out)
	}
	resumed := showRun(t, cli, "flow")
	if resumed.Params["factor"] != "3" || resumed.Steps[1].Result.Metrics["scaled"] != 9 {
		t.Errorf("resumed run kept params %v, scaled=%v", resumed.Params, resumed.Steps[1].Result.Metrics["scaled"])
	}

	list, _ := cli(0, "pipeline", "list", "flow")
	if strings.Count(list, "\n") != 6 || !strings.Contains(list, "resume") {
		t.Errorf("runs of flow:\n%s", list)
	}
	logs, _ := cli(0, "pipeline", "logs", "flow#1", "prepare")
	if logs != "preparing with factor 2\n" {
		t.Errorf("logs of prepare: %q", logs)
	}

	// Bad input is refused before anything runs.
	_, errOut = cli(2, "pipeline", "run", spec, "-p", "factor=lots")
	if !strings.Contains(errOut, "factor") {
		t.Errorf("bad param: %s", errOut)
	}
	_, errOut = cli(2, "pipeline", "show", "flow#99")
	if !strings.Contains(errOut, "no run #99") {
		t.Errorf("missing run: %s", errOut)
	}
}

const sleepPipeline = `name: sleeper
steps:
  nap:
    command: echo $$$$ > nap.pid; exec sleep 120
`

// A running pipeline is cancelled from the CLI, and a run left running by
// a server that crashed is marked failed when the server comes back, and
// can be resumed.
func TestPipelineCancelAndCrash(t *testing.T) {
	s := Start(t)
	cli := CLI(t, s)
	proj := writeProject(t, map[string]string{"pipeline.yaml": sleepPipeline})
	pidFile := filepath.Join(proj, "nap.pid")

	out, _ := cli(0, "pipeline", "run", filepath.Join(proj, "pipeline.yaml"), "--detach")
	if !strings.Contains(out, "queued sleeper#1") {
		t.Fatalf("detach: %s", out)
	}
	pid := waitPID(t, pidFile)
	cli(0, "pipeline", "cancel", "sleeper")
	run := waitRun(t, cli, "sleeper#1")
	if run.Status != "cancelled" || run.Steps[0].Status != "cancelled" {
		t.Errorf("cancelled run: %s / %s", run.Status, run.Steps[0].Status)
	}
	if alive(pid) {
		t.Errorf("the step's process %d outlived the cancel", pid)
	}

	os.Remove(pidFile)
	cli(0, "pipeline", "run", filepath.Join(proj, "pipeline.yaml"), "--detach")
	pid = waitPID(t, pidFile)
	s.Kill9()
	syscall.Kill(-pid, syscall.SIGKILL) // the orphaned step (see docs/pipelines.md)
	s2 := StartIn(t, s.DataDir)
	cli2 := CLI(t, s2)
	run = waitRun(t, cli2, "sleeper#2")
	if run.Status != "failed" || !strings.Contains(run.Error, "stopped") {
		t.Errorf("run of a crashed server: %s %q", run.Status, run.Error)
	}
	out, _ = cli2(0, "pipeline", "resume", "sleeper#2", "--detach")
	if !strings.Contains(out, "queued sleeper#3") {
		t.Errorf("resume after crash: %s", out)
	}
	waitPID(t, pidFile)
	cli2(0, "pipeline", "cancel", "sleeper#3")
	waitRun(t, cli2, "sleeper#3")
}

type e2eRun struct {
	ID          string            `json:"run_id"`
	Status      string            `json:"status"`
	Error       string            `json:"error"`
	Params      map[string]string `json:"params"`
	MLflowRunID string            `json:"mlflow_run_id"`
	Steps       []struct {
		Name        string `json:"name"`
		Status      string `json:"status"`
		MLflowRunID string `json:"mlflow_run_id"`
		Result      struct {
			Metrics map[string]float64 `json:"metrics"`
		} `json:"result"`
	} `json:"steps"`
}

func showRun(t *testing.T, cli func(int, ...string) (string, string), ref string) e2eRun {
	t.Helper()
	out, _ := cli(0, "pipeline", "show", ref, "--json")
	var run e2eRun
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("pipeline show --json: %v\n%s", err, out)
	}
	return run
}

func waitRun(t *testing.T, cli func(int, ...string) (string, string), ref string) e2eRun {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		run := showRun(t, cli, ref)
		if run.Status == "succeeded" || run.Status == "failed" || run.Status == "cancelled" {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after 60s", ref, run.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitPID(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written in 60s", file)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	// A killed child of the server may linger as a zombie until reaped.
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
