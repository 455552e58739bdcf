// Command registrybench measures search_registered_models over a large
// registry, in process and over the MLflow REST API, beside a stand-in
// that runs the statements MLflow's SQL store sends for the same page on
// the same database (standin.go). It reports Slipway's latency as a ratio
// to the stand-in's, because absolute numbers on a shared machine move
// with whatever else runs.
//
// Usage:
//
//	go run ./bench/registrybench                    # SQLite, 10,000 models, 100,000 versions
//	go run ./bench/registrybench -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./bench/registrybench -models 1000 -versions 10000 -requests 20   # quick
//	go run ./bench/registrybench -cpuprofile cpu.out -http=false
//
// The registry is written straight into the tables (seed.go), one
// transaction of multi-row INSERTs, with the rows registration leaves:
// READY versions with storage locations, manifests and digests, deleted
// versions redacted. Every answer is checked against the generated data.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/server"
	"github.com/slipwayml/slipway/internal/store"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "registrybench: "+format+"\n", args...)
}

type options struct {
	DB       string `json:"db"`
	Models   int    `json:"models"`
	Versions int    `json:"versions"`
	Requests int    `json:"requests"`
	HTTP     bool   `json:"http"`
}

// Latency summarises request latencies in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	Max float64 `json:"max_ms"`
}

// Result is one scenario.
type Result struct {
	Scenario          scenario `json:"scenario"`
	Matching          int      `json:"matching_models"`
	Returned          int      `json:"returned_models"`
	Service           Latency  `json:"slipway_service"`
	HTTP              *Latency `json:"slipway_http,omitempty"`
	HTTPBytes         int      `json:"http_response_bytes,omitempty"`
	Standin           Latency  `json:"standin_mlflow_query_shape"`
	StandinStatements int      `json:"standin_statements_per_page"`
	// Ratios of p50s: Slipway over the stand-in.
	ServiceRatio float64 `json:"service_over_standin_p50"`
	HTTPRatio    float64 `json:"http_over_standin_p50,omitempty"`
	Verified     bool    `json:"verified"`
	Notes        string  `json:"notes,omitempty"`
}

// Report is everything one run measured.
type Report struct {
	Started       string   `json:"started"`
	DB            string   `json:"db"`
	Machine       string   `json:"machine"`
	Options       options  `json:"options"`
	SeedSeconds   float64  `json:"seed_seconds"`
	Rows          int      `json:"rows_inserted"`
	Results       []Result `json:"results"`
	AllVerified   bool     `json:"all_verified"`
	LoadavgBefore string   `json:"loadavg_start"`
	LoadavgAfter  string   `json:"loadavg_end"`
}

func main() {
	var o options
	var jsonOut, keep bool
	var cpuprofile string
	flag.StringVar(&o.DB, "db", "", "database: empty for SQLite in a temp folder, or a postgres:// URL (a fresh schema is created in it and dropped at the end)")
	flag.IntVar(&o.Models, "models", 10000, "registered models (5 tags each)")
	flag.IntVar(&o.Versions, "versions", 100000, "model versions spread over the models (2 tags each)")
	flag.IntVar(&o.Requests, "requests", 200, "timed requests per scenario and contestant")
	flag.BoolVar(&o.HTTP, "http", true, "also measure over HTTP against the real server")
	flag.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	flag.BoolVar(&keep, "keep", false, "keep the temp folder and PostgreSQL schema")
	flag.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the timed part to this file")
	flag.Parse()
	if o.Models < 1 || o.Versions < o.Models || o.Requests < 1 {
		fmt.Fprintln(os.Stderr, "registrybench: need models >= 1, versions >= models, requests >= 1")
		os.Exit(2)
	}
	if o.DB != "" && !strings.HasPrefix(o.DB, "postgres://") && !strings.HasPrefix(o.DB, "postgresql://") {
		fmt.Fprintln(os.Stderr, "registrybench: -db takes a postgres:// URL; leave it empty for SQLite")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "registrybench-")
	check(err)
	dsn := filepath.Join(dir, "slipway.db")
	dropSchema := func() {}
	if o.DB != "" {
		dsn, dropSchema, err = freshSchema(ctx, o.DB)
		check(err)
	}
	cleanup := func() {
		if keep {
			logf("kept %s (database %s)", dir, dsn)
			return
		}
		dropSchema()
		os.RemoveAll(dir)
	}
	rep, err := run(ctx, o, dsn, dir, cpuprofile)
	cleanup()
	check(err)
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(rep)
	}
	if !rep.AllVerified {
		fmt.Fprintln(os.Stderr, "registrybench: VERIFICATION FAILED (see report)")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, dsn, dir, cpuprofile string) (*Report, error) {
	rep := &Report{Started: time.Now().UTC().Format(time.RFC3339), DB: "sqlite", Options: o, LoadavgBefore: loadavg(),
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())}
	if o.DB != "" {
		rep.DB = "postgres"
	}
	logf("generating %d models and %d versions", o.Models, o.Versions)
	models := generate(o.Models, o.Versions)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	t0 := time.Now()
	if err := seed(ctx, db, models); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	// What the server does at start-up, so the planner has statistics.
	if err := db.Optimize(ctx); err != nil {
		return nil, err
	}
	rep.SeedSeconds = time.Since(t0).Seconds()
	for _, t := range []string{"registered_models", "registered_model_tags", "model_versions", "model_version_tags", "registered_model_aliases"} {
		var n int
		if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
			return nil, err
		}
		rep.Rows += n
	}
	logf("seeded %d rows in %.1f s", rep.Rows, rep.SeedSeconds)

	reg := registry.New(db, nil, nil)
	st := standin{db: db}
	var base string
	var hc *http.Client
	if o.HTTP {
		srv, err := startServer(ctx, dsn, dir)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		base = srv.base
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}, Timeout: time.Minute}
		defer hc.CloseIdleConnections()
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	rep.AllVerified = true
	for _, sc := range scenarios() {
		logf("%s (%s)", sc.Name, rep.DB)
		r, err := measure(ctx, sc, models, reg, st, hc, base, o.Requests)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.Name, err)
		}
		logf("  p50: service %.2f ms, http %s, stand-in %.2f ms (%d statements); verified=%v %s",
			r.Service.P50, httpP50(r.HTTP), r.Standin.P50, r.StandinStatements, r.Verified, r.Notes)
		rep.AllVerified = rep.AllVerified && r.Verified
		rep.Results = append(rep.Results, r)
	}
	rep.LoadavgAfter = loadavg()
	return rep, nil
}

func httpP50(l *Latency) string {
	if l == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", l.P50)
}

// measure runs the scenario's contestants in turn, request by request, so
// that a change in the machine's load hits all of them alike.
func measure(ctx context.Context, sc scenario, models []*model, reg *registry.Service, st standin, hc *http.Client, base string, requests int) (Result, error) {
	page, matching := sc.expect(models)
	want := expectedAnswer(page)
	r := Result{Scenario: sc, Matching: matching, Returned: len(page), Verified: true}
	var notes []string
	verify := func(who string, got answer) {
		if d := diff(got, want); d != "" {
			r.Verified = false
			notes = append(notes, who+": "+d)
		}
	}
	var svc, sta, web []time.Duration
	const warmup = 3
	for i := -warmup; i < requests; i++ {
		verifyNow := i == -warmup || i == requests-1

		t := time.Now()
		ms, _, err := reg.SearchRegisteredModels(ctx, sc.request())
		d := time.Since(t)
		if err != nil {
			return r, fmt.Errorf("service: %w", err)
		}
		if verifyNow {
			verify("service", serviceAnswer(ms))
		}
		if i >= 0 {
			svc = append(svc, d)
		}

		t = time.Now()
		sms, n, err := st.search(ctx, sc)
		d = time.Since(t)
		if err != nil {
			return r, fmt.Errorf("stand-in: %w", err)
		}
		r.StandinStatements = n
		if verifyNow {
			verify("stand-in", standinAnswer(sms))
		}
		if i >= 0 {
			sta = append(sta, d)
		}

		if hc == nil {
			continue
		}
		body, d, err := httpGet(ctx, hc, sc.url(base))
		if err != nil {
			return r, fmt.Errorf("http: %w", err)
		}
		r.HTTPBytes = len(body)
		if verifyNow {
			a, err := httpAnswer(body)
			if err != nil {
				return r, fmt.Errorf("http: %w", err)
			}
			verify("http", a)
		}
		if i >= 0 {
			web = append(web, d)
		}
	}
	r.Service, r.Standin = summarize(svc), summarize(sta)
	r.ServiceRatio = r.Service.P50 / r.Standin.P50
	if hc != nil {
		l := summarize(web)
		r.HTTP = &l
		r.HTTPRatio = l.P50 / r.Standin.P50
	}
	r.Notes = strings.Join(notes, "; ")
	return r, nil
}

func summarize(ds []time.Duration) Latency {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return float64(ds[max(0, min(i, len(ds)-1))]) / float64(time.Millisecond)
	}
	return Latency{N: len(ds), P50: rank(0.50), P95: rank(0.95), Max: rank(1)}
}

func printReport(rep *Report) {
	fmt.Printf("# registrybench: %s, %s, %d models, %d versions (%d rows seeded in %.1f s), load %s -> %s\n\n",
		rep.DB, rep.Machine, rep.Options.Models, rep.Options.Versions, rep.Rows, rep.SeedSeconds, rep.LoadavgBefore, rep.LoadavgAfter)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "scenario\tmatching\tSlipway in-process p50 / p95 ms\tSlipway HTTP p50 / p95 ms\tstand-in p50 / p95 ms (statements)\tin-process / stand-in\tHTTP / stand-in\tverified")
	for _, r := range rep.Results {
		h, hr := "-", "-"
		if r.HTTP != nil {
			h = fmt.Sprintf("%.2f / %.2f", r.HTTP.P50, r.HTTP.P95)
			hr = fmt.Sprintf("%.2f", r.HTTPRatio)
		}
		fmt.Fprintf(w, "%s\t%d\t%.2f / %.2f\t%s\t%.2f / %.2f (%d)\t%.2f\t%s\t%v\n", r.Scenario.Name, r.Matching,
			r.Service.P50, r.Service.P95, h, r.Standin.P50, r.Standin.P95, r.StandinStatements, r.ServiceRatio, hr, r.Verified)
	}
	w.Flush()
	fmt.Printf("\n%d timed requests per scenario and contestant; pages of 100; ratios are of p50s.\n", rep.Options.Requests)
	for _, r := range rep.Results {
		if r.Notes != "" {
			fmt.Printf("%s: %s\n", r.Scenario.Name, r.Notes)
		}
	}
}

// freshSchema creates a schema in the database at base and returns a DSN
// that selects it, and a function that drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	b := make([]byte, 4)
	rand.Read(b)
	schema := "registrybench_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			logf("drop schema %s: %v", schema, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

type instance struct {
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startServer runs the real server (server.Run, what `slipway server`
// runs) on a loopback port over the seeded database.
func startServer(ctx context.Context, dsn, dir string) (*instance, error) {
	cfg := server.Defaults()
	cfg.Host, cfg.Port = "127.0.0.1", 0
	cfg.DataDir, cfg.DB = dir, dsn
	cfg.LogLevel = "warn"
	log := server.NewLogger(os.Stderr, cfg)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- server.Run(sctx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		in.base = "http://" + addr
		return in, nil
	case err := <-in.done:
		cancel()
		if err == nil {
			err = fmt.Errorf("server exited before listening")
		}
		return nil, err
	}
}

func (in *instance) stop() error {
	in.cancel()
	return <-in.done
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

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		os.Exit(1)
	}
}
