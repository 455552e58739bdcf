package serving

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// A segment decodes to what was encoded, NaN inputs included, and a
// truncated or foreign one is an error, never a panic.
func TestSegmentRoundTrip(t *testing.T) {
	in := []*Prediction{
		{PredictionInfo: PredictionInfo{RequestID: "r1", ModelName: "credit", Version: 3, Time: 1_700_000_000_123, LatencyUS: 41, Rows: 2},
			Inputs: []float32{1.5, float32(math.NaN()), -2, 0}, Outputs: []float32{0.25, 0.75}},
		{PredictionInfo: PredictionInfo{RequestID: "", ModelName: "team/credit", Version: 12, Shadow: true, Time: 5, Rows: 1},
			Inputs: []float32{math.MaxFloat32}, Outputs: nil},
	}
	data := appendSegment(nil, in)
	r, err := newSegmentReader(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range in {
		var got Prediction
		if !r.next(&got) {
			t.Fatalf("prediction %d: %v", i, r.err)
		}
		if i == 0 && !math.IsNaN(float64(got.Inputs[1])) {
			t.Errorf("a missing input (NaN) came back as %v", got.Inputs[1])
		}
		want, got := *want, got
		want.Inputs, got.Inputs = nanFree(want.Inputs), nanFree(got.Inputs)
		if len(want.Outputs) == 0 && len(got.Outputs) == 0 {
			want.Outputs, got.Outputs = nil, nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("prediction %d: %+v, want %+v", i, got, want)
		}
	}
	var p Prediction
	if r.next(&p) || r.err != nil {
		t.Errorf("past the end: %v", r.err)
	}
	for n := 0; n < len(data); n++ {
		r, err := newSegmentReader(data[:n])
		if err != nil {
			continue
		}
		for r.next(&p) {
		}
		if !errors.Is(r.err, errSegment) {
			t.Fatalf("a segment cut to %d bytes: %v", n, r.err)
		}
	}
	if _, err := newSegmentReader([]byte{9, 0}); !errors.Is(err, errSegment) {
		t.Errorf("another format: %v", err)
	}
}

// nanFree sets NaN to 0, since NaN never equals itself.
func nanFree(vs []float32) []float32 {
	out := make([]float32, len(vs))
	for i, v := range vs {
		if v == v {
			out[i] = v
		}
	}
	return out
}
