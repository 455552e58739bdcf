package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A progressive rollout driven through the CLI raises the canary under
// real traffic and promotes it; the deployment's traffic, errors and
// latency are on /metrics per version; lineage links both versions to the
// deployment.
func TestRolloutMetricsAndLineage(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c)
	c.createVersion("tumor", "models:/tumor/1", "")
	cli(0, "deploy", "create", "tumor", "--model", "models:/tumor/1")

	oip := map[string]any{"inputs": []map[string]any{{
		"name": "rows", "shape": []int{1, 4}, "datatype": "FP32", "data": []float64{17.99, 10.38, 122.8, 1001}}}}
	load := startLoad(s, 3, "/v2/models/tumor/infer", oip)
	out, _ := cli(0, "deploy", "rollout", "tumor", "--model", "models:/tumor/2", "--steps", "20,50,100",
		"--interval", "1s", "--min-requests", "20", "--watch")
	if failed := load.stop(); failed > 0 {
		t.Errorf("%d requests failed during the rollout", failed)
	}
	for _, want := range []string{"running at 20% (step 1 of 3)", "running at 50% (step 2 of 3)", "succeeded at 100% (step 3 of 3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("rollout --watch did not show %q:\n%s", want, out)
		}
	}
	out, _ = cli(0, "deploy", "show", "tumor")
	for _, want := range []string{"stable  100%  models:/tumor/2", "rollout models:/tumor/2 at 20% (step 1 of 3)", "rollout models:/tumor/2 promoted"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	_, raw := s.Do("GET", "/metrics", nil)
	metrics := string(raw)
	requests := func(version string) int {
		m := regexp.MustCompile(`slipway_deployment_requests_total\{deployment="tumor",model="tumor",shadow="false",version="` + version + `"\} (\d+)`).
			FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("no request count for version %s on /metrics", version)
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if v1, v2 := requests("1"), requests("2"); v1 < 20 || v2 < 40 {
		t.Errorf("requests counted: v1 %d, v2 %d", v1, v2)
	}
	for _, want := range []string{
		`slipway_deployment_traffic_share{deployment="tumor",model="tumor",role="stable",version="2"} 1`,
		`slipway_deployment_errors_total{deployment="tumor",model="tumor",shadow="false",version="2"} 0`,
		`slipway_deployment_inference_duration_seconds_bucket{deployment="tumor",model="tumor",shadow="false",version="2",le="+Inf"}`,
		`slipway_prediction_log_queue_depth `,
		`slipway_prediction_log_predictions_total{outcome="dropped"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	out, _ = cli(0, "lineage", "deployments:/tumor")
	for _, want := range []string{"deployments:/tumor", "served models:/tumor/1", "served models:/tumor/2"} {
		if !strings.Contains(out, want) {
			t.Errorf("lineage of the deployment lacks %q:\n%s", want, out)
		}
	}
	out, _ = cli(0, "lineage", "models:/tumor/2", "--direction", "down")
	if !strings.Contains(out, "served by deployments:/tumor") {
		t.Errorf("lineage of the version:\n%s", out)
	}
	_, errOut := cli(2, "deploy", "rollout", "tumor", "--model", "models:/tumor/1", "--steps", "50,20")
	if !strings.Contains(errOut, "steps[1]: 20 must be above the step before it (50)") {
		t.Errorf("bad steps: %s", errOut)
	}
	if _, errOut = cli(2, "deploy", "rollout", "tumor", "--model", "models:/tumor/1", "--interval", "500ms"); !strings.Contains(errOut, "--interval 500ms") {
		t.Errorf("a short interval: %s", errOut)
	}
}

// load sends the same request from several clients until stopped.
type load struct {
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	failed int
}

// startLoad starts clients sending body to path on s, each as soon as its
// last answer came.
func startLoad(s *Server, clients int, path string, body any) *load {
	l := &load{done: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				if code, _ := s.Do("POST", path, body); code != 200 {
					l.mu.Lock()
					l.failed++
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// stop ends the load and returns how many requests failed.
func (l *load) stop() int {
	close(l.done)
	l.wg.Wait()
	return l.failed
}
