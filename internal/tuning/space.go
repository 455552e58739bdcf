// Package tuning searches over training parameters: every combination of
// a grid, random samples, or successive halving, which trains many
// configurations briefly and gives the better ones more boosting rounds.
// Trials run in parallel through a caller's trial function, so the same
// search drives the built-in GBDT trainer (GBDTTrial) or anything else
// that turns parameters into a validation score; hooks let the CLI record
// each trial as an MLflow child run.
//
// A search is deterministic: the same space, strategy and seed give the
// same trials, the same promotions and the same best trial, whatever the
// parallelism, because trials are numbered before they run and ranked only
// once their whole rung has finished.
package tuning

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/errs"
)

// Distribution is how a parameter's values are drawn.
type Distribution string

const (
	// Choice takes one of a list of values, as written; a list of one is
	// a fixed value.
	Choice Distribution = "choice"
	// Uniform draws a number uniformly from [Low, High].
	Uniform Distribution = "uniform"
	// LogUniform draws a number whose logarithm is uniform: as likely
	// between 0.01 and 0.1 as between 0.1 and 1. Low must be positive.
	LogUniform Distribution = "log_uniform"
	// IntUniform draws a whole number from Low to High, both included.
	IntUniform Distribution = "int_uniform"
)

var distributions = []Distribution{Choice, Uniform, LogUniform, IntUniform}

// Param is one dimension of a search space.
type Param struct {
	Name string
	Dist Distribution
	// Values are a Choice's values, as the trial function receives them.
	Values []string
	// Low and High bound the numeric distributions.
	Low, High float64
}

// Space is the parameters a search varies, in the order they were given:
// the order a grid walks them in (the last varies fastest), the order
// samples are drawn in, and the order of a summary's columns.
type Space struct {
	Params []Param
}

// Names are the parameters' names in order.
func (s Space) Names() []string {
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return names
}

// maxTrials bounds a grid's size and a sample's count: more trials than
// this is a mistake in the spec, not a search anyone will wait for.
const maxTrials = 100_000

// paramName is what MLflow accepts as a param key, minus the space that
// would make CLI specs ambiguous.
var paramName = regexp.MustCompile(`^[A-Za-z0-9_.\-/]+$`)

func spaceErr(format string, args ...any) error {
	return errs.Invalid("search space: "+format, args...)
}

// Validate checks every parameter; the error names the first that breaks
// a rule, and the rule.
func (s Space) Validate() error {
	if len(s.Params) == 0 {
		return spaceErr("no parameters to search over")
	}
	seen := make(map[string]bool, len(s.Params))
	for _, p := range s.Params {
		if err := p.validate(""); err != nil {
			return err
		}
		if seen[p.Name] {
			return spaceErr("%s: given twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// validate checks p; where says where p was written, for the error.
func (p Param) validate(where string) error {
	if err := p.validateName(where); err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return spaceErr("%s%s: %s", p.Name, where, fmt.Sprintf(format, args...))
	}
	switch p.Dist {
	case Choice:
		if len(p.Values) == 0 {
			return fail("choice: the list of values is empty")
		}
		seen := make(map[string]bool, len(p.Values))
		for _, v := range p.Values {
			if seen[v] {
				return fail("choice: %q appears twice", v)
			}
			seen[v] = true
		}
		return nil
	case Uniform, LogUniform, IntUniform:
	default:
		return fail("unknown distribution %q (known: %s)", p.Dist, distributionNames())
	}
	for _, b := range []struct {
		name string
		v    float64
	}{{"low", p.Low}, {"high", p.High}} {
		if math.IsNaN(b.v) || math.IsInf(b.v, 0) {
			return fail("%s: %s %v: must be a finite number", p.Dist, b.name, b.v)
		}
		if p.Dist == IntUniform && b.v != math.Trunc(b.v) {
			return fail("%s: %s %v: must be a whole number", p.Dist, b.name, b.v)
		}
		if p.Dist == IntUniform && math.Abs(b.v) > 1<<53 {
			return fail("%s: %s %v: must be at most 2^53 in size", p.Dist, b.name, b.v)
		}
	}
	if !(p.Low < p.High) {
		return fail("%s: low %v must be less than high %v (use a list of one value to fix a parameter)", p.Dist, p.Low, p.High)
	}
	if p.Dist == LogUniform && !(p.Low > 0) {
		return fail("%s: low %v: must be greater than 0 to take its logarithm", p.Dist, p.Low)
	}
	return nil
}

func distributionNames() string {
	names := make([]string, len(distributions))
	for i, d := range distributions {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

// String is p in the CLI form ParseFlags reads.
func (p Param) String() string {
	switch p.Dist {
	case Choice:
		return p.Name + "=" + strings.Join(p.Values, ",")
	case IntUniform:
		return fmt.Sprintf("%s=%s(%d,%d)", p.Name, p.Dist, int64(p.Low), int64(p.High))
	}
	return fmt.Sprintf("%s=%s(%s,%s)", p.Name, p.Dist, formatFloat(p.Low), formatFloat(p.High))
}

// Merge returns s with o's parameters replacing those of the same name and
// the rest of o's appended, so flags can override a spec file.
func (s Space) Merge(o Space) Space {
	out := Space{Params: slices.Clone(s.Params)}
	for _, p := range o.Params {
		if i := slices.IndexFunc(out.Params, func(q Param) bool { return q.Name == p.Name }); i >= 0 {
			out.Params[i] = p
		} else {
			out.Params = append(out.Params, p)
		}
	}
	return out
}

// ParseSpace reads a search space from YAML or JSON: a mapping from each
// parameter's name to a list of choices, a single fixed value, or a
// one-key mapping naming a distribution and its [low, high]:
//
//	max_depth: [3, 4, 6]
//	eta: {log_uniform: [0.01, 0.3]}
//	subsample: {uniform: [0.5, 1.0]}
//	min_child_weight: {int_uniform: [1, 10]}
//	objective: binary:logistic
//
// Anything else is an error naming the parameter, its line and the rule.
func ParseSpace(data []byte) (Space, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var s Space
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Space{}, spaceErr("no parameters to search over")
		}
		return Space{}, yamlErr(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Space{}, spaceErr("more than one YAML document; give one mapping of parameters")
	}
	// A null document never reaches UnmarshalYAML.
	return s, s.Validate()
}

// yamlErr codes YAML syntax errors as the caller's; errors from
// UnmarshalYAML are coded already.
func yamlErr(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return spaceErr("%s", yamlMessage(err))
}

// yamlMessage puts a YAML error on one line, as the CLI prints errors.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// UnmarshalYAML reads the form ParseSpace documents, so a space can sit
// inside a larger strict YAML document.
func (s *Space) UnmarshalYAML(n *yaml.Node) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return spaceErr("no parameters to search over")
		}
		return spaceErr("line %d: must be a mapping from parameter names to values or distributions", n.Line)
	}
	var out Space
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := deref(n.Content[i]), deref(n.Content[i+1])
		if key.Kind != yaml.ScalarNode {
			return spaceErr("line %d: a parameter name must be a plain string", key.Line)
		}
		p, err := paramFromYAML(key.Value, val)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(out.Params, func(q Param) bool { return q.Name == p.Name }) {
			return spaceErr("%s (line %d): given twice", p.Name, key.Line)
		}
		out.Params = append(out.Params, p)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) == 1 {
			n = n.Content[0]
		} else {
			break
		}
	}
	return n
}

func paramFromYAML(name string, n *yaml.Node) (Param, error) {
	p := Param{Name: name}
	where := fmt.Sprintf(" (line %d)", n.Line)
	fail := func(format string, args ...any) (Param, error) {
		return Param{}, spaceErr("%s%s: %s", name, where, fmt.Sprintf(format, args...))
	}
	if err := p.validateName(where); err != nil {
		return Param{}, err
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := scalarValue(n)
		if err != nil {
			return fail("%v", err)
		}
		p.Dist, p.Values = Choice, []string{v}
		return p, nil
	case yaml.SequenceNode:
		p.Dist = Choice
		vals, err := scalarValues(n)
		if err != nil {
			return fail("%v", err)
		}
		p.Values = vals
		return p, p.validate(where)
	case yaml.MappingNode:
	default:
		return fail("must be a value, a list of choices or a distribution")
	}
	if len(n.Content) != 2 {
		return fail("a distribution is a mapping with one key, one of %s", distributionNames())
	}
	key, args := deref(n.Content[0]), deref(n.Content[1])
	p.Dist = Distribution(key.Value)
	if !slices.Contains(distributions, p.Dist) {
		return fail("unknown distribution %q (known: %s)", key.Value, distributionNames())
	}
	if args.Kind != yaml.SequenceNode {
		return fail("%s: needs a list, as in %s: [low, high]", p.Dist, p.Dist)
	}
	vals, err := scalarValues(args)
	if err != nil {
		return fail("%s: %v", p.Dist, err)
	}
	if p.Dist == Choice {
		p.Values = vals
		return p, p.validate(where)
	}
	if len(vals) != 2 {
		return fail("%s: needs [low, high]; got %d values", p.Dist, len(vals))
	}
	if p.Low, p.High, err = parseBounds(vals[0], vals[1]); err != nil {
		return fail("%s: %v", p.Dist, err)
	}
	return p, p.validate(where)
}

func (p Param) validateName(where string) error {
	if len(p.Name) > 250 || !paramName.MatchString(p.Name) {
		return spaceErr("parameter name %q%s: must be 1 to 250 letters, digits, '_', '-', '.' or '/'", p.Name, where)
	}
	return nil
}

func scalarValue(n *yaml.Node) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("values must be plain numbers or strings, not lists or mappings")
	}
	if n.Tag == "!!null" {
		return "", errors.New("a value is missing (null)")
	}
	return n.Value, nil
}

func scalarValues(n *yaml.Node) ([]string, error) {
	vals := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		v, err := scalarValue(c)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

func parseBounds(lo, hi string) (float64, float64, error) {
	l, err := strconv.ParseFloat(strings.TrimSpace(lo), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("low %q: must be a finite number", lo)
	}
	h, err := strconv.ParseFloat(strings.TrimSpace(hi), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("high %q: must be a finite number", hi)
	}
	return l, h, nil
}

// flagDist reads "name(low,high)" in the CLI form; the names without
// underscores save quoting nothing but are what people type.
var flagDist = regexp.MustCompile(`^([A-Za-z_]+)\((.*)\)$`)

var flagDistNames = map[string]Distribution{
	"choice": Choice, "uniform": Uniform, "log_uniform": LogUniform, "loguniform": LogUniform,
	"int_uniform": IntUniform, "intuniform": IntUniform, "randint": IntUniform,
}

// ParseFlag reads one parameter in the CLI form:
//
//	max_depth=3,4,6                 a choice
//	objective=binary:logistic       a fixed value
//	eta=loguniform(0.01,0.3)        also log_uniform(...)
//	subsample=uniform(0.5,1)
//	min_child_weight=intuniform(1,10)  also int_uniform(...), randint(...)
//	booster=choice(gbtree)          a choice written as a function
//
// Choice values cannot contain commas here; a spec file can hold any.
func ParseFlag(arg string) (Param, error) {
	name, value, ok := strings.Cut(arg, "=")
	name = strings.TrimSpace(name)
	where := fmt.Sprintf(" (in %q)", arg)
	if !ok {
		return Param{}, spaceErr("%q: must be name=values, as in max_depth=3,4,6 or eta=loguniform(0.01,0.3)", arg)
	}
	p := Param{Name: name}
	if err := p.validateName(where); err != nil {
		return Param{}, err
	}
	value = strings.TrimSpace(value)
	m := flagDist.FindStringSubmatch(value)
	if m == nil {
		p.Dist, p.Values = Choice, splitList(value)
		return p, p.validate(where)
	}
	dist, ok := flagDistNames[strings.ToLower(m[1])]
	if !ok {
		return Param{}, spaceErr("%s%s: unknown distribution %q (known: %s)", name, where, m[1], distributionNames())
	}
	p.Dist = dist
	args := splitList(m[2])
	if dist == Choice {
		p.Values = args
		return p, p.validate(where)
	}
	if len(args) != 2 {
		return Param{}, spaceErr("%s%s: %s: needs (low,high); got %d values", name, where, dist, len(args))
	}
	var err error
	if p.Low, p.High, err = parseBounds(args[0], args[1]); err != nil {
		return Param{}, spaceErr("%s%s: %s: %v", name, where, dist, err)
	}
	return p, p.validate(where)
}

// splitList splits on commas; an empty string is an empty list, so that
// "max_depth=" is refused as an empty choice rather than a choice of "".
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// ParseFlags reads a space from CLI arguments, one parameter each.
func ParseFlags(args []string) (Space, error) {
	var s Space
	for _, a := range args {
		p, err := ParseFlag(a)
		if err != nil {
			return Space{}, err
		}
		if slices.ContainsFunc(s.Params, func(q Param) bool { return q.Name == p.Name }) {
			return Space{}, spaceErr("%s: given twice", p.Name)
		}
		s.Params = append(s.Params, p)
	}
	return s, s.Validate()
}

// size is how many distinct values p can take: 0 for continuous ones.
func (p Param) size() int64 {
	switch p.Dist {
	case Choice:
		return int64(len(p.Values))
	case IntUniform:
		if p.High-p.Low+1 > maxTrials {
			return maxTrials + 1
		}
		return int64(p.High-p.Low) + 1
	}
	return 0
}

// gridSize is the number of distinct configurations, capped just above
// maxTrials, and 0 when a parameter is continuous.
func (s Space) gridSize() int64 {
	n := int64(1)
	for _, p := range s.Params {
		k := p.size()
		if k == 0 {
			return 0
		}
		n = min(n*k, maxTrials+1)
	}
	return n
}

// values lists a discrete parameter's values.
func (p Param) values() []string {
	if p.Dist == Choice {
		return p.Values
	}
	vals := make([]string, 0, p.size())
	for v := int64(p.Low); v <= int64(p.High); v++ {
		vals = append(vals, strconv.FormatInt(v, 10))
	}
	return vals
}

// grid lists every combination of the choices, the last parameter varying
// fastest.
func (s Space) grid(strategy string) ([]map[string]string, error) {
	for _, p := range s.Params {
		if p.Dist != Choice {
			return nil, errs.Invalid("%s: %s is %s; a grid needs a list of values for every parameter (or use random search)", strategy, p.Name, p.Dist)
		}
	}
	if s.gridSize() > maxTrials {
		return nil, errs.Invalid("%s: the grid has more than %d combinations; narrow the lists or use random search", strategy, maxTrials)
	}
	return s.combinations(), nil
}

// combinations enumerates a discrete space of at most maxTrials
// configurations.
func (s Space) combinations() []map[string]string {
	vals := make([][]string, len(s.Params))
	for j, p := range s.Params {
		vals[j] = p.values()
	}
	configs := make([]map[string]string, 0, s.gridSize())
	idx := make([]int, len(s.Params))
	for {
		c := make(map[string]string, len(s.Params))
		for j, p := range s.Params {
			c[p.Name] = vals[j][idx[j]]
		}
		configs = append(configs, c)
		j := len(idx) - 1
		for ; j >= 0; j-- {
			idx[j]++
			if idx[j] < len(vals[j]) {
				break
			}
			idx[j] = 0
		}
		if j < 0 {
			return configs
		}
	}
}

// sample draws n distinct configurations (fewer when the space has fewer)
// from one stream seeded by seed.
func (s Space) sample(n int, seed uint64) []map[string]string {
	rng := rand.New(rand.NewPCG(seed, 0x736c6970776179)) // "slipway"
	if g := s.gridSize(); g > 0 && g <= maxTrials && int64(n)*2 > g {
		// Drawing most of a discrete space one at a time would spend long
		// redrawing the few configurations left; shuffle all of it instead.
		configs := s.combinations()
		rng.Shuffle(len(configs), func(i, j int) { configs[i], configs[j] = configs[j], configs[i] })
		return configs[:min(n, len(configs))]
	}
	configs := make([]map[string]string, 0, n)
	seen := make(map[string]bool, n)
	var key strings.Builder
	for len(configs) < n {
		// Redraw duplicates, which teach a search nothing; a space this
		// large has few, so a handful of draws finds a new one.
		var c map[string]string
		for range 100 {
			c = make(map[string]string, len(s.Params))
			key.Reset()
			for _, p := range s.Params {
				v := p.draw(rng)
				c[p.Name] = v
				key.WriteString(v)
				key.WriteByte(0)
			}
			if !seen[key.String()] {
				break
			}
		}
		seen[key.String()] = true
		configs = append(configs, c)
	}
	return configs
}

// draw samples one value. Numbers are kept to 6 significant digits: they
// read well as MLflow params and in tables, and the rounded text is what
// the trial trains with, so nothing is lost between the two.
func (p Param) draw(rng *rand.Rand) string {
	switch p.Dist {
	case Choice:
		return p.Values[rng.IntN(len(p.Values))]
	case IntUniform:
		return strconv.FormatInt(int64(p.Low)+rng.Int64N(int64(p.High-p.Low)+1), 10)
	}
	u := rng.Float64()
	var v float64
	if p.Dist == LogUniform {
		lo, hi := math.Log(p.Low), math.Log(p.High)
		v = math.Exp(lo + u*(hi-lo))
	} else {
		v = p.Low + u*(p.High-p.Low)
	}
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return formatFloat(min(max(v, p.Low), p.High))
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
