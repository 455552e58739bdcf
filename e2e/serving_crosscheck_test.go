package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// crosscheckPython is Debian's interpreter, which has python3-xgboost,
// python3-torch and python3-onnx; another python3 on PATH may not.
const crosscheckPython = "/usr/bin/python3"

// requirePython skips the test unless crosscheckPython imports modules;
// in CI (CI=true) it fails instead, since CI installs the packages.
func requirePython(t *testing.T, modules, packages string) {
	t.Helper()
	out, err := exec.Command(crosscheckPython, "-c", "import "+modules).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import %s (%s); apt-get install %s", crosscheckPython, modules, strings.TrimSpace(lastLine(string(out))), packages)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// crossCase is one model and its library's predictions, as the Python
// scripts below write them. Missing values in X are null.
type crossCase struct {
	Name     string       `json:"name"`
	Library  string       `json:"library"`
	File     string       `json:"file"`
	Features []string     `json:"features"`
	X        [][]*float64 `json:"x"`
	Y        [][]float64  `json:"y"`
}

// runCrossScript runs a Python script that writes cases.json into a temp
// folder (with the model files) and returns the cases and the folder.
func runCrossScript(t *testing.T, script string) (string, []crossCase) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(crosscheckPython, "-c", script, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []crossCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	return dir, cases
}

// registerModelFile registers one model file as version 1 of name, as
// MLflow's client does: an MLflow model directory (MLmodel naming the
// file under flavor) uploaded to a run through the artifact proxy, then
// a version whose source is that directory.
func registerModelFile(t *testing.T, c *mlflowClient, name, flavor, path string) {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Base(path)
	mlmodel := "artifact_path: model\nflavors:\n  " + flavor + ":\n    data: " + file + "\n"
	if flavor == "xgboost" {
		mlmodel += "    model_format: json\n"
	}
	run := c.createRun("0")
	runID := mfRunID(run)
	root := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	c.putArtifact(root+"/model/MLmodel", mlmodel, "")
	c.putArtifact(root+"/model/"+file, string(content), "application/octet-stream")
	c.createModel(name)
	c.createVersion(name, "runs:/"+runID+"/model", runID)
}

// servedOutputs are the output names the deployment's model metadata
// lists, in the model's order.
func servedOutputs(t *testing.T, s *Server, name string) []string {
	t.Helper()
	meta := s.OK("GET", "/v2/models/"+name, nil)
	var names []string
	for _, o := range meta["outputs"].([]any) {
		names = append(names, o.(map[string]any)["name"].(string))
	}
	return names
}

// checkOIP scores the case's rows over the Open Inference Protocol, as
// one [N, F] tensor and as one tensor per column, and compares every
// output with the library's.
func checkOIP(t *testing.T, s *Server, c crossCase, outputs []string) {
	t.Helper()
	n, nf := len(c.X), len(c.Features)
	flat := make([]*float64, 0, n*nf)
	for _, row := range c.X {
		flat = append(flat, row...)
	}
	bodies := map[string]any{
		"matrix": map[string]any{"id": "m", "inputs": []map[string]any{{"name": "x", "shape": []int{n, nf}, "datatype": "FP32", "data": flat}}},
	}
	var cols []map[string]any
	for j, f := range c.Features {
		col := make([]*float64, n)
		for i := range c.X {
			col[i] = c.X[i][j]
		}
		cols = append(cols, map[string]any{"name": f, "shape": []int{n}, "datatype": "FP64", "data": col})
	}
	// Columns in reverse order: the server places them by name.
	for i, j := 0, len(cols)-1; i < j; i, j = i+1, j-1 {
		cols[i], cols[j] = cols[j], cols[i]
	}
	bodies["tensors"] = map[string]any{"id": "t", "inputs": cols}
	for layout, body := range bodies {
		code, out := s.JSON("POST", "/v2/models/"+c.Name+"/infer", body)
		if code != 200 {
			t.Fatalf("%s: OIP %s: %d %v", c.Name, layout, code, out)
		}
		tensors := out["outputs"].([]any)
		if len(tensors) != len(outputs) {
			t.Fatalf("%s: OIP %s answered %d outputs; the model has %v", c.Name, layout, len(tensors), outputs)
		}
		got := make([][]float64, n)
		for i := range got {
			got[i] = make([]float64, len(outputs))
		}
		for k, tv := range tensors {
			tensor := tv.(map[string]any)
			if tensor["name"] != outputs[k] {
				t.Fatalf("%s: OIP %s: output %d is %v, want %s", c.Name, layout, k, tensor["name"], outputs[k])
			}
			data := tensor["data"].([]any)
			if len(data) != n {
				t.Fatalf("%s: OIP %s: output %s has %d values for %d rows", c.Name, layout, outputs[k], len(data), n)
			}
			for i, v := range data {
				got[i][k] = v.(float64)
			}
		}
		compareRows(t, c, "OIP "+layout, got)
	}
}

// checkInvocations scores the case's rows through MLflow's /invocations
// (dataframe_split) and compares them with the library's.
func checkInvocations(t *testing.T, s *Server, c crossCase) {
	t.Helper()
	body := map[string]any{"dataframe_split": map[string]any{"columns": c.Features, "data": c.X}}
	code, out := s.JSON("POST", "/deployments/"+c.Name+"/invocations", body)
	if code != 200 {
		t.Fatalf("%s: invocations: %d %v", c.Name, code, out)
	}
	preds := out["predictions"].([]any)
	if len(preds) != len(c.X) {
		t.Fatalf("%s: invocations answered %d predictions for %d rows", c.Name, len(preds), len(c.X))
	}
	got := make([][]float64, len(preds))
	for i, p := range preds {
		switch p := p.(type) {
		case float64:
			got[i] = []float64{p}
		case []any:
			for _, v := range p {
				got[i] = append(got[i], v.(float64))
			}
		}
	}
	compareRows(t, c, "invocations", got)
}

func compareRows(t *testing.T, c crossCase, how string, got [][]float64) {
	t.Helper()
	worst := 0.0
	for i, want := range c.Y {
		if len(got[i]) != len(want) {
			t.Fatalf("%s: %s: row %d has %d outputs; %s has %d", c.Name, how, i, len(got[i]), c.Library, len(want))
		}
		for k, w := range want {
			d := math.Abs(got[i][k] - w)
			if d > 1e-5 || math.IsNaN(d) {
				t.Fatalf("%s: %s: row %d output %d is %v; %s computed %v", c.Name, how, i, k, got[i][k], c.Library, w)
			}
			worst = max(worst, d)
		}
	}
	t.Logf("%s: %s: %d rows agree with %s within %.2g", c.Name, how, len(c.Y), c.Library, worst)
}

// xgboostCrossScript trains XGBoost models of three objectives on named
// features, saves them as JSON and writes test rows (some values missing)
// with XGBoost's own predictions.
const xgboostCrossScript = `
import json, os, sys
import numpy as np, xgboost as xgb
out = sys.argv[1]
rng = np.random.default_rng(3)
names = ["age", "income", "tenure", "balance", "score", "visits"]
f = len(names)
x = rng.normal(size=(2000, f)).astype(np.float32)
s = x @ rng.normal(size=f) + 0.5 * np.sin(3 * x[:, 0])
test = rng.normal(size=(40, f)).astype(np.float32)
test[rng.random(test.shape) < 0.1] = np.nan
cases = []
for name, params, y in [
    ("xgb-binary", {"objective": "binary:logistic"}, (s > 0).astype(int)),
    ("xgb-regression", {"objective": "reg:squarederror"}, s),
    ("xgb-softprob", {"objective": "multi:softprob", "num_class": 3}, np.digitize(s, np.quantile(s, [1/3, 2/3]))),
]:
    params.update({"tree_method": "hist", "max_depth": 4, "eta": 0.3, "seed": 1, "nthread": 1})
    bst = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names), 30)
    path = os.path.join(out, name + ".json")
    bst.save_model(path)
    p = bst.predict(xgb.DMatrix(test, feature_names=names)).reshape(len(test), -1)
    cases.append({"name": name, "library": "XGBoost " + xgb.__version__, "file": path, "features": names,
                  "x": [[None if np.isnan(v) else float(v) for v in row] for row in test],
                  "y": [[float(v) for v in row] for row in p]})
json.dump(cases, open(os.path.join(out, "cases.json"), "w"))
`

// TestServingCrosscheckXGBoost registers XGBoost models trained by
// XGBoost itself, deploys them and scores them over HTTP through both
// protocols: every answer is XGBoost's own prediction within 1e-5.
func TestServingCrosscheckXGBoost(t *testing.T) {
	requirePython(t, "xgboost, numpy", "python3-xgboost")
	_, cases := runCrossScript(t, xgboostCrossScript)
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	for _, cc := range cases {
		t.Run(cc.Name, func(t *testing.T) {
			registerModelFile(t, c, cc.Name, "xgboost", cc.File)
			cli(0, "deploy", "create", cc.Name, "--model", "models:/"+cc.Name+"/1")
			outputs := servedOutputs(t, s, cc.Name)
			if len(outputs) != len(cc.Y[0]) {
				t.Fatalf("the deployment lists outputs %v; XGBoost predicts %d values a row", outputs, len(cc.Y[0]))
			}
			checkOIP(t, s, cc, outputs)
			checkInvocations(t, s, cc)
		})
	}
}

// torchCrossScript exports a small MLP with torch.onnx.export and writes
// test rows with torch's own outputs.
const torchCrossScript = `
import json, os, sys
import torch, onnx
out = sys.argv[1]
torch.manual_seed(11)
f = 12
model = torch.nn.Sequential(
    torch.nn.Linear(f, 16), torch.nn.ReLU(),
    torch.nn.Linear(16, 8), torch.nn.Tanh(),
    torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1))
model.eval()
path = os.path.join(out, "mlp.onnx")
torch.onnx.export(model, torch.randn(4, f), path, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
onnx.checker.check_model(onnx.load(path))
x = torch.randn(40, f)
with torch.no_grad():
    y = model(x).numpy()
names = ["input_%d" % j for j in range(f)]
json.dump([{"name": "torch-mlp", "library": "torch " + torch.__version__, "file": path, "features": names,
            "x": [[float(v) for v in row] for row in x.numpy()],
            "y": [[float(v) for v in row] for row in y]}], open(os.path.join(out, "cases.json"), "w"))
`

// TestServingCrosscheckONNX registers an MLP exported by torch as an ONNX
// model, deploys it and scores it over HTTP through both protocols: every
// output is torch's within 1e-5.
func TestServingCrosscheckONNX(t *testing.T) {
	requirePython(t, "torch, onnx", "python3-torch python3-onnx")
	_, cases := runCrossScript(t, torchCrossScript)
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	for _, cc := range cases {
		t.Run(cc.Name, func(t *testing.T) {
			registerModelFile(t, c, cc.Name, "onnx", cc.File)
			cli(0, "deploy", "create", cc.Name, "--model", "models:/"+cc.Name+"/1")
			meta := s.OK("GET", "/v2/models/"+cc.Name, nil)
			if meta["platform"] != "onnx" {
				t.Errorf("model metadata: platform %v, want onnx", meta["platform"])
			}
			var inputs []string
			for _, in := range meta["inputs"].([]any) {
				inputs = append(inputs, in.(map[string]any)["name"].(string))
			}
			if strings.Join(inputs, ",") != strings.Join(cc.Features, ",") {
				t.Fatalf("the deployment's inputs are %v; the exported graph takes %d features named %v", inputs, len(cc.Features), cc.Features)
			}
			outputs := servedOutputs(t, s, cc.Name)
			if len(outputs) != len(cc.Y[0]) {
				t.Fatalf("the deployment lists outputs %v; torch computes %d values a row", outputs, len(cc.Y[0]))
			}
			checkOIP(t, s, cc, outputs)
			checkInvocations(t, s, cc)
		})
	}
}
