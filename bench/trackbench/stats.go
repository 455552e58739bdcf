package main

import (
	"math"
	"sort"
	"time"
)

// Latency summarises request latencies in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize computes nearest-rank percentiles of ds (which it sorts).
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Latency{
		N:    len(ds),
		Mean: ms(sum) / float64(len(ds)),
		P50:  ms(rank(ds, 0.50)),
		P95:  ms(rank(ds, 0.95)),
		P99:  ms(rank(ds, 0.99)),
		Max:  ms(ds[len(ds)-1]),
	}
}

// rank is the nearest-rank percentile of sorted ds.
func rank(ds []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// median of xs (not modified).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianLatency takes, field by field, the median across repetitions.
func medianLatency(ls []Latency) Latency {
	pick := func(f func(Latency) float64) float64 {
		xs := make([]float64, len(ls))
		for i, l := range ls {
			xs[i] = f(l)
		}
		return median(xs)
	}
	n := 0
	for _, l := range ls {
		n += l.N
	}
	return Latency{
		N:    n,
		Mean: pick(func(l Latency) float64 { return l.Mean }),
		P50:  pick(func(l Latency) float64 { return l.P50 }),
		P95:  pick(func(l Latency) float64 { return l.P95 }),
		P99:  pick(func(l Latency) float64 { return l.P99 }),
		Max:  pick(func(l Latency) float64 { return l.Max }),
	}
}
