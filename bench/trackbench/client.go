package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const apiPrefix = "/api/2.0/mlflow/"

// client drives the MLflow REST API over keep-alive HTTP/1.1 connections.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns, // every client goroutine keeps its connection
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// do sends one request and reads the whole response. The latency covers
// sending the body and receiving every byte of the answer, not decoding it.
func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return nil, elapsed, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, elapsed, fmt.Errorf("%s %s: HTTP %d: %.300s", method, path, resp.StatusCode, out)
	}
	return out, elapsed, nil
}

// post sends a JSON body (already encoded, or a value to encode) and decodes
// the answer into out when out is not nil.
func (c *client) post(ctx context.Context, endpoint string, body any, out any) (time.Duration, error) {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	resp, d, err := c.do(ctx, http.MethodPost, apiPrefix+endpoint, raw)
	if err != nil || out == nil {
		return d, err
	}
	return d, json.Unmarshal(resp, out)
}

// get sends a GET with query arguments and returns the raw answer.
func (c *client) get(ctx context.Context, endpoint string, q url.Values) ([]byte, time.Duration, error) {
	return c.do(ctx, http.MethodGet, apiPrefix+endpoint+"?"+q.Encode(), nil)
}

// createRun starts a run and returns its id.
func (c *client) createRun(ctx context.Context, experimentID, name string, startTime int64) (string, error) {
	var out struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	_, err := c.post(ctx, "runs/create", map[string]any{
		"experiment_id": experimentID, "run_name": name, "start_time": startTime,
		"tags": []map[string]string{{"key": "mlflow.user", "value": "trackbench"}},
	}, &out)
	if err == nil && out.Run.Info.RunID == "" {
		err = fmt.Errorf("runs/create returned no run id")
	}
	return out.Run.Info.RunID, err
}

func (c *client) createExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	_, err := c.post(ctx, "experiments/create", map[string]any{"name": name}, &out)
	return out.ID, err
}

// point is one metric point as the benchmark generates it.
type point struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
}

// appendLogBatch renders a runs/log-batch body the way MLflow's Python
// client does: numbers for value, timestamp and step.
func appendLogBatch(b []byte, runID string, pts []point, params [][2]string) []byte {
	b = append(b, `{"run_id":"`...)
	b = append(b, runID...)
	b = append(b, `","metrics":[`...)
	for i, p := range pts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":"`...)
		b = append(b, p.Key...)
		b = append(b, `","value":`...)
		b = strconv.AppendFloat(b, p.Value, 'g', -1, 64)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, p.Timestamp, 10)
		b = append(b, `,"step":`...)
		b = strconv.AppendInt(b, p.Step, 10)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(params) > 0 {
		b = append(b, `,"params":[`...)
		for i, p := range params {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = strconv.AppendQuote(b, p[0])
			b = append(b, `,"value":`...)
			b = strconv.AppendQuote(b, p[1])
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
