// Package models holds what Slipway knows about model formats: the Model
// interface every runtime implements (native XGBoost today; ONNX and
// external processes later) and the signature that describes a model's
// inputs and outputs, which serving checks requests against.
package models

// Model scores rows of numeric features. Implementations are safe for
// concurrent use once loaded.
type Model interface {
	// Signature names and types the model's inputs and outputs.
	Signature() Signature
	// NumFeatures is the number of values in one input row.
	NumFeatures() int
	// NumOutputs is the number of values one row scores to.
	NumOutputs() int
	// Predict scores the rows of x, a row-major matrix of NumFeatures
	// columns in which NaN is a missing value, into out, which must hold
	// NumOutputs values per row.
	Predict(x, out []float32) error
	// PredictRow scores one row without allocating.
	PredictRow(row, out []float32) error
}

// Signature is a model's inputs and outputs in the terms of an MLflow
// model signature (a column-based schema), so that it can be written into
// an MLmodel file unchanged.
type Signature struct {
	Inputs  []Column `json:"inputs"`
	Outputs []Column `json:"outputs"`
}

// Column is one named input or output.
type Column struct {
	Name string `json:"name"`
	// Type is an MLflow column type: double, float, long, integer,
	// boolean, string; categorical features are read as their integer
	// codes and typed long with Categorical set.
	Type        string `json:"type"`
	Categorical bool   `json:"categorical,omitempty"`
}

// FeatureGain is one feature's split statistics summed over a tree
// model's trees: the total loss reduction of its splits and their count
// (XGBoost's get_score "total_gain" and "weight").
type FeatureGain struct {
	Feature   string
	TotalGain float64
	Splits    int
}
