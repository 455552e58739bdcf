package modeldir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/models/modeldir"
)

func modelDir(t *testing.T, mlmodel string) string {
	t.Helper()
	dir := t.TempDir()
	model, err := os.ReadFile("../xgboost/testdata/small.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if mlmodel != "" {
		if err := os.WriteFile(filepath.Join(dir, modeldir.MLmodelFile), []byte(mlmodel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpen(t *testing.T) {
	sig := `signature:
  inputs: '[{"name": "r", "type": "float"}, {"name": "t", "type": "float"}, {"name": "p", "type": "float"}, {"name": "a", "type": "float"}]'
`
	for _, tc := range []struct {
		name, mlmodel string
		features      string
	}{
		{"bare file in a folder", "", "radius,texture,perimeter,area"},
		{"MLmodel", "flavors:\n  xgboost:\n    data: model.json\n", "radius,texture,perimeter,area"},
		{"MLmodel signature names win", "flavors:\n  xgboost:\n    data: model.json\n" + sig, "r,t,p,a"},
		{"native flavor before python_function", "flavors:\n  python_function:\n    loader_module: mlflow.xgboost\n    data: model.json\n  xgboost:\n    data: model.json\n", "radius,texture,perimeter,area"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := modeldir.Open(modelDir(t, tc.mlmodel))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range o.Features {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != tc.features || o.Model.Signature().Inputs[0].Name != "radius" {
				t.Fatalf("features %v (model signature %v)", names, o.Model.Signature().Inputs)
			}
		})
	}
	for _, tc := range []struct{ name, mlmodel, want string }{
		{"other flavor", "flavors:\n  sklearn:\n    pickled_model: model.pkl\n", "flavors sklearn: Slipway's native runtime reads the xgboost flavor or the onnx flavor, and its Python worker the python_function flavor"},
		{"python_function without a signature", "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n", "a python_function model needs a column-based signature.inputs"},
		{"escape", "flavors:\n  xgboost:\n    data: ../../etc/passwd\n", "must name the model file inside the directory"},
		{"absolute", "flavors:\n  xgboost:\n    data: /etc/passwd\n", "must name the model file inside the directory"},
		{"signature width", "flavors:\n  xgboost:\n    data: model.json\nsignature:\n  inputs: '[{\"name\": \"r\", \"type\": \"float\"}]'\n", "signature has 1 inputs; the model file has 4 features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modeldir.Open(modelDir(t, tc.mlmodel))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestWriteOpens writes a model directory and opens it again: the
// signature's names and the model survive, and MLmodel carries the
// xgboost flavor MLflow's loader reads.
func TestWriteOpens(t *testing.T) {
	model, err := os.ReadFile("../xgboost/testdata/small.json")
	if err != nil {
		t.Fatal(err)
	}
	first, err := modeldir.Open(modelDir(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	err = modeldir.Write(dir, modeldir.Package{ModelJSON: model, Signature: first.Model.Signature(), RunID: "abc", XGBoostVersion: "1.7.4", Now: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := modeldir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Features) != 4 || o.Features[0].Name != "radius" || filepath.Base(o.Path) != modeldir.ModelFile {
		t.Fatalf("reopened %s with features %+v", o.Path, o.Features)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, modeldir.MLmodelFile))
	for _, want := range []string{"loader_module: mlflow.xgboost", "model_format: json", "xgb_version: 1.7.4", "run_id: abc",
		`inputs: '[{"type":"float","name":"radius","required":true}`, `outputs: '[{"type":"float","required":true}]'`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("MLmodel lacks %q:\n%s", want, raw)
		}
	}
}
