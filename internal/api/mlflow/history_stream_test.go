package mlflow

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// The streamed whole history must be byte for byte what the encoder writes
// for the same points, which the paged route still uses.
func TestStreamedHistoryMatchesEncoded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tr, err := tracking.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		(&Handler{Tracking: tr, MaxBodyBytes: 1 << 20}).Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		run, err := tr.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: "0"})
		if err != nil {
			t.Fatal(err)
		}
		const key = "loss/train x.1"
		values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.5, 1e300, 1e-300, 3, 0, -12345.678, 1e21}
		steps := []int64{-1 << 62, -7, 0, 1, 1 << 40, 1<<63 - 1, 5, 5, 5, 2}
		var ms []tracking.Metric
		for i := range 3000 { // 210 distinct points: the rest repeat them
			j := i % len(values)
			ms = append(ms, tracking.Metric{Key: key, Value: values[j], Timestamp: int64(1700000000000 + i%7), Step: steps[j] + int64(i/len(values))%3})
			if len(ms) == 1000 {
				if err := tr.LogBatch(ctx, run.Info.RunID, ms, nil, nil); err != nil {
					t.Fatal(err)
				}
				ms = ms[:0]
			}
		}

		get := func(q url.Values) (int, string) {
			t.Helper()
			resp, err := http.Get(srv.URL + "/api/2.0/mlflow/metrics/get-history?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, string(b)
		}
		encoded := func(runID, key string) string {
			t.Helper()
			history, _, err := tr.GetMetricHistory(ctx, runID, key, tracking.MaxHistoryPage, "")
			if err != nil {
				t.Fatal(err)
			}
			out := struct {
				Metrics []metricJSON `json:"metrics,omitempty"`
			}{}
			for _, m := range history {
				out.Metrics = append(out.Metrics, metricOut(m))
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, out)
			return rec.Body.String()
		}

		for _, k := range []string{key, "never-logged"} {
			status, body := get(url.Values{"run_id": {run.Info.RunID}, "metric_key": {k}})
			if status != http.StatusOK {
				t.Fatalf("%s: status %d: %s", k, status, body)
			}
			if want := encoded(run.Info.RunID, k); body != want {
				t.Errorf("%s: streamed answer differs from the encoded one:\n got %.300s\nwant %.300s", k, body, want)
			}
			_, paged := get(url.Values{"run_id": {run.Info.RunID}, "metric_key": {k}, "max_results": {strconv.Itoa(tracking.MaxHistoryPage)}})
			if paged != body {
				t.Errorf("%s: a single page differs from the streamed answer", k)
			}
		}
		// Pages with a next page token are written as encoding/json would
		// write them too.
		for tok, pages := "", 0; ; pages++ {
			q := url.Values{"run_id": {run.Info.RunID}, "metric_key": {key}, "max_results": {"50"}}
			if tok != "" {
				q.Set("page_token", tok)
			}
			status, body := get(q)
			history, next, err := tr.GetMetricHistory(ctx, run.Info.RunID, key, 50, tok)
			if status != http.StatusOK || err != nil {
				t.Fatalf("page %d: status %d, %v: %s", pages, status, err, body)
			}
			out := struct {
				Metrics       []metricJSON `json:"metrics,omitempty"`
				NextPageToken string       `json:"next_page_token,omitempty"`
			}{NextPageToken: next}
			for _, m := range history {
				out.Metrics = append(out.Metrics, metricOut(m))
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, out)
			if body != rec.Body.String() {
				t.Fatalf("page %d differs from the encoded one:\n got %.300s\nwant %.300s", pages, body, rec.Body.String())
			}
			if tok = next; tok == "" {
				if pages != 4 { // 210 distinct points in pages of 50
					t.Fatalf("%d pages, want 5", pages+1)
				}
				break
			}
		}
		if status, body := get(url.Values{"run_id": {"0123456789abcdef0123456789abcdef"}, "metric_key": {key}}); status != http.StatusNotFound {
			t.Errorf("missing run: status %d: %s", status, body)
		}
	})
}
