package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	envKeyRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	datasetRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	modelAliasRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	schemeRe     = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]+):`)
	stepRefRe    = regexp.MustCompile(`^\$\{steps\.([^.}]*)\.outputs\.([^.}]*)\}$`)
	yamlLineRe   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

var (
	topKeys     = []string{"name", "params", "env", "steps"}
	stepKeys    = []string{"command", "inputs", "outputs", "code", "needs", "retries", "timeout", "cache", "env"}
	outputKeys  = []string{"path", "type"}
	retriesKeys = []string{"max", "backoff"}
	namespaces  = []string{"params", "inputs", "outputs", "steps"}
)

const durationHint = "use a duration such as 30s, 5m or 1h30m"

// site is a string that may hold templates; its references are checked once
// every step and output is known.
type site struct {
	step *Step // nil for the pipeline-level env, where only params exist
	node *yaml.Node
	path string
	text string
}

type needSite struct {
	step *Step
	node *yaml.Node
	path string
	name string
}

type stepInputSite struct {
	step  *Step
	node  *yaml.Node
	path  string
	index int
}

type parser struct {
	file       string
	errs       ErrorList
	pl         *Pipeline
	sites      []site
	needs      []needSite
	stepInputs []stepInputSite
	stepNodes  map[string]*yaml.Node
	outNodes   map[[2]string]*yaml.Node // {step, output} -> path node
	inNodes    map[[2]string]*yaml.Node // {step, input} -> value node
	deps       map[*Step]map[string]bool
	byName     map[string]*Step
}

// MaxSpecSize bounds the input Parse accepts: specs arrive over the API too,
// and no hand-written pipeline comes near it.
const MaxSpecSize = 1 << 20

// Parse parses and validates a spec. filename only labels errors. On failure
// the error is an ErrorList holding every problem found.
func Parse(filename string, data []byte) (*Pipeline, error) {
	ps := &parser{
		file:      filename,
		pl:        &Pipeline{File: filename, Params: map[string]*Param{}, Env: map[string]string{}},
		stepNodes: map[string]*yaml.Node{},
		outNodes:  map[[2]string]*yaml.Node{},
		inNodes:   map[[2]string]*yaml.Node{},
		deps:      map[*Step]map[string]bool{},
		byName:    map[string]*Step{},
	}
	if len(data) > MaxSpecSize {
		ps.add(&yaml.Node{Line: 1, Column: 1}, "", "split the pipeline or move data out of the spec", "spec is %d bytes; the limit is %d", len(data), MaxSpecSize)
		return nil, ps.errs.err()
	}
	root := ps.decode(data)
	if root == nil {
		return nil, ps.errs.err()
	}
	if ps.rejectAliases(root) {
		return nil, ps.errs.err()
	}
	ps.top(root)
	ps.resolve()
	if err := ps.errs.err(); err != nil {
		return nil, err
	}
	return ps.pl, nil
}

func (ps *parser) add(n *yaml.Node, path, hint, format string, args ...any) {
	e := &Error{File: ps.file, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	ps.errs = append(ps.errs, e)
}

func (ps *parser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a spec parser that
		// sits behind an API must answer with an error instead.
		if r := recover(); r != nil {
			ps.add(nil, "", "", "cannot parse YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.add(&yaml.Node{Line: 1, Column: 1}, "", "start with `name:` and `steps:`", "empty spec")
		} else {
			ps.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			ps.yamlError(err)
		} else {
			ps.add(&extra, "", "put one pipeline per file", "more than one YAML document")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		ps.add(&yaml.Node{Line: 1, Column: 1}, "", "start with `name:` and `steps:`", "empty spec")
		return nil
	}
	return doc.Content[0]
}

func (ps *parser) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	n := &yaml.Node{Line: 1, Column: 1}
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		n.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	ps.add(n, "", "", "invalid YAML: %s", msg)
}

func (ps *parser) rejectAliases(n *yaml.Node) bool {
	found := false
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			ps.add(n, "", "repeat the value; anchors and aliases hide what a step depends on", "YAML aliases are not supported")
			found = true
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return found
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		default:
			return "a string"
		}
	}
	return "an unsupported value"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type field struct {
	key  string
	keyN *yaml.Node
	val  *yaml.Node
	path string
}

// fields returns a mapping's entries, reporting duplicates and, when allowed
// is non-nil, keys outside it.
func (ps *parser) fields(n *yaml.Node, path string, allowed []string) []field {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// `env:` with nothing under it is an empty map, as in YAML itself.
		return nil
	}
	if n.Kind != yaml.MappingNode {
		ps.add(n, path, "", "expected a mapping, got %s", describe(n))
		return nil
	}
	seen := map[string]*yaml.Node{}
	var out []field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			ps.add(k, path, "", "keys must be strings, got %s", describe(k))
			continue
		}
		key := k.Value
		if prev := seen[key]; prev != nil {
			ps.add(k, join(path, key), "", "duplicate key %q (first at line %d)", key, prev.Line)
			continue
		}
		seen[key] = k
		if allowed != nil && !contains(allowed, key) {
			hint := didYouMean(key, allowed)
			if hint == "" {
				hint = "allowed: " + strings.Join(allowed, ", ")
			}
			ps.add(k, join(path, key), hint, "unknown key %q", key)
			continue
		}
		out = append(out, field{key, k, v, join(path, key)})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str accepts any non-null scalar: `--lr, 0.1` in an argv list or
// `OMP_NUM_THREADS: 2` in env mean their text.
func (ps *parser) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		ps.add(n, path, "", "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (ps *parser) name(n *yaml.Node, path, what string) (string, bool) {
	s, ok := ps.str(n, path)
	if !ok {
		return "", false
	}
	if !identRe.MatchString(s) {
		ps.add(n, path, "use letters, digits, '_' and '-'", "invalid %s name %q", what, s)
		return "", false
	}
	return s, true
}

func (ps *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		ps.add(n, path, durationHint, "expected a duration, got %s", describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := durationHint
		if n.ShortTag() == "!!int" {
			hint = "add a unit, e.g. " + n.Value + "s"
		}
		ps.add(n, path, hint, "invalid duration %q", n.Value)
		return 0, false
	}
	if d < 0 {
		ps.add(n, path, "", "duration must not be negative, got %s", n.Value)
		return 0, false
	}
	return d, true
}

// relPath keeps every path a step touches inside the project, so a spec can
// never read or write outside it.
func (ps *parser) relPath(n *yaml.Node, fieldPath, s string, allowDot bool) (string, bool) {
	if strings.TrimSpace(s) == "" {
		ps.add(n, fieldPath, "", "empty path")
		return "", false
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`) || (len(s) > 1 && s[1] == ':') {
		ps.add(n, fieldPath, "paths are relative to the spec's directory; use data:NAME@vN for data outside the project", "absolute path %q", s)
		return "", false
	}
	if strings.ContainsRune(s, '\\') {
		ps.add(n, fieldPath, "use '/' as the separator", "path %q contains a backslash", s)
		return "", false
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		ps.add(n, fieldPath, "paths must stay inside the project", "path %q escapes the project", s)
		return "", false
	}
	if c == "." && !allowDot {
		ps.add(n, fieldPath, "name a file or directory under the project", "path %q is the project itself", s)
		return "", false
	}
	return c, true
}

func (ps *parser) top(root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		ps.add(root, "", "start with `name:` and `steps:`", "expected a mapping, got %s", describe(root))
		return
	}
	var nameSeen, stepsSeen bool
	for _, f := range ps.fields(root, "", topKeys) {
		switch f.key {
		case "name":
			nameSeen = true
			if s, ok := ps.name(f.val, f.path, "pipeline"); ok {
				ps.pl.Name = s
			}
		case "params":
			ps.params(f.val, f.path)
		case "env":
			ps.pl.Env = ps.env(f.val, f.path, nil)
		case "steps":
			stepsSeen = true
			ps.steps(f.val, f.path)
		}
	}
	if !nameSeen {
		ps.add(root, "name", "add `name: <pipeline name>` at the top", "missing pipeline name")
	}
	if !stepsSeen {
		ps.add(root, "steps", "add `steps:` with at least one step", "missing steps")
	}
}

func (ps *parser) params(n *yaml.Node, path string) {
	for _, f := range ps.fields(n, path, nil) {
		if !identRe.MatchString(f.key) {
			ps.add(f.keyN, f.path, "use letters, digits, '_' and '-'", "invalid param name %q", f.key)
			continue
		}
		v := f.val
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			ps.add(v, f.path, "a param's default is a number, string or boolean; quote it to make it a string", "expected a default value, got %s", describe(v))
			continue
		}
		p := &Param{Name: f.key, Text: v.Value}
		var err error
		switch v.ShortTag() {
		case "!!int":
			var x int64
			p.Type = ParamInt
			err = v.Decode(&x)
			// YAML allows 0x10 and 0o17; the programs we hand the text to
			// may not, so ints are substituted in decimal.
			p.Value, p.Text = x, strconv.FormatInt(x, 10)
		case "!!float":
			var x float64
			p.Type = ParamFloat
			err = v.Decode(&x)
			if err == nil && (math.IsNaN(x) || math.IsInf(x, 0)) {
				// Programs parse .inf and .nan in too many different ways
				// for a default to mean the same thing everywhere.
				err = errors.New("not finite")
			}
			p.Value = x
			if _, perr := strconv.ParseFloat(v.Value, 64); perr != nil {
				p.Text = strconv.FormatFloat(x, 'g', -1, 64)
			}
		case "!!bool":
			var x bool
			p.Type = ParamBool
			err = v.Decode(&x)
			p.Value = x
		default:
			p.Type, p.Value = ParamString, v.Value
		}
		if err != nil {
			ps.add(v, f.path, "quote it to make it a string", "invalid default %q", v.Value)
			continue
		}
		ps.pl.Params[f.key] = p
	}
}

func (ps *parser) env(n *yaml.Node, path string, st *Step) map[string]string {
	out := map[string]string{}
	for _, f := range ps.fields(n, path, nil) {
		if !envKeyRe.MatchString(f.key) {
			ps.add(f.keyN, f.path, "use letters, digits and '_', not starting with a digit", "invalid environment variable name %q", f.key)
			continue
		}
		if s, ok := ps.str(f.val, f.path); ok {
			out[f.key] = s
			ps.sites = append(ps.sites, site{st, f.val, f.path, s})
		}
	}
	return out
}

func (ps *parser) steps(n *yaml.Node, path string) {
	fs := ps.fields(n, path, nil)
	if (n.Kind == yaml.MappingNode && len(n.Content) == 0) || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		ps.add(n, path, "add at least one step with a command", "no steps")
	}
	for _, f := range fs {
		if !identRe.MatchString(f.key) {
			ps.add(f.keyN, f.path, "use letters, digits, '_' and '-'", "invalid step name %q", f.key)
			continue
		}
		st := &Step{Name: f.key, Line: f.keyN.Line, Cache: true, Env: map[string]string{}}
		ps.stepNodes[st.Name] = f.keyN
		ps.byName[st.Name] = st
		ps.deps[st] = map[string]bool{}
		ps.pl.Steps = append(ps.pl.Steps, st)
		ps.step(st, f.keyN, f.val, f.path)
	}
}

func (ps *parser) step(st *Step, keyN, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		ps.add(keyN, path, "add `command:`", "step has no command")
		return
	}
	hasCommand := false
	for _, f := range ps.fields(n, path, stepKeys) {
		switch f.key {
		case "command":
			hasCommand = true
			ps.command(st, f.val, f.path)
		case "inputs":
			ps.inputs(st, f.val, f.path)
		case "outputs":
			ps.outputs(st, f.val, f.path)
		case "code":
			ps.code(st, f.val, f.path)
		case "needs":
			ps.needsField(st, f.val, f.path)
		case "retries":
			ps.retries(st, f.val, f.path)
		case "timeout":
			if d, ok := ps.duration(f.val, f.path); ok {
				if d == 0 {
					ps.add(f.val, f.path, "leave timeout out for no limit", "timeout must be positive")
				}
				st.Timeout = d
			}
		case "cache":
			if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!bool" {
				ps.add(f.val, f.path, "use true or false", "expected a boolean, got %s", describe(f.val))
				continue
			}
			st.Cache = f.val.Value == "true"
		case "env":
			st.Env = ps.env(f.val, f.path, st)
		}
	}
	if !hasCommand && n.Kind == yaml.MappingNode && !misspelt(n, "command") {
		ps.add(keyN, path, "add `command:` as a string (run by sh -c) or a list (argv)", "step has no command")
	}
}

func (ps *parser) command(st *Step, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := ps.str(n, path)
		if !ok {
			return
		}
		if strings.TrimSpace(s) == "" {
			ps.add(n, path, "", "empty command")
			return
		}
		st.Shell = s
		ps.sites = append(ps.sites, site{st, n, path, s})
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			ps.add(n, path, "", "empty command")
			return
		}
		st.Argv = []string{}
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			s, ok := ps.str(c, p)
			if !ok {
				continue
			}
			if i == 0 && strings.TrimSpace(s) == "" {
				ps.add(c, p, "", "empty program name")
			}
			st.Argv = append(st.Argv, s)
			ps.sites = append(ps.sites, site{st, c, p, s})
		}
	default:
		ps.add(n, path, "use a string (run by sh -c) or a list (argv)", "expected a command, got %s", describe(n))
	}
}

func (ps *parser) inputs(st *Step, n *yaml.Node, path string) {
	for _, f := range ps.fields(n, path, nil) {
		if !identRe.MatchString(f.key) {
			ps.add(f.keyN, f.path, "use letters, digits, '_' and '-'", "invalid input name %q", f.key)
			continue
		}
		s, ok := ps.str(f.val, f.path)
		if !ok {
			continue
		}
		in, ok := ps.inputRef(f.val, f.path, s)
		if !ok {
			continue
		}
		in.Name = f.key
		st.Inputs = append(st.Inputs, in)
		ps.inNodes[[2]string{st.Name, in.Name}] = f.val
		if in.Kind == InputStep {
			ps.stepInputs = append(ps.stepInputs, stepInputSite{st, f.val, f.path, len(st.Inputs) - 1})
		}
	}
}

func (ps *parser) inputRef(n *yaml.Node, fpath, s string) (Input, bool) {
	in := Input{Ref: s}
	switch {
	case strings.HasPrefix(s, "data:"):
		in.Kind = InputData
		rest := strings.TrimPrefix(s, "data:")
		name, ver, ok := strings.Cut(rest, "@")
		if !ok {
			ps.add(n, fpath, "write data:"+rest+"@latest or data:"+rest+"@v1", "data reference %q has no version", s)
			return in, false
		}
		if !datasetRe.MatchString(name) {
			ps.add(n, fpath, "dataset names use letters, digits, '.', '_' and '-'", "invalid dataset name in %q", s)
			return in, false
		}
		in.Dataset = name
		if ver == "latest" {
			return in, true
		}
		v, err := strconv.Atoi(strings.TrimPrefix(ver, "v"))
		switch {
		case !strings.HasPrefix(ver, "v") || err != nil || strings.HasPrefix(ver, "v+") || strings.HasPrefix(ver, "v-"):
			ps.add(n, fpath, "write @latest or @vN, e.g. @v3", "invalid data version %q in %q", ver, s)
			return in, false
		case v < 1:
			ps.add(n, fpath, "use @v1 or later, or @latest", "unknown reference %q: versions start at v1", s)
			return in, false
		}
		in.Version = v
		return in, true
	case strings.HasPrefix(s, "models:/"):
		in.Kind = InputModel
		rest := strings.TrimPrefix(s, "models:/")
		if name, alias, ok := strings.Cut(rest, "@"); ok {
			if name == "" || strings.Contains(name, "/") || !modelAliasRe.MatchString(alias) {
				ps.add(n, fpath, "write models:/NAME@alias, e.g. models:/credit@production", "invalid model reference %q", s)
				return in, false
			}
			in.Model, in.Alias = name, alias
			return in, true
		}
		name, ver, ok := strings.Cut(rest, "/")
		v, err := strconv.Atoi(ver)
		if !ok || name == "" || err != nil || strings.ContainsAny(ver, "+-") {
			ps.add(n, fpath, "write models:/NAME/N or models:/NAME@alias", "invalid model reference %q", s)
			return in, false
		}
		if v < 1 {
			ps.add(n, fpath, "model versions start at 1", "unknown reference %q: versions start at 1", s)
			return in, false
		}
		in.Model, in.Version = name, v
		return in, true
	case stepRefRe.MatchString(s):
		m := stepRefRe.FindStringSubmatch(s)
		in.Kind, in.Step, in.Output = InputStep, m[1], m[2]
		return in, true
	case strings.Contains(s, "${"):
		ps.add(n, fpath, "an input is a path, data:NAME@vN, models:/NAME@alias or exactly ${steps.X.outputs.Y}", "templates are not allowed in input %q", s)
		return in, false
	}
	if m := schemeRe.FindStringSubmatch(s); m != nil {
		hint := "use data:NAME@vN for data outside the project"
		if sug := suggest(m[1], []string{"data", "models"}); sug == "models" {
			hint = "did you mean models:/...?"
		} else if sug == "data" {
			hint = "did you mean data:...?"
		}
		ps.add(n, fpath, hint, "unsupported input scheme %q in %q", m[1]+":", s)
		return in, false
	}
	p, ok := ps.relPath(n, fpath, s, true)
	in.Kind, in.Path = InputPath, p
	return in, ok
}

func (ps *parser) outputs(st *Step, n *yaml.Node, fpath string) {
	for _, f := range ps.fields(n, fpath, nil) {
		if !identRe.MatchString(f.key) {
			ps.add(f.keyN, f.path, "use letters, digits, '_' and '-'", "invalid output name %q", f.key)
			continue
		}
		out := Output{Name: f.key, Type: OutputFile}
		pathN := f.val
		if f.val.Kind == yaml.MappingNode {
			pathN = nil
			for _, g := range ps.fields(f.val, f.path, outputKeys) {
				switch g.key {
				case "path":
					pathN = g.val
				case "type":
					s, ok := ps.str(g.val, g.path)
					if !ok {
						continue
					}
					switch OutputType(s) {
					case OutputFile, OutputDir, OutputMetrics:
						out.Type = OutputType(s)
					default:
						hint := didYouMean(s, []string{"file", "dir", "metrics"})
						if hint == "" {
							hint = "use file, dir or metrics"
						}
						ps.add(g.val, g.path, hint, "unknown output type %q", s)
					}
				}
			}
			if pathN == nil {
				ps.add(f.val, f.path, "add `path:`", "output has no path")
				continue
			}
		}
		s, ok := ps.str(pathN, f.path)
		if !ok {
			continue
		}
		if strings.Contains(s, "${") {
			ps.add(pathN, f.path, "output paths are fixed so a step's results can be cached and found", "templates are not allowed in output paths")
			continue
		}
		p, ok := ps.relPath(pathN, f.path, s, false)
		if !ok {
			continue
		}
		out.Path = p
		st.Outputs = append(st.Outputs, out)
		ps.outNodes[[2]string{st.Name, out.Name}] = pathN
	}
}

func (ps *parser) code(st *Step, n *yaml.Node, fpath string) {
	if n.Kind == yaml.ScalarNode && n.Value == "git" {
		st.CodeGit = true
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		ps.add(n, fpath, "write code: [file.py, lib/] or code: git", "expected a list of paths, got %s", describe(n))
		return
	}
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", fpath, i)
		if s, ok := ps.str(c, p); ok {
			if clean, ok := ps.relPath(c, p, s, true); ok {
				st.Code = append(st.Code, clean)
			}
		}
	}
}

func (ps *parser) needsField(st *Step, n *yaml.Node, fpath string) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		if n.ShortTag() != "!!null" {
			items = []*yaml.Node{n}
		}
	default:
		ps.add(n, fpath, "write needs: [step, ...]", "expected a list of step names, got %s", describe(n))
	}
	for i, c := range items {
		p := fmt.Sprintf("%s[%d]", fpath, i)
		if s, ok := ps.str(c, p); ok {
			ps.needs = append(ps.needs, needSite{st, c, p, s})
		}
	}
}

func (ps *parser) retries(st *Step, n *yaml.Node, fpath string) {
	maxN := n
	if n.Kind == yaml.MappingNode {
		maxN = nil
		for _, f := range ps.fields(n, fpath, retriesKeys) {
			switch f.key {
			case "max":
				maxN = f.val
			case "backoff":
				if d, ok := ps.duration(f.val, f.path); ok {
					st.Retries.Backoff = d
				}
			}
		}
		if maxN == nil {
			ps.add(n, fpath, "add `max:`", "retries has no max")
			return
		}
		fpath += ".max"
	}
	if maxN.Kind != yaml.ScalarNode || maxN.ShortTag() != "!!int" {
		ps.add(maxN, fpath, "write retries: 2 or retries: {max: 2, backoff: 5s}", "expected an integer, got %s", describe(maxN))
		return
	}
	var v int
	if err := maxN.Decode(&v); err != nil || v < 0 {
		ps.add(maxN, fpath, "use 0 for no retries", "retries must be a non-negative integer, got %s", maxN.Value)
		return
	}
	st.Retries.Max = v
}

// misspelt reports whether a mapping has an unknown key that looks like want,
// so "comand:" yields one error (the typo) rather than two.
func misspelt(n *yaml.Node, want string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if k != want && suggest(k, stepKeys) == want {
			return true
		}
	}
	return false
}
