package onnx_test

import (
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/models/onnx"
)

// FuzzLoad feeds Load damaged and random model files: it must return an
// error or a model, never panic, and a model it returns must score a row
// (or say why not) without panicking. Crashers found are kept in
// testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	seeds := []graphSpec{
		mlp(),
		simple(2, []any{"N", 1}, regressor("")),
		simple(2, []any{"N", 4}, node("Relu", []string{"X"}, []string{"r"}), node("Concat", []string{"X", "r"}, []string{"Y"}, attrI("axis", -1))),
		simple(2, []any{"N", 2}, mlNode("Normalizer", []string{"X"}, []string{"Y"}, attrS("norm", "L2"))),
	}
	for _, g := range seeds {
		b := g.encode()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// An operator's panic is recovered into an error saying so: a bug.
		bug := func(err error) {
			if err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatal(err)
			}
		}
		m, err := onnx.Load(data)
		if err != nil {
			bug(err)
			return
		}
		row := make([]float32, m.NumFeatures())
		out := make([]float32, m.NumOutputs())
		bug(m.PredictRow(row, out))
		x := make([]float32, 3*m.NumFeatures())
		bug(m.Predict(x, make([]float32, 3*m.NumOutputs())))
	})
}
