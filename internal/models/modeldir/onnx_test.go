package modeldir_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/models/modeldir"
)

// onnxDir lays out a directory holding testdata/small.onnx (Gemm and
// Sigmoid over four features) as file, with an MLmodel when given.
func onnxDir(t *testing.T, file, mlmodel string) string {
	t.Helper()
	dir := t.TempDir()
	model, err := os.ReadFile("../onnx/testdata/small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if mlmodel != "" {
		if err := os.WriteFile(filepath.Join(dir, modeldir.MLmodelFile), []byte(mlmodel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenONNX(t *testing.T) {
	flavor := "flavors:\n  onnx:\n    onnx_version: 1.12.0\n    data: model.onnx\n"
	columns := `signature:
  inputs: '[{"name": "a", "type": "float"}, {"name": "b", "type": "float"}, {"name": "c", "type": "float"}, {"name": "d", "type": "float"}]'
`
	tensor := `signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}, "name": "input"}]'
`
	for _, tc := range []struct {
		name, file, mlmodel string
		bare                bool
		features            string
	}{
		{"a .onnx file", "model.onnx", "", true, "input_0,input_1,input_2,input_3"},
		{"a folder with one .onnx file", "model.onnx", "", false, "input_0,input_1,input_2,input_3"},
		{"MLmodel onnx flavor", "model.onnx", flavor, false, "input_0,input_1,input_2,input_3"},
		{"MLmodel column signature names win", "model.onnx", flavor + columns, false, "a,b,c,d"},
		{"MLmodel tensor signature is passed over", "model.onnx", flavor + tensor, false, "input_0,input_1,input_2,input_3"},
		{"onnx flavor file of another name", "weights.bin", strings.Replace(flavor, "model.onnx", "weights.bin", 1), false, "input_0,input_1,input_2,input_3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := onnxDir(t, tc.file, tc.mlmodel)
			path := dir
			if tc.bare {
				path = filepath.Join(dir, tc.file)
			}
			o, err := modeldir.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range o.Features {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != tc.features || filepath.Base(o.Path) != tc.file {
				t.Fatalf("opened %s with features %v", o.Path, names)
			}
			// onnx.helper and numpy: sigmoid(x . [0.5 -0.25 0.125 1] - 0.5).
			x := []float32{1, 2, 3, 4, 0, 0, 0, 0, -1, 0.5, 2, -3}
			want := []float64{0.97966765, 0.37754067, 0.02033235}
			got := make([]float32, 3)
			if err := o.Model.Predict(x, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 1e-6 {
					t.Fatalf("predictions %v; want %v", got, want)
				}
			}
		})
	}
	for _, tc := range []struct{ name, mlmodel, want string }{
		{"escape", "flavors:\n  onnx:\n    data: ../model.onnx\n", "flavors.onnx.data \"../model.onnx\": must name the model file inside the directory"},
		{"signature width", flavor + "signature:\n  inputs: '[{\"name\": \"a\", \"type\": \"float\"}]'\n", "the MLmodel signature has 1 inputs; the ONNX model has 4 features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modeldir.Open(onnxDir(t, "model.onnx", tc.mlmodel))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
