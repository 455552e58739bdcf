package e2e

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPredictONNX scores a CSV with an ONNX model file through `slipway
// predict`, as a user would; no server is involved. The model is Gemm and
// Sigmoid over four features; the expected values are numpy's.
func TestPredictONNX(t *testing.T) {
	model, err := filepath.Abs("../internal/models/onnx/testdata/small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(in, []byte("input_3,input_2,input_1,input_0\n4,3,2,1\n0,0,0,0\n-3,2,0.5,-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), "predict", "--model", model, "--data", in)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("slipway predict: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []float64{0.97966765, 0.37754067, 0.02033235}
	if len(lines) != len(want)+1 || lines[0] != "output" {
		t.Fatalf("slipway predict printed\n%s\nwant an output header and %d rows", out, len(want))
	}
	for i, w := range want {
		got, err := strconv.ParseFloat(lines[i+1], 64)
		if err != nil || math.Abs(got-w) > 1e-6 {
			t.Fatalf("row %d is %q; numpy computed %v", i+1, lines[i+1], w)
		}
	}
}
