package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// SearchResult is the search-runs scenario.
type SearchResult struct {
	Runs              int     `json:"runs"`
	ParamsPerRun      int     `json:"params_per_run"`
	MetricsPerRun     int     `json:"metrics_per_run"`
	CreateSeconds     float64 `json:"populate_create_seconds"`
	CreatePerSec      float64 `json:"populate_create_runs_per_second"`
	LogSeconds        float64 `json:"populate_log_batch_seconds"`
	LogPerSec         float64 `json:"populate_log_batch_requests_per_second"`
	Filter            string  `json:"filter"`
	OrderBy           string  `json:"order_by"`
	Matching          int     `json:"matching_runs"`
	Page100           Latency `json:"page_100"`
	Page1000          Latency `json:"page_1000"`
	Page100Returned   int     `json:"page_100_returned"`
	Page1000Returned  int     `json:"page_1000_returned"`
	Page100Bytes      int     `json:"page_100_bytes"`
	Page1000Bytes     int     `json:"page_1000_bytes"`
	Page100Written    Latency `json:"page_100_written"`  // after a write to every run of the page
	Page1000Written   Latency `json:"page_1000_written"` // (none then comes from the server's run cache)
	Page100OneWrite   Latency `json:"page_100_one_write"`
	Page1000OneWrite  Latency `json:"page_1000_one_write"` // after a write to one run of the page
	ServerMeanMs      float64 `json:"server_mean_ms_all_pages"`
	Verified          bool    `json:"verified"`
	VerificationNotes string  `json:"verification_notes,omitempty"`
}

// HistoryResult is the get-history scenario.
type HistoryResult struct {
	Points          int     `json:"points"`
	PopulateSeconds float64 `json:"populate_seconds"`
	Full            Latency `json:"full"`
	FullBytes       int     `json:"full_bytes"`
	PageSize        int     `json:"page_size"`
	Pages           int     `json:"pages_per_walk"`
	PagedWalk       Latency `json:"paged_walk"`
	FirstPage       Latency `json:"first_page"`
	Verified        bool    `json:"verified"`
}

type searchRun struct {
	id       string
	start    int64
	m3, m7   float64
	p5       string
	metrics  []point
	paramsKV [][2]string
}

const (
	searchFilter  = "metrics.m3 > 0.2 AND params.p5 = 'v1'"
	searchOrderBy = "metrics.m7 DESC"
)

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
loop:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// writtenRequests is how many search requests per page size and variant
// are timed after writes to the page's runs: each costs up to 1,000 writes.
const writtenRequests = 10

func runSearch(ctx context.Context, c *client, nRuns, nParams, nMetrics, requests, workers int) (SearchResult, error) {
	out := SearchResult{Runs: nRuns, ParamsPerRun: nParams, MetricsPerRun: nMetrics, Filter: searchFilter, OrderBy: searchOrderBy}
	exp, err := c.createExperiment(ctx, "trackbench-search")
	if err != nil {
		return out, err
	}
	ts0 := time.Now().UnixMilli()
	runs := make([]searchRun, nRuns)
	for i := range runs {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		r := &runs[i]
		r.start = ts0 + int64(i)
		for j := range nMetrics {
			r.metrics = append(r.metrics, point{Key: "m" + strconv.Itoa(j), Value: rng.Float64(), Timestamp: ts0 + int64(i), Step: 0})
		}
		for j := range nParams {
			v := "value-" + strconv.Itoa(rng.IntN(1000))
			if j == 5 {
				v = "v" + strconv.Itoa(i%4)
			}
			r.paramsKV = append(r.paramsKV, [2]string{"p" + strconv.Itoa(j), v})
		}
		if nMetrics > 7 {
			r.m3, r.m7 = r.metrics[3].Value, r.metrics[7].Value
		}
		if nParams > 5 {
			r.p5 = r.paramsKV[5][1]
		}
	}

	logf("search-runs: creating %d runs", nRuns)
	t0 := time.Now()
	err = parallel(ctx, nRuns, workers, func(i int) error {
		id, err := c.createRun(ctx, exp, fmt.Sprintf("run-%05d", i), runs[i].start)
		runs[i].id = id
		return err
	})
	if err != nil {
		return out, err
	}
	out.CreateSeconds = time.Since(t0).Seconds()
	out.CreatePerSec = float64(nRuns) / out.CreateSeconds
	logf("search-runs: logging %d params and %d metrics to each run", nParams, nMetrics)
	t0 = time.Now()
	err = parallel(ctx, nRuns, workers, func(i int) error {
		_, err := c.post(ctx, "runs/log-batch", appendLogBatch(nil, runs[i].id, runs[i].metrics, runs[i].paramsKV), nil)
		return err
	})
	if err != nil {
		return out, err
	}
	out.LogSeconds = time.Since(t0).Seconds()
	out.LogPerSec = float64(nRuns) / out.LogSeconds

	// What the server should answer, computed from what was sent.
	var want []searchRun
	for _, r := range runs {
		if r.m3 > 0.2 && r.p5 == "v1" {
			want = append(want, r)
		}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].m7 != want[j].m7 {
			return want[i].m7 > want[j].m7
		}
		if want[i].start != want[j].start {
			return want[i].start > want[j].start
		}
		return want[i].id < want[j].id
	})
	out.Matching = len(want)
	out.Verified = true

	page := func(n int) (Latency, int, int, error) {
		body, _ := json.Marshal(map[string]any{
			"experiment_ids": []string{exp}, "filter": searchFilter, "order_by": []string{searchOrderBy},
			"max_results": n, "run_view_type": "ACTIVE_ONLY",
		})
		var lat []time.Duration
		var returned, size int
		for k := -2; k < requests; k++ { // two untimed warm-up requests
			raw, d, err := c.do(ctx, "POST", apiPrefix+"runs/search", body)
			if err != nil {
				return Latency{}, 0, 0, err
			}
			if k >= 0 {
				lat = append(lat, d)
			}
			if k != -2 {
				continue
			}
			var res struct {
				Runs []struct {
					Info struct {
						RunID string `json:"run_id"`
					} `json:"info"`
					Data struct {
						Metrics []json.RawMessage `json:"metrics"`
						Params  []json.RawMessage `json:"params"`
					} `json:"data"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return Latency{}, 0, 0, err
			}
			returned, size = len(res.Runs), len(raw)
			if wantN := min(n, len(want)); returned != wantN {
				out.Verified = false
				out.VerificationNotes += fmt.Sprintf("page %d: %d runs, want %d; ", n, returned, wantN)
			}
			for i, r := range res.Runs {
				if i < len(want) && r.Info.RunID != want[i].id {
					out.Verified = false
					out.VerificationNotes += fmt.Sprintf("page %d: run %d is %s, want %s; ", n, i, r.Info.RunID, want[i].id)
					break
				}
				if len(r.Data.Metrics) != nMetrics || len(r.Data.Params) != nParams {
					out.Verified = false
					out.VerificationNotes += fmt.Sprintf("page %d: run %d has %d metrics, %d params; ", n, i, len(r.Data.Metrics), len(r.Data.Params))
					break
				}
			}
		}
		return summarize(lat), returned, size, nil
	}
	// written times requests each made after a write to each of the first
	// `runs` runs the page holds (all, or one as while a run is logging): a
	// tag set to a new value each time.
	written := func(n, runs int) (Latency, error) {
		body, _ := json.Marshal(map[string]any{
			"experiment_ids": []string{exp}, "filter": searchFilter, "order_by": []string{searchOrderBy},
			"max_results": n, "run_view_type": "ACTIVE_ONLY",
		})
		page := want[:min(n, runs, len(want))]
		var lat []time.Duration
		for k := range writtenRequests {
			err := parallel(ctx, len(page), workers, func(i int) error {
				tag, _ := json.Marshal(map[string]string{"run_id": page[i].id, "key": "trackbench.written", "value": strconv.Itoa(k)})
				_, err := c.post(ctx, "runs/set-tag", tag, nil)
				return err
			})
			if err != nil {
				return Latency{}, err
			}
			raw, d, err := c.do(ctx, "POST", apiPrefix+"runs/search", body)
			if err != nil {
				return Latency{}, err
			}
			lat = append(lat, d)
			// Each written run must show the tag's new value: the server
			// must not answer from a copy it kept before the write.
			var res struct {
				Runs []struct {
					Data struct {
						Tags []struct{ Key, Value string } `json:"tags"`
					} `json:"data"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return Latency{}, err
			}
			for i := range page {
				if i >= len(res.Runs) || !slices.Contains(res.Runs[i].Data.Tags, struct{ Key, Value string }{"trackbench.written", strconv.Itoa(k)}) {
					out.Verified = false
					out.VerificationNotes += fmt.Sprintf("page %d after writes: run %d does not show the tag written; ", n, i)
					break
				}
			}
		}
		return summarize(lat), nil
	}
	logf("search-runs: timing %d requests per page size", requests)
	if out.Page100, out.Page100Returned, out.Page100Bytes, err = page(100); err != nil {
		return out, err
	}
	if out.Page1000, out.Page1000Returned, out.Page1000Bytes, err = page(1000); err != nil {
		return out, err
	}
	logf("search-runs: timing %d requests per page size after writes to the page's runs", writtenRequests)
	for _, v := range []struct {
		out        *Latency
		page, runs int
	}{
		{&out.Page100Written, 100, 100}, {&out.Page1000Written, 1000, 1000},
		{&out.Page100OneWrite, 100, 1}, {&out.Page1000OneWrite, 1000, 1},
	} {
		if *v.out, err = written(v.page, v.runs); err != nil {
			return out, err
		}
	}
	out.ServerMeanMs, _ = serverMeanMs(ctx, c, "/api/2.0/mlflow/runs/search")
	return out, nil
}

func runHistory(ctx context.Context, c *client, nPoints, requests, workers int) (HistoryResult, error) {
	const perBatch = 1000 // MLflow's log-batch limit
	const pageSize = 25000
	out := HistoryResult{Points: nPoints, PageSize: pageSize}
	ts0 := time.Now().UnixMilli()
	run, err := c.createRun(ctx, "0", "trackbench-history", ts0)
	if err != nil {
		return out, err
	}
	logf("get-history: logging %d points of one metric", nPoints)
	t0 := time.Now()
	nb := (nPoints + perBatch - 1) / perBatch
	err = parallel(ctx, nb, workers, func(b int) error {
		rng := rand.New(rand.NewPCG(uint64(b), 11))
		pts := make([]point, 0, perBatch)
		for s := b * perBatch; s < min(nPoints, (b+1)*perBatch); s++ {
			pts = append(pts, point{Key: "loss", Value: 2/(1+float64(s)/5000) + 0.02*rng.NormFloat64(), Timestamp: ts0 + 50*int64(s), Step: int64(s)})
		}
		_, err := c.post(ctx, "runs/log-batch", appendLogBatch(nil, run, pts, nil), nil)
		return err
	})
	if err != nil {
		return out, err
	}
	out.PopulateSeconds = time.Since(t0).Seconds()
	out.Verified = true

	q := url.Values{"run_id": {run}, "metric_key": {"loss"}}
	var full []time.Duration
	for k := -1; k < requests; k++ {
		raw, d, err := c.get(ctx, "metrics/get-history", q)
		if err != nil {
			return out, err
		}
		if k >= 0 {
			full = append(full, d)
			continue
		}
		var res struct {
			Metrics []json.RawMessage `json:"metrics"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return out, err
		}
		out.FullBytes = len(raw)
		if len(res.Metrics) != nPoints {
			out.Verified = false
		}
	}
	out.Full = summarize(full)

	var walks, firsts []time.Duration
	for k := -1; k < requests; k++ {
		var walk time.Duration
		token, got, pages := "", 0, 0
		for {
			pq := url.Values{"run_id": {run}, "metric_key": {"loss"}, "max_results": {strconv.Itoa(pageSize)}}
			if token != "" {
				pq.Set("page_token", token)
			}
			raw, d, err := c.get(ctx, "metrics/get-history", pq)
			if err != nil {
				return out, err
			}
			if pages == 0 && k >= 0 {
				firsts = append(firsts, d)
			}
			walk += d
			pages++
			var res struct {
				Metrics json.RawMessage `json:"metrics"`
				Next    string          `json:"next_page_token"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return out, err
			}
			got += countPoints(res.Metrics)
			if res.Next == "" || pages > nPoints/pageSize+2 {
				break
			}
			token = res.Next
		}
		if got != nPoints {
			out.Verified = false
		}
		out.Pages = pages
		if k >= 0 {
			walks = append(walks, walk)
		}
	}
	out.PagedWalk = summarize(walks)
	out.FirstPage = summarize(firsts)
	return out, nil
}

// countPoints counts the metric objects in a get-history answer's metrics
// array without decoding them (keeps the client's CPU use small).
func countPoints(raw []byte) int {
	return bytes.Count(raw, []byte(`"key":`))
}
