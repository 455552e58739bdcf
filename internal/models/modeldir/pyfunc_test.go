package modeldir_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/models/pyfunc"
)

// TestOpenPython opens a python_function model with a loader module
// through modeldir, under Debian's interpreter as SLIPWAY_PYTHON.
func TestOpenPython(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import numpy, pandas").CombinedOutput(); err != nil {
		msg := py + " cannot import numpy and pandas (install python3-pandas): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Setenv(pyfunc.PythonEnv, py)
	dir := t.TempDir()
	for name, text := range map[string]string{
		"code/scaler.py": "class M:\n    def predict(self, df):\n        return [[v * 10 for v in row] for row in df.to_numpy(dtype='float64')]\n\ndef _load_pyfunc(path):\n    return M()\n",
		modeldir.MLmodelFile: "flavors:\n  python_function:\n    loader_module: scaler\n    code: code\n" +
			"signature:\n  inputs: '[{\"name\": \"x\", \"type\": \"float\"}, {\"name\": \"y\", \"type\": \"float\"}]'\n" +
			"  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1, 2]}}]'\n",
	} {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := modeldir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.Runtime != modeldir.RuntimePython || len(o.Features) != 2 || o.Features[1].Name != "y" || o.Model.NumOutputs() != 2 {
		t.Fatalf("opened %+v", o)
	}
	out := make([]float32, 2)
	if err := o.Model.PredictRow([]float32{1.5, -2}, out); err != nil || out[0] != 15 || out[1] != -20 {
		t.Fatalf("PredictRow = %v, %v", out, err)
	}
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.Model.PredictRow([]float32{1, 2}, out); err == nil {
		t.Fatal("a closed model scored a row")
	}
}
