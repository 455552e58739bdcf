// Command pipebench measures the pipeline engine (internal/pipelines/engine)
// against the two targets, each beside a stand-in timed in the same
// run:
//
//   - overhead: a DAG of no-op steps (default 10,000, in layers of 100,
//     each step needing 3 steps of the layer before) generated as YAML,
//     parsed with spec.Parse and run by engine.Engine on the Local executor,
//     with no cache, and with a blob cache (engine.NewBlobCache over a local
//     internal/blob store) cold (every step runs) and warm (every step is a
//     cache hit). The stand-in runs the same commands, `/bin/sh -c CMD` one
//     after another from a plain `sh` loop and through `xargs -P`. The
//     engine's overhead per step is (engine wall − stand-in wall) / steps at
//     the same concurrency.
//   - rerun: a pipeline of 100 steps whose path inputs total 1 GiB of
//     random bytes. The first run fills the cache; then the fully cached
//     re-run is timed several times (min and median), with the engine's
//     digest memo in place and with it deleted before each run (every input
//     hashed again), beside `sha256sum` and `cat` over the same files.
//
// Nothing here asserts a time; results go in docs/benchmarks.md.
//
// Usage:
//
//	go run ./bench/pipebench                                  # both, full size (about 5 minutes)
//	go run ./bench/pipebench -scenarios overhead -steps 2000  # quick
//	go run ./bench/pipebench -scenarios rerun -input-bytes 268435456
//	go run ./bench/pipebench -scenarios overhead -cpuprofile cpu.out && go tool pprof -top -cum cpu.out
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

type config struct {
	steps       int
	width       int
	fanin       int
	concurrency []int
	reps        int
	rerunSteps  int
	inputBytes  int64
	rerunReps   int
	local       bool
	tmp         string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.steps, "steps", 10000, "no-op steps in the overhead DAG")
	flag.IntVar(&cfg.width, "width", 100, "steps per layer of the overhead DAG")
	flag.IntVar(&cfg.fanin, "fanin", 3, "steps of the previous layer each step needs")
	conc := flag.String("concurrency", fmt.Sprintf("1,%d", runtime.NumCPU()), "comma-separated concurrency limits to measure")
	flag.IntVar(&cfg.reps, "reps", 3, "repetitions of each overhead measurement (medians are reported)")
	flag.IntVar(&cfg.rerunSteps, "rerun-steps", 100, "steps of the cached re-run pipeline")
	flag.Int64Var(&cfg.inputBytes, "input-bytes", 1<<30, "total size of the re-run pipeline's inputs")
	flag.IntVar(&cfg.rerunReps, "rerun-reps", 7, "timed cached re-runs (min and median are reported)")
	flag.BoolVar(&cfg.local, "local", true, "overhead: also run the stand-ins and the engine with the Local executor (false: only the executor that starts nothing)")
	scenarios := flag.String("scenarios", "overhead,rerun", "which to run: overhead, rerun")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("pipebench: ")

	for _, s := range strings.Split(*conc, ",") {
		var c int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &c); err != nil || c < 1 {
			log.Fatalf("-concurrency: %q is not a positive number", s)
		}
		cfg.concurrency = append(cfg.concurrency, c)
	}
	tmp, err := os.MkdirTemp("", "pipebench-")
	check(err)
	cfg.tmp = tmp
	if *keep {
		log.Printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	fmt.Printf("# pipebench: %s/%s, %d CPUs, Go %s, load average %s, %s\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), loadavg(), time.Now().UTC().Format(time.RFC3339))
	for _, s := range strings.Split(*scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "overhead":
			overhead(cfg)
		case "rerun":
			rerun(cfg)
		default:
			log.Fatalf("-scenarios: unknown %q (want overhead, rerun)", s)
		}
	}
	fmt.Printf("load average at the end: %s\n", loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
