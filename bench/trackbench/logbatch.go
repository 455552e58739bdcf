package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is the LogMetricBatch case: clients runs, each sent batches
// batches of batchSize points with distinct (key, step), keys keys cycling
// within a batch and steps advancing from batch to batch.
type workload struct {
	Clients   int   `json:"clients"`
	Batches   int   `json:"batches_per_client"`
	BatchSize int   `json:"batch_size"`
	Keys      int   `json:"keys_per_batch"`
	TS0       int64 `json:"-"`
	keyNames  []string
}

func newWorkload(clients, batches, batchSize, keys int) workload {
	keys = max(1, min(keys, batchSize))
	w := workload{Clients: clients, Batches: batches, BatchSize: batchSize, Keys: keys, TS0: time.Now().UnixMilli()}
	for i := range keys {
		w.keyNames = append(w.keyNames, fmt.Sprintf("train/metric_%02d", i))
	}
	return w
}

func (w workload) stepsPerBatch() int { return (w.BatchSize + w.Keys - 1) / w.Keys }

func (w workload) totalPoints() int64 {
	return int64(w.Clients) * int64(w.Batches) * int64(w.BatchSize)
}

// key0PerBatch is how many points of the first key one batch holds.
func (w workload) key0PerBatch() int { return w.stepsPerBatch() }

// batch fills pts with client c's b-th batch. Values look like a training
// curve with noise; timestamps advance 100 ms a step from the start time.
func (w workload) batch(pts []point, c, b int) []point {
	pts = pts[:0]
	rng := rand.New(rand.NewPCG(uint64(c), uint64(b)))
	spb := w.stepsPerBatch()
	for i := range w.BatchSize {
		step := int64(b*spb + i/w.Keys)
		k := i % w.Keys
		v := (1+float64(k))/(1+float64(step)/1000) + 0.05*rng.NormFloat64()
		pts = append(pts, point{Key: w.keyNames[k], Value: v, Timestamp: w.TS0 + 100*step, Step: step})
	}
	return pts
}

// LogBatchRep is one repetition of the log-batch scenario.
type LogBatchRep struct {
	Latency      Latency `json:"latency"`
	WallSeconds  float64 `json:"wall_seconds"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	PointsAcked  int64   `json:"points_acknowledged"`
	PointsPerSec float64 `json:"points_per_second"`
	// ServerMeanMs is the server's own mean handling time for log-batch,
	// read from its Prometheus histogram (body read to response written).
	ServerMeanMs float64 `json:"server_mean_ms"`
	Verify       Verify  `json:"verify"`
}

// Verify compares what the server acknowledged with what it stored.
type Verify struct {
	Acknowledged    int64  `json:"acknowledged_points"`
	StoredPoints    int64  `json:"stored_points"`
	LatestRows      int64  `json:"latest_metric_rows"`
	LatestExpected  int64  `json:"latest_metric_rows_expected"`
	HistoryPoints   int    `json:"history_points_run0_key0"`
	HistoryExpected int    `json:"history_points_expected"`
	OK              bool   `json:"ok"`
	Note            string `json:"note,omitempty"`
}

func runLogBatch(ctx context.Context, be *backend, w workload, rep int) (LogBatchRep, error) {
	var out LogBatchRep
	d, err := be.fresh(ctx, fmt.Sprintf("logbatch-%d", rep))
	if err != nil {
		return out, err
	}
	srv, err := startServer(ctx, d)
	if err != nil {
		return out, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	c := newClient(srv.Base, w.Clients)
	defer c.close()

	exp, err := c.createExperiment(ctx, "trackbench-logbatch")
	if err != nil {
		return out, err
	}
	runs := make([]string, w.Clients)
	for i := range runs {
		if runs[i], err = c.createRun(ctx, exp, fmt.Sprintf("client-%02d", i), w.TS0); err != nil {
			return out, err
		}
	}
	// Open every client's keep-alive connection before the clock starts.
	var warm sync.WaitGroup
	for i := range w.Clients {
		warm.Add(1)
		go func() {
			defer warm.Done()
			c.get(ctx, "runs/get", url.Values{"run_id": {runs[i]}})
		}()
	}
	warm.Wait()

	lat := make([][]time.Duration, w.Clients)
	acked := make([]int, w.Clients) // batches acknowledged per client
	var errCount atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pts := make([]point, 0, w.BatchSize)
			body := make([]byte, 0, 96*w.BatchSize)
			lat[i] = make([]time.Duration, 0, w.Batches)
			<-start
			for b := range w.Batches {
				if ctx.Err() != nil {
					return
				}
				pts = w.batch(pts, i, b)
				body = appendLogBatch(body[:0], runs[i], pts, nil)
				d, err := c.post(ctx, "runs/log-batch", body, nil)
				if err != nil {
					if errCount.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				lat[i] = append(lat[i], d)
				acked[i]++
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return out, err
	}

	var all []time.Duration
	var batchesAcked int64
	for i := range lat {
		all = append(all, lat[i]...)
		batchesAcked += int64(acked[i])
	}
	out.Latency = summarize(all)
	out.WallSeconds = wall.Seconds()
	out.Requests = w.Clients * w.Batches
	out.Errors = int(errCount.Load())
	if s, ok := firstErr.Load().(string); ok {
		out.FirstError = s
	}
	out.PointsAcked = batchesAcked * int64(w.BatchSize)
	out.PointsPerSec = float64(out.PointsAcked) / wall.Seconds()
	out.ServerMeanMs, _ = serverMeanMs(ctx, c, "/api/2.0/mlflow/runs/log-batch")

	// Verification, first through the API (what a client would see) ...
	v := &out.Verify
	v.Acknowledged = out.PointsAcked
	v.HistoryExpected = acked[0] * w.key0PerBatch()
	raw, _, err := c.get(ctx, "metrics/get-history", url.Values{"run_id": {runs[0]}, "metric_key": {w.keyNames[0]}})
	if err != nil {
		return out, fmt.Errorf("verify get-history: %w", err)
	}
	var hist struct {
		Metrics []json.RawMessage `json:"metrics"`
	}
	if err := json.Unmarshal(raw, &hist); err != nil {
		return out, err
	}
	v.HistoryPoints = len(hist.Metrics)
	// ... then in the database itself, after a graceful shutdown has
	// committed everything queued.
	c.close()
	stopped = true
	if err := srv.stop(); err != nil {
		return out, fmt.Errorf("server shutdown: %w", err)
	}
	db, err := d.sqlDB()
	if err != nil {
		return out, err
	}
	defer db.Close()
	// Points live in batches and segments (internal/tracking/segments.go);
	// the workload logs no point twice, so their point counts add up to it.
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COALESCE(SUM(points), 0) FROM metric_segments) + (SELECT COALESCE(SUM(points), 0) FROM metric_batches) + (SELECT COUNT(*) FROM metrics)`).Scan(&v.StoredPoints); err != nil {
		return out, err
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM latest_metrics`).Scan(&v.LatestRows); err != nil {
		return out, err
	}
	v.LatestExpected = int64(w.Clients * w.Keys)
	v.OK = v.StoredPoints == v.Acknowledged && v.HistoryPoints == v.HistoryExpected && v.LatestRows == v.LatestExpected
	if v.StoredPoints > v.Acknowledged {
		v.Note = "more points than acknowledged (a request that failed on the client side may have committed)"
	}
	return out, nil
}

// serverMeanMs reads the server's request-duration histogram for one route
// from its /metrics endpoint and returns sum/count in milliseconds.
func serverMeanMs(ctx context.Context, c *client, route string) (float64, error) {
	raw, _, err := c.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return 0, err
	}
	var sum, count float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	label := `route="` + route + `"`
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		val, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "slipway_http_request_duration_seconds_sum"):
			sum += val
		case strings.HasPrefix(line, "slipway_http_request_duration_seconds_count"):
			count += val
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("no samples for %s", route)
	}
	return 1000 * sum / count, nil
}
