package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is everything one run measured.
type Report struct {
	Started         string            `json:"started"`
	DurationSeconds float64           `json:"duration_seconds"`
	DB              string            `json:"db"`
	Machine         Machine           `json:"machine"`
	Options         options           `json:"options"`
	Workload        workload          `json:"log_batch_workload"`
	LogBatch        *LogBatchSummary  `json:"log_batch,omitempty"`
	Standins        []*StandinSummary `json:"standins,omitempty"`
	Search          *SearchResult     `json:"search_runs,omitempty"`
	History         *HistoryResult    `json:"get_history,omitempty"`
	Targets         []Target          `json:"targets"`
	Published       []Peer            `json:"published_peers_not_measured_here"`
	AllVerified     bool              `json:"all_verified"`
}

// LogBatchSummary holds the repetitions and their medians.
type LogBatchSummary struct {
	Reps         []LogBatchRep `json:"repetitions"`
	Latency      Latency       `json:"median_latency"`
	PointsPerSec float64       `json:"median_points_per_second"`
	ServerMeanMs float64       `json:"median_server_mean_ms"`
	Verified     bool          `json:"verified"`
}

// StandinSummary holds one stand-in's repetitions and Slipway's ratio to it.
type StandinSummary struct {
	Name         string       `json:"name"`
	Reps         []StandinRep `json:"repetitions"`
	PointsPerSec float64      `json:"median_points_per_second"`
	BatchMs      float64      `json:"median_batch_mean_ms"`
	// Ratio is Slipway's median log-batch points/s over this stand-in's
	// median; PairedRatio the median of per-repetition ratios.
	Ratio       float64 `json:"slipway_over_standin"`
	PairedRatio float64 `json:"slipway_over_standin_paired_median"`
	SameDB      bool    `json:"same_database_as_slipway"`
}

// Target is one goal from the issue, with what was measured.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
}

// Peer is a published figure for context; trackbench does not measure it.
type Peer struct {
	System       string `json:"system"`
	Setup        string `json:"setup"`
	MeanMs       string `json:"mean_ms_per_log_batch_500"`
	PointsPerSec string `json:"points_per_second"`
}

var published = []Peer{
	{"MLflow 2.17", "gunicorn, 4 workers, SQLite", "~480", "~19,000"},
	{"FastTrackML", "SQLite / PostgreSQL", "310-430", "21,000-30,000"},
}

func (r *Report) finish() {
	r.Published = published
	r.AllVerified = true
	if lb := r.LogBatch; lb != nil && len(lb.Reps) > 0 {
		var lats []Latency
		var pps, srv []float64
		lb.Verified = true
		for _, rep := range lb.Reps {
			lats = append(lats, rep.Latency)
			pps = append(pps, rep.PointsPerSec)
			srv = append(srv, rep.ServerMeanMs)
			if !rep.Verify.OK || rep.Errors > 0 {
				lb.Verified = false
			}
		}
		lb.Latency = medianLatency(lats)
		lb.PointsPerSec = median(pps)
		lb.ServerMeanMs = median(srv)
		r.AllVerified = r.AllVerified && lb.Verified
	}
	for _, s := range r.Standins {
		var pps, bms, ratios []float64
		for i, rep := range s.Reps {
			pps = append(pps, rep.PointsPerSec)
			bms = append(bms, rep.Latency.Mean)
			if !rep.OK {
				r.AllVerified = false
			}
			if r.LogBatch != nil && i < len(r.LogBatch.Reps) && rep.PointsPerSec > 0 {
				ratios = append(ratios, r.LogBatch.Reps[i].PointsPerSec/rep.PointsPerSec)
			}
		}
		s.PointsPerSec = median(pps)
		s.BatchMs = median(bms)
		s.SameDB = strings.HasPrefix(s.Name, r.DB)
		if r.LogBatch != nil && len(r.LogBatch.Reps) > 0 && s.PointsPerSec > 0 {
			s.Ratio = r.LogBatch.PointsPerSec / s.PointsPerSec
			s.PairedRatio = median(ratios)
		}
	}
	if r.Search != nil && !r.Search.Verified {
		r.AllVerified = false
	}
	if r.History != nil && !r.History.Verified {
		r.AllVerified = false
	}

	if lb := r.LogBatch; lb != nil && len(lb.Reps) > 0 {
		r.Targets = append(r.Targets,
			Target{"log-batch mean latency (500 points, 20 clients)", "<= 25 ms", lb.Latency.Mean, "ms", lb.Latency.Mean <= 25},
			Target{"log-batch throughput", ">= 400,000 points/s", lb.PointsPerSec, "points/s", lb.PointsPerSec >= 400000})
	}
	if s := r.Search; s != nil {
		r.Targets = append(r.Targets,
			Target{fmt.Sprintf("search-runs p50, %d runs, page of 100", s.Runs), "<= 50 ms", s.Page100.P50, "ms", s.Page100.P50 <= 50},
			Target{fmt.Sprintf("search-runs p50, %d runs, page of 1000", s.Runs), "<= 50 ms", s.Page1000.P50, "ms", s.Page1000.P50 <= 50})
	}
	if h := r.History; h != nil {
		r.Targets = append(r.Targets,
			Target{fmt.Sprintf("get-history p50, %d points, unpaged", h.Points), "< 100 ms", h.Full.P50, "ms", h.Full.P50 < 100})
	}
}

func f0(x float64) string { return commas(fmt.Sprintf("%.0f", x)) }
func f1(x float64) string { return fmt.Sprintf("%.1f", x) }

func commas(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func printReport(out io.Writer, r *Report) {
	m := r.Machine
	fmt.Fprintf(out, "trackbench: Slipway MLflow tracking API, db=%s, %s\n", r.DB, r.Started)
	fmt.Fprintf(out, "machine: %d CPUs (GOMAXPROCS %d, server and clients share them), %s, %s, %s %s; loadavg %s at start, %s at end\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemTotal, m.GoVersion, m.OSArch, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(out, "run took %.0f s\n", r.DurationSeconds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }

	if lb := r.LogBatch; lb != nil && len(lb.Reps) > 0 || len(r.Standins) > 0 {
		w := r.Workload
		fmt.Fprintf(out, "\n== log-batch: %d clients x %d requests x %d points (%d keys x %d steps), medians of %d repetitions ==\n",
			w.Clients, w.Batches, w.BatchSize, w.Keys, w.stepsPerBatch(), r.Options.Reps)
		row("", "mean ms", "p50 ms", "p95 ms", "p99 ms", "points/s", "Slipway/this")
		if lb := r.LogBatch; lb != nil && len(lb.Reps) > 0 {
			row("Slipway log-batch over HTTP ("+r.DB+")", f1(lb.Latency.Mean), f1(lb.Latency.P50), f1(lb.Latency.P95), f1(lb.Latency.P99), f0(lb.PointsPerSec), "1.00")
			row("  server-side handling time (its /metrics)", f1(lb.ServerMeanMs), "", "", "", "", "")
		}
		for _, s := range r.Standins {
			ratio := ""
			if s.Ratio > 0 {
				ratio = fmt.Sprintf("%.2f (paired %.2f)", s.Ratio, s.PairedRatio)
			}
			name := "stand-in: " + s.Name + ", per batch tx"
			if !s.SameDB {
				name = "stand-in, other database: " + s.Name + ", per batch tx"
			}
			row(name, f1(s.BatchMs), "", "", "", f0(s.PointsPerSec), ratio)
		}
		for _, p := range r.Published {
			row("published, not measured here: "+p.System+" ("+p.Setup+")", p.MeanMs, "", "", "", p.PointsPerSec, "")
		}
		tw.Flush()
		if lb := r.LogBatch; lb != nil {
			fmt.Fprintln(out, "per repetition:")
			for i, rep := range lb.Reps {
				v := rep.Verify
				status := "OK"
				if !v.OK || rep.Errors > 0 {
					status = "FAILED"
				}
				fmt.Fprintf(out, "  rep %d: %s points/s, mean %.1f ms, p99 %.1f ms, %d errors; verify %s: acknowledged %s, stored points %s, latest_metrics %d/%d, get-history run0 %d/%d",
					i+1, f0(rep.PointsPerSec), rep.Latency.Mean, rep.Latency.P99, rep.Errors, status,
					f0(float64(v.Acknowledged)), f0(float64(v.StoredPoints)), v.LatestRows, v.LatestExpected, v.HistoryPoints, v.HistoryExpected)
				for _, s := range r.Standins {
					if i < len(s.Reps) {
						fmt.Fprintf(out, "; %s %s points/s", s.Name, f0(s.Reps[i].PointsPerSec))
					}
				}
				fmt.Fprintln(out)
				if rep.FirstError != "" {
					fmt.Fprintf(out, "    first error: %s\n", rep.FirstError)
				}
			}
		}
	}
	if s := r.Search; s != nil {
		fmt.Fprintf(out, "\n== search-runs: %s runs x %d params x %d metrics; filter %q, order_by %q; %d matching ==\n",
			f0(float64(s.Runs)), s.ParamsPerRun, s.MetricsPerRun, s.Filter, s.OrderBy, s.Matching)
		fmt.Fprintf(out, "populate: runs/create %.1f s (%s runs/s), log-batch of params+metrics %.1f s (%s requests/s)\n",
			s.CreateSeconds, f0(s.CreatePerSec), s.LogSeconds, f0(s.LogPerSec))
		row("", "mean ms", "p50 ms", "p95 ms", "max ms", "runs returned", "response bytes")
		row(fmt.Sprintf("max_results 100 (%d requests)", s.Page100.N), f1(s.Page100.Mean), f1(s.Page100.P50), f1(s.Page100.P95), f1(s.Page100.Max), fmt.Sprint(s.Page100Returned), f0(float64(s.Page100Bytes)))
		row(fmt.Sprintf("max_results 1000 (%d requests)", s.Page1000.N), f1(s.Page1000.Mean), f1(s.Page1000.P50), f1(s.Page1000.P95), f1(s.Page1000.Max), fmt.Sprint(s.Page1000Returned), f0(float64(s.Page1000Bytes)))
		row(fmt.Sprintf("max_results 100, every run written since (%d requests)", s.Page100Written.N), f1(s.Page100Written.Mean), f1(s.Page100Written.P50), f1(s.Page100Written.P95), f1(s.Page100Written.Max), "", "")
		row(fmt.Sprintf("max_results 1000, every run written since (%d requests)", s.Page1000Written.N), f1(s.Page1000Written.Mean), f1(s.Page1000Written.P50), f1(s.Page1000Written.P95), f1(s.Page1000Written.Max), "", "")
		row(fmt.Sprintf("max_results 100, one run written since (%d requests)", s.Page100OneWrite.N), f1(s.Page100OneWrite.Mean), f1(s.Page100OneWrite.P50), f1(s.Page100OneWrite.P95), f1(s.Page100OneWrite.Max), "", "")
		row(fmt.Sprintf("max_results 1000, one run written since (%d requests)", s.Page1000OneWrite.N), f1(s.Page1000OneWrite.Mean), f1(s.Page1000OneWrite.P50), f1(s.Page1000OneWrite.P95), f1(s.Page1000OneWrite.Max), "", "")
		tw.Flush()
		fmt.Fprintf(out, "server-side mean over every search request (its /metrics, warm-ups and written included): %.1f ms; results verified against the generated data: %v %s\n",
			s.ServerMeanMs, s.Verified, s.VerificationNotes)
	}
	if h := r.History; h != nil {
		fmt.Fprintf(out, "\n== get-history: one run, one key, %s points (populated in %.1f s) ==\n", f0(float64(h.Points)), h.PopulateSeconds)
		row("", "mean ms", "p50 ms", "p95 ms", "max ms", "requests", "")
		row(fmt.Sprintf("unpaged, whole history (%s bytes)", f0(float64(h.FullBytes))), f1(h.Full.Mean), f1(h.Full.P50), f1(h.Full.P95), f1(h.Full.Max), fmt.Sprint(h.Full.N), "")
		row(fmt.Sprintf("paged walk, %d pages of %d", h.Pages, h.PageSize), f1(h.PagedWalk.Mean), f1(h.PagedWalk.P50), f1(h.PagedWalk.P95), f1(h.PagedWalk.Max), fmt.Sprint(h.PagedWalk.N), "")
		row("  first page alone", f1(h.FirstPage.Mean), f1(h.FirstPage.P50), f1(h.FirstPage.P95), f1(h.FirstPage.Max), fmt.Sprint(h.FirstPage.N), "")
		tw.Flush()
		fmt.Fprintf(out, "every request returned all %s points: %v\n", f0(float64(h.Points)), h.Verified)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(out, "\n== targets from the issue (db=%s; the log-batch targets are stated for SQLite) ==\n", r.DB)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			met := "MISSED"
			if t.Met {
				met = "met"
			}
			val := f1(t.Measured)
			if t.Unit == "points/s" {
				val = f0(t.Measured)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\n", t.Name, t.Goal, val, t.Unit, met)
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\nall verifications passed: %v\n", r.AllVerified)
}
