// Package modeldir opens a model from disk: a model file (XGBoost JSON or
// UBJSON, or ONNX) or an MLflow model directory (an MLmodel file whose
// xgboost or onnx flavor names the model file, which the native runtimes
// load, or whose python_function flavor the Python worker runtime of
// package pyfunc serves). It is the one place that maps formats to
// runtimes, so the CLI, evaluation and serving open models alike.
package modeldir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/onnx"
	"github.com/slipwayml/slipway/internal/models/pyfunc"
	"github.com/slipwayml/slipway/internal/models/xgboost"
	"github.com/slipwayml/slipway/internal/tabular"
)

// MLmodelFile is the name of an MLflow model directory's descriptor.
const MLmodelFile = "MLmodel"

// CategoriesAttribute is the XGBoost learner attribute in which Slipway's
// trainer records the category names of categorical features (JSON: an
// object from feature name to its levels in code order); XGBoost itself
// keeps only codes.
const CategoriesAttribute = "slipway_categories"

// ClassesAttribute is the learner attribute in which Slipway's trainer
// records a text target's class labels in class-index order (JSON).
const ClassesAttribute = "slipway_classes"

// Runtimes an opened model runs in, as Opened.Runtime names them.
const (
	RuntimeXGBoost = "xgboost"
	RuntimeONNX    = "onnx"
	RuntimePython  = pyfunc.Flavor
)

// Opened is a model and what its inputs are.
type Opened struct {
	Model    models.Model
	Features []tabular.Feature
	// Path is the model file that was loaded; for a python_function
	// model, the model directory.
	Path string
	// Runtime is the runtime serving the model: RuntimeXGBoost,
	// RuntimeONNX or RuntimePython.
	Runtime string
}

// Close releases what the model holds: a python_function model's worker
// processes are drained (requests in flight finish until ctx ends) and
// stopped. Native models hold nothing, and closing them is a no-op.
// Callers that open models for longer than one command should close them.
func (o *Opened) Close(ctx context.Context) error {
	if c, ok := o.Model.(interface{ Close(context.Context) error }); ok {
		return c.Close(ctx)
	}
	return nil
}

// Options configure how Open opens models; the zero value serves.
type Options struct {
	// Python configures the workers of python_function models.
	Python pyfunc.Options
}

// Open loads the model at path: a model file, or a directory holding an
// MLmodel file (or a single XGBoost or ONNX model file). Files ending in
// .onnx, and the onnx flavor, load in the ONNX runtime; the
// python_function flavor, when there is no xgboost or onnx flavor, in
// Python worker processes with default options; others in the XGBoost
// runtime.
func Open(path string) (*Opened, error) {
	return OpenWith(path, Options{})
}

// OpenWith is Open with options.
func OpenWith(path string, opts Options) (*Opened, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	file, flavor := path, ""
	var sig *models.Signature
	if st.IsDir() {
		if file, sig, flavor, err = fromDir(path); err != nil {
			return nil, err
		}
	}
	if flavor == pyfunc.Flavor {
		return openPython(path, opts.Python)
	}
	if flavor == "onnx" || (flavor == "" && strings.EqualFold(filepath.Ext(file), ".onnx")) {
		return openONNX(path, file, sig)
	}
	m, err := xgboost.LoadFile(file)
	if err != nil {
		return nil, err
	}
	o := &Opened{Model: m, Path: file, Runtime: RuntimeXGBoost}
	if o.Features, err = features(m, sig); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

type mlmodel struct {
	Flavors   map[string]map[string]any `yaml:"flavors"`
	Signature *struct {
		Inputs string `yaml:"inputs"`
	} `yaml:"signature"`
}

// fromDir finds the model file of a directory, the input signature its
// MLmodel declares, if any, and the flavor that names the file ("" for a
// bare model file).
func fromDir(dir string) (string, *models.Signature, string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, MLmodelFile))
	if errors.Is(err, os.ErrNotExist) {
		var found []string
		for _, pattern := range []string{"*.json", "*.ubj", "*.onnx"} {
			m, _ := filepath.Glob(filepath.Join(dir, pattern))
			found = append(found, m...)
		}
		if len(found) != 1 {
			return "", nil, "", fmt.Errorf("%s: no MLmodel file, and not exactly one .json, .ubj or .onnx model file (found %d)", dir, len(found))
		}
		return found[0], nil, "", nil
	}
	if err != nil {
		return "", nil, "", err
	}
	var mm mlmodel
	if err := yaml.Unmarshal(raw, &mm); err != nil {
		return "", nil, "", fmt.Errorf("%s: %w", filepath.Join(dir, MLmodelFile), err)
	}
	name := "xgboost"
	flavor, ok := mm.Flavors[name]
	if !ok {
		name = "onnx"
		flavor, ok = mm.Flavors[name]
	}
	if !ok {
		// python_function models carry no data file of their own to
		// check here: the Python worker loads them as MLflow does.
		if _, py := mm.Flavors[pyfunc.Flavor]; py {
			return dir, nil, pyfunc.Flavor, nil
		}
		names := make([]string, 0, len(mm.Flavors))
		for n := range mm.Flavors {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", nil, "", fmt.Errorf("%s: flavors %s: Slipway's native runtime reads the xgboost flavor or the onnx flavor, and its Python worker the python_function flavor", filepath.Join(dir, MLmodelFile), strings.Join(names, ", "))
	}
	data, _ := flavor["data"].(string)
	if data == "" || filepath.IsAbs(data) || strings.Contains(filepath.ToSlash(data), "..") {
		return "", nil, "", fmt.Errorf("%s: flavors.%s.data %q: must name the model file inside the directory", filepath.Join(dir, MLmodelFile), name, data)
	}
	var sig *models.Signature
	if mm.Signature != nil && mm.Signature.Inputs != "" {
		var inputs []models.Column
		if err := json.Unmarshal([]byte(mm.Signature.Inputs), &inputs); err != nil {
			return "", nil, "", fmt.Errorf("%s: signature.inputs: %w", filepath.Join(dir, MLmodelFile), err)
		}
		sig = &models.Signature{Inputs: inputs}
	}
	return filepath.Join(dir, filepath.FromSlash(data)), sig, name, nil
}

// openONNX loads an ONNX model. Its features are named by the MLmodel
// signature when that is column-based with one column per feature (an
// mlflow.onnx tensor-based signature describes the input tensor, not
// columns, and is passed over); else input_0, input_1, ... after the
// graph input.
func openONNX(path, file string, sig *models.Signature) (*Opened, error) {
	m, err := onnx.LoadFile(file)
	if err != nil {
		return nil, err
	}
	inputs := slices.Clone(m.Signature().Inputs)
	if sig != nil && !tensorBased(sig.Inputs) {
		if len(sig.Inputs) != len(inputs) {
			return nil, fmt.Errorf("%s: the MLmodel signature has %d inputs; the ONNX model has %d features", path, len(sig.Inputs), len(inputs))
		}
		for i := range inputs {
			inputs[i].Name = sig.Inputs[i].Name
		}
	}
	o := &Opened{Model: m, Path: file, Runtime: RuntimeONNX, Features: make([]tabular.Feature, len(inputs))}
	for i, c := range inputs {
		o.Features[i] = tabular.Feature{Name: c.Name}
	}
	return o, nil
}

// openPython starts the Python workers of a python_function model. Its
// features are the columns of its (required) input signature.
func openPython(dir string, opts pyfunc.Options) (*Opened, error) {
	m, err := pyfunc.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	o := &Opened{Model: m, Path: dir, Runtime: RuntimePython}
	for _, c := range m.Signature().Inputs {
		o.Features = append(o.Features, tabular.Feature{Name: c.Name})
	}
	return o, nil
}

func tensorBased(cols []models.Column) bool {
	for _, c := range cols {
		if c.Type == "tensor" {
			return true
		}
	}
	return false
}

// features are the model's inputs by name: the MLmodel signature's when it
// has one, else the names in the model file.
func features(m *xgboost.Model, sig *models.Signature) ([]tabular.Feature, error) {
	inputs := slices.Clone(m.Signature().Inputs)
	if sig != nil {
		if len(sig.Inputs) != len(inputs) {
			return nil, fmt.Errorf("the MLmodel signature has %d inputs; the model file has %d features", len(sig.Inputs), len(inputs))
		}
		for i := range inputs {
			inputs[i].Name = sig.Inputs[i].Name
		}
	}
	var levels map[string][]string
	if raw := m.Attributes()[CategoriesAttribute]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &levels); err != nil {
			return nil, fmt.Errorf("attribute %s: %w", CategoriesAttribute, err)
		}
	}
	out := make([]tabular.Feature, len(inputs))
	for i, c := range inputs {
		out[i] = tabular.Feature{Name: c.Name, Categorical: c.Categorical, Levels: levels[c.Name]}
	}
	return out, nil
}
