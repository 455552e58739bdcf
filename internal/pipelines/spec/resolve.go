package spec

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// resolve checks everything that needs the whole file: references, needs,
// cycles and clashing output paths.
func (ps *parser) resolve() {
	for _, s := range ps.sites {
		ps.checkSite(s)
	}
	for _, si := range ps.stepInputs {
		in := &si.step.Inputs[si.index]
		ps.checkStepOutput(si.step, si.node, si.path, in.Step, in.Output)
	}
	for _, n := range ps.needs {
		switch {
		case n.name == n.step.Name:
			ps.add(n.node, n.path, "remove it", "step %q needs itself", n.name)
		case ps.byName[n.name] == nil:
			ps.add(n.node, n.path, ps.stepHint(n.name), "unknown step %q", n.name)
		default:
			ps.deps[n.step][n.name] = true
		}
	}
	for _, st := range ps.pl.Steps {
		st.Needs = make([]string, 0, len(ps.deps[st]))
		for d := range ps.deps[st] {
			st.Needs = append(st.Needs, d)
		}
		sort.Strings(st.Needs)
	}
	ps.cycles()
	ps.outputClashes()
}

func (ps *parser) stepNames() []string {
	names := make([]string, len(ps.pl.Steps))
	for i, s := range ps.pl.Steps {
		names[i] = s.Name
	}
	return names
}

func (ps *parser) stepHint(name string) string {
	if h := didYouMean(name, ps.stepNames()); h != "" {
		return h
	}
	return "steps: " + strings.Join(ps.stepNames(), ", ")
}

func (ps *parser) checkSite(s site) {
	segs, err := scanTemplate(s.text)
	if err != nil {
		ps.add(s.node, s.path, "write ${namespace.name}; use $$ for a literal dollar", "%v", err)
		return
	}
	for _, sg := range segs {
		if sg.ref == nil {
			continue
		}
		ref := "${" + strings.Join(sg.ref, ".") + "}"
		ns := sg.ref[0]
		if s.step == nil && ns != "params" && contains(namespaces, ns) {
			ps.add(s.node, s.path, "pipeline-level env can only use ${params.NAME}; move it to a step's env", "reference %s is not available here", ref)
			continue
		}
		switch ns {
		case "params":
			if len(sg.ref) != 2 {
				ps.add(s.node, s.path, "write ${params.NAME}", "malformed reference %s", ref)
			} else if ps.pl.Params[sg.ref[1]] == nil {
				hint := didYouMean(sg.ref[1], ps.pl.ParamNames())
				if hint == "" {
					hint = "declare it under params: with a default"
				}
				ps.add(s.node, s.path, hint, "unknown param %q in %s", sg.ref[1], ref)
			}
		case "inputs", "outputs":
			var names []string
			if ns == "inputs" {
				for _, in := range s.step.Inputs {
					names = append(names, in.Name)
				}
			} else {
				for _, o := range s.step.Outputs {
					names = append(names, o.Name)
				}
			}
			if len(sg.ref) != 2 {
				ps.add(s.node, s.path, "write ${"+ns+".NAME}", "malformed reference %s", ref)
			} else if !contains(names, sg.ref[1]) {
				hint := didYouMean(sg.ref[1], names)
				if hint == "" {
					hint = "declare it under this step's " + ns + ":"
				}
				ps.add(s.node, s.path, hint, "step %q has no %s %q in %s", s.step.Name, strings.TrimSuffix(ns, "s"), sg.ref[1], ref)
			}
		case "steps":
			if len(sg.ref) != 4 || sg.ref[2] != "outputs" {
				ps.add(s.node, s.path, "write ${steps.STEP.outputs.NAME}", "malformed reference %s", ref)
				continue
			}
			ps.checkStepOutput(s.step, s.node, s.path, sg.ref[1], sg.ref[3])
		default:
			hint := didYouMean(ns, namespaces)
			if hint == "" {
				hint = "use params, inputs, outputs or steps"
			}
			ps.add(s.node, s.path, hint, "unknown namespace %q in %s", ns, ref)
		}
	}
}

func (ps *parser) checkStepOutput(st *Step, n *yaml.Node, path, stepName, output string) {
	ref := fmt.Sprintf("${steps.%s.outputs.%s}", stepName, output)
	if stepName == st.Name {
		ps.add(n, path, "use ${outputs."+output+"} for the step's own output", "step %q references its own output in %s", st.Name, ref)
		return
	}
	prod := ps.byName[stepName]
	if prod == nil {
		ps.add(n, path, ps.stepHint(stepName), "unknown step %q in %s", stepName, ref)
		return
	}
	if prod.Output(output) == nil {
		var names []string
		for _, o := range prod.Outputs {
			names = append(names, o.Name)
		}
		hint := didYouMean(output, names)
		if hint == "" {
			hint = fmt.Sprintf("step %q declares outputs: %s", stepName, strings.Join(names, ", "))
			if len(names) == 0 {
				hint = fmt.Sprintf("step %q declares no outputs", stepName)
			}
		}
		ps.add(n, path, hint, "step %q has no output %q in %s", stepName, output, ref)
		return
	}
	ps.deps[st][stepName] = true
}

// cycles reports one cycle per strongly connected component, so a tangle of
// steps yields one message rather than one per edge.
func (ps *parser) cycles() {
	steps := ps.pl.Steps
	index := map[string]int{}
	for i, s := range steps {
		index[s.Name] = i
	}
	idx := make([]int, len(steps))
	low := make([]int, len(steps))
	on := make([]bool, len(steps))
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	next := 0
	var comps [][]int
	var strong func(v int)
	strong = func(v int) {
		idx[v], low[v] = next, next
		next++
		stack = append(stack, v)
		on[v] = true
		for _, d := range steps[v].Needs {
			w := index[d]
			if idx[w] < 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], idx[w])
			}
		}
		if low[v] == idx[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 {
				comps = append(comps, comp)
			}
		}
	}
	for i := range steps {
		if idx[i] < 0 {
			strong(i)
		}
	}
	for _, comp := range comps {
		in := map[int]bool{}
		start := comp[0]
		for _, c := range comp {
			in[c] = true
			start = min(start, c)
		}
		// Shortest cycle through the first step (in file order) of the
		// component, found by BFS along needs edges inside it.
		prev := map[int]int{}
		queue := []int{start}
		found := false
		for len(queue) > 0 && !found {
			v := queue[0]
			queue = queue[1:]
			for _, d := range steps[v].Needs {
				w := index[d]
				if !in[w] {
					continue
				}
				if w == start {
					prev[start] = v
					found = true
					break
				}
				if _, seen := prev[w]; !seen {
					prev[w] = v
					queue = append(queue, w)
				}
			}
		}
		path := []string{steps[start].Name}
		for v := prev[start]; v != start; v = prev[v] {
			path = append(path, steps[v].Name)
		}
		path = append(path, steps[start].Name)
		// prev walks backwards; reverse to read as "a needs b needs c".
		for i, j := 1, len(path)-2; i < j; i, j = i+1, j-1 {
			path[i], path[j] = path[j], path[i]
		}
		ps.add(ps.stepNodes[steps[start].Name], "steps."+steps[start].Name,
			"a step cannot depend on itself through needs or ${steps...} references; remove one link",
			"dependency cycle: %s", strings.Join(path, " -> "))
	}
}

// outputClashes rejects two outputs writing the same place, and inputs that
// read another step's output by path: both would make results depend on run
// order without the DAG knowing.
func (ps *parser) outputClashes() {
	type owner struct {
		step, output string
	}
	var paths []string
	owners := map[string]owner{}
	for _, st := range ps.pl.Steps {
		for _, o := range st.Outputs {
			n := ps.outNodes[[2]string{st.Name, o.Name}]
			fp := "steps." + st.Name + ".outputs." + o.Name
			if prev, ok := owners[o.Path]; ok {
				ps.add(n, fp, "give each output its own path", "output path %q is also output %s of step %q", o.Path, prev.output, prev.step)
				continue
			}
			clash := false
			for _, q := range paths {
				if strings.HasPrefix(o.Path, q+"/") || strings.HasPrefix(q, o.Path+"/") {
					prev := owners[q]
					ps.add(n, fp, "outputs must not nest inside each other", "output path %q overlaps %q (output %s of step %q)", o.Path, q, prev.output, prev.step)
					clash = true
					break
				}
			}
			if clash {
				continue
			}
			owners[o.Path] = owner{st.Name, o.Name}
			paths = append(paths, o.Path)
		}
	}
	for _, st := range ps.pl.Steps {
		for _, in := range st.Inputs {
			if in.Kind != InputPath {
				continue
			}
			for _, q := range paths {
				if prev := owners[q]; prev.step != st.Name && (in.Path == q || strings.HasPrefix(in.Path, q+"/")) {
					ps.add(ps.inNodes[[2]string{st.Name, in.Name}], "steps."+st.Name+".inputs."+in.Name,
						fmt.Sprintf("write ${steps.%s.outputs.%s} so the dependency is known", prev.step, prev.output),
						"input path %q is produced by step %q", in.Path, prev.step)
					break
				}
			}
		}
	}
}
