package e2e

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The built-in pipeline steps (docs/steps.md), run as the pipeline runner
// runs them: the slipway binary with the step's run in MLFLOW_RUN_ID.

// stepCLI runs the CLI as a pipeline step with run runID (no MLFLOW_RUN_ID
// when it is empty).
func stepCLI(t *testing.T, s *Server, runID string) func(wantCode int, args ...string) (string, string) {
	env := []string{"SLIPWAY_URL=" + s.URL, "MLFLOW_TRACKING_URI=" + s.URL, "SLIPWAY_CACHE_DIR=" + t.TempDir(), "MLFLOW_RUN_ID=" + runID}
	if runID != "" {
		env = append(env, "MLFLOW_EXPERIMENT_ID=0")
	}
	return func(wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := Cmd(t, env, args...)
		if code != wantCode {
			t.Fatalf("slipway %s (MLFLOW_RUN_ID=%s): exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), runID, code, wantCode, out, errOut)
		}
		return out, errOut
	}
}

// tumorVariant writes testdata/tumor.csv, changed by edit, as dir/name.
func tumorVariant(t *testing.T, dir, name string, edit func(header []string, rows [][]string) ([]string, [][]string)) string {
	t.Helper()
	f, err := os.Open("testdata/tumor.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, rows := edit(all[0], all[1:])
	p := filepath.Join(dir, name)
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	w.Write(header)
	w.WriteAll(rows)
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// csvColumn returns a column's index in header.
func csvColumn(t *testing.T, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("no column %s in %v", name, header)
	}
	return i
}

func TestValidateStep(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	dir := addTumorData(t, cli)
	work := t.TempDir()

	// The same data passes, as a file, a directory and a data version.
	for _, data := range []string{filepath.Join(dir, "tumor.csv"), dir, "data:tumor@latest"} {
		out, _ := cli(0, "data", "validate", data, "--reference", "data:tumor@v1", "--strict-categories")
		if !strings.Contains(out, "against data:tumor@v1: 1 table, 6 columns checked") || !strings.Contains(out, "passed: no violations, 0 warnings") {
			t.Fatalf("validate %s:\n%s", data, out)
		}
	}

	// Each kind of break fails, naming the column, the rule and both values.
	cases := []struct {
		name string
		edit func(h []string, rows [][]string) ([]string, [][]string)
		want []string
	}{
		{"dropped-column.csv", func(h []string, rows [][]string) ([]string, [][]string) {
			i := csvColumn(t, h, "texture")
			for r := range rows {
				rows[r] = slices.Delete(rows[r], i, i+1)
			}
			return slices.Delete(h, i, i+1), rows
		}, []string{"FAIL  dropped-column.csv: column texture: column_missing: the reference has this column (float); the data does not"}},
		{"changed-type.csv", func(h []string, rows [][]string) ([]string, [][]string) {
			rows[3][csvColumn(t, h, "area")] = "large"
			return h, rows
		}, []string{"FAIL  changed-type.csv: column area: type: type string; the reference's is float"}},
		// 3 of 120 rows (2.5%) beyond the range: more than the 1% allowed.
		{"out-of-range.csv", func(h []string, rows [][]string) ([]string, [][]string) {
			for r, v := range []string{"99", "98", "97"} {
				rows[7+r][csvColumn(t, h, "radius")] = v
			}
			return h, rows
		}, []string{"FAIL  out-of-range.csv: column radius: range: values span [8.196, 99] (more than 1% of values on a side: p1..p99 ["}},
		{"missing.csv", func(h []string, rows [][]string) ([]string, [][]string) {
			for r := range 12 {
				rows[r][csvColumn(t, h, "perimeter")] = ""
			}
			return h, rows
		}, []string{"FAIL  missing.csv: column perimeter: missing_rate: 10% missing (12 of 120 rows); the reference has 0%, and at most 5% is allowed (+5%)"}},
		{"several.csv", func(h []string, rows [][]string) ([]string, [][]string) {
			for r := range 3 {
				rows[r][csvColumn(t, h, "radius")] = "-50"
			}
			rows[1][csvColumn(t, h, "size")] = "enormous"
			for r := range 10 {
				rows[r][csvColumn(t, h, "area")] = "NA"
			}
			return h, rows
		}, []string{"column radius: range: values span [-50, ", "column area: missing_rate: 8.333% missing (10 of 120 rows)",
			`column size: categories: 1 value(s) the reference does not have: "enormous"; the reference has "large", "small"`}},
	}
	for _, tc := range cases {
		p := tumorVariant(t, work, tc.name, tc.edit)
		out, errOut := cli(2, "data", "validate", p, "--reference", "data:tumor@v1", "--strict-categories")
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("validate %s: the output lacks %q:\n%s", tc.name, want, out)
			}
		}
		if fails := strings.Count(out, "\nFAIL  "); fails != len(tc.want) {
			t.Errorf("validate %s: %d violations listed, want %d:\n%s", tc.name, fails, len(tc.want), out)
		}
		if !strings.Contains(errOut, "slipway: "+p+" failed validation against data:tumor@v1: ") {
			t.Errorf("validate %s: stderr %s", tc.name, errOut)
		}
	}

	// A new column warns; --max-missing-increase and --range-slack loosen;
	// --report and --json write the report.
	p := tumorVariant(t, work, "wider.csv", func(h []string, rows [][]string) ([]string, [][]string) {
		for r := range rows {
			rows[r] = append(rows[r], "x")
		}
		for r := range 12 {
			rows[r][csvColumn(t, h, "perimeter")] = ""
		}
		rows[0][csvColumn(t, h, "radius")] = "35"
		return append(h, "site"), rows
	})
	report := filepath.Join(work, "out", "report.json")
	out, _ := cli(0, "data", "validate", p, "--reference", "data:tumor@v1", "--max-missing-increase", "0.2", "--range-slack", "0.5", "--report", report)
	if !strings.Contains(out, "warn  wider.csv: column site: new_column: ") || !strings.Contains(out, "passed: no violations, 1 warning") {
		t.Fatalf("a new column:\n%s", out)
	}
	var rep struct {
		Data, Reference string
		Passed          bool
		Options         map[string]any
		Violations      []map[string]any
		Warnings        []map[string]any
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil || !rep.Passed || rep.Reference != "data:tumor@v1" || len(rep.Warnings) != 1 || rep.Options["range_slack"] != 0.5 {
		t.Fatalf("--report: %v %s", err, raw)
	}
	// One value in 120 beyond the range is within the default 1%; the
	// strict check (--max-out-of-range 0) fails on it.
	cli(0, "data", "validate", p, "--reference", "data:tumor@v1", "--max-missing-increase", "0.2")
	cli(2, "data", "validate", p, "--reference", "data:tumor@v1", "--max-missing-increase", "0.2", "--max-out-of-range", "0")
	out, _ = cli(2, "data", "validate", p, "--reference", "data:tumor@v1", "--json", "--max-out-of-range", "0")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Passed || len(rep.Violations) != 2 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	v := rep.Violations[0]
	if v["column"] != "radius" || v["rule"] != "range" || mfNum(v["observed"].([]any)[1]) != 35 {
		t.Fatalf("--json violation: %v", v)
	}

	// Usage errors name the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{p}, "--reference is required"},
		{[]string{p, "--reference", "tumor@v1"}, `--reference "tumor@v1": must be a data version, data:NAME@vN`},
		{[]string{p, "--reference", "data:tumor@v9"}, "v9"},
		{[]string{p, "--reference", "data:tumor@v1", "--max-missing-increase", "2"}, "--max-missing-increase 2: must be between 0 and 1"},
		{[]string{filepath.Join(work, "nope.csv"), "--reference", "data:tumor@v1"}, "no such file or directory"},
	} {
		_, errOut := cli(2, append([]string{"data", "validate"}, tc.args...)...)
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("validate %v: %s, want %q", tc.args, errOut, tc.want)
		}
	}

	// As a pipeline step, the counts are logged to the step's run.
	runID := mfRunID(c.createRun("0"))
	step := stepCLI(t, s, runID)
	step(2, "data", "validate", filepath.Join(work, "several.csv"), "--reference", "data:tumor@v1")
	m := mfMetrics(c.getRun(runID))
	if m["validation_violations"] != 2 || m["validation_passed"] != 0 || m["validation_columns_checked"] != 6 {
		t.Fatalf("the step's run has metrics %v", m)
	}
}

// Train, tune and evaluate, run as pipeline steps, log into the step's run
// and leave it running for the runner to end.
func TestStepRunLogging(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	dir := addTumorData(t, cli)
	work := t.TempDir()

	trainRun := mfRunID(c.createRun("0"))
	model := filepath.Join(work, "model")
	out, _ := stepCLI(t, s, trainRun)(0, "train", "--data", "data:tumor@latest", "--target", "benign", "-o", model,
		"-p", "num_boost_round=10", "--seed", "7", "--experiment", "not-used")
	if !strings.Contains(out, "logged as run "+trainRun+" (the step's run, from MLFLOW_RUN_ID)") {
		t.Fatalf("train as a step:\n%s", out)
	}
	run := c.getRun(trainRun)
	if status := mfStr(mfDig(run, "info.status")); status != "RUNNING" {
		t.Fatalf("the step's run is %s after train; the runner ends it", status)
	}
	m := mfMetrics(run)
	if _, ok := m["auc"]; !ok || len(c.metricHistory(trainRun, "valid_logloss")) != 10 {
		t.Fatalf("the step's run has metrics %v", m)
	}
	if p := mfParams(run); p["data"] != "data:tumor@v1" || p["max_depth"] == "" {
		t.Fatalf("the step's run has params %v", p)
	}
	if status, _ := c.call("experiments/get-by-name", map[string]any{"experiment_name": "not-used"}); status != 404 {
		t.Fatalf("--experiment was not ignored: experiment not-used exists (%d)", status)
	}
	// The model directory names its run, as MLflow's does.
	if mlmodel, err := os.ReadFile(filepath.Join(model, "MLmodel")); err != nil || !strings.Contains(string(mlmodel), "run_id: "+trainRun) {
		t.Fatalf("MLmodel of train -o does not name run %s: %v\n%s", trainRun, err, mlmodel)
	}
	root := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	if _, _, body := c.download(root + "/model/MLmodel"); !strings.Contains(body, "run_id: "+trainRun) {
		t.Fatalf("the logged MLmodel does not name its run:\n%s", body)
	}

	evalRun := mfRunID(c.createRun("0"))
	metricsFile := filepath.Join(work, "out", "metrics.json")
	// The runner hands a step its data and model inputs as directories.
	out, _ = stepCLI(t, s, evalRun)(0, "evaluate", "--model", model, "--data", dir, "--target", "benign",
		"--permutation-repeats", "0", "--metrics-out", metricsFile)
	if !strings.Contains(out, "logged as run "+evalRun+" (the step's run") {
		t.Fatalf("evaluate as a step:\n%s", out)
	}
	run = c.getRun(evalRun)
	if status := mfStr(mfDig(run, "info.status")); status != "RUNNING" {
		t.Fatalf("the step's run is %s after evaluate", status)
	}
	var written map[string]float64
	raw, err := os.ReadFile(metricsFile)
	if err != nil || json.Unmarshal(raw, &written) != nil {
		t.Fatalf("--metrics-out: %v %s", err, raw)
	}
	logged := mfMetrics(run)
	for _, k := range []string{"auc", "log_loss", "accuracy"} {
		if _, ok := written[k]; !ok || math.Abs(written[k]-logged[k]) > 1e-12 {
			t.Fatalf("metric %s: %v in --metrics-out, %v in the run", k, written[k], logged[k])
		}
	}

	tuneRun := mfRunID(c.createRun("0"))
	stepCLI(t, s, tuneRun)(0, "tune", "--data", "data:tumor@latest", "--target", "benign", "-s", "max_depth=1,2", "-p", "num_boost_round=5")
	run = c.getRun(tuneRun)
	if status := mfStr(mfDig(run, "info.status")); status != "RUNNING" || mfMetrics(run)["trials"] != 2 {
		t.Fatalf("the step's run after tune: %s, %v", status, mfMetrics(run))
	}
	children, _ := c.searchRuns([]string{"0"}, "tags.mlflow.parentRunId = '"+tuneRun+"'", "", 100, nil, "")
	if len(children) != 2 {
		t.Fatalf("%d trial runs under the step's run; want 2", len(children))
	}

	// A run the server does not have is an error that names the variable.
	_, errOut := stepCLI(t, s, "0123456789abcdef0123456789abcdef")(2, "evaluate", "--model", model, "--data", filepath.Join(dir, "tumor.csv"), "--target", "benign")
	if !strings.Contains(errOut, "MLFLOW_RUN_ID=0123456789abcdef0123456789abcdef: the server at "+s.URL+" has no such run") {
		t.Fatalf("an unknown step run: %s", errOut)
	}
}

// The gate passes with no champion, fails a candidate worse than the
// champion by the margin, and passes a better one.
func TestGateStep(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	dir := addTumorData(t, cli)
	data := filepath.Join(dir, "tumor.csv")
	work := t.TempDir()
	weak, strong := filepath.Join(work, "weak"), filepath.Join(work, "strong")
	cli(0, "train", "--data", data, "--target", "benign", "--no-track", "-o", weak, "--valid-fraction", "0",
		"-p", "num_boost_round=1", "-p", "max_depth=1")
	cli(0, "train", "--data", data, "--target", "benign", "--no-track", "-o", strong, "--valid-fraction", "0",
		"-p", "num_boost_round=60", "-p", "max_depth=4")

	gate := func(code int, candidate string, extra ...string) (string, string) {
		t.Helper()
		return cli(code, append([]string{"models", "gate", "--candidate", candidate, "--data", "data:tumor@v1", "--target", "benign",
			"--metric", "auc", "--champion", "models:/tumor@champion"}, extra...)...)
	}
	metrics := filepath.Join(work, "out", "metrics.json")
	out, _ := gate(0, weak, "--require", "auc>=0.5", "--metrics-out", metrics)
	for _, want := range []string{"METRIC  CANDIDATE  CHAMPION  RULE         RESULT", "auc     ", "no champion  pass",
		"passed on the thresholds alone: no champion (model tumor is not registered)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("gate with no champion lacks %q:\n%s", want, out)
		}
	}
	var written map[string]float64
	if raw, err := os.ReadFile(metrics); err != nil || json.Unmarshal(raw, &written) != nil || written["auc"] <= 0.5 || written["log_loss"] == 0 {
		t.Fatalf("--metrics-out: %v %v", err, written)
	}
	_, errOut := gate(2, weak, "--require", "auc>=0.999")
	if !strings.Contains(errOut, "gate failed for "+weak+": auc is ") || !strings.Contains(errOut, "not >= 0.999") {
		t.Fatalf("an unmet threshold: %s", errOut)
	}

	// XGBoost's small.json as the champion: AUC 0.9821875 on tumor.csv.
	registerTumorModel(t, c)
	out, errOut = gate(2, weak, "--margin", "0.01")
	if !strings.Contains(out, "0.982187") || !strings.Contains(out, ">= champion + 0.01  FAIL") ||
		!strings.Contains(errOut, "against the champion's 0.982187 (higher is better), not >= 0.992188 (margin 0.01)") {
		t.Fatalf("a worse candidate:\nstdout: %s\nstderr: %s", out, errOut)
	}
	out, _ = gate(0, strong, "--margin", "0.01", "--require", "log_loss<0.3")
	if !strings.Contains(out, "log_loss  ") || !strings.Contains(out, ">= champion + 0.01  pass") || !strings.Contains(out, "passed: "+strong+" against champion models:/tumor/1") {
		t.Fatalf("a better candidate:\n%s", out)
	}
	// Lower is better for a loss: the strong model's log-loss is below
	// the champion's 0.330.
	out, _ = gate(0, strong, "--metric", "log_loss")
	if !strings.Contains(out, "<= champion  pass") {
		t.Fatalf("a loss metric:\n%s", out)
	}
	// A registered candidate is scored the same way; the champion against
	// itself passes only without a margin.
	gate(0, "models:/tumor@champion")
	gate(2, "models:/tumor/1", "--margin", "0.001")
	// A model directory may be the champion too.
	if out, _ := gate(0, strong, "--champion", weak, "--margin", "0.05"); !strings.Contains(out, "passed: "+strong+" against champion "+weak) {
		t.Fatalf("a directory as the champion:\n%s", out)
	}
	out, _ = gate(0, strong, "--champion", "models:/tumor@none")
	if !strings.Contains(out, "no champion (alias none of model tumor is not set)") {
		t.Fatalf("an unset alias:\n%s", out)
	}

	// As a step, both models' metrics land in the step's run.
	runID := mfRunID(c.createRun("0"))
	stepCLI(t, s, runID)(0, "models", "gate", "--candidate", strong, "--data", "data:tumor@v1", "--target", "benign", "--metric", "auc",
		"--champion", "models:/tumor@champion")
	m := mfMetrics(c.getRun(runID))
	if m["gate_passed"] != 1 || math.Abs(m["champion.auc"]-0.9821875) > 1e-9 || m["candidate.auc"] < m["champion.auc"] {
		t.Fatalf("the gate step's run has metrics %v", m)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metric", "rmse"}, "--metric rmse: a binary model's evaluation has no such metric; it has auc, "},
		{[]string{"--require", "auc=>0.8"}, `--require "auc=>0.8": unknown operator`},
		{[]string{"--champion", "tumor@champion"}, `--champion tumor@champion: not models:/NAME@ALIAS, models:/NAME/VERSION or a model directory`},
		{[]string{"--margin", "NaN"}, "--margin NaN: must be a finite number"},
	} {
		if _, errOut := gate(2, strong, tc.args...); !strings.Contains(errOut, tc.want) {
			t.Errorf("gate %v: %s, want %q", tc.args, errOut, tc.want)
		}
	}
}

// Register writes --out with the training run as the version's run, and a
// later step promotes it with --version-file, through the model's policy.
func TestRegisterAndPromoteSteps(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	addTumorData(t, cli)
	work := t.TempDir()

	model := filepath.Join(work, "model")
	out, _ := cli(0, "train", "--data", "data:tumor@latest", "--target", "benign", "-o", model, "-p", "num_boost_round=10", "--seed", "7")
	i := strings.Index(out, "logged as run ")
	trainRun := strings.Fields(out[i+len("logged as run "):])[0]

	regFile := filepath.Join(work, "out", "registered.json")
	out, _ = cli(0, "models", "register", "tumor-steps", model, "--out", regFile)
	if !strings.Contains(out, "registered models:/tumor-steps/1 from runs:/"+trainRun+"/model (4 files verified)") {
		t.Fatalf("register:\n%s", out)
	}
	var reg struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		RunID   string `json:"run_id"`
		Source  string `json:"source"`
	}
	raw, err := os.ReadFile(regFile)
	if err != nil || json.Unmarshal(raw, &reg) != nil {
		t.Fatalf("--out: %v %s", err, raw)
	}
	if reg.Name != "tumor-steps" || reg.Version != 1 || reg.RunID != trainRun || reg.Source != "runs:/"+trainRun+"/model" {
		t.Fatalf("--out wrote %s; want version 1 of tumor-steps from run %s", raw, trainRun)
	}
	if v := c.getVersion("tumor-steps", "1"); mfStr(v["run_id"]) != trainRun || mfStr(v["status"]) != "READY" {
		t.Fatalf("the version: %v", v)
	}
	if lin, _ := cli(0, "lineage", "models:/tumor-steps/1"); !strings.Contains(lin, "registered from runs:/"+trainRun) || !strings.Contains(lin, "consumed data:tumor@v1") {
		t.Fatalf("lineage of the registered version:\n%s", lin)
	}
	cli(0, "models", "verify", "tumor-steps/1")

	// A directory that differs from what its run logged is refused.
	changed := filepath.Join(work, "changed")
	if err := os.CopyFS(changed, os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(changed, "requirements.txt"), []byte("mlflow\nxgboost\n"), 0o644)
	if _, errOut := cli(2, "models", "register", "tumor-steps", changed); !strings.Contains(errOut, "differs from what run "+trainRun+" logged at model/: requirements.txt has ") {
		t.Fatalf("a changed model directory: %s", errOut)
	}

	// A model with no run is logged to the step's run and registered from it.
	untracked := filepath.Join(work, "untracked")
	cli(0, "train", "--data", "data:tumor@latest", "--target", "benign", "--no-track", "-o", untracked, "-p", "num_boost_round=3")
	stepRun := mfRunID(c.createRun("0"))
	out, _ = stepCLI(t, s, stepRun)(0, "models", "register", "tumor-steps", untracked, "--json")
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.Version != 2 || reg.RunID != stepRun {
		t.Fatalf("register a model with no run as a step: %v\n%s", err, out)
	}
	if status := mfStr(mfDig(c.getRun(stepRun), "info.status")); status != "RUNNING" {
		t.Fatalf("the step's run is %s after register", status)
	}

	// Promotion by --version-file goes through the policy like any other.
	policy := filepath.Join(work, "policy.yaml")
	os.WriteFile(policy, []byte("aliases:\n  champion:\n    metrics:\n      - {metric: auc, op: \">=\", value: 0.9999}\n"), 0o644)
	cli(0, "models", "policy", "set", "tumor-steps", "-f", policy)
	out, errOut := cli(2, "models", "promote", "tumor-steps", "--version-file", regFile, "--to", "champion")
	if !strings.Contains(out, "gates for tumor-steps version 1 to alias \"champion\"") || !strings.Contains(errOut, "cannot promote tumor-steps version 1") {
		t.Fatalf("a promotion the policy refuses:\nstdout: %s\nstderr: %s", out, errOut)
	}
	os.WriteFile(policy, []byte("aliases:\n  champion:\n    metrics:\n      - {metric: auc, op: \">=\", value: 0.5}\n"), 0o644)
	cli(0, "models", "policy", "set", "tumor-steps", "-f", policy)
	out, _ = cli(0, "models", "promote", "tumor-steps", "--version-file", regFile, "--to", "champion")
	if !strings.Contains(out, `promoted tumor-steps version 1 to alias "champion"`) {
		t.Fatalf("promote --version-file:\n%s", out)
	}
	alias := c.regOK("GET", "registered-models/alias", map[string]any{"name": "tumor-steps", "alias": "champion"})
	if mfStr(mfDig(alias, "model_version.version")) != "1" {
		t.Fatalf("the alias points at %v", alias)
	}
	if _, errOut := cli(2, "models", "promote", "other", "--version-file", regFile, "--to", "champion"); !strings.Contains(errOut, `registers model "tumor-steps", not "other"`) {
		t.Fatalf("a version file of another model: %s", errOut)
	}
}
