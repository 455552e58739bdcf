// Command trackbench measures Slipway's MLflow tracking API over real HTTP
// and, in the same run, a physical-limit stand-in that writes the same
// points straight into the same kind of database. It reports ratios, not
// just absolute numbers, because absolute numbers on a shared 2-core machine
// move with whatever else is running.
//
// Usage:
//
//	go run ./bench/trackbench                 # SQLite, ~2-3 minutes
//	go run ./bench/trackbench -quick          # ~20 s smoke run
//	go run ./bench/trackbench -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./bench/trackbench -json > result.json
//
// The server runs in this process (server.Run, the function `slipway server`
// calls) on a loopback port with a temporary data folder; with -db postgres
// each database is a fresh schema selected through search_path and dropped at
// the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

var quiet bool

// logf prints progress to stderr (stdout carries the report).
func logf(format string, args ...any) {
	if !quiet {
		fmt.Fprintf(os.Stderr, "trackbench: "+format+"\n", args...)
	}
}

type options struct {
	DB              string `json:"db"`
	Clients         int    `json:"clients"`
	Batches         int    `json:"batches_per_client"`
	BatchSize       int    `json:"batch_size"`
	Keys            int    `json:"keys_per_batch"`
	Reps            int    `json:"repetitions"`
	SearchRuns      int    `json:"search_runs"`
	SearchParams    int    `json:"search_params_per_run"`
	SearchMetrics   int    `json:"search_metrics_per_run"`
	SearchRequests  int    `json:"search_requests"`
	HistoryPoints   int    `json:"history_points"`
	HistoryRequests int    `json:"history_requests"`
	Scenarios       string `json:"scenarios"`
	Quick           bool   `json:"quick"`
}

func main() {
	var o options
	var jsonOut, keep bool
	var cpuprofile, workdir string
	flag.StringVar(&o.DB, "db", "", "database: empty for SQLite in a temp folder, or a postgres:// URL (a fresh schema is created in it and dropped at the end)")
	flag.IntVar(&o.Clients, "clients", 20, "log-batch: concurrent clients, each logging to its own run")
	flag.IntVar(&o.Batches, "batches", 100, "log-batch: batches each client sends (the issue's full-size case is 200)")
	flag.IntVar(&o.BatchSize, "batch-size", 500, "log-batch: metric points per request (MLflow allows up to 1000)")
	flag.IntVar(&o.Keys, "keys", 50, "log-batch: distinct metric keys per batch (steps per batch = batch-size/keys)")
	flag.IntVar(&o.Reps, "reps", 3, "log-batch and stand-in repetitions (medians are reported), each on a fresh database")
	flag.IntVar(&o.SearchRuns, "search-runs", 10000, "search-runs: runs in the searched experiment")
	flag.IntVar(&o.SearchParams, "search-params", 20, "search-runs: params per run (at least 6)")
	flag.IntVar(&o.SearchMetrics, "search-metrics", 20, "search-runs: metrics per run (at least 8)")
	flag.IntVar(&o.SearchRequests, "search-requests", 50, "search-runs: timed requests per page size")
	flag.IntVar(&o.HistoryPoints, "history-points", 100000, "get-history: points in the metric")
	flag.IntVar(&o.HistoryRequests, "history-requests", 20, "get-history: timed requests per variant")
	flag.StringVar(&o.Scenarios, "scenarios", "logbatch,standin,search,history", "comma-separated scenarios to run")
	flag.BoolVar(&o.Quick, "quick", false, "smoke run of about 20 s: 20 batches per client, 1 repetition, 1000 search runs, fewer timed requests (flags given explicitly still win)")
	flag.BoolVar(&jsonOut, "json", false, "print the report as JSON instead of a table")
	flag.BoolVar(&keep, "keep", false, "keep the temp folder and PostgreSQL schemas for inspection")
	flag.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients share this process) to this file")
	flag.StringVar(&workdir, "workdir", "", "parent folder for temp data (default: the system temp folder)")
	flag.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "trackbench: benchmark Slipway's MLflow tracking API against a raw-insert stand-in.\n\nUsage: go run ./bench/trackbench [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.Quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"batches":          func() { o.Batches = 20 },
			"reps":             func() { o.Reps = 1 },
			"search-runs":      func() { o.SearchRuns = 1000 },
			"search-requests":  func() { o.SearchRequests = 10 },
			"history-requests": func() { o.HistoryRequests = 5 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	if o.Clients < 1 || o.Batches < 1 || o.BatchSize < 1 || o.BatchSize > 1000 || o.Reps < 1 ||
		o.SearchParams < 6 || o.SearchMetrics < 8 || o.SearchRuns < 1 || o.HistoryPoints < 1 {
		fmt.Fprintln(os.Stderr, "trackbench: invalid flags: need clients, batches, reps >= 1, 1 <= batch-size <= 1000, search-params >= 6, search-metrics >= 8")
		os.Exit(2)
	}
	if o.DB != "" && !strings.HasPrefix(o.DB, "postgres://") && !strings.HasPrefix(o.DB, "postgresql://") {
		fmt.Fprintln(os.Stderr, "trackbench: -db takes a postgres:// URL; leave it empty for SQLite")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	dir, err := os.MkdirTemp(workdir, "trackbench-")
	if err != nil {
		fatal(err)
	}
	be := &backend{pgURL: o.DB, workdir: dir, keep: keep}
	rep, err := run(ctx, be, o)
	be.close()
	if err != nil {
		pprof.StopCPUProfile()
		fatal(err)
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(os.Stdout, rep)
	}
	if !rep.AllVerified {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "trackbench: VERIFICATION FAILED (see report)")
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "trackbench:", err)
	os.Exit(1)
}

func want(o options, scenario string) bool {
	for _, s := range strings.Split(o.Scenarios, ",") {
		if strings.TrimSpace(s) == scenario {
			return true
		}
	}
	return false
}

func run(ctx context.Context, be *backend, o options) (*Report, error) {
	r := &Report{Started: time.Now().UTC().Format(time.RFC3339), Machine: machine(), DB: be.name(), Options: o}
	r.Machine.LoadStart = loadavg()
	t0 := time.Now()
	w := newWorkload(o.Clients, o.Batches, o.BatchSize, o.Keys)
	r.Workload = w

	doLog, doStandin := want(o, "logbatch"), want(o, "standin")
	if doLog || doStandin {
		r.LogBatch = &LogBatchSummary{}
		standins := map[string]*StandinSummary{}
		addStandin := func(s StandinRep) {
			sum := standins[s.Name]
			if sum == nil {
				sum = &StandinSummary{Name: s.Name}
				standins[s.Name] = sum
				r.Standins = append(r.Standins, sum)
			}
			sum.Reps = append(sum.Reps, s)
		}
		for i := range o.Reps {
			// Slipway and its stand-ins alternate, so drift in the
			// machine's load hits both alike.
			if doLog {
				logf("log-batch rep %d/%d: %d clients x %d batches x %d points (%s)", i+1, o.Reps, w.Clients, w.Batches, w.BatchSize, be.name())
				lb, err := runLogBatch(ctx, be, w, i)
				if err != nil {
					return nil, fmt.Errorf("log-batch: %w", err)
				}
				logf("  %.0f points/s, mean %.1f ms, p99 %.1f ms, verified=%v", lb.PointsPerSec, lb.Latency.Mean, lb.Latency.P99, lb.Verify.OK)
				r.LogBatch.Reps = append(r.LogBatch.Reps, lb)
			}
			if doStandin {
				logf("stand-in rep %d/%d: sqlite raw insert", i+1, o.Reps)
				s, err := runStandinSQLite(ctx, be, w, i)
				if err != nil {
					return nil, fmt.Errorf("stand-in sqlite: %w", err)
				}
				logf("  %.0f points/s", s.PointsPerSec)
				addStandin(s)
				if be.pgURL != "" {
					for _, mode := range []string{"insert", "copy"} {
						logf("stand-in rep %d/%d: postgres %s", i+1, o.Reps, mode)
						s, err := runStandinPostgres(ctx, be, w, i, mode)
						if err != nil {
							return nil, fmt.Errorf("stand-in postgres %s: %w", mode, err)
						}
						logf("  %.0f points/s", s.PointsPerSec)
						addStandin(s)
					}
				}
			}
		}
	}
	if want(o, "search") || want(o, "history") {
		d, err := be.fresh(ctx, "read")
		if err != nil {
			return nil, err
		}
		srv, err := startServer(ctx, d)
		if err != nil {
			return nil, err
		}
		c := newClient(srv.Base, o.Clients)
		if want(o, "search") {
			s, err := runSearch(ctx, c, o.SearchRuns, o.SearchParams, o.SearchMetrics, o.SearchRequests, o.Clients)
			if err != nil {
				srv.stop()
				return nil, fmt.Errorf("search-runs: %w", err)
			}
			r.Search = &s
		}
		if want(o, "history") {
			h, err := runHistory(ctx, c, o.HistoryPoints, o.HistoryRequests, 4)
			if err != nil {
				srv.stop()
				return nil, fmt.Errorf("get-history: %w", err)
			}
			r.History = &h
		}
		c.close()
		if err := srv.stop(); err != nil {
			return nil, err
		}
	}
	r.finish()
	r.Machine.LoadEnd = loadavg()
	r.DurationSeconds = time.Since(t0).Seconds()
	return r, nil
}

// Machine describes where the numbers came from.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemTotal   string `json:"mem_total,omitempty"`
	GoVersion  string `json:"go_version"`
	OSArch     string `json:"os_arch"`
	LoadStart  string `json:"loadavg_start,omitempty"`
	LoadEnd    string `json:"loadavg_end,omitempty"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
