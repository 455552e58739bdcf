package serving

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayml/slipway/internal/models/pyfunc"
)

// Collector exposes the deployments to Prometheus: requests, errors and
// inference latency per deployment and model version, each route's
// configured share of traffic, the prediction log's queue, and the Python
// workers of python_function models. It reads
// the counters the inference path keeps at scrape time, so serving pays
// nothing extra for being measured.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

var (
	versionLabels = []string{"deployment", "model", "version", "shadow"}
	descRequests  = prometheus.NewDesc("slipway_deployment_requests_total",
		"Inference requests a model version scored for a deployment (shadow=\"true\": mirrored, not answered).", versionLabels, nil)
	descErrors = prometheus.NewDesc("slipway_deployment_errors_total",
		"Inference requests the model version failed to score.", versionLabels, nil)
	descLatency = prometheus.NewDesc("slipway_deployment_inference_duration_seconds",
		"Time to score a request, from decoded inputs to outputs.", versionLabels, nil)
	descShare = prometheus.NewDesc("slipway_deployment_traffic_share",
		"Share of a deployment's requests routed to a model version (0-1); a shadow's is the share mirrored to it.",
		[]string{"deployment", "model", "version", "role"}, nil)
	descQueue = prometheus.NewDesc("slipway_prediction_log_queue_depth",
		"Predictions waiting to be written to the prediction log.", nil, nil)
	descQueueCap = prometheus.NewDesc("slipway_prediction_log_queue_capacity",
		"Predictions the prediction log's queue holds before it drops.", nil, nil)
	workerLabels = []string{"model", "version"}
	descWorkers  = prometheus.NewDesc("slipway_model_workers_ready",
		"Python workers up for a python_function model version, of slipway_model_workers.", workerLabels, nil)
	descWorkersCfg = prometheus.NewDesc("slipway_model_workers",
		"Python workers configured for a python_function model version.", workerLabels, nil)
	descRestarts = prometheus.NewDesc("slipway_model_worker_restarts_total",
		"Python workers started to replace one that exited, hung, failed a health check or failed to start.", workerLabels, nil)
	descLogged = prometheus.NewDesc("slipway_prediction_log_predictions_total",
		"Predictions by what became of them: logged, dropped (queue full), failed (write error), shadow_skipped.", []string{"outcome"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descLatency, descShare, descQueue, descQueueCap, descLogged,
		descWorkers, descWorkersCfg, descRestarts} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.s.stats.each(func(v *VersionStats) {
		labels := []string{v.Deployment, v.Model, v.versionLabel(), strconv.FormatBool(v.Shadow)}
		w := v.read()
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(w.Requests), labels...)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(w.Errors), labels...)
		buckets := make(map[float64]uint64, len(latencyBuckets))
		var cum int64
		for i, le := range latencyBuckets {
			cum += w.Buckets[i]
			buckets[le] = uint64(cum)
		}
		// The count is the buckets' sum, not the request counter read a
		// moment earlier, so the histogram is consistent under load.
		count := cum + w.Buckets[len(latencyBuckets)]
		ch <- prometheus.MustNewConstHistogram(descLatency, uint64(count), float64(w.SumMicros)/1e6, buckets, labels...)
	})
	for _, name := range c.s.Names() {
		t := c.s.table(name)
		if t == nil {
			continue
		}
		for _, sv := range t.serving() {
			ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, float64(sv.Weight)/100,
				name, modelName(sv.Model), sv.Version, sv.Role)
		}
	}
	for _, m := range c.s.loader.all() {
		py, ok := m.Model.Model.(*pyfunc.Model)
		if !ok {
			continue
		}
		ws := py.Stats()
		labels := []string{m.Name, m.VersionString()}
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(ws.Ready), labels...)
		ch <- prometheus.MustNewConstMetric(descWorkersCfg, prometheus.GaugeValue, float64(ws.Workers), labels...)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(ws.Restarts), labels...)
	}
	st := c.s.plog.Stats()
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(descQueueCap, prometheus.GaugeValue, float64(cap(c.s.plog.queue)))
	for outcome, n := range map[string]int64{"logged": st.Logged, "dropped": st.Dropped, "failed": st.Failed, "shadow_skipped": st.ShadowSkipped} {
		ch <- prometheus.MustNewConstMetric(descLogged, prometheus.CounterValue, float64(n), outcome)
	}
}

// modelName is the registered model a route reference names.
func modelName(ref string) string {
	r, err := ParseModelRef("model", ref)
	if err != nil {
		return ref
	}
	return r.Name
}
