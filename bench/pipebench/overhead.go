package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/pipelines/engine"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// dagSpec writes a pipeline of n no-op steps in layers of width: every step
// after the first layer needs fanin distinct steps of the layer before,
// chosen at random (fixed seed), so steps wait on several others and
// release several others, and the scheduler has a wide ready set to
// choose from. Each command is distinct (`true sNNNNN`): identical
// commands would share one cache key, and only the first would run.
func dagSpec(n, width, fanin int) (yaml []byte, cmds []string) {
	r := rand.New(rand.NewPCG(5, 5))
	var b strings.Builder
	b.WriteString("name: overhead\nsteps:\n")
	name := func(i int) string { return fmt.Sprintf("s%05d", i) }
	for i := range n {
		cmd := "true " + name(i)
		cmds = append(cmds, cmd)
		fmt.Fprintf(&b, "  %s:\n    command: %s\n", name(i), cmd)
		layer := i / width
		if layer == 0 {
			continue
		}
		lo := (layer - 1) * width
		picks := r.Perm(width)[:min(fanin, width)]
		slices.Sort(picks)
		needs := make([]string, len(picks))
		for j, p := range picks {
			needs[j] = name(lo + p)
		}
		fmt.Fprintf(&b, "    needs: [%s]\n", strings.Join(needs, ", "))
	}
	return []byte(b.String()), cmds
}

type measurement struct {
	wall     time.Duration
	selfCPU  time.Duration // this process (the engine), user + system
	childCPU time.Duration // processes it waited for, and theirs
}

func (m measurement) perStep(n int) float64 { return m.wall.Seconds() * 1e3 / float64(n) }

func (m measurement) cpu() time.Duration { return m.selfCPU + m.childCPU }

func medianOf(ms []measurement) measurement {
	var w, s, c []time.Duration
	for _, m := range ms {
		w, s, c = append(w, m.wall), append(s, m.selfCPU), append(c, m.childCPU)
	}
	mid := func(xs []time.Duration) time.Duration { slices.Sort(xs); return xs[len(xs)/2] }
	return measurement{wall: mid(w), selfCPU: mid(s), childCPU: mid(c)}
}

func cpuTimes() (self, children time.Duration) {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	check(syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru))
	return self, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(fn func()) measurement {
	s0, c0 := cpuTimes()
	t0 := time.Now()
	fn()
	wall := time.Since(t0)
	s1, c1 := cpuTimes()
	return measurement{wall: wall, selfCPU: s1 - s0, childCPU: c1 - c0}
}

// nopExecutor starts nothing: runs with it show what the engine costs
// without the processes.
type nopExecutor struct{}

func (nopExecutor) Identity() string { return "pipebench:nop" }
func (nopExecutor) Run(context.Context, engine.Task) (engine.Result, error) {
	return engine.Result{}, nil
}

func overhead(cfg config) {
	dir := filepath.Join(cfg.tmp, "overhead")
	proj := filepath.Join(dir, "proj")
	check(os.MkdirAll(proj, 0o755))
	yaml, cmds := dagSpec(cfg.steps, cfg.width, cfg.fanin)
	specPath := filepath.Join(proj, "pipeline.yaml")
	check(os.WriteFile(specPath, yaml, 0o644))
	cmdFile := filepath.Join(dir, "commands.txt")
	check(os.WriteFile(cmdFile, []byte(strings.Join(cmds, "\n")+"\n"), 0o644))

	var p *spec.Pipeline
	parse := measure(func() {
		var err error
		p, err = spec.Parse(specPath, yaml)
		check(err)
	})
	var levels [][]string
	plan := measure(func() {
		var err error
		levels, err = p.Order()
		check(err)
	})
	fmt.Printf("## Engine overhead: %d no-op steps, %d layers of %d, each step needs %d of the layer before\n\n",
		cfg.steps, len(levels), cfg.width, cfg.fanin)
	fmt.Printf("spec: %d KiB of YAML; spec.Parse %.0f ms, Order (plan) %.1f ms\n\n",
		len(yaml)>>10, parse.wall.Seconds()*1e3, plan.wall.Seconds()*1e3)

	type key struct {
		what string
		c    int
	}
	got := map[key][]measurement{}
	runEngine := func(label string, c int, exe engine.Executor, cache engine.CacheStore, want engine.Status) measurement {
		runDir := filepath.Join(dir, "runs", label)
		eng := &engine.Engine{Executor: exe, Cache: cache}
		var res *engine.RunResult
		m := measure(func() {
			var err error
			res, err = eng.Run(context.Background(), p, engine.Options{ProjectDir: proj, RunDir: runDir, Concurrency: c})
			check(err)
		})
		for _, s := range res.Steps {
			if s.Status != want {
				log.Fatalf("%s: step %s is %s (%s), want %s", label, s.Name, s.Status, s.Decision.Reason, want)
			}
		}
		check(os.RemoveAll(runDir))
		return m
	}
	add := func(what string, c int, m measurement) { got[key{what, c}] = append(got[key{what, c}], m) }
	withStore := func(label string, fn func(cache engine.CacheStore)) {
		path := filepath.Join(dir, "store-"+label)
		store, err := blob.Open(context.Background(), path, blob.Options{})
		check(err)
		fn(engine.NewBlobCache(store))
		check(store.Close())
		check(os.RemoveAll(path))
	}
	for rep := range cfg.reps {
		for _, c := range cfg.concurrency {
			tag := fmt.Sprintf("%d-%d", c, rep)
			if cfg.local {
				if c == 1 {
					add("shloop", 1, measure(func() { shell(proj, `while IFS= read -r c; do /bin/sh -c "$c"; done < `+cmdFile) }))
				}
				add("xargs", c, measure(func() { shell(proj, fmt.Sprintf(`xargs -d '\n' -n 1 -P %d /bin/sh -c < %s`, c, cmdFile)) }))
				add("nocache", c, runEngine("nocache-"+tag, c, &engine.Local{}, nil, engine.StatusSucceeded))
				withStore(tag, func(cache engine.CacheStore) {
					add("cold", c, runEngine("cold-"+tag, c, &engine.Local{}, cache, engine.StatusSucceeded))
					add("warm", c, runEngine("warm-"+tag, c, &engine.Local{}, cache, engine.StatusCached))
				})
			}
			add("nop-nocache", c, runEngine("nop-nocache-"+tag, c, nopExecutor{}, nil, engine.StatusSucceeded))
			withStore("nop-"+tag, func(cache engine.CacheStore) {
				add("nop-cold", c, runEngine("nop-cold-"+tag, c, nopExecutor{}, cache, engine.StatusSucceeded))
			})
			fmt.Fprintf(os.Stderr, "  rep %d, concurrency %d done (load %s)\n", rep+1, c, loadavg())
		}
	}

	n := cfg.steps
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(n) }
	fmt.Printf("Medians of %d repetitions. The stand-in at concurrency 1 is the `sh` loop, above 1 `xargs -P`. "+
		"Overhead per step = (run − stand-in) / steps, in wall time (from the medians, and the median of each repetition's "+
		"difference from the stand-in run just before it) and in CPU time (user + system of every process); "+
		"for warm runs nothing executes, so it is the whole run / steps.\n\n", cfg.reps)
	fmt.Println("| run | concurrency | wall | wall per step | CPU per step, all processes | engine's own CPU per step | wall / stand-in | overhead per step, wall (medians) | overhead per step, wall (median of paired repetitions) | overhead per step, CPU |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range cfg.concurrency {
		si := measurement{} // without -local, no stand-in and no ratios
		var sis []measurement
		if cfg.local {
			sis = got[key{"xargs", c}]
			if c == 1 {
				sis = got[key{"shloop", 1}]
			}
			si = medianOf(sis)
		}
		// The machine may be shared: each repetition's difference from the
		// stand-in measured just before it moves less than either.
		pairedOver := func(ms []measurement) float64 {
			var d []float64
			for i := range min(len(ms), len(sis)) {
				d = append(d, (ms[i].wall-sis[i].wall).Seconds()*1e3/float64(n))
			}
			slices.Sort(d)
			return d[len(d)/2]
		}
		row := func(label, what string) {
			m := medianOf(got[key{what, c}])
			over, paired, overCPU := "", "", ""
			switch {
			case what == "shloop" || what == "xargs" || strings.HasPrefix(what, "nop"):
			case what == "warm":
				over, overCPU = fmt.Sprintf("%.3f ms", m.perStep(n)), fmt.Sprintf("%.3f ms", ms(m.cpu()))
			default:
				over = fmt.Sprintf("%.3f ms", ms(m.wall-si.wall))
				paired = fmt.Sprintf("%.3f ms", pairedOver(got[key{what, c}]))
				overCPU = fmt.Sprintf("%.3f ms", ms(m.cpu()-si.cpu()))
			}
			ratio := ""
			if si.wall > 0 {
				ratio = fmt.Sprintf("%.2f", m.wall.Seconds()/si.wall.Seconds())
			}
			fmt.Printf("| %s | %d | %.2f s | %.3f ms | %.3f ms | %.3f ms | %s | %s | %s | %s |\n", label, c, m.wall.Seconds(), m.perStep(n),
				ms(m.cpu()), ms(m.selfCPU), ratio, over, paired, overCPU)
		}
		if cfg.local {
			if c == 1 {
				row("stand-in: `sh` loop", "shloop")
			}
			row(fmt.Sprintf("stand-in: `xargs -P %d`", c), "xargs")
			row("engine, no cache", "nocache")
			row("engine, blob cache, cold (every step runs)", "cold")
			row("engine, blob cache, warm (every step a hit)", "warm")
		}
		row("engine, executor that starts nothing, no cache", "nop-nocache")
		row("engine, executor that starts nothing, blob cache cold", "nop-cold")
	}
	fmt.Println()
	fmt.Println("Every repetition (wall seconds):")
	fmt.Println()
	for _, c := range cfg.concurrency {
		for _, what := range []string{"shloop", "xargs", "nocache", "cold", "warm", "nop-nocache", "nop-cold"} {
			ms := got[key{what, c}]
			if len(ms) == 0 {
				continue
			}
			var parts []string
			for _, m := range ms {
				parts = append(parts, fmt.Sprintf("%.2f", m.wall.Seconds()))
			}
			fmt.Printf("- %s, concurrency %d: %s\n", what, c, strings.Join(parts, ", "))
		}
	}
	fmt.Println()
}

func shell(dir, script string) {
	c := exec.Command("/bin/sh", "-c", script)
	c.Dir = dir
	c.Stderr = os.Stderr
	check(c.Run())
}
