package mlflow

import (
	"math"
	"testing"
)

var logBatchSeeds = []string{
	`{"run_id": "0123456789abcdef0123456789abcdef", "metrics": [{"key": "loss", "value": 0.25, "timestamp": 1700000000000, "step": 3}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":"1700000000000","step":"-2"},{"key":"b/c d.e-f","value":-1.5e-7,"timestamp":0}],"params":[],"tags":[]}`,
	` { "metrics" : [ ] , "run_id" : "r" } `,
	`{"run_id":"r","metrics":[]}`,
	`{}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1e400,"timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":"NaN","timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":01,"timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1.5}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1,"timestamp":2}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1}],"metrics":[]}`,
	`{"run_id":"r","metrics":[{"key":"a","timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":null,"timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"key":"a\u00e9","value":1,"timestamp":1}]}`,
	`{"run_id":"r","metrics":[{"KEY":"a","value":1,"timestamp":1}]}`,
	`{"RUN_ID":"r"}`,
	`{"run_id":"r","params":[{"key":"p","value":"v"}]}`,
	`{"run_id":"r","tags":null}`,
	`{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1,"step":9223372036854775808}]}`,
	`{"run_id":"r","metrics":[{"key":"a","value":-0,"timestamp":-0,"step":" 1"}]}`,
	`{"run_id":"r"} x`,
	`{"run_id":"r",}`,
	`[{"run_id":"r"}]`,
}

// The bodies MLflow's clients send take the fast path; without this the
// differential test below would pass with a scanner that takes nothing.
func TestScanLogBatchTakesClientBodies(t *testing.T) {
	for _, body := range logBatchSeeds[:4] {
		if _, _, ok := scanLogBatch([]byte(body)); !ok {
			t.Errorf("not scanned: %s", body)
		}
	}
	runID, ms, _ := scanLogBatch([]byte(logBatchSeeds[1]))
	if runID != "r" || len(ms) != 2 || ms[0].Timestamp != 1700000000000 || ms[0].Step != -2 || ms[1].Key != "b/c d.e-f" || ms[1].Value != -1.5e-7 || ms[1].Step != 0 {
		t.Fatalf("scanned %q %+v", runID, ms)
	}
}

// Whatever scanLogBatch takes, encoding/json decodes to the same request.
func FuzzScanLogBatch(f *testing.F) {
	for _, s := range logBatchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		runID, metrics, ok := scanLogBatch(body)
		if !ok {
			return
		}
		var req logBatchRequest
		if err := unmarshalBody(body, &req); err != nil {
			t.Fatalf("scanned %q, which encoding/json refuses: %v", body, err)
		}
		want, err := req.metrics()
		if err != nil {
			t.Fatalf("scanned %q, whose metrics are refused: %v", body, err)
		}
		if runID != req.RunID || len(req.Params) != 0 || len(req.Tags) != 0 || len(metrics) != len(want) {
			t.Fatalf("%q: scanned run %q and %d metrics, decoded %q, %d metrics, %d params, %d tags",
				body, runID, len(metrics), req.RunID, len(want), len(req.Params), len(req.Tags))
		}
		for i := range want {
			g, w := metrics[i], want[i]
			if g.Key != w.Key || math.Float64bits(g.Value) != math.Float64bits(w.Value) || g.Timestamp != w.Timestamp || g.Step != w.Step {
				t.Fatalf("%q: metric %d scanned as %+v, decoded as %+v", body, i, g, w)
			}
		}
	})
}
