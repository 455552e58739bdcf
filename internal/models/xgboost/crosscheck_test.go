package xgboost_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// python is Debian's interpreter, which has python3-xgboost; another
// python3 on PATH may not.
const python = "/usr/bin/python3"

// xgboostCases runs testdata/crosscheck.py, which trains models with real
// XGBoost and writes them with XGBoost's predictions. Without XGBoost the
// test is skipped, except in CI, where it must run.
func xgboostCases(t *testing.T) (string, []crossCase, string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import xgboost, sklearn, pandas").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import xgboost, sklearn and pandas (apt-get install python3-xgboost python3-sklearn python3-pandas): %v", python, err)
		}
		t.Skipf("XGBoost cross-check skipped: %s cannot import xgboost, sklearn and pandas (apt-get install python3-xgboost python3-sklearn python3-pandas)", python)
	}
	dir := t.TempDir()
	cmd := exec.Command(python, "testdata/crosscheck.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		XGBoost string      `json:"xgboost"`
		Cases   []crossCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	return dir, manifest.Cases, manifest.XGBoost
}

type crossCase struct {
	Name     string `json:"name"`
	Rows     int    `json:"rows"`
	Features int    `json:"features"`
	Outputs  int    `json:"outputs"`
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

// TestMatchesXGBoost loads each model XGBoost saved, as JSON and as UBJSON,
// and requires every prediction within 1e-6 (relative, for values above 1)
// of XGBoost's own, in batch and row by row.
func TestMatchesXGBoost(t *testing.T) {
	dir, cases, version := xgboostCases(t)
	t.Logf("XGBoost %s, %d cases", version, len(cases))
	for _, c := range cases {
		x := readF32(t, filepath.Join(dir, c.Name+".x.f32"))
		want := readF32(t, filepath.Join(dir, c.Name+".y.f32"))
		for _, ext := range []string{".json", ".ubj"} {
			t.Run(c.Name+ext, func(t *testing.T) {
				m, err := xgboost.LoadFile(filepath.Join(dir, c.Name+ext))
				if err != nil {
					t.Fatal(err)
				}
				if m.NumFeatures() != c.Features || m.NumOutputs() != c.Outputs {
					t.Fatalf("model has %d features and %d outputs; XGBoost's has %d and %d", m.NumFeatures(), m.NumOutputs(), c.Features, c.Outputs)
				}
				got := make([]float32, len(want))
				if err := m.Predict(x, got); err != nil {
					t.Fatal(err)
				}
				compare(t, "batch", got, want, c.Outputs)
				row := make([]float32, c.Outputs)
				for r := 0; r < c.Rows; r++ {
					if err := m.PredictRow(x[r*c.Features:(r+1)*c.Features], row); err != nil {
						t.Fatal(err)
					}
					copy(got[r*c.Outputs:], row)
				}
				compare(t, "row by row", got, want, c.Outputs)
			})
		}
	}
}

func compare(t *testing.T, how string, got, want []float32, outputs int) {
	t.Helper()
	worst, at := 0.0, -1
	for i := range want {
		diff := math.Abs(float64(got[i]) - float64(want[i]))
		if scale := math.Abs(float64(want[i])); scale > 1 {
			diff /= scale
		}
		if diff > worst || math.IsNaN(diff) {
			worst, at = diff, i
		}
	}
	if worst > 1e-6 || math.IsNaN(worst) {
		t.Fatalf("%s: row %d output %d: got %v, XGBoost %v (difference %.3g)", how, at/outputs, at%outputs, got[at], want[at], worst)
	}
}
