package engine

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// With one slot, ready steps start in file order, whatever order the file
// lists dependencies in.
func TestReadyStepsStartInFileOrder(t *testing.T) {
	pr := newProject(t, map[string]string{"p.yaml": `name: order
steps:
  c:
    command: "true c"
    needs: a
  a:
    command: "true a"
  b:
    command: "true b"
  d:
    command: "true d"
    needs: [b, c]
  e:
    command: "true e"
    needs: a
`})
	var mu sync.Mutex
	var order []string
	pr.mustRun(pr.parse("p.yaml", nil), Options{Concurrency: 1, Logs: func(step string) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, step)
		return nil
	}})
	if want := []string{"a", "c", "b", "d", "e"}; !slices.Equal(order, want) {
		t.Fatalf("started %v, want %v", order, want)
	}
}

// A step listed before the step it needs starts once that step is reused
// from the run being resumed, even when nothing else is running.
func TestReusedStepReleasesEarlierListedDependents(t *testing.T) {
	spec := `name: rev
steps:
  second:
    command: cat ${steps.first.outputs.out} > second.txt
    outputs:
      out: second.txt
  first:
    command: echo one > first.txt
    outputs:
      out: first.txt
`
	pr := newProject(t, map[string]string{"p.yaml": spec})
	pr.eng.Cache = nil
	first := pr.mustRun(pr.parse("p.yaml", nil), Options{})
	completed := map[string]*StepResult{"first": first.Step("first")}
	r := pr.mustRun(pr.parse("p.yaml", nil), Options{Completed: completed})
	wantStatuses(t, r, map[string]Status{"first": StatusReused, "second": StatusSucceeded})
}

// A wide layered DAG: every step runs once, after all it needs.
func TestReadyQueueLayeredDAG(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: wide\nsteps:\n")
	const layers, width = 6, 12
	name := func(l, i int) string { return "s" + strconv.Itoa(l) + "_" + strconv.Itoa(i) }
	for l := range layers {
		for i := range width {
			b.WriteString("  " + name(l, i) + ":\n    command: echo " + name(l, i) + " >> order.txt\n    cache: false\n")
			if l > 0 {
				b.WriteString("    needs: [" + name(l-1, i) + ", " + name(l-1, (i+5)%width) + "]\n")
			}
		}
	}
	pr := newProject(t, map[string]string{"p.yaml": b.String()})
	var mu sync.Mutex
	var done []string
	r := pr.mustRun(pr.parse("p.yaml", nil), Options{Concurrency: 3, StepDone: func(s *StepResult) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, s.Name)
	}})
	if len(r.Steps) != layers*width || len(done) != layers*width {
		t.Fatalf("%d results, %d StepDone calls", len(r.Steps), len(done))
	}
	pos := map[string]int{}
	for i, line := range strings.Fields(pr.read("order.txt")) {
		if _, dup := pos[line]; dup {
			t.Fatalf("%s ran twice", line)
		}
		pos[line] = i
	}
	p := pr.parse("p.yaml", nil)
	for _, st := range p.Steps {
		for _, d := range st.Needs {
			if pos[d] >= pos[st.Name] {
				t.Errorf("%s ran before %s, which it needs", st.Name, d)
			}
		}
	}
}
