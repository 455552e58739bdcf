package onnx_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayml/slipway/internal/models/onnx"
)

// python is Debian's interpreter, which has python3-torch, python3-onnx
// and python3-sklearn; another python3 on PATH may not.
const python = "/usr/bin/python3"

type crossCase struct {
	Name     string `json:"name"`
	Model    string `json:"model"`
	Rows     int    `json:"rows"`
	Features int    `json:"features"`
	Outputs  int    `json:"outputs"`
}

// crossCases runs testdata/crosscheck.py, which exports models with torch
// and writes scikit-learn models as ai.onnx.ml graphs, with the libraries'
// own predictions. Without those libraries the test is skipped, except in
// CI, where it must run.
func crossCases(t *testing.T) (string, []crossCase) {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch, onnx, sklearn").Run(); err != nil {
		const need = "apt-get install python3-torch python3-onnx python3-sklearn"
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import torch, onnx and sklearn (%s): %v", python, need, err)
		}
		t.Skipf("ONNX cross-check skipped: %s cannot import torch, onnx and sklearn (%s)", python, need)
	}
	dir := t.TempDir()
	if out, err := exec.Command(python, "testdata/crosscheck.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Torch, ONNX, Sklearn string
		Cases                []crossCase
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	t.Logf("torch %s, onnx %s, scikit-learn %s: %d cases", manifest.Torch, manifest.ONNX, manifest.Sklearn, len(manifest.Cases))
	return dir, manifest.Cases
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
	}
	return out
}

// TestMatchesLibraries loads each model and requires every output within
// 1e-5 of what torch or scikit-learn computes for the same rows, in batch
// and row by row.
func TestMatchesLibraries(t *testing.T) {
	dir, cases := crossCases(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := onnx.LoadFile(filepath.Join(dir, c.Model))
			if err != nil {
				t.Fatal(err)
			}
			if m.NumFeatures() != c.Features || m.NumOutputs() != c.Outputs {
				t.Fatalf("model has %d features and %d outputs; the library's has %d and %d", m.NumFeatures(), m.NumOutputs(), c.Features, c.Outputs)
			}
			x := readF32(t, filepath.Join(dir, c.Name+".x.f32"))
			want := readF32(t, filepath.Join(dir, c.Name+".y.f32"))
			got := make([]float32, len(want))
			if err := m.Predict(x, got); err != nil {
				t.Fatal(err)
			}
			worst := compare(t, "batch", got, want, c.Outputs)
			row := make([]float32, c.Outputs)
			for r := 0; r < c.Rows; r++ {
				if err := m.PredictRow(x[r*c.Features:(r+1)*c.Features], row); err != nil {
					t.Fatal(err)
				}
				copy(got[r*c.Outputs:], row)
			}
			worst = max(worst, compare(t, "row by row", got, want, c.Outputs))
			t.Logf("%d rows x %d outputs: max abs difference %.3g (output %s)", c.Rows, c.Outputs, worst, m.OutputName())
		})
	}
}

func compare(t *testing.T, how string, got, want []float32, outputs int) float64 {
	t.Helper()
	worst, at := 0.0, -1
	for i := range want {
		diff := math.Abs(float64(got[i]) - float64(want[i]))
		if diff > worst || math.IsNaN(diff) {
			worst, at = diff, i
		}
	}
	if worst > 1e-5 || math.IsNaN(worst) {
		t.Fatalf("%s: row %d output %d: got %v, the library %v (difference %.3g)", how, at/outputs, at%outputs, got[at], want[at], worst)
	}
	return worst
}
