package pyfunc_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/models/pyfunc"
)

// testPython is the interpreter the tests run workers under: Debian's,
// which has the distribution's numpy, pandas and scikit-learn.
func testPython() string {
	if p := os.Getenv("SLIPWAY_TEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// needPython returns the test interpreter when it can import modules,
// and skips the test when it cannot (fails it under CI=true, where the
// packages must be installed).
func needPython(t testing.TB, modules ...string) string {
	t.Helper()
	py := testPython()
	key := strings.Join(modules, ", ")
	msg, ok := probed.Load(key)
	if !ok {
		msg = ""
		out, err := exec.Command(py, "-c", "import "+key).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			msg = py + " cannot import " + key + " (install python3-pandas python3-sklearn): " + lines[len(lines)-1]
		}
		probed.Store(key, msg)
	}
	if msg != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// probed caches needPython's answers: starting Python takes a while.
var probed sync.Map

func write(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// trainScript trains scikit-learn models on float32-exact data, saves
// them as MLflow model directories the way mlflow.sklearn.save_model
// does, and writes the rows and sklearn's own predictions.
const trainScript = `
import json, os, pickle, sys
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.ensemble import RandomForestRegressor

out = sys.argv[1]
X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
X = X.astype(np.float32).astype(np.float64)
cols = ["sepal length", "sepal width", "petal_length", "petal_width"]
inputs = json.dumps([{"type": "double", "name": c, "required": True} for c in cols])
import pandas as pd
frame = pd.DataFrame(X, columns=cols)
# Fitted on named columns, the models check that the worker's DataFrame
# has the signature's names.
clf = LogisticRegression(max_iter=500).fit(frame, y)
reg = RandomForestRegressor(n_estimators=10, random_state=0).fit(frame, y.astype(np.float64))
rows = frame[:25]

def save(name, model, outputs, predict_fn=None):
    d = os.path.join(out, name)
    os.makedirs(d)
    with open(os.path.join(d, "model.pkl"), "wb") as f:
        pickle.dump(model, f)
    pf = "    loader_module: mlflow.sklearn\n    model_path: model.pkl\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n    python_version: 3.11.2\n"
    if predict_fn:
        pf += "    predict_fn: " + predict_fn + "\n"
    with open(os.path.join(d, "MLmodel"), "w") as f:
        f.write("artifact_path: model\nflavors:\n  python_function:\n" + pf +
                "  sklearn:\n    code: null\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n    sklearn_version: 1.2.1\n"
                "mlflow_version: 2.9.2\nsignature:\n  inputs: '" + inputs + "'\n" +
                ("  outputs: '" + outputs + "'\n" if outputs else "") +
                "  params: null\n")

save("labels", clf, json.dumps([{"type": "long"}]))
save("proba", clf, json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]), "predict_proba")
save("forest", reg, None)
json.dump({
    "rows": X[:25].tolist(),
    "labels": clf.predict(rows).tolist(),
    "proba": clf.predict_proba(rows).tolist(),
    "forest": reg.predict(rows).tolist(),
}, open(os.path.join(out, "expected.json"), "w"))
`

func TestSklearn(t *testing.T) {
	py := needPython(t, "numpy", "pandas", "sklearn")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "train.py"), trainScript)
	if out, err := exec.Command(py, filepath.Join(dir, "train.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("training: %v\n%s", err, out)
	}
	var want struct {
		Rows           [][]float64
		Labels, Forest []float64
		Proba          [][]float64
	}
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	var x []float32
	for _, r := range want.Rows {
		for _, v := range r {
			x = append(x, float32(v))
		}
	}
	flat := func(rows [][]float64) (out []float64) {
		for _, r := range rows {
			out = append(out, r...)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		outputs int
		want    []float64
	}{
		{"labels", 1, want.Labels},
		{"proba", 3, flat(want.Proba)},
		{"forest", 1, want.Forest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := pyfunc.Open(filepath.Join(dir, tc.name), pyfunc.Options{Python: py, Workers: 2, Logger: logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			if m.NumFeatures() != 4 || m.NumOutputs() != tc.outputs || m.Signature().Inputs[0].Name != "sepal length" {
				t.Fatalf("features %d outputs %d signature %+v", m.NumFeatures(), m.NumOutputs(), m.Signature())
			}
			out := make([]float32, len(want.Rows)*tc.outputs)
			if err := m.Predict(x, out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				if math.Abs(float64(out[i])-tc.want[i]) > 1e-6 {
					t.Fatalf("value %d = %v; sklearn predicted %v", i, out[i], tc.want[i])
				}
			}
			// Rows one at a time, from many goroutines, across both workers.
			var wg sync.WaitGroup
			errs := make(chan error, len(want.Rows))
			for r := range want.Rows {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := make([]float32, tc.outputs)
					if err := m.PredictRow(x[4*r:4*r+4], got); err != nil {
						errs <- err
						return
					}
					for j, v := range got {
						if math.Abs(float64(v)-tc.want[r*tc.outputs+j]) > 1e-6 {
							errs <- errors.New("row prediction differs from sklearn's")
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// loaderModel is a model with its own loader module in a code directory,
// which misbehaves on magic values of its first column.
const loaderModel = `
import os, sys, time

class Model:
    def __init__(self, path):
        self.path = path

    def predict(self, df):
        print("predicting", len(df), "rows")  # must not reach the protocol
        x = df.to_numpy(dtype="float64")
        out = []
        for row in x:
            a = row[0]
            if a == 666:
                sys.stderr.write("crashing on purpose\n")
                sys.stderr.flush()
                os._exit(3)
            if a == 777:
                time.sleep(3600)
            if a == 888:
                open(os.environ["SLIPWAY_TEST_MARK"], "w").close()
                time.sleep(0.5)
            if a == 555:
                raise ValueError("a must not be 555")
            if a == 444:
                return ["not a number"] * len(x)
            if a == 333:
                return [[1.0, 2.0]] * len(x)
            out.append(2 * a + row[1])
        return out

def _load_pyfunc(path):
    if os.path.basename(path) == "broken":
        raise RuntimeError("weights are missing from " + os.path.basename(path))
    return Model(path)
`

// loaderDir writes a python_function model whose loader module lives in
// its code directory.
func loaderDir(t testing.TB, data string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "code", "slipway_test_model.py"), loaderModel)
	mlmodel := "flavors:\n  python_function:\n    loader_module: slipway_test_model\n    code: code\n"
	if data != "" {
		mlmodel += "    data: " + data + "\n"
		write(t, filepath.Join(dir, data, "weights.txt"), "1")
	}
	mlmodel += "    python_env: python_env.yaml\nsignature:\n  inputs: '[{\"name\": \"a\", \"type\": \"double\"}, {\"name\": \"b\", \"type\": \"long\"}]'\n" +
		"  outputs: '[{\"name\": \"y\", \"type\": \"double\"}]'\n"
	write(t, filepath.Join(dir, "MLmodel"), mlmodel)
	return dir
}

func openLoader(t *testing.T, opts pyfunc.Options) *pyfunc.Model {
	t.Helper()
	opts.Python = needPython(t, "numpy", "pandas")
	opts.Logger = logger(t)
	m, err := pyfunc.Open(loaderDir(t, "weights"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func predictOK(t *testing.T, m *pyfunc.Model, a, b float32) {
	t.Helper()
	out := []float32{0}
	if err := m.PredictRow([]float32{a, b}, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 2*a+b {
		t.Fatalf("predicted %v; want %v", out[0], 2*a+b)
	}
}

// eventually retries a request until it succeeds, as a client would
// while a worker restarts.
func eventually(t *testing.T, m *pyfunc.Model) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := []float32{0}
		err := m.PredictRow([]float32{1, 2}, out)
		if err == nil && out[0] == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoaderModule(t *testing.T) {
	m := openLoader(t, pyfunc.Options{})
	predictOK(t, m, 1, 2)
	x := []float32{1, 2, 3, 4, 5, 6}
	out := make([]float32, 3)
	if err := m.Predict(x, out); err != nil || out[0] != 4 || out[1] != 10 || out[2] != 16 {
		t.Fatalf("Predict = %v, %v", out, err)
	}
	for _, tc := range []struct {
		a    float32
		want string
	}{
		{555, "ValueError: a must not be 555"},
		{444, "the model predicted a value of type str; Slipway serves numeric predictions only"},
		{333, "the model predicted 2 values per row for 1 rows; its signature declares 1 outputs"},
	} {
		err := m.PredictRow([]float32{tc.a, 0}, out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("a=%v: %v; want an error containing %q", tc.a, err, tc.want)
		}
		// A model error leaves the worker up.
		predictOK(t, m, 1, 2)
	}
	if s := m.Stats(); s.Restarts != 0 || s.Ready != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := m.Predict([]float32{1, 2, 3}, out); err == nil {
		t.Fatal("a partial row was accepted")
	}
}

func TestCrashRestarts(t *testing.T) {
	m := openLoader(t, pyfunc.Options{MinBackoff: time.Second})
	predictOK(t, m, 1, 2)
	err := m.PredictRow([]float32{666, 0}, []float32{0})
	t.Log(err)
	var we *pyfunc.WorkerError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "exited (exit status 3)") || !strings.Contains(err.Error(), "crashing on purpose") {
		t.Fatalf("crash: %v; want a WorkerError naming the exit status and stderr", err)
	}
	// Within the backoff, requests fail at once instead of waiting.
	start := time.Now()
	err = m.PredictRow([]float32{1, 2}, []float32{0})
	if !errors.Is(err, pyfunc.ErrRestarting) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("during restart: %v; want ErrRestarting naming the exit", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a request during the restart took %s", d)
	}
	eventually(t, m)
	if s := m.Stats(); s.Restarts != 1 || s.Ready != 1 || !strings.Contains(s.LastError, "exit status 3") {
		t.Fatalf("stats %+v", s)
	}
}

func TestHangTimesOut(t *testing.T) {
	m := openLoader(t, pyfunc.Options{RequestTimeout: time.Second, MinBackoff: 10 * time.Millisecond})
	start := time.Now()
	err := m.PredictRow([]float32{777, 0}, []float32{0})
	if err == nil || !strings.Contains(err.Error(), "did not score a request within 1s") {
		t.Fatalf("hang: %v; want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timed-out request took %s", d)
	}
	eventually(t, m)
	if s := m.Stats(); s.Restarts < 1 {
		t.Fatalf("stats %+v: the hung worker was not replaced", s)
	}
}

func TestCloseDrains(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "started")
	m := openLoader(t, pyfunc.Options{Env: []string{"SLIPWAY_TEST_MARK=" + mark}})
	done := make(chan error, 1)
	out := []float32{0}
	go func() { done <- m.PredictRow([]float32{888, 1}, out) }()
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close(context.Background()) }()
	for {
		err := m.PredictRow([]float32{1, 2}, []float32{0})
		if errors.Is(err, pyfunc.ErrClosed) {
			break
		}
		// Close may not have begun yet; a request that got in is served.
		if err != nil {
			t.Fatalf("before Close: %v", err)
		}
	}
	if err := <-done; err != nil || out[0] != 2*888+1 {
		t.Fatalf("in-flight request: %v, %v", out, err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Ready != 0 || s.Restarts != 0 {
		t.Fatalf("after Close: %+v", s)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseDeadline(t *testing.T) {
	m := openLoader(t, pyfunc.Options{StopGrace: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- m.PredictRow([]float32{777, 0}, []float32{0}) }()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := m.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v; want the deadline", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the hung request succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hung request was left hanging after Close")
	}
}

func TestLoadFailure(t *testing.T) {
	py := needPython(t, "numpy", "pandas")
	for _, tc := range []struct {
		name, want string
		dir        func() string
	}{
		{"loader raises", "loading the model in Python: RuntimeError: weights are missing from broken", func() string { return loaderDir(t, "broken") }},
		{"no such loader", "ModuleNotFoundError: No module named 'no_such_loader'", func() string {
			dir := loaderDir(t, "")
			write(t, filepath.Join(dir, "MLmodel"), "flavors:\n  python_function:\n    loader_module: no_such_loader\nsignature:\n  inputs: '[{\"name\": \"a\", \"type\": \"double\"}]'\n")
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pyfunc.Open(tc.dir(), pyfunc.Options{Python: py, Logger: logger(t)})
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error containing %q", err, tc.want)
			}
		})
	}
	_, err := pyfunc.Open(loaderDir(t, "weights"), pyfunc.Options{Python: "/nonexistent/python3"})
	if err == nil || !strings.Contains(err.Error(), "SLIPWAY_PYTHON") {
		t.Fatalf("Open with no interpreter = %v", err)
	}
}

// TestRefused checks the MLmodel rules, which hold before any worker
// starts.
func TestRefused(t *testing.T) {
	const pf = "flavors:\n  python_function:\n    loader_module: m\n"
	for _, tc := range []struct{ name, mlmodel, want string }{
		{"no signature", pf, "needs a column-based signature.inputs"},
		{"tensor inputs", pf + "signature:\n  inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1, 4]}}]'\n", "signature.inputs is tensor-based"},
		{"string input", pf + "signature:\n  inputs: '[{\"name\": \"s\", \"type\": \"string\"}]'\n", `signature.inputs[0] "s" has type "string"`},
		{"string output", pf + "signature:\n  inputs: '[{\"name\": \"a\", \"type\": \"double\"}]'\n  outputs: '[{\"type\": \"string\"}]'\n", "Slipway serves numeric predictions only"},
		{"no loader", "flavors:\n  python_function:\n    model_path: model.pkl\n", "loader_module: required"},
		{"code escapes", pf + "    code: ../../etc\n", "must name a path inside the model directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "MLmodel"), tc.mlmodel)
			_, err := pyfunc.Open(dir, pyfunc.Options{Python: "/nonexistent/python3"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
