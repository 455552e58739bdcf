package mlflow

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slipwayml/slipway/internal/tracking"
)

// appendSearchRuns writes what writeJSON writes for runOut's structs, for
// runs with every field set or empty and strings that need escaping.
func TestSearchRunsJSONMatchesEncoded(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	texts := []string{"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\r", "\x00\x01\x1f\x7f", "<b>&amp;</b>",
		"héllo ✓", "\u2028\u2029", "bad \xff\xfe utf8", "emoji 🚀", "mlflow.runName"}
	text := func() string { return texts[r.IntN(len(texts))] }
	values := []float64{0, -0.5, 1e21, 1e-7, math.NaN(), math.Inf(1), math.Inf(-1), 123456789.125}
	var runs []tracking.Run
	for range 60 {
		run := tracking.Run{Info: tracking.RunInfo{RunID: text(), RunName: text(), ExperimentID: text(), UserID: text(),
			Status: text(), StartTime: r.Int64() - r.Int64(), ArtifactURI: text(), LifecycleStage: text()}}
		if r.IntN(2) == 0 {
			end := r.Int64N(1 << 50)
			run.Info.EndTime = &end
		}
		for range r.IntN(4) {
			run.Metrics = append(run.Metrics, tracking.Metric{Key: text(), Value: values[r.IntN(len(values))], Timestamp: r.Int64N(1 << 45), Step: r.Int64() - r.Int64()})
		}
		for range r.IntN(3) {
			run.Params = append(run.Params, tracking.Param{Key: text(), Value: text()})
		}
		for range r.IntN(3) {
			run.Tags = append(run.Tags, tracking.Tag{Key: text(), Value: text()})
		}
		for range r.IntN(3) {
			in := tracking.DatasetInput{Dataset: tracking.Dataset{Name: text(), Digest: text(), SourceType: text(), Source: text(), Schema: text(), Profile: text()}}
			for range r.IntN(3) {
				in.Tags = append(in.Tags, tracking.Tag{Key: text(), Value: text()})
			}
			run.Inputs = append(run.Inputs, in)
		}
		runs = append(runs, run)
	}
	for _, tc := range []struct {
		runs []tracking.Run
		next string
	}{{runs, ""}, {runs[:7], "eyJvZmZzZXQiOiA3fQ=="}, {nil, ""}, {nil, "tok"}, {runs[:1], ""}} {
		out := struct {
			Runs          []runJSON `json:"runs,omitempty"`
			NextPageToken string    `json:"next_page_token,omitempty"`
		}{NextPageToken: tc.next}
		for _, run := range tc.runs {
			out.Runs = append(out.Runs, runOut(run))
		}
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, out)
		got := string(appendSearchRuns(nil, tc.runs, tc.next))
		if want := rec.Body.String(); got != want {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("%d runs: differs at byte %d:\n got %.200q\nwant %.200q", len(tc.runs), i, got[max(0, i-60):], want[max(0, i-60):])
				}
			}
			t.Fatalf("%d runs: %d bytes, want %d", len(tc.runs), len(got), len(want))
		}
	}
}
