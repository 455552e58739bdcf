package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The example projects in examples/, run as their READMEs say: a copy of
// the folder, a fresh server, and the README's commands, in the README's
// order, with the built CLI.

// exampleSkip lists what running an example in place leaves behind, which
// a copy must not carry over.
var exampleSkip = map[string]bool{"out": true, ".slipway": true, "__pycache__": true}

// copyExample copies examples/NAME into a new folder and returns it with
// the example's README.
func copyExample(t *testing.T, name string) (dir, readme string) {
	t.Helper()
	src := filepath.Join("..", "examples", name)
	dir = filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && exampleSkip[d.Name()] {
			return filepath.SkipDir
		}
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying example %s: %v", name, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, string(raw)
}

// exampleCLI runs the CLI in the example's folder against s, as a user
// following the README does. It fails the test unless the command exits
// with wantCode, and reports a command the README does not show on a line
// of its own, so the README and this test tell the same story.
func exampleCLI(t *testing.T, s *Server, dir, readme string) func(wantCode int, args ...string) (string, string) {
	env := []string{"SLIPWAY_URL=" + s.URL, "SLIPWAY_CACHE_DIR=" + t.TempDir()}
	return func(wantCode int, args ...string) (string, string) {
		t.Helper()
		line := "slipway " + strings.Join(args, " ")
		if !strings.Contains(readme, "\n"+line+"\n") {
			t.Errorf("the example's README does not show the command %q", line)
		}
		cmd := exec.Command(Binary(t), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("%s (in %s): exit %d, want %d\nstdout: %s\nstderr: %s\nserver log:\n%s", line, dir, code, wantCode, stdout.String(), stderr.String(), s.Logs())
		}
		return stdout.String(), stderr.String()
	}
}

type exampleRun struct {
	ID          string            `json:"run_id"`
	Number      int               `json:"number"`
	Status      string            `json:"status"`
	Error       string            `json:"error"`
	Params      map[string]string `json:"params"`
	MLflowRunID string            `json:"mlflow_run_id"`
	Steps       []struct {
		Name        string `json:"name"`
		Status      string `json:"status"`
		MLflowRunID string `json:"mlflow_run_id"`
		Result      *struct {
			Status   string             `json:"status"`
			Error    string             `json:"error"`
			Metrics  map[string]float64 `json:"metrics"`
			Decision struct {
				Reason string `json:"reason"`
			} `json:"decision"`
		} `json:"result"`
	} `json:"steps"`
}

// exampleShow reads a pipeline run with `slipway pipeline show --json`.
func exampleShow(t *testing.T, s *Server, ref string) exampleRun {
	t.Helper()
	out, _ := CLI(t, s)(0, "pipeline", "show", ref, "--json")
	var run exampleRun
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("pipeline show %s --json: %v\n%s", ref, err, out)
	}
	return run
}

// stepWant is a step's expected status and why it ran or hit the cache
// (the decision's reason, exactly).
type stepWant struct{ status, reason string }

// checkSteps compares every step's status and reason with want, and checks
// that each step that ran or hit the cache has a tracking run that is a
// child of the pipeline's run, tagged with its step and cache outcome. It
// returns those runs by step name.
func checkSteps(t *testing.T, c *mlflowClient, run exampleRun, want map[string]stepWant) map[string]map[string]any {
	t.Helper()
	if run.MLflowRunID == "" {
		t.Fatalf("run #%d has no tracking run", run.Number)
	}
	if len(run.Steps) != len(want) {
		t.Errorf("run #%d has %d steps, want %d", run.Number, len(run.Steps), len(want))
	}
	runs := map[string]map[string]any{}
	for _, st := range run.Steps {
		w, ok := want[st.Name]
		if !ok {
			t.Errorf("run #%d: unexpected step %s", run.Number, st.Name)
			continue
		}
		reason := ""
		if st.Result != nil {
			reason = st.Result.Decision.Reason
			if w.status == "skipped" {
				reason = st.Result.Error
			}
		}
		if st.Status != w.status || reason != w.reason {
			t.Errorf("run #%d: step %s is %s (%q), want %s (%q)", run.Number, st.Name, st.Status, reason, w.status, w.reason)
		}
		if st.Status == "skipped" {
			continue
		}
		if st.MLflowRunID == "" {
			t.Errorf("run #%d: step %s has no tracking run", run.Number, st.Name)
			continue
		}
		r := c.getRun(st.MLflowRunID)
		tags := mfTags(r)
		cache := map[string]string{"cached": "hit", "succeeded": "miss", "failed": "miss"}[st.Status]
		if tags["mlflow.parentRunId"] != run.MLflowRunID || tags["slipway.step"] != st.Name || tags["slipway.cache"] != cache {
			t.Errorf("run #%d: step %s's tracking run %s has tags parent=%q step=%q cache=%q; want parent %s, step %s, cache %s",
				run.Number, st.Name, st.MLflowRunID, tags["mlflow.parentRunId"], tags["slipway.step"], tags["slipway.cache"], run.MLflowRunID, st.Name, cache)
		}
		wantStatus := map[bool]string{true: "FINISHED", false: "FAILED"}[st.Status != "failed"]
		if got := mfStr(mfDig(r, "info.status")); got != wantStatus {
			t.Errorf("run #%d: step %s's tracking run is %s, want %s", run.Number, st.Name, got, wantStatus)
		}
		runs[st.Name] = r
	}
	return runs
}

func stepMetrics(t *testing.T, run exampleRun, step string) map[string]float64 {
	t.Helper()
	for _, st := range run.Steps {
		if st.Name == step && st.Result != nil {
			return st.Result.Metrics
		}
	}
	t.Fatalf("run #%d has no result for step %s", run.Number, step)
	return nil
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// championVersion returns the version the alias champion of model tumor
// points at.
func championVersion(c *mlflowClient) string {
	c.t.Helper()
	alias := c.regOK("GET", "registered-models/alias", map[string]any{"name": "tumor", "alias": "champion"})
	return mfStr(mfDig(alias, "model_version.version"))
}

// examples/go-builtin: validate a data version, train, evaluate, gate,
// register and promote, all with built-in steps.
func TestExampleGoBuiltin(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	dir, readme := copyExample(t, "go-builtin")
	cli := exampleCLI(t, s, dir, readme)

	cli(0, "pipeline", "validate", "pipeline.yaml")
	cli(0, "data", "add", "tumor", "data/v1")

	// 1. Everything runs; with no champion yet, the gate passes on its
	// floor alone, and the model becomes version 1 and the champion.
	out, _ := cli(0, "pipeline", "run", "pipeline.yaml")
	for _, want := range []string{"tumor-builtin#1", "passed on the thresholds alone: no champion", "registered models:/tumor/1 from runs:/",
		`promoted tumor version 1 to alias "champion"`, "tumor-builtin#1 succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, out)
		}
	}
	run1 := exampleShow(t, s, "tumor-builtin#1")
	if run1.Status != "succeeded" {
		t.Fatalf("run #1: %s %s", run1.Status, run1.Error)
	}
	ran, disabled := stepWant{"succeeded", "no previous run"}, stepWant{"succeeded", "cache disabled (cache: false)"}
	steps := checkSteps(t, c, run1, map[string]stepWant{"validate": ran, "train": ran, "evaluate": ran, "gate": disabled, "register": ran, "promote": disabled})

	if m := mfMetrics(steps["validate"]); m["validation_passed"] != 1 || m["validation_violations"] != 0 {
		t.Errorf("validate's run has metrics %v", m)
	}
	trainRun := mfRunID(steps["train"])
	if p := mfParams(steps["train"]); p["max_depth"] != "3" || p["eta"] != "0.1" || p["num_boost_round"] != "40" {
		t.Errorf("train's run has params %v", p)
	}
	if n := len(c.metricHistory(trainRun, "valid_logloss")); n != 40 {
		t.Errorf("train's run has %d points of valid_logloss, want one per round (40)", n)
	}
	auc1 := stepMetrics(t, run1, "evaluate")["auc"]
	if auc1 < 0.9 || !near(mfMetrics(steps["evaluate"])["auc"], auc1) || !near(mfMetrics(c.getRun(run1.MLflowRunID))["evaluate.auc"], auc1) {
		t.Errorf("evaluate's auc %v is not in its run (%v) and the pipeline's (%v)", auc1, mfMetrics(steps["evaluate"]), mfMetrics(c.getRun(run1.MLflowRunID)))
	}
	var holdout map[string]float64
	if raw, err := os.ReadFile(filepath.Join(dir, "out", "holdout-metrics.json")); err != nil || json.Unmarshal(raw, &holdout) != nil || !near(holdout["auc"], auc1) {
		t.Errorf("out/holdout-metrics.json: %v %v", err, holdout)
	}
	if m := mfMetrics(steps["gate"]); m["gate_passed"] != 1 || !near(m["candidate.auc"], auc1) {
		t.Errorf("gate's run has metrics %v", m)
	}
	if v := c.getVersion("tumor", "1"); mfStr(v["run_id"]) != trainRun || mfStr(v["status"]) != "READY" {
		t.Errorf("models:/tumor/1 is %v; want READY, from the train step's run %s", v, trainRun)
	}
	if got := championVersion(c); got != "1" {
		t.Errorf("champion is version %q after run #1, want 1", got)
	}
	if lin, _ := CLI(t, s)(0, "lineage", "models:/tumor/1"); !strings.Contains(lin, "registered from runs:/"+trainRun) || !strings.Contains(lin, "consumed data:tumor@v1") {
		t.Errorf("lineage of models:/tumor/1 does not lead to the train step and data:tumor@v1:\n%s", lin)
	}

	// 2. Nothing changed: the cached steps are restored, gate and promote
	// (cache: false) run again, and nothing new is registered.
	cli(0, "pipeline", "run", "pipeline.yaml")
	hit := stepWant{"cached", "cache hit"}
	run2 := exampleShow(t, s, "tumor-builtin#2")
	steps = checkSteps(t, c, run2, map[string]stepWant{"validate": hit, "train": hit, "evaluate": hit, "gate": disabled, "register": hit, "promote": disabled})
	if m := mfMetrics(steps["evaluate"]); !near(m["auc"], auc1) {
		t.Errorf("the cached evaluate step's run has metrics %v; want the cached auc %v", m, auc1)
	}
	if status, _ := c.reg("GET", "model-versions/get", map[string]any{"name": "tumor", "version": "2"}); status != 404 {
		t.Errorf("a run served from the cache registered version 2 (status %d)", status)
	}

	// 3. Five rounds: train and evaluate miss, and the gate refuses the
	// weaker model, so nothing is registered.
	out, errOut := cli(2, "pipeline", "run", "pipeline.yaml", "-p", "rounds=5")
	if !strings.Contains(out, ">= champion  FAIL") || !strings.Contains(errOut, "tumor-builtin#3 failed") || !strings.Contains(errOut, "step gate") {
		t.Errorf("the gate's refusal:\nstdout: %s\nstderr: %s", out, errOut)
	}
	run3 := exampleShow(t, s, "tumor-builtin#3")
	skipped := stepWant{"skipped", "not started: an earlier step failed"}
	steps = checkSteps(t, c, run3, map[string]stepWant{"validate": hit, "train": {"succeeded", "param rounds changed"},
		"evaluate": {"succeeded", "input model changed"}, "gate": {"failed", "cache disabled (cache: false)"}, "register": skipped, "promote": skipped})
	if run3.Status != "failed" || run3.Params["rounds"] != "5" {
		t.Errorf("run #3: %s, params %v", run3.Status, run3.Params)
	}
	if p := mfParams(steps["train"]); p["num_boost_round"] != "5" {
		t.Errorf("train's run in run #3 has params %v", p)
	}
	if m := mfMetrics(steps["gate"]); m["gate_passed"] != 0 || !near(m["champion.auc"], auc1) || m["candidate.auc"] >= auc1 {
		t.Errorf("the failed gate's run has metrics %v; champion auc %v", m, auc1)
	}
	if got := championVersion(c); got != "1" {
		t.Errorf("champion is version %q after the gate failed, want 1", got)
	}

	// 4. A second data version: validate and train miss on it, and the
	// model trained on more rows beats the champion and replaces it.
	cli(0, "data", "add", "tumor", "data/v2")
	cli(0, "pipeline", "run", "pipeline.yaml")
	run4 := exampleShow(t, s, "tumor-builtin#4")
	steps = checkSteps(t, c, run4, map[string]stepWant{"validate": {"succeeded", "input data changed"},
		"train": {"succeeded", "param rounds changed, input data changed"}, "evaluate": {"succeeded", "input model changed"},
		"gate": disabled, "register": {"succeeded", "input model changed"}, "promote": disabled})
	if m := mfMetrics(steps["validate"]); m["validation_passed"] != 1 {
		t.Errorf("validate's run for data:tumor@v2 has metrics %v", m)
	}
	if m := mfMetrics(steps["gate"]); m["gate_passed"] != 1 || !near(m["champion.auc"], auc1) || m["candidate.auc"] <= auc1 {
		t.Errorf("the gate's run for the new data has metrics %v; champion auc %v", m, auc1)
	}
	trainRun = mfRunID(steps["train"])
	if v := c.getVersion("tumor", "2"); mfStr(v["run_id"]) != trainRun {
		t.Errorf("models:/tumor/2 is %v; want it from run #4's train step %s", v, trainRun)
	}
	if got := championVersion(c); got != "2" {
		t.Errorf("champion is version %q after run #4, want 2", got)
	}
	var reg struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "out", "registered.json")); err != nil || json.Unmarshal(raw, &reg) != nil || reg.Name != "tumor" || reg.Version != 2 {
		t.Errorf("out/registered.json: %v %+v", err, reg)
	}
	if lin, _ := CLI(t, s)(0, "lineage", "models:/tumor@champion"); !strings.Contains(lin, "consumed data:tumor@v2") {
		t.Errorf("lineage of the champion does not reach data:tumor@v2:\n%s", lin)
	}
}

// examplePython is the interpreter examples/python-sklearn runs by default.
const examplePython = "/usr/bin/python3"

// examples/python-sklearn: scikit-learn steps logging through MLflow's
// REST API.
func TestExamplePythonSklearn(t *testing.T) {
	if out, err := exec.Command(examplePython, "-c", "import sklearn, pandas").CombinedOutput(); err != nil {
		msg := examplePython + " cannot import sklearn and pandas (" + strings.TrimSpace(string(out)) + "); install python3-sklearn and python3-pandas to run examples/python-sklearn"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := Start(t)
	c := mlflowOn(s, t)
	dir, readme := copyExample(t, "python-sklearn")
	cli := exampleCLI(t, s, dir, readme)

	cli(0, "pipeline", "validate", "pipeline.yaml")

	// 1. Every step runs and logs to its own run.
	out, _ := cli(0, "pipeline", "run", "pipeline.yaml")
	for _, want := range []string{"prepare  | split 178 rows of data/wine.csv: 133 to out/train.csv, 45 to out/test.csv",
		"train    | trained RandomForestClassifier on 133 rows", "evaluate | accuracy=", "wine-sklearn#1 succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, out)
		}
	}
	run1 := exampleShow(t, s, "wine-sklearn#1")
	ran := stepWant{"succeeded", "no previous run"}
	steps := checkSteps(t, c, run1, map[string]stepWant{"prepare": ran, "train": ran, "evaluate": ran})
	if run1.Status != "succeeded" {
		t.Fatalf("run #1: %s %s", run1.Status, run1.Error)
	}

	// What the scripts logged through the REST API.
	if p, m := mfParams(steps["prepare"]), mfMetrics(steps["prepare"]); p["test_size"] != "0.25" || p["seed"] != "42" || p["target"] != "cultivar" ||
		m["rows"] != 178 || m["train_rows"] != 133 || m["test_rows"] != 45 || m["features"] != 13 {
		t.Errorf("prepare's run has params %v, metrics %v", p, m)
	}
	trainRun := mfRunID(steps["train"])
	p, m, tags := mfParams(steps["train"]), mfMetrics(steps["train"]), mfTags(steps["train"])
	if p["n_estimators"] != "100" || p["max_depth"] != "2" || p["seed"] != "42" || p["folds"] != "5" {
		t.Errorf("train's run has params %v", p)
	}
	if m["cv_accuracy"] < 0.8 || m["cv_accuracy"] > 1 || m["train_accuracy"] < m["cv_accuracy"]-0.1 || m["importance.proline"] <= 0 || tags["model_class"] != "RandomForestClassifier" {
		t.Errorf("train's run has metrics %v, tags %v", m, tags)
	}
	folds := mfTuples(c.metricHistory(trainRun, "cv_fold_accuracy"))
	sum := 0.0
	for i, f := range folds {
		sum += f.Value
		if f.Step != int64(i) {
			t.Errorf("cv_fold_accuracy point %d has step %d", i, f.Step)
		}
	}
	if len(folds) != 5 || !near(sum/5, m["cv_accuracy"]) {
		t.Errorf("cv_fold_accuracy history %v does not average to cv_accuracy %v", folds, m["cv_accuracy"])
	}

	// The metrics output, logged by the runner to the step's run and the
	// pipeline's; the per-class metrics and confusion matrix, by the script.
	headline := stepMetrics(t, run1, "evaluate")
	m, tags = mfMetrics(steps["evaluate"]), mfTags(steps["evaluate"])
	parent := mfMetrics(c.getRun(run1.MLflowRunID))
	for _, k := range []string{"accuracy", "f1_macro", "log_loss"} {
		if _, ok := headline[k]; !ok || !near(m[k], headline[k]) || !near(parent["evaluate."+k], headline[k]) {
			t.Errorf("metric %s: %v in the metrics output, %v in the step's run, %v in the pipeline's", k, headline[k], m[k], parent["evaluate."+k])
		}
	}
	var written map[string]float64
	if raw, err := os.ReadFile(filepath.Join(dir, "out", "metrics.json")); err != nil || json.Unmarshal(raw, &written) != nil || !near(written["accuracy"], headline["accuracy"]) {
		t.Errorf("out/metrics.json: %v %v", err, written)
	}
	var cm [][]float64
	if err := json.Unmarshal([]byte(tags["confusion_matrix"]), &cm); err != nil || len(cm) != 3 {
		t.Fatalf("evaluate's run has tag confusion_matrix %q", tags["confusion_matrix"])
	}
	total, right := 0.0, 0.0
	for i, row := range cm {
		for j, n := range row {
			total += n
			if i == j {
				right += n
			}
		}
		if _, ok := m["recall.class_"+string(rune('0'+i))]; !ok {
			t.Errorf("evaluate's run lacks recall.class_%d: %v", i, m)
		}
	}
	if total != 45 || m["test_rows"] != 45 || !near(right/total, headline["accuracy"]) {
		t.Errorf("confusion matrix %v (test_rows %v) does not agree with accuracy %v", cm, m["test_rows"], headline["accuracy"])
	}
	if pp := mfParams(c.getRun(run1.MLflowRunID)); pp["max_depth"] != "2" || pp["python"] != examplePython {
		t.Errorf("the pipeline's run has params %v", pp)
	}

	// 2. Nothing changed: every step is restored from the cache.
	cli(0, "pipeline", "run", "pipeline.yaml")
	hit := stepWant{"cached", "cache hit"}
	checkSteps(t, c, exampleShow(t, s, "wine-sklearn#2"), map[string]stepWant{"prepare": hit, "train": hit, "evaluate": hit})

	// 3. An edit to train.py misses train; the model it writes has the
	// same bytes, so evaluate still hits.
	f, err := os.OpenFile(filepath.Join(dir, "train.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# an edit that changes no behaviour\n")
	f.Close()
	cli(0, "pipeline", "run", "pipeline.yaml")
	checkSteps(t, c, exampleShow(t, s, "wine-sklearn#3"), map[string]stepWant{"prepare": hit, "train": {"succeeded", "code train.py changed"}, "evaluate": hit})

	// 4. A param misses train and, through the model, evaluate.
	cli(0, "pipeline", "run", "pipeline.yaml", "-p", "max_depth=4")
	run4 := exampleShow(t, s, "wine-sklearn#4")
	steps = checkSteps(t, c, run4, map[string]stepWant{"prepare": hit, "train": {"succeeded", "param max_depth changed"}, "evaluate": {"succeeded", "input model changed"}})
	if p := mfParams(steps["train"]); p["max_depth"] != "4" {
		t.Errorf("train's run in run #4 has params %v", p)
	}
	if a := stepMetrics(t, run4, "evaluate")["accuracy"]; a < 0.9 {
		t.Errorf("accuracy with max_depth=4: %v", a)
	}
}
