package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/store/storetest"
)

// TestCrashKeepsAcknowledgedWrites kills the server with SIGKILL while 20
// clients log batches. After a restart every batch the server acknowledged
// must be there in full, and every run must still read back whole. Batches
// in flight at the kill may or may not have landed, but never in part.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { crashTest(t, false) })
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		crashTest(t, false, "--db", dsn)
	})
}

// TestGracefulShutdownFinishesWrites sends SIGTERM instead: the server must
// exit cleanly, and every request it had started must have been answered, so
// nothing is stored that the client was not told about.
func TestGracefulShutdownFinishesWrites(t *testing.T) {
	crashTest(t, true)
}

func crashTest(t *testing.T, graceful bool, args ...string) {
	const clients, perBatch = 20, 200
	s := Start(t, args...)
	runs := make([]string, clients)
	for i := range runs {
		run := s.OK("POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)
		runs[i] = run["info"].(map[string]any)["run_id"].(string)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acked := make([][]int, clients)  // batch numbers acknowledged per client
	inFlight := make([]int, clients) // the batch a client was sending at the kill, or -1
	var wg sync.WaitGroup
	var mu sync.Mutex
	httpc := &http.Client{Timeout: 30 * time.Second}
	for c := range clients {
		inFlight[c] = -1
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ctx.Err() == nil; b++ {
				metrics := make([]map[string]any, perBatch)
				for i := range metrics {
					step := b*perBatch + i
					metrics[i] = map[string]any{"key": "m", "value": float64(step), "timestamp": 1_700_000_000_000 + step, "step": step}
				}
				body, _ := json.Marshal(map[string]any{"run_id": runs[c], "metrics": metrics})
				mu.Lock()
				inFlight[c] = b
				mu.Unlock()
				resp, err := httpc.Post(s.URL+"/api/2.0/mlflow/runs/log-batch", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return
				}
				mu.Lock()
				acked[c] = append(acked[c], b)
				inFlight[c] = -1
				mu.Unlock()
			}
		}()
	}
	// Let the writers get going, then pull the plug mid-stream: after 3,000
	// batches, so that most runs have passed 128 writes, where the write
	// that crosses the mark compacts the run's metric batches into
	// segments (internal/tracking), and compactions are under way at the
	// kill.
	deadline := time.Now().Add(40 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, a := range acked {
			n += len(a)
		}
		mu.Unlock()
		if n >= 3000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if graceful {
		if code := s.Terminate(); code != 0 {
			t.Fatalf("server exited with %d after SIGTERM; log:\n%s", code, s.Logs())
		}
	} else {
		s.Kill9()
	}
	cancel()
	wg.Wait()

	total := 0
	for _, a := range acked {
		total += len(a)
	}
	if total == 0 {
		t.Fatalf("no batch was acknowledged before the kill; server log:\n%s", s.Logs())
	}
	t.Logf("stopped the server (graceful=%v) after %d acknowledged batches (%d points)", graceful, total, total*perBatch)

	s2 := StartIn(t, s.DataDir, args...)
	for c, id := range runs {
		hist := s2.OK("GET", "/api/2.0/mlflow/metrics/get-history?run_id="+id+"&metric_key=m", nil)
		points, _ := hist["metrics"].([]any)
		steps := make(map[int]bool, len(points))
		for _, p := range points {
			steps[int(p.(map[string]any)["step"].(float64))] = true
		}
		batches := map[int]int{}
		for step := range steps {
			batches[step/perBatch]++
		}
		for _, b := range acked[c] {
			if batches[b] != perBatch {
				t.Errorf("client %d: acknowledged batch %d has %d of %d points after the crash", c, b, batches[b], perBatch)
			}
		}
		for b, n := range batches {
			if n != perBatch {
				t.Errorf("client %d: batch %d landed in part (%d of %d points)", c, b, n, perBatch)
			}
			if !contains(acked[c], b) && (graceful || b != inFlight[c]) {
				t.Errorf("client %d: batch %d was never sent but is stored", c, b)
			}
		}
		run := s2.OK("GET", "/api/2.0/mlflow/runs/get?run_id="+id, nil)["run"].(map[string]any)
		if run["info"].(map[string]any)["status"] != "RUNNING" {
			t.Errorf("client %d: run reads back as %v", c, run["info"])
		}
	}
	if t.Failed() && os.Getenv("SLIPWAY_E2E_VERBOSE") != "" {
		fmt.Println(s.Logs())
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
