// Command servebench measures Slipway serving single-row Open Inference
// Protocol requests over loopback HTTP, beside the Python serving stack
// that MLflow's scoring server and MLServer are built on, in the same run.
//
// Debian's python3-xgboost trains a 100-tree, depth-6 binary:logistic
// model on 30 features (the model inferbench uses). The benchmark builds
// cmd/slipway, starts `slipway server` on a loopback port with a temporary
// data folder, registers the model through the MLflow REST API (a run, its
// model directory uploaded through the artifact proxy, a registered model
// and a version), deploys it with `slipway deploy create`, and checks that
// the HTTP answer for the benchmark row is XGBoost's own prediction. The
// peer is FastAPI on uvicorn with the same model in XGBoost, answering the
// same OIP request (see python.go), and is checked the same way.
//
// Each server is then driven by wrk (closed loop, -threads threads and
// -connections connections, for maximum throughput) and by an open-loop
// generator in this program at a fixed rate (see load.go), whose latency
// counts from each request's scheduled send time. Slipway's prediction log
// stays on; its counters are read after the runs.
//
// Usage:
//
//	go run ./bench/servebench                       # about 3 minutes
//	go run ./bench/servebench -duration 5s -warmup 1s   # quick
//	go run ./bench/servebench -peer=false -cpuprofile cpu.out && go tool pprof -top cpu.out
//	go run ./bench/servebench -peer=false -memprofile mem.out && go tool pprof -sample_index=alloc_space -top mem.out
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// modelName names the registered model and the deployment.
const modelName = "bench"

type options struct {
	duration, warmup      time.Duration
	threads, conns        int
	rate, peerRate        float64
	openConns, peerProcs  int
	peer, keep, inProcess bool
	floor                 bool
	cpuprofile, bin       string
	memprofile            string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each measured run (wrk and open loop)")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "wrk run before the measured ones, per server")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.conns, "connections", 64, "wrk connections")
	flag.Float64Var(&o.rate, "rate", 5000, "open-loop rate for Slipway, requests/s")
	flag.Float64Var(&o.peerRate, "peer-rate", 0, "open-loop rate for both servers, requests/s (0: half the peer's wrk throughput)")
	flag.IntVar(&o.openConns, "open-connections", 64, "most connections the open-loop generator uses")
	flag.IntVar(&o.peerProcs, "peer-workers", 2, "uvicorn processes of the peer, sharing its port")
	flag.BoolVar(&o.peer, "peer", true, "measure the FastAPI peer too")
	flag.BoolVar(&o.floor, "floor", true, "measure the open loop against a fixed answer from net/http in this process first (the machine's floor)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp folder (model, server data and logs)")
	flag.BoolVar(&o.inProcess, "inprocess", false, "run the server in this process (server.Run) instead of the built binary")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of Slipway's wrk run to this file (implies -inprocess)")
	flag.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile to this file and report allocations a request of Slipway's wrk run (implies -inprocess)")
	flag.StringVar(&o.bin, "bin", "", "a slipway binary to run (default: go build ./cmd/slipway)")
	flag.Parse()
	if o.cpuprofile != "" || o.memprofile != "" {
		o.inProcess = true
	}
	if o.rate <= 0 || o.duration < time.Second || o.conns < 1 || o.threads < 1 || o.openConns < 1 || o.peerProcs < 1 {
		log.Fatal("-rate, -connections, -threads, -open-connections and -peer-workers must be positive, -duration at least 1s")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		log.Fatal("wrk is not installed (apt-get install wrk)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// trained is what the training script reports.
type trained struct {
	XGBoost    string    `json:"xgboost"`
	FastAPI    string    `json:"fastapi"`
	Uvicorn    string    `json:"uvicorn"`
	NumPy      string    `json:"numpy"`
	Python     string    `json:"python"`
	Row        []float64 `json:"row"`
	Prediction float64   `json:"prediction"`
}

// report holds every figure the table prints.
type report struct {
	wrk, peerWrk            wrkResult
	cpuUS, peerCPUUS        float64 // server CPU per request in the wrk run
	open, openAtPeer, peerO openLoopResult
	peerRate                float64
	before, after           logStats
	peerRan                 bool
	floor                   openLoopResult
	floorWrk                wrkResult // wrk against the same fixed answer: net/http's ceiling here
	loadBefore, loadAfter   string
	drain                   time.Duration // until the log's queue was empty after wrk
	// answered counts the 200s Slipway's clients saw, warm-ups included.
	answered int64
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "servebench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	logf("training the model with %s and XGBoost", python)
	cmd := exec.Command(python, "-c", trainScript, dir)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("training (needs apt-get install python3-xgboost python3-fastapi python3-uvicorn): %v", err)
	}
	var tr trained
	if err := json.Unmarshal(raw, &tr); err != nil {
		return fmt.Errorf("training script printed %q: %v", raw, err)
	}
	body := requestBody(tr.Row)
	script, err := wrkScript(dir, body)
	if err != nil {
		return err
	}

	bin := o.bin
	if bin == "" {
		logf("building cmd/slipway")
		if bin, err = buildSlipway(dir); err != nil {
			return err
		}
	}
	var s *slipway
	if o.inProcess {
		s, err = startInProcess(bin, filepath.Join(dir, "data"))
	} else {
		s, err = startSlipway(bin, filepath.Join(dir, "data"))
	}
	if err != nil {
		return err
	}
	defer s.close()
	logf("slipway server at %s; registering %s and deploying it", s.URL, modelName)
	if err := s.register(modelName, filepath.Join(dir, "model.json")); err != nil {
		return fmt.Errorf("registering the model: %w", err)
	}
	out, err := s.deploy(modelName, "models:/"+modelName+"/1")
	if err != nil {
		return err
	}
	logf("%s", strings.TrimSpace(out))
	url := s.URL + "/v2/models/" + modelName + "/infer"
	if err := checkAnswer("Slipway", url, body, tr.Prediction); err != nil {
		return err
	}

	var rep report
	rep.loadBefore = loadAverage()
	if o.floor {
		logf("floor: open loop at %.0f requests/s, then wrk, against a fixed answer from net/http in this process", o.rate)
		if rep.floor, rep.floorWrk, err = floor(ctx, body, script, o); err != nil {
			return err
		}
	}
	if rep.before, err = s.predictionLog(); err != nil {
		return err
	}
	logf("Slipway: wrk warm-up %s", o.warmup)
	warm, err := runWrk(script, url, o.threads, o.conns, o.warmup)
	if err != nil {
		return err
	}
	rep.answered = 1 + warm.Requests - warm.Non2xx
	var prof *os.File
	if o.cpuprofile != "" {
		if prof, err = os.Create(o.cpuprofile); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
	}
	logf("Slipway: wrk -t%d -c%d -d%s", o.threads, o.conns, o.duration)
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := treeCPU(s.pid())
	rep.wrk, err = runWrk(script, url, o.threads, o.conns, o.duration)
	cpu1 := treeCPU(s.pid())
	runtime.ReadMemStats(&mem1)
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
		logf("CPU profile of the wrk run in %s", o.cpuprofile)
	}
	if err != nil {
		return err
	}
	rep.cpuUS = (cpu1 - cpu0).Seconds() * 1e6 / float64(rep.wrk.Requests)
	if o.memprofile != "" {
		// The server runs in this process and wrk in its own, so these
		// are the server's allocations.
		n := float64(rep.wrk.Requests)
		logf("Slipway's wrk run: %.0f allocations and %.0f bytes a request, %d GC cycles",
			float64(mem1.Mallocs-mem0.Mallocs)/n, float64(mem1.TotalAlloc-mem0.TotalAlloc)/n, mem1.NumGC-mem0.NumGC)
		if err := writeHeapProfile(o.memprofile); err != nil {
			return err
		}
	}
	// The open loop starts once the prediction log has caught up, so that
	// it measures the steady state at its rate, not wrk's backlog.
	t0 := time.Now()
	if _, err := s.predictionLog(); err != nil {
		return err
	}
	rep.drain = time.Since(t0)
	logf("Slipway: open loop at %.0f requests/s for %s", o.rate, o.duration)
	if rep.open, err = openLoop(ctx, url, body, o.rate, o.duration, o.openConns); err != nil {
		return fmt.Errorf("open loop against Slipway: %w", err)
	}
	rep.answered += rep.wrk.Requests - rep.wrk.Non2xx + int64(rep.open.Done+rep.open.Warm)

	rep.peerRate = o.peerRate
	if o.peer {
		rep.peerRan = true
		p, err := startPeer(dir, o.peerProcs)
		if err != nil {
			return err
		}
		defer p.close()
		purl := p.url + "/v2/models/" + modelName + "/infer"
		if err := checkAnswer("the FastAPI peer", purl, body, tr.Prediction); err != nil {
			return err
		}
		logf("peer: wrk warm-up %s", o.warmup)
		if _, err := runWrk(script, purl, o.threads, o.conns, o.warmup); err != nil {
			return err
		}
		logf("peer: wrk -t%d -c%d -d%s", o.threads, o.conns, o.duration)
		cpu0 := p.cpu()
		rep.peerWrk, err = runWrk(script, purl, o.threads, o.conns, o.duration)
		cpu1 := p.cpu()
		if err != nil {
			return err
		}
		rep.peerCPUUS = (cpu1 - cpu0).Seconds() * 1e6 / float64(rep.peerWrk.Requests)
		if rep.peerRate <= 0 {
			rep.peerRate = math.Round(rep.peerWrk.RPS/2/50) * 50
		}
		logf("peer: open loop at %.0f requests/s for %s", rep.peerRate, o.duration)
		if rep.peerO, err = openLoop(ctx, purl, body, rep.peerRate, o.duration, o.openConns); err != nil {
			return fmt.Errorf("peer open loop: %w", err)
		}
		p.close()
	}
	if rep.peerRate > 0 {
		logf("Slipway: open loop at %.0f requests/s for %s", rep.peerRate, o.duration)
		if rep.openAtPeer, err = openLoop(ctx, url, body, rep.peerRate, o.duration, o.openConns); err != nil {
			return fmt.Errorf("open loop against Slipway: %w", err)
		}
		rep.answered += int64(rep.openAtPeer.Done + rep.openAtPeer.Warm)
	}
	if rep.after, err = s.predictionLog(); err != nil {
		return err
	}
	rep.loadAfter = loadAverage()
	printReport(o, tr, rep)
	return nil
}

// requestBody is the single-row OIP request both servers get: one [1, 30]
// FP32 tensor. It carries no id, so Slipway logs each request under an id
// of its own.
func requestBody(row []float64) []byte {
	b := []byte(`{"inputs":[{"name":"x","shape":[1,` + strconv.Itoa(len(row)) + `],"datatype":"FP32","data":[`)
	for i, v := range row {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 32)
	}
	return append(b, "]}]}"...)
}

// checkAnswer requires the server's prediction for the benchmark row to be
// XGBoost's within float32 rounding.
func checkAnswer(who, url string, body []byte, want float64) error {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d (%v)", who, resp.StatusCode, err)
	}
	if len(out.Outputs) != 1 || len(out.Outputs[0].Data) != 1 {
		return fmt.Errorf("%s answered %d outputs, want one of one value", who, len(out.Outputs))
	}
	got := out.Outputs[0].Data[0]
	if math.Abs(got-want) > 1e-6 {
		return fmt.Errorf("%s predicts %v for the benchmark row; XGBoost predicts %v", who, got, want)
	}
	logf("%s predicts %v for the benchmark row; XGBoost predicts %v", who, got, want)
	return nil
}

// peer is the FastAPI + uvicorn server: workers processes sharing one
// port.
type peer struct {
	url  string
	cmds []*exec.Cmd
}

func startPeer(dir string, workers int) (*peer, error) {
	if err := os.WriteFile(filepath.Join(dir, "peer.py"), []byte(peerApp), 0o644); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logf("starting the peer: %d uvicorn processes on port %d", workers, port)
	p := &peer{url: "http://127.0.0.1:" + strconv.Itoa(port)}
	for i := 0; i < workers; i++ {
		cmd := exec.Command(python, filepath.Join(dir, "peer.py"), strconv.Itoa(port))
		cmd.Env = append(os.Environ(), "SERVEBENCH_MODEL="+filepath.Join(dir, "model.json"), "SERVEBENCH_NAME="+modelName)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			p.close()
			return nil, err
		}
		p.cmds = append(p.cmds, cmd)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Every worker must have loaded the model, not just the first.
				time.Sleep(3 * time.Second)
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.close()
			return nil, fmt.Errorf("the peer did not answer in 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cpu is the workers' user + system time so far.
func (p *peer) cpu() time.Duration {
	var total time.Duration
	for _, c := range p.cmds {
		total += treeCPU(c.Process.Pid)
	}
	return total
}

func (p *peer) close() {
	for _, c := range p.cmds {
		if c.ProcessState == nil {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range p.cmds {
		if c.ProcessState != nil {
			continue
		}
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

func printReport(o options, tr trained, r report) {
	fmt.Printf("\nmachine: %s, %d CPUs, %s/%s, %s; wrk %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), wrkVersion())
	fmt.Printf("model: 100 trees, depth 6, 30 features, binary:logistic (XGBoost %s); one row per request, OIP [1, 30] FP32 tensor\n", tr.XGBoost)
	fmt.Printf("peer: Python %s, FastAPI %s, uvicorn %s (%d processes on one SO_REUSEPORT port), numpy %s, XGBoost %s inplace_predict\n",
		tr.Python, tr.FastAPI, tr.Uvicorn, o.peerProcs, tr.NumPy, tr.XGBoost)
	server := "slipway server (built binary)"
	if o.inProcess {
		server = "server.Run in this process"
	}
	fmt.Printf("Slipway: %s, SQLite, prediction log on; wrk -t%d -c%d -d%s; open loop over up to %d connections for %s\n\n",
		server, o.threads, o.conns, o.duration, o.openConns, o.duration)

	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fx", a/b)
	}
	fmt.Println("| measure | Slipway | FastAPI + uvicorn + XGBoost | Slipway / peer | target |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	peerRPS := "-"
	if r.peerRan {
		peerRPS = fmt.Sprintf("%.0f req/s", r.peerWrk.RPS)
	}
	fmt.Printf("| wrk throughput | %.0f req/s | %s | %s | >= 20,000 req/s; >= 10x |\n", r.wrk.RPS, peerRPS, ratio(r.wrk.RPS, r.peerWrk.RPS))
	fmt.Printf("| wrk latency p50 / p99 (closed loop) | %s / %s | %s / %s | | |\n", ms(r.wrk.P50), ms(r.wrk.P99), ms(r.peerWrk.P50), ms(r.peerWrk.P99))
	fmt.Printf("| server CPU per request (wrk run) | %.0f µs | %.0f µs | %s less | |\n", r.cpuUS, r.peerCPUUS, ratio(r.peerCPUUS, r.cpuUS))
	fmt.Printf("| wrk's CPU per request | %.0f µs | %.0f µs | | |\n", perRequest(r.wrk), perRequest(r.peerWrk))
	fmt.Printf("| wrk errors (non-2xx; socket) | %d; %s | %d; %s | | none |\n", r.wrk.Non2xx, orNone(r.wrk.SocketErrs), r.peerWrk.Non2xx, orNone(r.peerWrk.SocketErrs))
	fmt.Printf("| open loop %.0f req/s: p50 / p99 / p99.9 / max | %s | | | p99 < 5 ms |\n", r.open.Rate, quantiles(r.open))
	fmt.Printf("| open loop %.0f req/s: achieved, failed | %.0f req/s, %d | | | |\n", r.open.Rate, r.open.Achieved, r.open.Failed)
	if r.floor.Done > 0 {
		fmt.Printf("| floor: open loop %.0f req/s to net/http answering a fixed body in this process: p50 / p99 / p99.9 / max | %s | | | |\n", r.floor.Rate, quantiles(r.floor))
		fmt.Printf("| floor: wrk throughput against the same fixed answer (net/http's ceiling here) | %.0f req/s | | Slipway at %.0f%% of it | |\n",
			r.floorWrk.RPS, 100*r.wrk.RPS/r.floorWrk.RPS)
	}
	if r.peerRate > 0 {
		fmt.Printf("| open loop %.0f req/s: p50 / p99 / p99.9 / max | %s | %s | %s (p99) | |\n", r.peerRate, quantiles(r.openAtPeer), quantiles(r.peerO),
			ratio(float64(r.peerO.P99), float64(r.openAtPeer.P99)))
		fmt.Printf("| open loop %.0f req/s: achieved, failed | %.0f req/s, %d | %.0f req/s, %d | | |\n", r.peerRate, r.openAtPeer.Achieved, r.openAtPeer.Failed, r.peerO.Achieved, r.peerO.Failed)
	}
	logged, dropped, failed := r.after.Logged-r.before.Logged, r.after.Dropped-r.before.Dropped, r.after.Failed-r.before.Failed
	fmt.Printf("| prediction log: rows written, dropped, failed | %d, %d, %d | | | nothing dropped |\n", logged, dropped, failed)
	fmt.Printf("\nThe prediction log wrote %d rows; Slipway's clients counted %d answers (wrk leaves out up to -connections answers in flight when it stops).\n",
		logged, r.answered)
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	fmt.Printf("after wrk, the prediction log's queue was empty within %s\n", r.drain.Round(100*time.Millisecond))
	fmt.Printf("load average before: %s; after: %s\n", r.loadBefore, r.loadAfter)
	fmt.Printf("targets: throughput >= 20,000 req/s: %s; p99 < 5 ms at %.0f req/s: %s; nothing dropped: %s",
		met(r.wrk.RPS >= 20000), r.open.Rate, met(r.open.P99 < 5*time.Millisecond && r.open.Failed == 0), met(dropped == 0 && failed == 0))
	if r.peerRan {
		fmt.Printf("; >= 10x the peer: %s", met(r.wrk.RPS >= 10*r.peerWrk.RPS))
	}
	fmt.Println()
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func quantiles(r openLoopResult) string {
	if r.Done == 0 {
		return "-"
	}
	return ms(r.P50) + " / " + ms(r.P99) + " / " + ms(r.P999) + " / " + ms(r.Max)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "servebench: "+format+"\n", args...)
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// treeCPU is the user + system CPU time of process pid and all its
// descendants (uvicorn's workers are children of its supervisor).
func treeCPU(pid int) time.Duration {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	ticks := map[int]int64{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may
		// hold spaces: state ppid ... utime (14th field) stime (15th).
		i := strings.LastIndexByte(string(raw), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(raw[i+1:]))
		if len(f) < 13 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		parent[p], ticks[p] = pp, ut+st
	}
	var total int64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				total += t
				break
			}
		}
	}
	// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
	return time.Duration(total) * 10 * time.Millisecond
}

func perRequest(r wrkResult) float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU.Seconds() * 1e6 / float64(r.Requests)
}

// loadAverage is the 1, 5 and 15 minute load averages: the machine may be
// shared, and a busy one slows both servers.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// floor runs the open loop, then wrk as Slipway gets it, against net/http
// in this process answering every request with a fixed body of the size
// Slipway answers: what the generator, the kernel's loopback and net/http
// cost on their own, so that a server's latency and throughput can be read
// against it.
func floor(ctx context.Context, body []byte, script string, o options) (openLoopResult, wrkResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return openLoopResult{}, wrkResult{}, err
	}
	answer := []byte(`{"model_name":"bench","model_version":"1","outputs":[{"name":"prediction","datatype":"FP32","shape":[1],"data":[0.009155908]}]}` + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/v2/models/bench/infer"
	open, err := openLoop(ctx, url, body, o.rate, o.duration, o.openConns)
	if err != nil {
		return open, wrkResult{}, err
	}
	if _, err := runWrk(script, url, o.threads, o.conns, o.warmup); err != nil {
		return open, wrkResult{}, err
	}
	w, err := runWrk(script, url, o.threads, o.conns, o.duration)
	return open, w, err
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	logf("allocation profile in %s", path)
	return f.Close()
}
