package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// rerunSpec is a pipeline of n steps, each reading one shard of the input
// files; from the eleventh on a step also reads the output of the step ten
// before it, so the DAG is ten chains of n/10 steps.
func rerunSpec(n int) []byte {
	var b strings.Builder
	b.WriteString("name: rerun\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  r%03d:\n", i)
		if i < 10 {
			b.WriteString("    command: wc -c < ${inputs.shard} > ${outputs.sum}\n")
		} else {
			b.WriteString("    command: '{ wc -c < ${inputs.shard}; cat ${inputs.prev}; } > ${outputs.sum}'\n")
		}
		fmt.Fprintf(&b, "    inputs:\n      shard: data/shard-%03d.bin\n", i)
		if i >= 10 {
			fmt.Fprintf(&b, "      prev: ${steps.r%03d.outputs.sum}\n", i-10)
		}
		fmt.Fprintf(&b, "    outputs:\n      sum: out/r%03d.txt\n", i)
	}
	return []byte(b.String())
}

// writeShards fills n files with total random bytes.
func writeShards(dir string, n int, total int64) {
	check(os.MkdirAll(dir, 0o755))
	rng := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	for i := range n {
		size := total / int64(n)
		if i == n-1 {
			size = total - size*int64(n-1)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("shard-%03d.bin", i)))
		check(err)
		for size > 0 {
			k := min(size, int64(len(buf)))
			_, _ = rng.Read(buf[:k])
			_, err := f.Write(buf[:k])
			check(err)
			size -= k
		}
		check(f.Close())
	}
}

func rerun(cfg config) {
	dir := filepath.Join(cfg.tmp, "rerun")
	proj := filepath.Join(dir, "proj")
	n := cfg.rerunSteps
	gen := time.Now()
	writeShards(filepath.Join(proj, "data"), n, cfg.inputBytes)
	fmt.Printf("## Cached re-run: %d steps, inputs %d files of %.1f MiB (%.2f GiB in all; written in %.1f s)\n\n",
		n, n, float64(cfg.inputBytes)/float64(n)/(1<<20), float64(cfg.inputBytes)/(1<<30), time.Since(gen).Seconds())
	yaml := rerunSpec(n)
	specPath := filepath.Join(proj, "pipeline.yaml")
	check(os.WriteFile(specPath, yaml, 0o644))
	p, err := spec.Parse(specPath, yaml)
	check(err)

	store, err := blob.Open(context.Background(), filepath.Join(dir, "store"), blob.Options{})
	check(err)
	defer store.Close()
	eng := &engine.Engine{Executor: &engine.Local{}, Cache: engine.NewBlobCache(store)}
	runs := 0
	run := func(want engine.Status) time.Duration {
		runs++
		runDir := filepath.Join(dir, "runs", fmt.Sprint(runs))
		start := time.Now()
		res, err := eng.Run(context.Background(), p, engine.Options{ProjectDir: proj, RunDir: runDir})
		d := time.Since(start)
		check(err)
		for _, s := range res.Steps {
			if s.Status != want {
				log.Fatalf("re-run: step %s is %s (%s), want %s", s.Name, s.Status, s.Decision.Reason, want)
			}
		}
		check(os.RemoveAll(runDir))
		return d
	}
	memo := filepath.Join(proj, filepath.FromSlash(engine.DigestMemoFile))

	// Every contestant reads the inputs from the page cache: they were just
	// written, and the first run reads them all.
	first := run(engine.StatusSucceeded)
	var warm, cold, sha1, shaN, cat []time.Duration
	cpus := runtime.NumCPU()
	for range cfg.rerunReps {
		warm = append(warm, run(engine.StatusCached))
		check(removeIfExists(memo))
		cold = append(cold, run(engine.StatusCached))
		sha1 = append(sha1, timeIt(func() { shell(proj, "sha256sum data/*.bin > /dev/null") }))
		shaN = append(shaN, timeIt(func() {
			shell(proj, fmt.Sprintf("ls data/*.bin | xargs -n 1 -P %d sha256sum > /dev/null", cpus))
		}))
		cat = append(cat, timeIt(func() { shell(proj, "cat data/*.bin > /dev/null") }))
	}

	fmt.Printf("Engine concurrency %d (the number of CPUs); %d timed runs of each, alternating.\n\n", cpus, cfg.rerunReps)
	fmt.Println("| run | min | median | median / `sha256sum` (1 process) | median / `sha256sum` (-P " + fmt.Sprint(cpus) + ") | target |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | --- |")
	ref1, refN := med(sha1), med(shaN)
	row := func(label string, ds []time.Duration, target string) {
		fmt.Printf("| %s | %.3f s | %.3f s | %.3f | %.3f | %s |\n", label, slices.Min(ds).Seconds(), med(ds).Seconds(),
			med(ds).Seconds()/ref1.Seconds(), med(ds).Seconds()/refN.Seconds(), target)
	}
	row("first run (cache empty: every step runs)", []time.Duration{first}, "")
	row("fully cached re-run", warm, "< 2 s")
	row("fully cached re-run, digest memo deleted first", cold, "")
	row("stand-in: `sha256sum` over the inputs, 1 process", sha1, "")
	row(fmt.Sprintf("stand-in: `sha256sum`, `xargs -P %d`", cpus), shaN, "")
	row("stand-in: `cat` of the inputs to /dev/null", cat, "")
	fmt.Println()
	fmt.Println("Every run (seconds):")
	fmt.Println()
	for _, r := range []struct {
		label string
		ds    []time.Duration
	}{{"cached re-run", warm}, {"memo deleted", cold}, {"sha256sum", sha1}, {"sha256sum -P", shaN}, {"cat", cat}} {
		var parts []string
		for _, d := range r.ds {
			parts = append(parts, fmt.Sprintf("%.3f", d.Seconds()))
		}
		fmt.Printf("- %s: %s\n", r.label, strings.Join(parts, ", "))
	}
	fmt.Println()
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func timeIt(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}
