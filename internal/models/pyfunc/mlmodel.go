package pyfunc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/models"
)

// Flavor is the MLmodel flavor this package serves.
const Flavor = "python_function"

// spec is what the worker is told about the model: the directory, the
// flavors it loads from, and the input columns it builds a DataFrame of.
type spec struct {
	Dir     string                    `json:"dir"`
	PyFunc  map[string]any            `json:"pyfunc"`
	Flavors map[string]map[string]any `json:"flavors"`
	Columns []specColumn              `json:"columns"`
}

type specColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Label is the DataFrame column label when it is not Name: the
	// position of an unnamed signature column, as MLflow uses.
	Label *int `json:"label"`
}

type mlmodel struct {
	Flavors   map[string]map[string]any `yaml:"flavors"`
	Signature *struct {
		Inputs  string `yaml:"inputs"`
		Outputs string `yaml:"outputs"`
	} `yaml:"signature"`
}

// schemaColumn is one entry of an MLflow schema as MLmodel stores it.
type schemaColumn struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	TensorSpec *struct {
		DType string `json:"dtype"`
		Shape []int  `json:"shape"`
	} `json:"tensor-spec"`
}

// numericTypes are the MLflow column types a float32 row can carry.
var numericTypes = map[string]bool{"double": true, "float": true, "long": true, "integer": true, "boolean": true}

// readMLmodel reads dir's MLmodel into what the worker needs and the
// signature Slipway serves the model under.
func readMLmodel(dir string) (spec, models.Signature, error) {
	file := filepath.Join(dir, "MLmodel")
	raw, err := os.ReadFile(file)
	if err != nil {
		return spec{}, models.Signature{}, err
	}
	var mm mlmodel
	if err := yaml.Unmarshal(raw, &mm); err != nil {
		return spec{}, models.Signature{}, fmt.Errorf("%s: %w", file, err)
	}
	pf, ok := mm.Flavors[Flavor]
	if !ok {
		return spec{}, models.Signature{}, fmt.Errorf("%s: no %s flavor", file, Flavor)
	}
	loader, _ := pf["loader_module"].(string)
	if loader == "" {
		return spec{}, models.Signature{}, fmt.Errorf("%s: flavors.%s.loader_module: required", file, Flavor)
	}
	for _, key := range []string{"code", "data", "model_path"} {
		v, present := pf[key]
		if !present || v == nil {
			continue
		}
		s, _ := v.(string)
		if s == "" || filepath.IsAbs(s) || strings.Contains(filepath.ToSlash(s), "..") {
			return spec{}, models.Signature{}, fmt.Errorf("%s: flavors.%s.%s %v: must name a path inside the model directory", file, Flavor, key, v)
		}
	}
	if sk, ok := mm.Flavors["sklearn"]; ok && loader == "mlflow.sklearn" {
		if s, _ := sk["pickled_model"].(string); s != "" && (filepath.IsAbs(s) || strings.Contains(filepath.ToSlash(s), "..")) {
			return spec{}, models.Signature{}, fmt.Errorf("%s: flavors.sklearn.pickled_model %q: must name a file inside the model directory", file, s)
		}
	}
	if mm.Signature == nil || mm.Signature.Inputs == "" {
		return spec{}, models.Signature{}, fmt.Errorf("%s: a %s model needs a column-based signature.inputs, so that Slipway knows its input columns: log the model with a signature (mlflow.models.infer_signature)", file, Flavor)
	}
	var inputs []schemaColumn
	if err := json.Unmarshal([]byte(mm.Signature.Inputs), &inputs); err != nil {
		return spec{}, models.Signature{}, fmt.Errorf("%s: signature.inputs: %w", file, err)
	}
	if len(inputs) == 0 {
		return spec{}, models.Signature{}, fmt.Errorf("%s: signature.inputs is empty; a %s model needs a column-based input signature", file, Flavor)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return spec{}, models.Signature{}, err
	}
	sp := spec{Dir: abs, PyFunc: pf, Flavors: mm.Flavors}
	var sig models.Signature
	for i, c := range inputs {
		if c.Type == "tensor" || c.TensorSpec != nil {
			return spec{}, models.Signature{}, fmt.Errorf("%s: signature.inputs is tensor-based; a %s model needs a column-based input signature", file, Flavor)
		}
		if !numericTypes[c.Type] {
			return spec{}, models.Signature{}, fmt.Errorf("%s: signature.inputs[%d] %q has type %q: Slipway sends %s models numeric columns only (double, float, long, integer, boolean)", file, i, c.Name, c.Type, Flavor)
		}
		sc := specColumn{Name: c.Name, Type: c.Type}
		if c.Name == "" {
			sc.Name = fmt.Sprintf("input_%d", i)
			sc.Label = &i
		}
		sp.Columns = append(sp.Columns, sc)
		sig.Inputs = append(sig.Inputs, models.Column{Name: sc.Name, Type: c.Type})
	}
	if sig.Outputs, err = outputs(mm.Signature.Outputs); err != nil {
		return spec{}, models.Signature{}, fmt.Errorf("%s: signature.outputs: %w", file, err)
	}
	return sp, sig, nil
}

// outputs are the output columns a signature declares: one per column of
// a column-based schema, the last dimension of a single tensor, or one
// prediction when there is no output schema.
func outputs(raw string) ([]models.Column, error) {
	if raw == "" {
		return []models.Column{{Name: "prediction", Type: "double"}}, nil
	}
	var cols []schemaColumn
	if err := json.Unmarshal([]byte(raw), &cols); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("empty")
	}
	if t := cols[0].TensorSpec; cols[0].Type == "tensor" || t != nil {
		if len(cols) != 1 || t == nil {
			return nil, fmt.Errorf("%d output tensors: Slipway serves %s models with one", len(cols), Flavor)
		}
		n := 1
		if len(t.Shape) > 1 {
			n = t.Shape[len(t.Shape)-1]
		}
		if n < 1 {
			return nil, fmt.Errorf("tensor shape %v: the last dimension must be fixed", t.Shape)
		}
		typ := "double"
		switch t.DType {
		case "float32":
			typ = "float"
		case "int64":
			typ = "long"
		case "int32":
			typ = "integer"
		case "bool":
			typ = "boolean"
		}
		if n == 1 {
			return []models.Column{{Name: "prediction", Type: typ}}, nil
		}
		out := make([]models.Column, n)
		for i := range out {
			out[i] = models.Column{Name: fmt.Sprintf("output_%d", i), Type: typ}
		}
		return out, nil
	}
	out := make([]models.Column, len(cols))
	for i, c := range cols {
		if c.Type == "tensor" {
			return nil, fmt.Errorf("mixes columns and tensors")
		}
		if !numericTypes[c.Type] {
			return nil, fmt.Errorf("[%d] %q has type %q: Slipway serves numeric predictions only", i, c.Name, c.Type)
		}
		out[i] = models.Column{Name: c.Name, Type: c.Type}
		if c.Name == "" {
			out[i].Name = fmt.Sprintf("output_%d", i)
		}
	}
	return out, nil
}
