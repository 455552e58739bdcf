package evaluation_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/evaluation"
)

// sliced is a binary evaluation set of 60 rows with a region column (east
// has too few rows, west only negatives) and an integer bucket column.
func sliced() evaluation.Spec {
	r := rand.New(rand.NewPCG(3, 4))
	var s evaluation.Spec
	s.Task, s.Outputs = evaluation.TaskBinary, 1
	region := evaluation.Column{Name: "region"}
	bucket := evaluation.Column{Name: "bucket"}
	add := func(name string, n int, positives bool) {
		for i := range n {
			label := 0.0
			if positives && r.IntN(2) == 0 {
				label = 1
			}
			s.Labels = append(s.Labels, label)
			s.Predictions = append(s.Predictions, float32(min(1, max(0, 0.3+0.4*label+0.2*r.NormFloat64()))))
			s.Weights = append(s.Weights, float64(1+r.IntN(3)))
			region.Strings = append(region.Strings, name)
			bucket.Codes = append(bucket.Codes, []int64{10, 2, -1}[i%3])
		}
	}
	add("south", 20, true)
	add("north", 25, true)
	add("east", 4, true)
	add("west", 11, false)
	s.Slices = []evaluation.Column{region, bucket}
	return s
}

func TestEvaluateSlices(t *testing.T) {
	s := sliced()
	rep, err := evaluation.Evaluate(s)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Binary == nil || rep.Rows != 60 || !rep.Weighted {
		t.Fatalf("report = %+v", rep)
	}
	// The whole-set metrics are Binary's on the same inputs.
	whole, err := evaluation.Binary(s.Labels, s.Predictions, evaluation.DefaultThreshold, evaluation.Options{Weights: s.Weights})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Binary, whole) {
		t.Errorf("whole-set metrics differ from Binary's:\n%+v\n%+v", rep.Binary, whole)
	}

	if len(rep.Slices) != 2 || rep.Slices[0].Column != "region" || rep.Slices[1].Column != "bucket" {
		t.Fatalf("slices = %+v", rep.Slices)
	}
	var values []string
	for _, sl := range rep.Slices[0].Slices {
		values = append(values, sl.Value)
	}
	if want := []string{"east", "north", "south", "west"}; !reflect.DeepEqual(values, want) {
		t.Errorf("region slices = %v; want %v", values, want)
	}
	values = nil
	for _, sl := range rep.Slices[1].Slices {
		values = append(values, sl.Value)
	}
	if want := []string{"-1", "2", "10"}; !reflect.DeepEqual(values, want) {
		t.Errorf("bucket slices = %v; want numeric order %v", values, want)
	}

	east, north, west := rep.Slices[0].Slices[0], rep.Slices[0].Slices[1], rep.Slices[0].Slices[3]
	if east.Rows != 4 || east.Binary != nil || !strings.Contains(east.Skipped, "4 rows, fewer than the minimum of 10") {
		t.Errorf("east = %+v; want skipped for too few rows", east)
	}
	// A slice's metrics are Binary's on its rows.
	var labels, weights []float64
	var preds []float32
	for i, v := range s.Slices[0].Strings {
		if v == "north" {
			labels, preds, weights = append(labels, s.Labels[i]), append(preds, s.Predictions[i]), append(weights, s.Weights[i])
		}
	}
	want, err := evaluation.Binary(labels, preds, evaluation.DefaultThreshold, evaluation.Options{Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	if north.Rows != 25 || !reflect.DeepEqual(north.Binary, want) {
		t.Errorf("north = %+v; want %+v", north.Binary, want)
	}
	// A single-class slice reports AUC as null with a reason.
	if west.Binary == nil || west.Binary.AUC != nil || !strings.Contains(west.Binary.Undefined["auc"], "no positive row") {
		t.Errorf("west = %+v; want auc undefined", west.Binary)
	}

	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"skipped":"4 rows, fewer than the minimum of 10"`) || !strings.Contains(string(raw), `"auc":null`) {
		t.Errorf("JSON lacks the skipped slice or a null auc: %s", raw)
	}

	m := rep.Metrics()
	for _, k := range []string{"auc", "log_loss", "f1", "ece", "slice.region.north.auc", "slice.bucket.-1.accuracy"} {
		if _, ok := m[k]; !ok {
			t.Errorf("Metrics() lacks %q", k)
		}
	}
	for _, k := range []string{"slice.region.east.accuracy", "slice.region.west.auc"} {
		if _, ok := m[k]; ok {
			t.Errorf("Metrics() has %q, which is skipped or undefined", k)
		}
	}
	if m["auc"] != *rep.Binary.AUC {
		t.Errorf("Metrics()[auc] = %v; want %v", m["auc"], *rep.Binary.AUC)
	}
}

func TestEvaluateSliceWeightsAndMinRows(t *testing.T) {
	s := evaluation.Spec{Task: evaluation.TaskRegression, Outputs: 1,
		Labels: []float64{1, 2, 3, 4}, Predictions: []float32{1, 2, 3, 5}, Weights: []float64{1, 1, 0, 0},
		Slices: []evaluation.Column{{Name: "g", Strings: []string{"a", "a", "b", "b"}}}, MinSliceRows: 2}
	rep, err := evaluation.Evaluate(s)
	if err != nil {
		t.Fatal(err)
	}
	a, b := rep.Slices[0].Slices[0], rep.Slices[0].Slices[1]
	if a.Regression == nil || *a.Regression.MAE != 0 || a.Weight != 2 {
		t.Errorf("a = %+v", a)
	}
	if b.Regression != nil || b.Skipped != "every row has weight zero" {
		t.Errorf("b = %+v; want skipped for zero weight", b)
	}
}

func TestEvaluateMulticlassAndBinaryTwoColumns(t *testing.T) {
	probs := []float32{0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7}
	labels := []float64{0, 1, 1, 1}
	rep, err := evaluation.Evaluate(evaluation.Spec{Task: evaluation.TaskMulticlass, Outputs: 2, Labels: labels, Predictions: probs})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Multiclass == nil || *rep.Multiclass.Accuracy != 0.75 {
		t.Fatalf("multiclass = %+v", rep.Multiclass)
	}
	// A two-column binary model is read by its second column.
	rep, err = evaluation.Evaluate(evaluation.Spec{Task: evaluation.TaskBinary, Outputs: 2, Labels: labels, Predictions: probs})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Binary == nil || *rep.Binary.Accuracy != 0.75 || *rep.Binary.AUC != 1 {
		t.Fatalf("binary = %+v", rep.Binary)
	}
}

func TestEvaluateErrors(t *testing.T) {
	th := 2.0
	base := func() evaluation.Spec {
		return evaluation.Spec{Task: evaluation.TaskBinary, Outputs: 1, Labels: []float64{0, 1}, Predictions: []float32{0.2, 0.8}}
	}
	tests := []struct {
		name string
		edit func(*evaluation.Spec)
		want string
	}{
		{"task", func(s *evaluation.Spec) { s.Task = "ranking" }, `task is "ranking"`},
		{"no labels", func(s *evaluation.Spec) { s.Labels = nil }, "labels is empty"},
		{"outputs", func(s *evaluation.Spec) { s.Outputs = 3 }, "outputs is 3; a binary task needs 1 or 2"},
		{"multiclass outputs", func(s *evaluation.Spec) { s.Task, s.Outputs = evaluation.TaskMulticlass, 1 }, "outputs is 1; a multiclass task needs at least 2"},
		{"predictions", func(s *evaluation.Spec) { s.Predictions = s.Predictions[:1] }, "labels has 2 rows, so predictions needs 2 values (1 per row) but has 1"},
		{"prediction range", func(s *evaluation.Spec) { s.Predictions[1] = 1.5 }, "predictions[1] is 1.5"},
		{"threshold", func(s *evaluation.Spec) { s.Threshold = &th }, "threshold is 2"},
		{"regression NaN", func(s *evaluation.Spec) { s.Task, s.Labels[0] = evaluation.TaskRegression, math.NaN() }, "labels[0] is NaN; values must be finite"},
		{"binary label", func(s *evaluation.Spec) { s.Labels[0] = 3 }, "labels[0] is 3; binary labels must be 0 or 1"},
		{"class label", func(s *evaluation.Spec) {
			s.Task, s.Outputs, s.Labels[0], s.Predictions = evaluation.TaskMulticlass, 2, 2, []float32{0.5, 0.5, 0.5, 0.5}
		}, "labels[0] is 2; class labels must be integers in [0, 2)"},
		{"slice length", func(s *evaluation.Spec) { s.Slices = []evaluation.Column{{Name: "c", Strings: []string{"a"}}} }, "slices[0] (c) has 1 strings; labels has 2 rows"},
		{"slice both", func(s *evaluation.Spec) {
			s.Slices = []evaluation.Column{{Name: "c", Strings: []string{"a", "b"}, Codes: []int64{1, 2}}}
		}, "slices[0] (c) must set exactly one of strings and codes"},
		{"slice neither", func(s *evaluation.Spec) { s.Slices = []evaluation.Column{{Name: "c"}} }, "exactly one of strings and codes"},
		{"slice name", func(s *evaluation.Spec) { s.Slices = []evaluation.Column{{Codes: []int64{1, 2}}} }, "slices[0] has no name"},
		{"slice twice", func(s *evaluation.Spec) {
			s.Slices = []evaluation.Column{{Name: "c", Codes: []int64{1, 2}}, {Name: "c", Codes: []int64{1, 2}}}
		}, `slices[1]: column "c" is named twice`},
		{"min rows", func(s *evaluation.Spec) { s.MinSliceRows = -1 }, "min_slice_rows is -1"},
		{"weights", func(s *evaluation.Spec) { s.Weights = []float64{1} }, "weights has 1 values; labels has 2 rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.edit(&s)
			_, err := evaluation.Evaluate(s)
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestEvaluateTooManySliceValues(t *testing.T) {
	n := evaluation.MaxSliceValues + 1
	s := evaluation.Spec{Task: evaluation.TaskRegression, Outputs: 1, Labels: make([]float64, n), Predictions: make([]float32, n)}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	s.Slices = []evaluation.Column{{Name: "user_id", Codes: ids}}
	_, err := evaluation.Evaluate(s)
	if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), "slices[0] (user_id) has more than 1000 distinct values") {
		t.Fatalf("err = %v", err)
	}
}

// Metric keys keep to what MLflow accepts, and slices whose values clean
// up to the same key stay apart.
func TestMetricKeys(t *testing.T) {
	n := 20
	s := evaluation.Spec{Task: evaluation.TaskRegression, Outputs: 1, Labels: make([]float64, n), Predictions: make([]float32, n), MinSliceRows: 1}
	col := evaluation.Column{Name: "city/zone.v2"}
	for i := range n {
		s.Labels[i] = float64(i)
		s.Predictions[i] = float32(i) + 0.5
		col.Strings = append(col.Strings, []string{"a:b", "a;b", "", "São Paulo", "x|y"}[i%5])
	}
	s.Slices = []evaluation.Column{col}
	rep, err := evaluation.Evaluate(s)
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Metrics()
	for _, k := range []string{"slice.city_zone_v2._.mae", "slice.city_zone_v2.a_b.mae", "slice.city_zone_v2.a_b_2.mae", "slice.city_zone_v2.S__o Paulo.mae", "slice.city_zone_v2.x_y.mae"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no key %q in %v", k, keys(m))
		}
	}
	for k := range m {
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-. ", c)) {
				t.Errorf("key %q has %q, which MLflow refuses", k, c)
			}
		}
	}
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
