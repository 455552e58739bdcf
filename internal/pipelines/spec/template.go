package spec

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
)

// segment is a piece of a template: literal text, or a reference such as
// ["steps", "prepare", "outputs", "train"].
type segment struct {
	lit string
	ref []string
}

var identRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// scanTemplate splits s into literals and ${...} references. `$$` is a literal
// dollar; a `$` not followed by `{` is kept as is so shell commands can still
// use $HOME and friends.
func scanTemplate(s string) ([]segment, error) {
	var segs []segment
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) || (s[i+1] != '$' && s[i+1] != '{') {
			lit.WriteByte(c)
			continue
		}
		if s[i+1] == '$' {
			lit.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated %q", s[i:])
		}
		body := s[i+2 : i+2+end]
		parts := strings.Split(body, ".")
		for _, p := range parts {
			if !identRe.MatchString(p) {
				return nil, fmt.Errorf("malformed reference ${%s}", body)
			}
		}
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String()})
			lit.Reset()
		}
		segs = append(segs, segment{ref: parts})
		i += 2 + end
	}
	if lit.Len() > 0 {
		segs = append(segs, segment{lit: lit.String()})
	}
	return segs, nil
}

// Rendered is a step's command and environment with every template
// substituted, ready for an executor.
type Rendered struct {
	Argv  []string // set when the command was a list
	Shell string   // set when the command was a string; run with sh -c
	Env   map[string]string
}

// Render substitutes templates in a step's command and env. resolved maps
// reference keys ("inputs.train", "outputs.model",
// "steps.prepare.outputs.train") to concrete values, typically absolute paths
// chosen by the engine. Without an entry, outputs and path inputs fall back to
// their declared paths and step inputs to the producing output's path; data
// and model inputs have no such fallback and must be resolved.
//
// In a shell command every substituted value is shell-quoted, so a path with
// spaces or a `-p` value such as "x; rm -rf /" stays one word.
func (p *Pipeline) Render(stepName string, resolved map[string]string) (*Rendered, error) {
	st := p.Step(stepName)
	if st == nil {
		return nil, fmt.Errorf("pipeline %s: no step %q", p.Name, stepName)
	}
	var missing []string
	sub := func(s string, quote bool) string {
		segs, err := scanTemplate(s)
		if err != nil {
			// Parse validated every template; reaching this means a
			// hand-built Pipeline, so report rather than guess.
			missing = append(missing, err.Error())
			return s
		}
		var b strings.Builder
		for _, sg := range segs {
			if sg.ref == nil {
				b.WriteString(sg.lit)
				continue
			}
			v, ok := p.lookup(st, sg.ref, resolved)
			if !ok {
				missing = append(missing, "${"+strings.Join(sg.ref, ".")+"}")
				continue
			}
			if quote {
				v = shellQuote(v)
			}
			b.WriteString(v)
		}
		return b.String()
	}
	r := &Rendered{Env: map[string]string{}}
	if st.Argv != nil {
		r.Argv = make([]string, len(st.Argv))
		for i, a := range st.Argv {
			r.Argv[i] = sub(a, false)
		}
	} else {
		r.Shell = sub(st.Shell, true)
	}
	env := maps.Clone(p.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, st.Env)
	for k, v := range env {
		r.Env[k] = sub(v, false)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("step %s: no value for %s", st.Name, strings.Join(missing, ", "))
	}
	return r, nil
}

func (p *Pipeline) lookup(st *Step, ref []string, resolved map[string]string) (string, bool) {
	key := strings.Join(ref, ".")
	if ref[0] == "params" && len(ref) == 2 {
		if prm := p.Params[ref[1]]; prm != nil {
			return prm.Text, true
		}
		return "", false
	}
	if v, ok := resolved[key]; ok {
		return v, true
	}
	switch {
	case ref[0] == "outputs" && len(ref) == 2:
		if o := st.Output(ref[1]); o != nil {
			return o.Path, true
		}
	case ref[0] == "inputs" && len(ref) == 2:
		in := st.Input(ref[1])
		if in == nil {
			return "", false
		}
		switch in.Kind {
		case InputPath:
			return in.Path, true
		case InputStep:
			return p.lookup(st, []string{"steps", in.Step, "outputs", in.Output}, resolved)
		}
	case ref[0] == "steps" && len(ref) == 4 && ref[2] == "outputs":
		if s := p.Step(ref[1]); s != nil {
			if o := s.Output(ref[3]); o != nil {
				return o.Path, true
			}
		}
	}
	return "", false
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
