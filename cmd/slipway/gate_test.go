package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
)

func TestParseRequirement(t *testing.T) {
	cases := []struct {
		in      string
		want    requirement
		wantErr string
	}{
		{in: "auc>=0.8", want: requirement{"auc", ">=", 0.8}},
		{in: " log_loss < 0.45 ", want: requirement{"log_loss", "<", 0.45}},
		{in: "rmse<=12", want: requirement{"rmse", "<=", 12}},
		{in: "accuracy>0.9", want: requirement{"accuracy", ">", 0.9}},
		{in: "r2==1", want: requirement{"r2", "==", 1}},
		{in: "auc>=-1e-3", want: requirement{"auc", ">=", -0.001}},
		{in: "auc", wantErr: "no operator"},
		{in: ">=0.8", wantErr: "no metric before the operator"},
		{in: "auc=>0.8", wantErr: `unknown operator at "=>0.8"`},
		{in: "auc!=0.8", wantErr: "unknown operator"},
		{in: "auc=0.8", wantErr: "unknown operator"},
		{in: "auc>=high", wantErr: `"high" is not a finite number`},
		{in: "auc>=NaN", wantErr: "not a finite number"},
		{in: "auc>=", wantErr: `"" is not a finite number`},
	}
	for _, tc := range cases {
		got, err := parseRequirement(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--require") || errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("parseRequirement(%q) = %v, %v; want an invalid-argument error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseRequirement(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestDecideGate(t *testing.T) {
	req := func(s string) requirement {
		r, err := parseRequirement(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	binary := func(auc, logLoss float64) map[string]float64 {
		return map[string]float64{"auc": auc, "log_loss": logLoss, "accuracy": 0.9}
	}
	cases := []struct {
		name     string
		in       gateInput
		passed   bool
		rules    []string // metric rule result, in order
		failures []string
	}{
		{name: "no champion passes on thresholds",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.85, 0.4), metric: "auc", noChampion: "alias champion of model m is not set", requires: []requirement{req("auc>=0.8")}},
			passed: true, rules: []string{"auc >= 0.8 pass", "auc no champion pass"}},
		{name: "no champion fails a threshold",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.75, 0.4), metric: "auc", noChampion: "no --champion given", requires: []requirement{req("auc>=0.8")}},
			passed: false, rules: []string{"auc >= 0.8 FAIL", "auc no champion pass"}, failures: []string{"auc is 0.75, not >= 0.8"}},
		{name: "higher is better, beats by the margin",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.86, 0.4), champion: binary(0.85, 0.4), metric: "auc", margin: 0.01},
			passed: true, rules: []string{"auc >= champion + 0.01 pass"}},
		{name: "higher is better, short of the margin",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.855, 0.4), champion: binary(0.85, 0.4), metric: "auc", margin: 0.01},
			passed: false, rules: []string{"auc >= champion + 0.01 FAIL"},
			failures: []string{"auc is 0.855 against the champion's 0.85 (higher is better), not >= 0.86 (margin 0.01)"}},
		{name: "a tie passes without a margin",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.85, 0.4), champion: binary(0.85, 0.4), metric: "auc"},
			passed: true, rules: []string{"auc >= champion pass"}},
		{name: "a negative margin tolerates a regression",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.845, 0.4), champion: binary(0.85, 0.4), metric: "auc", margin: -0.01},
			passed: true, rules: []string{"auc >= champion - 0.01 pass"}},
		{name: "lower is better for a loss, beats",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.8, 0.30), champion: binary(0.9, 0.35), metric: "log_loss", margin: 0.02},
			passed: true, rules: []string{"log_loss <= champion - 0.02 pass"}},
		{name: "lower is better for a loss, worse",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.95, 0.36), champion: binary(0.9, 0.35), metric: "log_loss"},
			passed: false, rules: []string{"log_loss <= champion FAIL"},
			failures: []string{"log_loss is 0.36 against the champion's 0.35 (lower is better), not <= 0.35"}},
		{name: "regression error metric",
			in: gateInput{task: evaluation.TaskRegression, candidate: map[string]float64{"rmse": 2, "r2": 0.7}, champion: map[string]float64{"rmse": 3, "r2": 0.5},
				metric: "rmse", margin: 0.5, requires: []requirement{req("r2>=0.6")}},
			passed: true, rules: []string{"r2 >= 0.6 pass", "rmse <= champion - 0.5 pass"}},
		{name: "thresholds and the champion both count",
			in: gateInput{task: evaluation.TaskBinary, candidate: binary(0.9, 0.5), champion: binary(0.85, 0.4), metric: "auc",
				requires: []requirement{req("log_loss<0.45")}},
			passed: false, rules: []string{"log_loss < 0.45 FAIL", "auc >= champion pass"}, failures: []string{"log_loss is 0.5, not < 0.45"}},
		{name: "undefined on the candidate fails",
			in: gateInput{task: evaluation.TaskBinary, candidate: map[string]float64{"accuracy": 1}, champion: binary(0.85, 0.4), metric: "auc",
				requires: []requirement{req("log_loss<1")}},
			passed: false, rules: []string{"log_loss < 1 FAIL", "auc >= champion FAIL"}},
		{name: "undefined on the champion passes",
			in:     gateInput{task: evaluation.TaskBinary, candidate: binary(0.8, 0.4), champion: map[string]float64{"accuracy": 1}, metric: "auc"},
			passed: true, rules: []string{"auc >= champion pass"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decideGate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed != tc.passed {
				t.Errorf("passed %v, want %v: %+v", res.Passed, tc.passed, res.Rules)
			}
			var rules []string
			for _, r := range res.Rules {
				v := "pass"
				if !r.Passed {
					v = "FAIL"
				}
				rules = append(rules, r.Metric+" "+r.Rule+" "+v)
			}
			if strings.Join(rules, "|") != strings.Join(tc.rules, "|") {
				t.Errorf("rules\n%s\nwant\n%s", strings.Join(rules, "\n"), strings.Join(tc.rules, "\n"))
			}
			for i, f := range tc.failures {
				if got := res.failures(); i >= len(got) || got[i] != f {
					t.Errorf("failures %q, want %q", got, tc.failures)
				}
			}
		})
	}
}

func TestDecideGateUnknownMetric(t *testing.T) {
	for _, in := range []gateInput{
		{task: evaluation.TaskRegression, candidate: map[string]float64{"rmse": 1}, metric: "auc"},
		{task: evaluation.TaskBinary, candidate: map[string]float64{"auc": 1}, metric: "auc", requires: []requirement{{"rmse", "<", 1}}},
		{task: evaluation.TaskBinary, candidate: map[string]float64{"auc": 1}, metric: "AUC"},
	} {
		_, err := decideGate(in)
		if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "evaluation has no such metric") || !strings.Contains(err.Error(), "; it has ") {
			t.Errorf("%+v: %v", in, err)
		}
	}
	// Other tools' names get a hint.
	for _, tc := range []struct {
		task         evaluation.Task
		metric, want string
	}{
		{evaluation.TaskBinary, "roc_auc", "--metric roc_auc: a binary model's evaluation has no such metric (did you mean auc?); it has auc, "},
		{evaluation.TaskMulticlass, "auc", "(did you mean auc_ovr_macro?)"},
		{evaluation.TaskRegression, "neg_root_mean_squared_error", "(did you mean rmse?)"},
	} {
		_, err := decideGate(gateInput{task: tc.task, metric: tc.metric})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.task, tc.metric, err, tc.want)
		}
	}
}

func TestVersionFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "v.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		body, name, version, wantErr string
	}{
		{body: `{"name":"credit","version":3,"run_id":"abc","source":"runs:/abc/model"}`, name: "credit", version: "3"},
		{body: `{"name":"credit","version":"12"}`, name: "credit", version: "12"},
		{body: `{"name":"credit","version":3}`, name: "churn", wantErr: `registers model "credit", not "churn"`},
		{body: `{"name":"credit"}`, name: "credit", wantErr: `field "version" is missing`},
		{body: `{"version":2}`, name: "credit", wantErr: `field "name" is missing or empty`},
		{body: `{"name":"credit","version":0}`, name: "credit", wantErr: `field "version" is 0; it must be a version number, 1 or more`},
		{body: `{"name":"credit","version":"two"}`, name: "credit", wantErr: `field "version" is "two"`},
		{body: `[1]`, name: "credit", wantErr: "not a JSON object"},
	}
	for _, tc := range cases {
		name, version, err := promotedVersion([]string{tc.name}, write(tc.body))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("%s: %v, want %q", tc.body, err, tc.wantErr)
			}
			continue
		}
		if err != nil || name != tc.name || version != tc.version {
			t.Errorf("%s: %s %s %v", tc.body, name, version, err)
		}
	}
	if _, _, err := promotedVersion([]string{"credit", "3"}, write(`{"name":"credit","version":3}`)); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("VERSION and --version-file: %v", err)
	}
	if _, _, err := promotedVersion([]string{"credit"}, ""); err == nil || !strings.Contains(err.Error(), "VERSION (or --version-file FILE) is required") {
		t.Errorf("neither: %v", err)
	}
	if _, v, err := promotedVersion([]string{"credit", "7"}, ""); err != nil || v != "7" {
		t.Errorf("VERSION: %s %v", v, err)
	}
}

func TestReadModelDir(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := readModelDir(dir); err == nil || !strings.Contains(err.Error(), "has no MLmodel file") {
		t.Fatalf("no MLmodel: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "MLmodel"), []byte("run_id: abc123\nartifact_path: /models/m/\nflavors: {}\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "w.bin"), []byte("weights"), 0o644)
	files, meta, err := readModelDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if meta.RunID != "abc123" || meta.ArtifactPath != "models/m" {
		t.Errorf("meta %+v", meta)
	}
	sum := sha256.Sum256([]byte("weights"))
	if f, ok := files["sub/w.bin"]; !ok || f.size != 7 || f.sha256 != hex.EncodeToString(sum[:]) || len(files) != 2 {
		t.Errorf("files %+v", files)
	}
	os.WriteFile(filepath.Join(dir, "MLmodel"), []byte("flavors: {}\n"), 0o644)
	if _, meta, _ := readModelDir(dir); meta.RunID != "" || meta.ArtifactPath != "model" {
		t.Errorf("defaults: %+v", meta)
	}
	if _, _, err := readModelDir(filepath.Join(dir, "sub", "w.bin")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}
}
