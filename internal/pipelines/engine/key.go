package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
)

// keyVersion changes whenever what goes into Components changes, so old
// entries stop matching rather than matching wrongly.
const keyVersion = "slipway.pipelines.cache/v1"

// Components is everything a step's result depends on. The cache key is the
// SHA-256 of its canonical JSON (encoding/json sorts map keys); the same
// record, kept from the previous run, explains a miss.
type Components struct {
	Version  string `json:"version"`
	Executor string `json:"executor"`
	// Command is the command as written; Rendered is it with templates
	// substituted, data and model inputs standing as their references
	// (their content is in Inputs) so a resolver's temp path cannot change
	// the key.
	Command  string            `json:"command"`
	Rendered string            `json:"rendered"`
	Params   map[string]string `json:"params"`  // the params the step's command and env use
	Env      map[string]string `json:"env"`     // pipeline env and step env, rendered
	Inputs   map[string]string `json:"inputs"`  // name -> content digest
	Code     map[string]string `json:"code"`    // declared path (or "git") -> content digest
	Outputs  map[string]string `json:"outputs"` // name -> type:path
}

// Key returns the cache key: hex SHA-256 of the canonical JSON.
func (c *Components) Key() string {
	data, err := json.Marshal(c)
	if err != nil {
		panic(err) // only strings and maps of strings: cannot fail
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Decision records why a step ran or was restored.
type Decision struct {
	Key    string `json:"key"`
	Hit    bool   `json:"hit"`
	Reason string `json:"reason"`
	// Changed names what differs from the step's previous run, as
	// "input train", "param lr", "env OMP_NUM_THREADS", "code lib/",
	// "command", "outputs" or "executor".
	Changed []string `json:"changed,omitempty"`
}

// diff lists what changed between two runs of a step.
func diff(prev, cur *Components) []string {
	var out []string
	if prev.Version != cur.Version {
		return []string{"cache format"}
	}
	if prev.Executor != cur.Executor {
		out = append(out, "executor")
	}
	if prev.Command != cur.Command {
		out = append(out, "command")
	}
	out = append(out, diffMap("param", prev.Params, cur.Params)...)
	out = append(out, diffMap("env", prev.Env, cur.Env)...)
	out = append(out, diffMap("input", prev.Inputs, cur.Inputs)...)
	out = append(out, diffMap("code", prev.Code, cur.Code)...)
	if len(diffMap("", prev.Outputs, cur.Outputs)) > 0 {
		out = append(out, "outputs")
	}
	// Every part of Rendered comes from a part compared above; this only
	// guards against a difference none of them explains.
	if len(out) == 0 && prev.Rendered != cur.Rendered {
		out = append(out, "command")
	}
	return out
}

func diffMap(kind string, a, b map[string]string) []string {
	var names []string
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			names = append(names, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSpace(kind + " " + n)
	}
	return out
}

func changedReason(changed []string) string {
	parts := make([]string, len(changed))
	for i, c := range changed {
		parts[i] = c + " changed"
	}
	return strings.Join(parts, ", ")
}

// paramRefs adds the params a template string uses to into.
func paramRefs(s string, into map[string]bool) {
	templateRefs(s, func(body string) {
		if name, ok := strings.CutPrefix(body, "params."); ok {
			into[name] = true
		}
	})
}

// stepOutputRefs adds the other steps' outputs a template string uses to
// into, as "steps.STEP.outputs.OUTPUT".
func stepOutputRefs(s string, into map[string]bool) {
	templateRefs(s, func(body string) {
		if parts := strings.Split(body, "."); len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs" {
			into[body] = true
		}
	})
}

// templateRefs calls fn with the body of every ${...} reference in s. It
// follows the spec's template rules: "$$" is a literal dollar.
func templateRefs(s string, fn func(body string)) {
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if s[i+1] != '{' {
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return
		}
		fn(s[i+2 : i+2+end])
		i += 2 + end
	}
}
