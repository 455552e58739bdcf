package e2e

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pyfuncModels writes two MLflow model directories with Debian's python3:
// "ridge", a scikit-learn pipeline pickled as mlflow.sklearn saves it,
// with its own predictions for three rows; and "flaky", a custom
// python_function model (loader_module in its code directory) that fails
// every request and kills its worker process when radius is -1.
const pyfuncModels = `
import json, os, pickle, sys
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]
cols = ["radius", "texture", "perimeter", "area"]
sig = "signature:\n  inputs: '" + json.dumps([{"type": "double", "name": c} for c in cols]) + "'\n  outputs: '[{\"type\": \"double\"}]'\n"
rng = np.random.default_rng(7)
X = rng.normal(size=(200, 4)) * [3, 4, 20, 300] + [14, 19, 92, 650]
y = X @ [0.3, -0.1, 0.02, 0.001] + rng.normal(size=200) * 0.1
model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X, y)

ridge = os.path.join(out, "ridge")
os.makedirs(ridge)
with open(os.path.join(ridge, "model.pkl"), "wb") as f:
    pickle.dump(model, f)
with open(os.path.join(ridge, "MLmodel"), "w") as f:
    f.write("artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
            "    model_path: model.pkl\n    predict_fn: predict\n  sklearn:\n    pickled_model: model.pkl\n"
            "    serialization_format: pickle\n" + sig)
# Rows exact in float32, so the server's inputs are the script's.
rows = np.array([[17.5, 10.25, 122.75, 1001.0], [20.5, 17.75, 132.875, 1326.0], [11.25, 21.5, 70.5, 386.0]])
json.dump({"rows": rows.tolist(), "predictions": model.predict(rows).tolist()}, open(os.path.join(out, "ridge.json"), "w"))

flaky = os.path.join(out, "flaky")
os.makedirs(os.path.join(flaky, "code"))
os.makedirs(os.path.join(flaky, "data"))
with open(os.path.join(flaky, "code", "flaky.py"), "w") as f:
    f.write('''import os

class Flaky:
    def predict(self, df):
        if (df["radius"] == -1).any():
            os._exit(3)
        raise ValueError("flaky model: cannot score %d rows" % len(df))

def _load_pyfunc(path):
    return Flaky()
''')
with open(os.path.join(flaky, "MLmodel"), "w") as f:
    f.write("artifact_path: model\nflavors:\n  python_function:\n    loader_module: flaky\n    code: code\n"
            "    data: data\n" + sig)
`

// registerPyfunc logs an MLflow model directory to a new run and registers
// it as the next version of name.
func registerPyfunc(t *testing.T, c *mlflowClient, name, dir string) {
	t.Helper()
	run := c.createRun("0")
	root := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		c.putArtifact(root+"/model/"+filepath.ToSlash(rel), string(body), "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.createVersion(name, "runs:/"+mfRunID(run)+"/model", mfRunID(run))
}

// python_function models are served by a managed Python worker: a
// scikit-learn pickle scores over HTTP as scikit-learn scores it; a canary
// that fails is rolled back by its rollout; a worker that dies is
// reported to the request that killed it and restarted.
func TestPythonModels(t *testing.T) {
	requirePython(t, "sklearn, numpy", "python3-sklearn")
	t.Setenv("SLIPWAY_PYTHON", crosscheckPython)
	dir := t.TempDir()
	if out, err := exec.Command(crosscheckPython, "-c", pyfuncModels, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing the models: %v\n%s", err, out)
	}
	var ridge struct {
		Rows        [][]float64 `json:"rows"`
		Predictions []float64   `json:"predictions"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "ridge.json"))
	if err != nil || json.Unmarshal(raw, &ridge) != nil {
		t.Fatalf("ridge.json: %v", err)
	}

	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	c.createModel("housing")
	registerPyfunc(t, c, "housing", filepath.Join(dir, "ridge"))
	registerPyfunc(t, c, "housing", filepath.Join(dir, "flaky"))
	out, _ := cli(0, "deploy", "create", "housing", "--model", "models:/housing/1")
	if !strings.Contains(out, "python_function") {
		t.Errorf("create:\n%s", out)
	}

	var flat []float64
	for _, r := range ridge.Rows {
		flat = append(flat, r...)
	}
	oip := map[string]any{"inputs": []map[string]any{{"name": "rows", "shape": []int{len(ridge.Rows), 4}, "datatype": "FP64", "data": flat}}}
	code, body := s.JSON("POST", "/v2/models/housing/infer", oip)
	if code != 200 {
		t.Fatalf("OIP infer: %d %v", code, body)
	}
	got := body["outputs"].([]any)[0].(map[string]any)["data"].([]any)
	for i, w := range ridge.Predictions {
		if g := got[i].(float64); math.Abs(g-w) > 1e-5*math.Max(1, math.Abs(w)) {
			t.Errorf("row %d: %v over HTTP, scikit-learn says %v", i, g, w)
		}
	}
	code, body = s.JSON("POST", "/deployments/housing/invocations", map[string]any{"dataframe_split": map[string]any{
		"columns": []string{"radius", "texture", "perimeter", "area"}, "data": ridge.Rows}})
	if preds, _ := body["predictions"].([]any); code != 200 || len(preds) != 3 || math.Abs(preds[2].(float64)-ridge.Predictions[2]) > 1e-5 {
		t.Errorf("invocations: %d %v", code, body)
	}

	// A rollout of the failing version is rolled back by the server.
	one := map[string]any{"inputs": []map[string]any{{"name": "rows", "shape": []int{1, 4}, "datatype": "FP64", "data": flat[:4]}}}
	load := startLoad(s, 2, "/v2/models/housing/infer", one)
	out, errOut := cli(1, "deploy", "rollout", "housing", "--model", "models:/housing/2", "--steps", "20,100",
		"--interval", "30s", "--min-requests", "20", "--watch")
	load.stop()
	if !strings.Contains(out, "rolled back at 20%") || !strings.Contains(errOut, "canary error rate 100.00%") {
		t.Errorf("rollout of a failing version:\n%s\n%s", out, errOut)
	}
	if routes := mfList(mfDig(s.OK("GET", "/api/v1/deployments/housing", nil), "deployment.split.routes")); len(routes) != 1 ||
		routes[0]["model"] != "models:/housing/1" || routes[0]["weight"] != 100.0 {
		t.Errorf("after the rollback: routes %v", routes)
	}
	_, raw = s.Do("GET", "/metrics", nil)
	m := regexp.MustCompile(`slipway_deployment_errors_total\{deployment="housing",model="housing",shadow="false",version="2"\} (\d+)`).FindSubmatch(raw)
	if n, _ := strconv.Atoi(string(m[1])); m == nil || n < 20 {
		t.Errorf("errors of version 2 on /metrics: %q", m)
	}

	// A worker that dies is reported and replaced.
	cli(0, "deploy", "create", "flaky", "--model", "models:/housing/2")
	kill := map[string]any{"inputs": []map[string]any{{"name": "rows", "shape": []int{1, 4}, "datatype": "FP64", "data": []float64{-1, 1, 1, 1}}}}
	start := time.Now()
	code, raw = s.Do("POST", "/v2/models/flaky/infer", kill)
	if code < 500 || !strings.Contains(string(raw), "exit") || time.Since(start) > 20*time.Second {
		t.Errorf("a request that kills the worker: %d %s after %s", code, raw, time.Since(start))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, raw = s.Do("POST", "/v2/models/flaky/infer", one)
		if strings.Contains(string(raw), "flaky model: cannot score 1 rows") {
			break // a new worker answered with the model's own error
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker was not restarted: %d %s", code, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
