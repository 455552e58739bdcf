// Command inferbench times Slipway's native XGBoost runtime beside XGBoost
// itself in the same run: Debian's python3-xgboost trains a 100-tree,
// depth-6 binary:logistic model on 30 features and times its own
// inplace_predict, one row at a time and on a batch of 1,000,000 rows with
// 2 threads; then Slipway's runtime loads the same model file, checks that
// it predicts what XGBoost predicted, and is timed on the same rows.
//
// Usage:
//
//	go run ./bench/inferbench               # 1,000,000-row batch
//	go run ./bench/inferbench -rows 100000  # quick
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/slipwayml/slipway/internal/models/xgboost"
)

const python = "/usr/bin/python3"

// script trains the model and times XGBoost. It prints one JSON object.
const script = `
import json, sys, time
import numpy as np, xgboost as xgb
out, rows, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
f = 30
xtr = rng.normal(size=(100000, f)).astype(np.float32)
w = rng.normal(size=f)
ytr = ((xtr @ w + rng.normal(size=len(xtr))) > 0).astype(int)
bst = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1,
                 "nthread": threads, "seed": 1}, xgb.DMatrix(xtr, label=ytr), 100)
bst.save_model(out + "/model.json")
x = rng.normal(size=(rows, f)).astype(np.float32)
x[rng.random(x.shape) < 0.05] = np.nan
x.astype("<f4").tofile(out + "/x.f32")
bst.set_param({"nthread": threads})
single = []
for i in range(3000):
    r = x[i % rows: i % rows + 1]
    t = time.perf_counter(); bst.inplace_predict(r); single.append(time.perf_counter() - t)
batch = []
for _ in range(3):
    t = time.perf_counter(); p = bst.inplace_predict(x); batch.append(time.perf_counter() - t)
p.astype("<f4").tofile(out + "/y.f32")
single.sort()
print(json.dumps({"version": xgb.__version__, "single_p50_s": single[len(single)//2], "batch_best_s": min(batch)}))
`

func main() {
	rows := flag.Int("rows", 1_000_000, "rows in the batch")
	threads := flag.Int("threads", 2, "threads for both runtimes")
	flag.Parse()
	runtime.GOMAXPROCS(*threads)
	dir, err := os.MkdirTemp("", "inferbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cmd := exec.Command(python, "-c", script, dir, fmt.Sprint(*rows), fmt.Sprint(*threads))
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		log.Fatalf("XGBoost side (needs apt-get install python3-xgboost): %v", err)
	}
	var peer struct {
		Version    string  `json:"version"`
		SingleP50  float64 `json:"single_p50_s"`
		BatchBestS float64 `json:"batch_best_s"`
	}
	if err := json.Unmarshal(raw, &peer); err != nil {
		log.Fatalf("XGBoost side printed %q: %v", raw, err)
	}

	m, err := xgboost.LoadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		log.Fatal(err)
	}
	x := readF32(filepath.Join(dir, "x.f32"))
	want := readF32(filepath.Join(dir, "y.f32"))
	got := make([]float32, *rows)
	if err := m.Predict(x, got); err != nil {
		log.Fatal(err)
	}
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if worst > 1e-6 {
		log.Fatalf("Slipway's predictions differ from XGBoost's by up to %g", worst)
	}

	nf := m.NumFeatures()
	out := make([]float32, 1)
	single := make([]time.Duration, 0, 3000)
	for i := 0; i < 3000; i++ {
		// Timing 100 calls together gets above the clock's resolution;
		// they score 100 different rows, so that the processor cannot
		// learn one row's path.
		base := (i * 100) % (*rows - 100)
		t := time.Now()
		for k := 0; k < 100; k++ {
			r := base + k
			m.PredictRow(x[r*nf:(r+1)*nf], out)
		}
		single = append(single, time.Since(t)/100)
	}
	slices.Sort(single)
	batch := time.Duration(math.MaxInt64)
	for k := 0; k < 3; k++ {
		t := time.Now()
		m.Predict(x, got)
		batch = min(batch, time.Since(t))
	}

	slipSingle := single[len(single)/2].Seconds()
	fmt.Printf("model: 100 trees, depth 6, 30 features, binary:logistic; XGBoost %s; %d threads; %s/%s, %d CPUs\n",
		peer.Version, *threads, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Printf("predictions agree with XGBoost's within %.2g on all %d rows\n\n", worst, *rows)
	fmt.Println("| measure | XGBoost inplace_predict | Slipway | Slipway / XGBoost | target |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	fmt.Printf("| single row, p50 | %.2f µs | %.2f µs | %.3f (time) | < 5 µs |\n",
		peer.SingleP50*1e6, slipSingle*1e6, slipSingle/peer.SingleP50)
	fmt.Printf("| batch of %d rows, best of 3 | %.0f rows/s | %.0f rows/s | %.2f (throughput) | >= 1,000,000 rows/s |\n",
		*rows, float64(*rows)/peer.BatchBestS, float64(*rows)/batch.Seconds(), peer.BatchBestS/batch.Seconds())
}

func readF32(path string) []float32 {
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
