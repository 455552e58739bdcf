package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Order returns the steps in topological levels: every step comes after all
// the steps it needs, steps in one level may run in parallel, and names within
// a level are sorted so plans are reproducible.
func (p *Pipeline) Order() ([][]string, error) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, s := range p.Steps {
		if _, dup := indeg[s.Name]; dup {
			return nil, fmt.Errorf("pipeline %s: duplicate step %q", p.Name, s.Name)
		}
		indeg[s.Name] = 0
	}
	for _, s := range p.Steps {
		for _, d := range s.Needs {
			if _, ok := indeg[d]; !ok {
				return nil, fmt.Errorf("pipeline %s: step %q needs unknown step %q", p.Name, s.Name, d)
			}
			indeg[s.Name]++
			users[d] = append(users[d], s.Name)
		}
	}
	var level []string
	for name, n := range indeg {
		if n == 0 {
			level = append(level, name)
		}
	}
	var levels [][]string
	done := 0
	for len(level) > 0 {
		sort.Strings(level)
		levels = append(levels, level)
		done += len(level)
		var next []string
		for _, name := range level {
			for _, u := range users[name] {
				indeg[u]--
				if indeg[u] == 0 {
					next = append(next, u)
				}
			}
		}
		level = next
	}
	if done != len(p.Steps) {
		var left []string
		for name, n := range indeg {
			if n > 0 {
				left = append(left, name)
			}
		}
		sort.Strings(left)
		return nil, fmt.Errorf("pipeline %s: dependency cycle among steps %s", p.Name, strings.Join(left, ", "))
	}
	return levels, nil
}
