// Package spec parses and validates Slipway pipeline specs (pipeline.yaml).
//
// Validation is complete before anything runs: Parse reports every problem it
// finds, each with file, line, column and a hint, so a spec that parses is one
// the engine can plan without further checks.
package spec

import (
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pipeline is a validated spec.
type Pipeline struct {
	Name   string
	File   string
	Params map[string]*Param
	Env    map[string]string
	Steps  []*Step // in file order, which keeps plans and UIs stable
}

// ParamType is the type of a param, fixed by the literal of its default.
type ParamType string

const (
	ParamString ParamType = "string"
	ParamInt    ParamType = "int"
	ParamFloat  ParamType = "float"
	ParamBool   ParamType = "bool"
)

// Param is a pipeline parameter. Text is what templates substitute: the
// literal as written (default or override), so "1e-3" is not rewritten to
// "0.001" behind the user's back; YAML-only spellings such as 0x10 become
// plain decimal.
type Param struct {
	Name  string
	Type  ParamType
	Value any // string, int64, float64 or bool
	Text  string
}

// Step is one node of the pipeline DAG.
type Step struct {
	Name    string
	Line    int
	Argv    []string // command given as a list: run directly
	Shell   string   // command given as a string: run through sh -c
	Inputs  []Input
	Outputs []Output
	Code    []string // paths that belong to the step's identity (cache key)
	CodeGit bool     // `code: git`: the whole git tree belongs to the identity
	Needs   []string // explicit and implied by references; sorted, unique
	Retries Retries
	Timeout time.Duration // 0 means no timeout
	Cache   bool
	Env     map[string]string // unrendered; see Pipeline.Render
}

// Retries says how often a failed step is retried. The delay before retry n
// is Backoff * 2^(n-1).
type Retries struct {
	Max     int
	Backoff time.Duration
}

// InputKind says where an input comes from.
type InputKind string

const (
	InputPath  InputKind = "path"  // a file or directory in the project
	InputData  InputKind = "data"  // data:NAME@vN or data:NAME@latest
	InputModel InputKind = "model" // models:/NAME/N or models:/NAME@alias
	InputStep  InputKind = "step"  // ${steps.X.outputs.Y}
)

// Input is a named step input. Ref is the text as written; the other fields
// are the parsed form for the input's kind.
type Input struct {
	Name    string
	Kind    InputKind
	Ref     string
	Path    string // InputPath
	Dataset string // InputData
	Model   string // InputModel
	Version int    // InputData/InputModel; 0 means latest (data) or use Alias (model)
	Alias   string // InputModel
	Step    string // InputStep
	Output  string // InputStep
}

// OutputType says what a step promises to produce at an output path.
type OutputType string

const (
	OutputFile    OutputType = "file"
	OutputDir     OutputType = "dir"
	OutputMetrics OutputType = "metrics" // a JSON file of name -> number, logged as run metrics
)

// Output is a named step output.
type Output struct {
	Name string
	Path string // relative to the project, cleaned, never escaping it
	Type OutputType
}

// ParseFile reads and parses a spec file.
func ParseFile(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Step returns the named step or nil.
func (p *Pipeline) Step(name string) *Step {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ParamNames returns the param names sorted.
func (p *Pipeline) ParamNames() []string {
	names := make([]string, 0, len(p.Params))
	for n := range p.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Input returns the named input or nil.
func (s *Step) Input(name string) *Input {
	for i := range s.Inputs {
		if s.Inputs[i].Name == name {
			return &s.Inputs[i]
		}
	}
	return nil
}

// Output returns the named output or nil.
func (s *Step) Output(name string) *Output {
	for i := range s.Outputs {
		if s.Outputs[i].Name == name {
			return &s.Outputs[i]
		}
	}
	return nil
}

// ApplyOverrides sets params from `-p key=value` pairs. Each value must parse
// as the type of the param's default; on any error nothing is applied, so a
// run never starts with half the overrides.
func (p *Pipeline) ApplyOverrides(overrides map[string]string) error {
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs ErrorList
	type set struct {
		param *Param
		value any
		text  string
	}
	var sets []set
	for _, k := range keys {
		text := overrides[k]
		param := p.Params[k]
		path := "-p " + k
		if param == nil {
			hint := didYouMean(k, p.ParamNames())
			if hint == "" {
				hint = "declare it under params: with a default"
			}
			errs = append(errs, &Error{Path: path, Msg: "unknown param " + strconv.Quote(k), Hint: hint})
			continue
		}
		v, ok := parseParamText(param.Type, text)
		if !ok {
			errs = append(errs, &Error{Path: path,
				Msg:  "param " + strconv.Quote(k) + " expects " + string(param.Type) + ", got " + strconv.Quote(text),
				Hint: "the default " + param.Text + " fixes the type"})
			continue
		}
		sets = append(sets, set{param, v, text})
	}
	if err := errs.err(); err != nil {
		return err
	}
	for _, s := range sets {
		s.param.Value, s.param.Text = s.value, s.text
	}
	return nil
}

func parseParamText(t ParamType, s string) (any, bool) {
	switch t {
	case ParamInt:
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	case ParamFloat:
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
	case ParamBool:
		switch s {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		return nil, false
	default:
		return s, true
	}
}

// ParseOverrides turns CLI `-p key=value` arguments into a map for
// ApplyOverrides. Only the first '=' splits, so values may contain '='.
func ParseOverrides(args []string) (map[string]string, error) {
	out := map[string]string{}
	var errs ErrorList
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if _, dup := out[k]; dup {
			errs = append(errs, &Error{Path: "-p " + a, Msg: "param " + strconv.Quote(k) + " given twice"})
			continue
		}
		if !ok || k == "" {
			errs = append(errs, &Error{Path: "-p " + a, Msg: "expected key=value", Hint: "e.g. -p lr=0.05"})
			continue
		}
		out[k] = v
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}
