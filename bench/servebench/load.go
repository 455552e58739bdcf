package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// openLoopResult is what one fixed-rate run saw.
type openLoopResult struct {
	Rate      float64       // requests/s asked for
	Duration  time.Duration // scheduling window
	Scheduled int           // requests the schedule held
	Done      int           // answered with 200
	Warm      int           // answered with 200 while opening the connections
	Failed    int           // errors and non-200 answers
	Late      int           // still unanswered at the end (counted as failed too)
	Achieved  float64       // Done / Duration
	P50, P90  time.Duration // from each request's scheduled send time
	P99, P999 time.Duration
	Max       time.Duration
}

// openLoop sends POST body to url at a fixed rate for d over up to conns
// connections, and measures each request's latency from the time the
// schedule says it should have been sent, not from when a connection was
// free to send it: when the server stalls, the requests that queue up
// behind the stall count their wait, so the percentiles do not hide it
// (the "coordinated omission" a closed-loop client like wrk suffers). The
// schedule is kept by a pacer that wakes every millisecond and hands out
// the requests due before its next wake-up; a sender holds each until its
// time, so the pacer's granularity is not counted as latency.
func openLoop(ctx context.Context, url string, body []byte, rate float64, d time.Duration, conns int) (openLoopResult, error) {
	res := openLoopResult{Rate: rate, Duration: d}

	total := int(rate * d.Seconds())
	if total < 1 {
		return res, fmt.Errorf("rate %.0f/s for %s schedules no request", rate, d)
	}
	res.Scheduled = total
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// Open the connections before the clock starts, so that the first
	// requests do not pay for the handshakes.
	var warm sync.WaitGroup
	var warmed atomic.Int64
	for i := 0; i < conns; i++ {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if send(ctx, client, url, body) {
				warmed.Add(1)
			}
		}()
	}
	warm.Wait()
	res.Warm = int(warmed.Load())

	jobs := make(chan time.Time, total)
	type tally struct {
		lat          []time.Duration
		done, failed int
	}
	tallies := make([]tally, conns)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			t.lat = make([]time.Duration, 0, total/conns+16)
			for due := range jobs {
				if ctx.Err() != nil {
					t.failed++
					continue
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				if send(ctx, client, url, body) {
					t.done++
					t.lat = append(t.lat, time.Since(due))
				} else {
					t.failed++
				}
			}
		}(&tallies[w])
	}

	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(time.Millisecond)
	next := 0
pace:
	for next < total {
		select {
		case <-ctx.Done():
			break pace
		case <-tick.C:
			// The tick's own timestamp may be stale if this loop was
			// descheduled; the clock is not.
			now := time.Now()
			for next < total {
				due := start.Add(time.Duration(next) * interval)
				if due.After(now.Add(time.Millisecond)) {
					break
				}
				jobs <- due
				next++
			}
		}
	}
	tick.Stop()
	close(jobs)

	// Requests still queued when the window closes get a grace period,
	// then count as failed: a server that cannot keep up shows it.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d/2 + 5*time.Second):
		return res, fmt.Errorf("requests still unanswered %s after the end of the schedule", d/2+5*time.Second)
	}
	var all []time.Duration
	for _, t := range tallies {
		res.Done += t.done
		res.Failed += t.failed
		all = append(all, t.lat...)
	}
	res.Late = total - next
	res.Failed += res.Late
	res.Achieved = float64(res.Done) / d.Seconds()
	if len(all) == 0 {
		return res, fmt.Errorf("no request succeeded")
	}
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	res.P50, res.P90, res.P99, res.P999, res.Max = q(0.50), q(0.90), q(0.99), q(0.999), all[len(all)-1]
	return res, nil
}

// send posts one request and reports whether it was answered with 200.
func send(ctx context.Context, client *http.Client, url string, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}
