package modeldir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/models"
)

// ModelFile is the file name Write gives the XGBoost model.
const ModelFile = "model.json"

// Package describes a model directory to write.
type Package struct {
	// ModelJSON is the model in XGBoost's JSON format.
	ModelJSON []byte
	Signature models.Signature
	// RunID is the run that produced the model, when there is one.
	RunID string
	// XGBoostVersion is the version the model file claims, such as "1.7.4";
	// MLflow's loader checks it against the installed XGBoost.
	XGBoostVersion string
	// Now is the creation time written into MLmodel.
	Now time.Time
}

// Write lays out dir as an MLflow model directory with an xgboost flavor
// (and a python_function flavor that loads it), so that MLflow's tools,
// mlflow.pyfunc.load_model and Slipway's registry all treat it as a model.
func Write(dir string, p Package) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ModelFile), p.ModelJSON, 0o644); err != nil {
		return err
	}
	inputs, err := schema(p.Signature.Inputs, true)
	if err != nil {
		return err
	}
	outputs, err := schema(p.Signature.Outputs, false)
	if err != nil {
		return err
	}
	doc := map[string]any{
		"artifact_path": "model",
		"flavors": map[string]any{
			"python_function": map[string]any{
				"loader_module": "mlflow.xgboost",
				"data":          ModelFile,
				"env":           map[string]any{"virtualenv": "python_env.yaml"},
			},
			"xgboost": map[string]any{
				"data":         ModelFile,
				"model_class":  "xgboost.core.Booster",
				"model_format": "json",
				"xgb_version":  p.XGBoostVersion,
				"code":         nil,
			},
		},
		"signature":        map[string]any{"inputs": inputs, "outputs": outputs},
		"utc_time_created": p.Now.UTC().Format("2006-01-02 15:04:05.000000"),
	}
	if p.RunID != "" {
		doc["run_id"] = p.RunID
	}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	files := map[string]string{
		MLmodelFile:        string(raw),
		"requirements.txt": fmt.Sprintf("mlflow\nxgboost==%s\n", p.XGBoostVersion),
		"python_env.yaml":  "dependencies:\n- -r requirements.txt\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// schema writes columns as MLflow's column-based schema: a JSON string
// inside MLmodel, as MLflow stores it.
func schema(cols []models.Column, named bool) (string, error) {
	type spec struct {
		Type     string `json:"type"`
		Name     string `json:"name,omitempty"`
		Required bool   `json:"required"`
	}
	out := make([]spec, len(cols))
	for i, c := range cols {
		typ := c.Type
		if c.Categorical {
			typ = "long"
		}
		out[i] = spec{Type: typ, Required: true}
		if named || len(cols) > 1 {
			out[i].Name = c.Name
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}
