package serving

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the inference
// latency histogram: fine below a millisecond, where native models answer,
// and wide enough for a Python worker's tens of milliseconds.
var latencyBuckets = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}

// VersionStats counts what one model version answered for one
// deployment: requests, failures and a latency histogram. Recording is a
// few atomic adds, so the inference path can afford it on every request;
// Prometheus and progressive rollouts read the same counters.
type VersionStats struct {
	Deployment string
	Model      string
	Version    int64
	// Shadow marks the counters of mirrored requests, which are scored
	// but never answered.
	Shadow bool

	requests, errors, sumMicros atomic.Int64
	buckets                     [len(latencyBuckets) + 1]atomic.Int64 // the last is +Inf
}

// Record counts one request that took d; failed says the model could not
// answer it.
func (v *VersionStats) Record(d time.Duration, failed bool) {
	v.requests.Add(1)
	if failed {
		v.errors.Add(1)
	}
	v.sumMicros.Add(d.Microseconds())
	sec := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && sec > latencyBuckets[i] {
		i++
	}
	v.buckets[i].Add(1)
}

// window is a reading of a VersionStats, or the difference of two
// readings: what happened between them.
type window struct {
	Requests  int64
	Errors    int64
	SumMicros int64
	Buckets   [len(latencyBuckets) + 1]int64
}

func (v *VersionStats) read() window {
	w := window{Requests: v.requests.Load(), Errors: v.errors.Load(), SumMicros: v.sumMicros.Load()}
	for i := range v.buckets {
		w.Buckets[i] = v.buckets[i].Load()
	}
	return w
}

func (w window) since(base window) window {
	d := window{Requests: w.Requests - base.Requests, Errors: w.Errors - base.Errors, SumMicros: w.SumMicros - base.SumMicros}
	for i := range w.Buckets {
		d.Buckets[i] = w.Buckets[i] - base.Buckets[i]
	}
	return d
}

// ErrorRate is the share of requests that failed (0 without requests).
func (w window) ErrorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Quantile estimates the q-quantile of latency, as Prometheus's
// histogram_quantile does: linear within the bucket that holds it. The
// +Inf bucket answers with the largest finite bound.
func (w window) Quantile(q float64) time.Duration {
	var total int64
	for _, n := range w.Buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen int64
	for i, n := range w.Buckets {
		if float64(seen+n) < rank || n == 0 {
			seen += n
			continue
		}
		if i == len(latencyBuckets) {
			break
		}
		lo := 0.0
		if i > 0 {
			lo = latencyBuckets[i-1]
		}
		frac := (rank - float64(seen)) / float64(n)
		return time.Duration((lo + (latencyBuckets[i]-lo)*math.Max(frac, 0)) * float64(time.Second))
	}
	return time.Duration(latencyBuckets[len(latencyBuckets)-1] * float64(time.Second))
}

type statsKey struct {
	deployment, model string
	version           int64
	shadow            bool
}

// statsTable holds every deployment's counters for the life of the
// process: counters survive a routing change, as Prometheus expects.
type statsTable struct {
	m sync.Map // statsKey -> *VersionStats
}

func (t *statsTable) get(deployment string, m *Loaded, shadow bool) *VersionStats {
	k := statsKey{deployment, m.Name, m.Version, shadow}
	if v, ok := t.m.Load(k); ok {
		return v.(*VersionStats)
	}
	v, _ := t.m.LoadOrStore(k, &VersionStats{Deployment: deployment, Model: m.Name, Version: m.Version, Shadow: shadow})
	return v.(*VersionStats)
}

func (t *statsTable) each(fn func(*VersionStats)) {
	t.m.Range(func(_, v any) bool {
		fn(v.(*VersionStats))
		return true
	})
}

// Stats returns the counters of a version answering for a deployment; the
// inference layer records every request in them.
func (s *Service) Stats(deployment string, m *Loaded) *VersionStats {
	return s.stats.get(deployment, m, false)
}

func (v *VersionStats) versionLabel() string { return strconv.FormatInt(v.Version, 10) }
