// Command trainbench times Slipway's GBDT trainer beside XGBoost's hist
// method (Debian's python3-xgboost) in the same run, on the same synthetic
// data with the same parameters: by default 1,000,000 rows of 30 features,
// binary:logistic, 100 rounds, depth 6, 2 threads. XGBoost is timed around
// its xgb.train call only (the DMatrix is built before the clock starts);
// Slipway around TrainGBDT, which includes its quantile sketch, as
// xgb.train includes XGBoost's. It reports both wall and CPU times, their
// ratio and both models' AUC on 200,000 held-out rows. On a shared machine
// run several repetitions (-reps): they alternate, and the ratio reported
// is the median of each repetition's.
//
// Usage:
//
//	go run ./bench/trainbench                     # the size
//	go run ./bench/trainbench -rows 100000        # quick
//	go run ./bench/trainbench -reps 3             # alternate, report medians
//	go run ./bench/trainbench -xgboost=false -cpuprofile cpu.out
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/slipwayml/slipway/internal/models/xgboost"
	"github.com/slipwayml/slipway/internal/training"
)

const python = "/usr/bin/python3"

// script trains XGBoost on the files Go wrote and prints one JSON object.
const script = `
import json, sys, time
import numpy as np, xgboost as xgb
d, rows, test, f, rounds, depth, threads = sys.argv[1], *map(int, sys.argv[2:8])
x = np.fromfile(d + "/train.x.f32", dtype="<f4").reshape(rows, f)
y = np.fromfile(d + "/train.y.f32", dtype="<f4")
tx = np.fromfile(d + "/test.x.f32", dtype="<f4").reshape(test, f)
dtrain = xgb.DMatrix(x, label=y, nthread=threads)
params = {"tree_method": "hist", "objective": "binary:logistic", "max_depth": depth, "eta": 0.3,
          "nthread": threads, "seed": 1, "base_score": float(sys.argv[8])}
start, cpu = time.perf_counter(), time.process_time()
bst = xgb.train(params, dtrain, num_boost_round=rounds)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
pred = bst.predict(xgb.DMatrix(tx, nthread=threads)).astype("<f4")
pred.tofile(d + "/xgb.pred.f32")
print(json.dumps({"seconds": seconds, "cpu": cpu, "version": xgb.__version__}))
`

func main() {
	rows := flag.Int("rows", 1_000_000, "training rows")
	test := flag.Int("test", 200_000, "held-out rows for AUC")
	features := flag.Int("features", 30, "features")
	rounds := flag.Int("rounds", 100, "boosting rounds")
	depth := flag.Int("depth", 6, "max_depth")
	threads := flag.Int("threads", 2, "threads for both trainers")
	reps := flag.Int("reps", 1, "repetitions, alternating Slipway and XGBoost")
	withXGB := flag.Bool("xgboost", true, "time XGBoost too")
	cpuprofile := flag.String("cpuprofile", "", "write Slipway's CPU profile here")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("trainbench: ")

	train, testSet := generate(*rows, *test, *features)
	dir, err := os.MkdirTemp("", "trainbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if *withXGB {
		write(filepath.Join(dir, "train.x.f32"), rowMajor(train))
		write(filepath.Join(dir, "train.y.f32"), train.Labels)
		write(filepath.Join(dir, "test.x.f32"), rowMajor(testSet))
	}
	p := training.DefaultGBDTParams()
	p.Rounds, p.MaxDepth, p.Threads, p.Seed = *rounds, *depth, *threads, 1
	half := 0.5 // XGBoost 1.7's default base_score, so both start alike
	p.BaseScore = &half

	var ours, theirs, ourCPU, theirCPU, ratios []float64
	var ourAUC, theirAUC float64
	version := ""
	for rep := range *reps {
		runtime.GC()
		if *cpuprofile != "" && rep == 0 {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
		}
		start, cpu := time.Now(), cpuSeconds()
		res, err := training.TrainGBDT(context.Background(), p, train, nil)
		if err != nil {
			log.Fatal(err)
		}
		ours = append(ours, time.Since(start).Seconds())
		ourCPU = append(ourCPU, cpuSeconds()-cpu)
		if *cpuprofile != "" && rep == 0 {
			pprof.StopCPUProfile()
		}
		ourAUC = auc(predict(res.Model, testSet), testSet.Labels)
		log.Printf("rep %d: Slipway %.2fs, %.2f CPU-s (AUC %.5f)", rep+1, ours[rep], ourCPU[rep], ourAUC)
		if !*withXGB {
			continue
		}
		cmd := exec.Command(python, "-c", script, dir, fmt.Sprint(*rows), fmt.Sprint(*test), fmt.Sprint(*features),
			fmt.Sprint(*rounds), fmt.Sprint(*depth), fmt.Sprint(*threads), "0.5")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("XGBoost: %v", err)
		}
		var r struct {
			Seconds float64 `json:"seconds"`
			CPU     float64 `json:"cpu"`
			Version string  `json:"version"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			log.Fatalf("XGBoost printed %q: %v", out, err)
		}
		theirs = append(theirs, r.Seconds)
		theirCPU = append(theirCPU, r.CPU)
		ratios = append(ratios, ours[rep]/r.Seconds)
		version = r.Version
		theirAUC = auc(read(filepath.Join(dir, "xgb.pred.f32")), testSet.Labels)
		log.Printf("rep %d: XGBoost %.2fs, %.2f CPU-s (AUC %.5f)", rep+1, r.Seconds, r.CPU, theirAUC)
	}
	fmt.Printf("GBDT training, %d rows x %d features, binary:logistic, %d rounds, depth %d, %d threads, GOMAXPROCS %d\n",
		*rows, *features, *rounds, *depth, *threads, runtime.GOMAXPROCS(0))
	fmt.Printf("  %-16s %8s %8s  %s\n", "", "wall s", "CPU s", "test AUC")
	fmt.Printf("  %-16s %8.2f %8.2f  %.5f\n", "Slipway", median(ours), median(ourCPU), ourAUC)
	if *withXGB {
		fmt.Printf("  %-16s %8.2f %8.2f  %.5f\n", "XGBoost "+version, median(theirs), median(theirCPU), theirAUC)
		// Medians of each repetition's ratio, since a shared machine's load
		// moves between repetitions more than between the two runs of one.
		fmt.Printf("  ratio Slipway/XGBoost: wall %.2f (median of %d repetitions' ratios; target <= 2), CPU %.2f\n",
			median(ratios), len(ratios), median(ourCPU)/median(theirCPU))
	}
}

// generate draws rows with a non-linear signal in the first ten features,
// 2% missing values, and logistic noise.
func generate(n, test, nf int) (*training.Dataset, *training.Dataset) {
	rng := rand.New(rand.NewPCG(1, 2))
	make1 := func(n int) *training.Dataset {
		d := &training.Dataset{Columns: make([][]float32, nf), Labels: make([]float32, n)}
		for j := range d.Columns {
			d.Columns[j] = make([]float32, n)
		}
		x := make([]float64, nf)
		for r := range n {
			for j := range x {
				x[j] = rng.NormFloat64()
				d.Columns[j][r] = float32(x[j])
				if rng.Float64() < 0.02 {
					d.Columns[j][r] = float32(math.NaN())
				}
			}
			logit := x[0] + 0.5*x[1]*x[1] - x[2]*x[3] + math.Sin(2*x[4])
			for j := 5; j < min(10, nf); j++ {
				logit += 0.3 * x[j]
			}
			u := rng.Float64()
			if logit+math.Log(u/(1-u)) > 0.5 {
				d.Labels[r] = 1
			}
		}
		return d
	}
	return make1(n), make1(test)
}

func rowMajor(d *training.Dataset) []float32 {
	nf := d.NumFeatures()
	x := make([]float32, d.Rows()*nf)
	for j, col := range d.Columns {
		for r, v := range col {
			x[r*nf+j] = v
		}
	}
	return x
}

func write(path string, v []float32) {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[i*4:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		log.Fatal(err)
	}
}

func read(path string) []float32 {
	raw, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
	}
	return out
}

// predict scores d with the model, through Slipway's XGBoost runtime.
func predict(m *training.Model, d *training.Dataset) []float32 {
	rt, err := xgboost.Load(m.JSON())
	if err != nil {
		log.Fatal(err)
	}
	out := make([]float32, d.Rows())
	if err := rt.Predict(rowMajor(d), out); err != nil {
		log.Fatal(err)
	}
	return out
}

func auc(score, labels []float32) float64 {
	idx := make([]int, len(labels))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
	var tp, fp, area float64
	for i := 0; i < len(idx); {
		var dtp, dfp float64
		j := i
		for ; j < len(idx) && score[idx[j]] == score[idx[i]]; j++ {
			dtp += float64(labels[idx[j]])
			dfp += 1 - float64(labels[idx[j]])
		}
		area += dfp * (tp + dtp/2)
		tp, fp = tp+dtp, fp+dfp
		i = j
	}
	return area / (tp * fp)
}

// cpuSeconds is the CPU time this process has used, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
