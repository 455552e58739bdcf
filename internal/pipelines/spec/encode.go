package spec

import (
	"bytes"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Encode writes p back as a canonical spec: explicit needs (implied ones
// included), outputs in long form, defaults omitted. Parse(Encode(p)) yields
// the same pipeline, so a run can store exactly the spec it ran.
func (p *Pipeline) Encode() ([]byte, error) {
	root := mapping()
	add(root, "name", str(p.Name))
	if len(p.Params) > 0 {
		params := mapping()
		for _, name := range p.ParamNames() {
			prm := p.Params[name]
			tag := map[ParamType]string{ParamInt: "!!int", ParamFloat: "!!float", ParamBool: "!!bool"}[prm.Type]
			if tag == "" {
				tag = "!!str"
			}
			add(params, name, &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: prm.Text})
		}
		add(root, "params", params)
	}
	if len(p.Env) > 0 {
		add(root, "env", envNode(p.Env))
	}
	steps := mapping()
	for _, st := range p.Steps {
		s := mapping()
		if st.Argv != nil {
			argv := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, a := range st.Argv {
				argv.Content = append(argv.Content, str(a))
			}
			add(s, "command", argv)
		} else {
			add(s, "command", str(st.Shell))
		}
		if len(st.Needs) > 0 {
			add(s, "needs", strList(st.Needs))
		}
		if len(st.Inputs) > 0 {
			ins := mapping()
			for _, in := range st.Inputs {
				add(ins, in.Name, str(in.Ref))
			}
			add(s, "inputs", ins)
		}
		if len(st.Outputs) > 0 {
			outs := mapping()
			for _, o := range st.Outputs {
				on := mapping()
				on.Style = yaml.FlowStyle
				add(on, "path", str(o.Path))
				add(on, "type", str(string(o.Type)))
				add(outs, o.Name, on)
			}
			add(s, "outputs", outs)
		}
		if st.CodeGit {
			add(s, "code", str("git"))
		} else if len(st.Code) > 0 {
			add(s, "code", strList(st.Code))
		}
		if st.Retries.Max > 0 || st.Retries.Backoff > 0 {
			r := mapping()
			r.Style = yaml.FlowStyle
			add(r, "max", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(st.Retries.Max)})
			add(r, "backoff", str(st.Retries.Backoff.String()))
			add(s, "retries", r)
		}
		if st.Timeout > 0 {
			add(s, "timeout", str(st.Timeout.String()))
		}
		if !st.Cache {
			add(s, "cache", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
		}
		if len(st.Env) > 0 {
			add(s, "env", envNode(st.Env))
		}
		add(steps, st.Name, s)
	}
	add(root, "steps", steps)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func strList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, it := range items {
		n.Content = append(n.Content, str(it))
	}
	return n
}

func envNode(env map[string]string) *yaml.Node {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := mapping()
	for _, k := range keys {
		add(n, k, str(env[k]))
	}
	return n
}
