package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
)

const hookSpec = `name: hooks
steps:
  first:
    command: printf "run=$RUN_TAG" > first.txt
    outputs:
      out: first.txt
  second:
    command: cat ${steps.first.outputs.out} > second.txt && test -f go.txt
    outputs:
      out: second.txt
`

// Variables from StepEnv reach the command but not the cache key, and
// StepDone sees every step once.
func TestStepEnvIsNotPartOfTheKey(t *testing.T) {
	pr := newProject(t, map[string]string{"pipeline.yaml": hookSpec, "go.txt": ""})
	var mu sync.Mutex
	var done []string
	opts := func(tag string) Options {
		return Options{
			StepEnv: func(_ context.Context, step string, d Decision) (map[string]string, error) {
				if d.Key == "" {
					t.Errorf("step %s: StepEnv called before its key was known", step)
				}
				return map[string]string{"RUN_TAG": tag}, nil
			},
			StepDone: func(r *StepResult) {
				mu.Lock()
				defer mu.Unlock()
				done = append(done, r.Name+":"+string(r.Status))
			},
		}
	}
	pr.mustRun(pr.parse("pipeline.yaml", nil), opts("a"))
	if got := pr.read("first.txt"); got != "run=a" {
		t.Fatalf("first.txt = %q, want the variable from StepEnv", got)
	}
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), opts("b"))
	wantStatuses(t, r, map[string]Status{"first": StatusCached, "second": StatusCached})
	slices.Sort(done)
	want := []string{"first:cached", "first:succeeded", "second:cached", "second:succeeded"}
	if !slices.Equal(done, want) {
		t.Fatalf("StepDone calls = %v, want %v", done, want)
	}
}

// A resumed run keeps the steps that succeeded while their outputs are
// unchanged, and runs the failed step and anything whose outputs moved.
func TestResumeReusesSucceededSteps(t *testing.T) {
	pr := newProject(t, map[string]string{"pipeline.yaml": hookSpec})
	pr.eng.Cache = nil // resume must not depend on the cache
	first, err := pr.run(pr.parse("pipeline.yaml", nil), Options{})
	if err == nil {
		t.Fatal("second step should fail without go.txt")
	}
	wantStatuses(t, first, map[string]Status{"first": StatusSucceeded, "second": StatusFailed})
	completed := map[string]*StepResult{}
	for _, s := range first.Steps {
		completed[s.Name] = s
	}
	pr.write("go.txt", "")
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{Completed: completed})
	wantStatuses(t, r, map[string]Status{"first": StatusReused, "second": StatusSucceeded})

	pr.write("first.txt", "edited by hand")
	r = pr.mustRun(pr.parse("pipeline.yaml", nil), Options{Completed: completed})
	wantStatuses(t, r, map[string]Status{"first": StatusSucceeded, "second": StatusSucceeded})
}

const commandRefSpec = `name: refs
params:
  word: one
steps:
  make:
    command: printf ${params.word} > made.txt
    outputs:
      out: made.txt
  use:
    command: cat ${steps.make.outputs.out} > used.txt
    outputs:
      out: used.txt
`

// A step that names another step's output in its command, rather than as
// a declared input, still misses when that output's content changes.
func TestOutputNamedInCommandIsInTheKey(t *testing.T) {
	pr := newProject(t, map[string]string{"pipeline.yaml": commandRefSpec})
	pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	r := pr.mustRun(pr.parse("pipeline.yaml", map[string]string{"word": "two"}), Options{})
	wantStatuses(t, r, map[string]Status{"make": StatusSucceeded, "use": StatusSucceeded})
	if got := pr.read("used.txt"); got != "two" {
		t.Fatalf("used.txt = %q: a stale cache hit", got)
	}
	if d := r.Step("use").Decision; !slices.Contains(d.Changed, "input steps.make.outputs.out") {
		t.Errorf("use's decision: %+v", d)
	}
}
