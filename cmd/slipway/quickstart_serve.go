package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// quickstartTarget is the label column of the quickstart's data.
const quickstartTarget = "malignant"

// productionVersion is the version the production alias points at.
func (q *quickstart) productionVersion() (string, error) {
	v, err := q.c.GetModelVersionByAlias(q.ctx, quickstartModel, "production")
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// deploy serves the production model and sends it the holdout cases as
// traffic, with their true labels as feedback.
func (q *quickstart) deploy() error {
	version, err := q.productionVersion()
	if err != nil {
		return err
	}
	ref := fmt.Sprintf("models:/%s/%s", quickstartModel, version)
	fmt.Fprintf(q.out, "\n3. Serving: deployment %s serves %s (production); the holdout cases arrive as requests\n", quickstartModel, ref)
	if _, err := q.slipway("deploy", "create", quickstartModel, "--model", ref); err != nil {
		return err
	}
	tr, err := q.traffic(400, 4, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(q.out, "   %s\n", tr)
	return nil
}

// canary rolls the challenger out progressively while traffic flows: the
// server raises its share step by step and would roll it back by itself
// if it failed or slowed down.
func (q *quickstart) canary() error {
	version, err := q.productionVersion()
	if err != nil {
		return err
	}
	d, err := q.c.GetDeployment(q.ctx, quickstartModel)
	if err != nil {
		return err
	}
	if len(d.Serving) > 0 && d.Serving[0].Version == version {
		fmt.Fprintf(q.out, "\n5. The gate kept the champion, so there is nothing new to roll out\n")
		return nil
	}
	ref := fmt.Sprintf("models:/%s/%s", quickstartModel, version)
	fmt.Fprintf(q.out, "\n5. Delivery: the registry promoted %s; deployment %s rolls it out as a canary, 10%% -> 50%% -> 100%%,\n", ref, quickstartModel)
	fmt.Fprintf(q.out, "   each step lasting 2s and 50 canary requests while its errors and latency stay within the stable version's\n")
	stop := make(chan struct{})
	var tr trafficResult
	var trafficErr error
	sent := make(chan struct{})
	go func() {
		tr, trafficErr = q.traffic(0, 2, stop)
		close(sent)
	}()
	out, err := q.slipway("deploy", "rollout", quickstartModel, "--model", ref, "--steps", "10,50,100",
		"--interval", "2s", "--min-requests", "50", "--watch")
	close(stop)
	<-sent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fmt.Fprintf(q.out, "   %s\n", line)
	}
	if err != nil {
		return err
	}
	if trafficErr != nil {
		return trafficErr
	}
	fmt.Fprintf(q.out, "   during the rollout: %s\n", tr)
	return nil
}

// trafficResult is what a burst of requests got back.
type trafficResult struct {
	sent, failed int
	byVersion    map[string]int
	latencies    []time.Duration
}

func (t trafficResult) String() string {
	versions := make([]string, 0, len(t.byVersion))
	for v := range t.byVersion {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = fmt.Sprintf("%d by v%s", t.byVersion[v], v)
	}
	slices.Sort(t.latencies)
	p50, p99 := time.Duration(0), time.Duration(0)
	if n := len(t.latencies); n > 0 {
		p50, p99 = t.latencies[n/2], t.latencies[n*99/100]
	}
	return fmt.Sprintf("%d requests answered (%s), %d failed; latency p50 %s, p99 %s, over HTTP",
		t.sent-t.failed, strings.Join(parts, ", "), t.failed, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
}

// traffic sends the holdout cases, one per Open Inference Protocol
// request, from clients concurrent senders: n requests, or until stop
// closes when n is 0. Each case's true label follows as feedback, by
// request id, as a labelling process would send it later.
func (q *quickstart) traffic(n, clients int, stop <-chan struct{}) (trafficResult, error) {
	cases, labels, err := q.holdoutRequests()
	if err != nil {
		return trafficResult{}, err
	}
	url := q.c.URL() + "/v2/models/" + quickstartModel + "/infer"
	var mu sync.Mutex
	res := trafficResult{byVersion: map[string]int{}}
	var feedback []map[string]any
	next := 0
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if n > 0 && next >= n {
			return 0, false
		}
		if stop != nil {
			select {
			case <-stop:
				return 0, false
			default:
			}
		}
		next++
		return next, true
	}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				id := fmt.Sprintf("quickstart-%d-%d", time.Now().UnixNano(), i)
				c := (i - 1) % len(cases)
				body := bytes.Replace(cases[c], []byte(`"id":""`), []byte(`"id":"`+id+`"`), 1)
				start := time.Now()
				version, err := postInfer(url, body)
				took := time.Since(start)
				mu.Lock()
				res.sent++
				if err != nil {
					res.failed++
				} else {
					res.byVersion[version]++
					res.latencies = append(res.latencies, took)
					feedback = append(feedback, map[string]any{"request_id": id, "label": labels[c]})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for len(feedback) > 0 {
		part := feedback[:min(len(feedback), 1000)]
		feedback = feedback[len(part):]
		if err := q.c.DeploymentFeedback(q.ctx, quickstartModel, part); err != nil {
			return res, err
		}
	}
	return res, nil
}

func postInfer(url string, body []byte) (string, error) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ModelVersion string `json:"model_version"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%d: %s", resp.StatusCode, out.Error)
	}
	return out.ModelVersion, nil
}

// holdoutRequests reads the holdout cases into Open Inference Protocol
// request bodies, one input per column (the id left empty to fill in),
// and their labels.
func (q *quickstart) holdoutRequests() ([][]byte, []int, error) {
	f, err := os.Open(filepath.Join(q.project, "holdout.csv"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, nil, fmt.Errorf("reading the holdout cases: %v", err)
	}
	header := rows[0]
	target := slices.Index(header, quickstartTarget)
	var bodies [][]byte
	var labels []int
	for _, row := range rows[1:] {
		var inputs []map[string]any
		for j, col := range header {
			if j == target {
				continue
			}
			v, err := strconv.ParseFloat(row[j], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("holdout column %s: %v", col, err)
			}
			inputs = append(inputs, map[string]any{"name": col, "shape": []int{1}, "datatype": "FP64", "data": []float64{v}})
		}
		label, _ := strconv.Atoi(row[target])
		body, _ := json.Marshal(map[string]any{"id": "", "inputs": inputs})
		bodies = append(bodies, body)
		labels = append(labels, label)
	}
	return bodies, labels, nil
}
