package serving

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// The Prometheus collector reports per deployment and version what the
// inference path recorded, and each route's configured share.
func TestCollector(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRolloutFixture(t, db)
		if _, err := f.s.Canary(f.ctx, "credit", "models:/credit/2", 25); err != nil {
			t.Fatal(err)
		}
		f.serve(4000, 0.5, 3*time.Millisecond)
		reg := prometheus.NewRegistry()
		reg.MustRegister(f.s.Collector())
		var v1, v2 int64
		f.s.stats.each(func(v *VersionStats) {
			if v.Version == 1 {
				v1 = v.read().Requests
			} else {
				v2 = v.read().Requests
			}
		})
		if v1+v2 != 4000 || v2 < 800 || v2 > 1200 {
			t.Fatalf("recorded %d and %d requests", v1, v2)
		}
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		text := rec.Body.String()
		for _, line := range []string{
			`slipway_deployment_traffic_share{deployment="credit",model="credit",role="canary",version="2"} 0.25`,
			`slipway_deployment_traffic_share{deployment="credit",model="credit",role="stable",version="1"} 0.75`,
			`slipway_deployment_requests_total{deployment="credit",model="credit",shadow="false",version="2"} ` + itoa(v2),
			`slipway_deployment_errors_total{deployment="credit",model="credit",shadow="false",version="2"} ` + itoa(v2/2),
			`slipway_deployment_errors_total{deployment="credit",model="credit",shadow="false",version="1"} 0`,
			`slipway_deployment_inference_duration_seconds_bucket{deployment="credit",model="credit",shadow="false",version="1",le="0.00025"} ` + itoa(v1),
			`slipway_deployment_inference_duration_seconds_bucket{deployment="credit",model="credit",shadow="false",version="2",le="0.0025"} 0`,
			`slipway_deployment_inference_duration_seconds_bucket{deployment="credit",model="credit",shadow="false",version="2",le="0.005"} ` + itoa(v2),
			`slipway_prediction_log_queue_capacity 65536`,
		} {
			if !strings.Contains(text, line+"\n") {
				t.Errorf("metrics lack %s\n%s", line, text)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The latency quantile interpolates within a bucket, as
// histogram_quantile does.
func TestWindowQuantile(t *testing.T) {
	var v VersionStats
	for i := 0; i < 90; i++ {
		v.Record(200*time.Microsecond, false)
	}
	for i := 0; i < 10; i++ {
		v.Record(20*time.Millisecond, false)
	}
	w := v.read()
	if q := w.Quantile(.5); q <= 100*time.Microsecond || q > 250*time.Microsecond {
		t.Errorf("p50 %s; want in (100µs, 250µs]", q)
	}
	if q := w.Quantile(.99); q <= 10*time.Millisecond || q > 25*time.Millisecond {
		t.Errorf("p99 %s; want in (10ms, 25ms]", q)
	}
	if q := (window{}).Quantile(.99); q != 0 {
		t.Errorf("an empty window's p99: %s", q)
	}
}
