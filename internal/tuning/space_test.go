package tuning

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

func TestParseSpace(t *testing.T) {
	s, err := ParseSpace([]byte(`
max_depth: [3, 4, 6]
eta: {log_uniform: [0.01, 0.3]}
subsample: {uniform: [0.5, 1.0]}
min_child_weight: {int_uniform: [1, 10]}
objective: binary:logistic
booster: {choice: [gbtree]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{
		{Name: "max_depth", Dist: Choice, Values: []string{"3", "4", "6"}},
		{Name: "eta", Dist: LogUniform, Low: 0.01, High: 0.3},
		{Name: "subsample", Dist: Uniform, Low: 0.5, High: 1},
		{Name: "min_child_weight", Dist: IntUniform, Low: 1, High: 10},
		{Name: "objective", Dist: Choice, Values: []string{"binary:logistic"}},
		{Name: "booster", Dist: Choice, Values: []string{"gbtree"}},
	}
	if !slices.EqualFunc(s.Params, want, paramEqual) {
		t.Fatalf("got %+v\nwant %+v", s.Params, want)
	}
	// JSON is read the same way, in the order written.
	j, err := ParseSpace([]byte(`{"max_depth": [3, 4, 6], "eta": {"log_uniform": [0.01, 0.3]}, "subsample": {"uniform": [0.5, 1.0]},
		"min_child_weight": {"int_uniform": [1, 10]}, "objective": "binary:logistic", "booster": {"choice": ["gbtree"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(j.Params, want, paramEqual) {
		t.Fatalf("JSON: got %+v", j.Params)
	}
	// The CLI form of each parameter reads back as itself.
	var args []string
	for _, p := range want {
		args = append(args, p.String())
	}
	f, err := ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(f.Params, want, paramEqual) {
		t.Fatalf("flags %q: got %+v", args, f.Params)
	}
}

func paramEqual(a, b Param) bool {
	return a.Name == b.Name && a.Dist == b.Dist && slices.Equal(a.Values, b.Values) && a.Low == b.Low && a.High == b.High
}

func TestParseFlags(t *testing.T) {
	s, err := ParseFlags([]string{"max_depth=3,4,6", "eta=loguniform(0.01,0.3)", "subsample = uniform(0.5, 1)",
		"min_child_weight=intuniform(1,10)", "gamma=randint(0,3)", "lambda=log_uniform(1e-3,10)", "alpha=int_uniform(0,2)", "booster=choice(gbtree)", "objective=reg:squarederror"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{
		{Name: "max_depth", Dist: Choice, Values: []string{"3", "4", "6"}},
		{Name: "eta", Dist: LogUniform, Low: 0.01, High: 0.3},
		{Name: "subsample", Dist: Uniform, Low: 0.5, High: 1},
		{Name: "min_child_weight", Dist: IntUniform, Low: 1, High: 10},
		{Name: "gamma", Dist: IntUniform, Low: 0, High: 3},
		{Name: "lambda", Dist: LogUniform, Low: 1e-3, High: 10},
		{Name: "alpha", Dist: IntUniform, Low: 0, High: 2},
		{Name: "booster", Dist: Choice, Values: []string{"gbtree"}},
		{Name: "objective", Dist: Choice, Values: []string{"reg:squarederror"}},
	}
	if !slices.EqualFunc(s.Params, want, paramEqual) {
		t.Fatalf("got %+v", s.Params)
	}
	// Flags override a file's parameters of the same name.
	file, _ := ParseFlags([]string{"eta=0.1", "gamma=0,1"})
	m := file.Merge(Space{Params: []Param{{Name: "gamma", Dist: Choice, Values: []string{"5"}}, {Name: "lambda", Dist: Choice, Values: []string{"2"}}}})
	if got := strings.Join(paramStrings(m), " "); got != "eta=0.1 gamma=5 lambda=2" {
		t.Fatalf("merge: %s", got)
	}
}

func paramStrings(s Space) []string {
	var out []string
	for _, p := range s.Params {
		out = append(out, p.String())
	}
	return out
}

// Every error is InvalidArgument and names the parameter and the rule.
func TestSpaceErrors(t *testing.T) {
	yamlCases := []struct{ name, spec, want string }{
		{"unknown distribution", "eta: {gauss: [0, 1]}", `eta (line 1): unknown distribution "gauss" (known: choice, uniform, log_uniform, int_uniform)`},
		{"low equals high", "eta: {uniform: [0.3, 0.3]}", "eta (line 1): uniform: low 0.3 must be less than high 0.3"},
		{"low above high", "max_depth: {int_uniform: [8, 2]}", "max_depth (line 1): int_uniform: low 8 must be less than high 2"},
		{"empty choice", "max_depth: []", "max_depth (line 1): choice: the list of values is empty"},
		{"empty explicit choice", "max_depth: {choice: []}", "max_depth (line 1): choice: the list of values is empty"},
		{"duplicate choice", "max_depth: [3, 3]", `max_depth (line 1): choice: "3" appears twice`},
		{"log of zero", "eta: {log_uniform: [0, 0.3]}", "eta (line 1): log_uniform: low 0: must be greater than 0 to take its logarithm"},
		{"log of negative", "eta: {log_uniform: [-1, 0.3]}", "eta (line 1): log_uniform: low -1: must be greater than 0"},
		{"int not whole", "min_child_weight: {int_uniform: [1.5, 10]}", "min_child_weight (line 1): int_uniform: low 1.5: must be a whole number"},
		{"bound not a number", "eta: {uniform: [a, 1]}", `eta (line 1): uniform: low "a": must be a finite number`},
		{"bound infinite", "eta: {uniform: [0, .inf]}", `eta (line 1): uniform: high ".inf": must be a finite number`},
		{"three bounds", "eta: {uniform: [0, 1, 2]}", "eta (line 1): uniform: needs [low, high]; got 3 values"},
		{"bounds not a list", "eta: {uniform: 1}", "eta (line 1): uniform: needs a list, as in uniform: [low, high]"},
		{"two distributions", "eta: {uniform: [0, 1], log_uniform: [0.1, 1]}", "eta (line 1): a distribution is a mapping with one key"},
		{"nested list", "max_depth: [[1, 2]]", "max_depth (line 1): values must be plain numbers or strings"},
		{"null value", "eta:", "eta (line 1): a value is missing (null)"},
		{"null in list", "eta: [0.1, ~]", "eta (line 1): a value is missing (null)"},
		{"given twice", "eta: [0.1]\neta: [0.2]", "eta (line 2): given twice"},
		{"bad name", "'max depth': [1]", `parameter name "max depth" (line 1): must be 1 to 250 letters`},
		{"not a mapping", "[1, 2]", "line 1: must be a mapping from parameter names"},
		{"empty", "", "no parameters to search over"},
		{"null document", "~", "no parameters to search over"},
		{"two documents", "eta: [1]\n---\ngamma: [1]", "more than one YAML document"},
		{"syntax", "eta: [1", "search space: line 1: did not find expected"},
	}
	for _, c := range yamlCases {
		t.Run("yaml/"+c.name, func(t *testing.T) {
			_, err := ParseSpace([]byte(c.spec))
			checkErr(t, err, "search space: ", c.want)
		})
	}
	flagCases := []struct {
		name string
		args []string
		want string
	}{
		{"no equals", []string{"max_depth"}, `"max_depth": must be name=values`},
		{"empty choice", []string{"max_depth="}, `max_depth (in "max_depth="): choice: the list of values is empty`},
		{"unknown distribution", []string{"eta=normal(0,1)"}, `eta (in "eta=normal(0,1)"): unknown distribution "normal"`},
		{"low above high", []string{"eta=uniform(1,0.5)"}, "eta (in \"eta=uniform(1,0.5)\"): uniform: low 1 must be less than high 0.5"},
		{"log of zero", []string{"eta=loguniform(0,1)"}, "log_uniform: low 0: must be greater than 0"},
		{"one bound", []string{"eta=uniform(1)"}, "uniform: needs (low,high); got 1 values"},
		{"bound not a number", []string{"eta=uniform(x,1)"}, `uniform: low "x": must be a finite number`},
		{"given twice", []string{"eta=0.1", "eta=0.2"}, "eta: given twice"},
		{"bad name", []string{"=1"}, `parameter name ""`},
		{"none", nil, "no parameters to search over"},
	}
	for _, c := range flagCases {
		t.Run("flags/"+c.name, func(t *testing.T) {
			_, err := ParseFlags(c.args)
			checkErr(t, err, "search space: ", c.want)
		})
	}
}

func checkErr(t *testing.T, err error, prefix, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q", want)
	}
	if !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("code %v, want invalid_argument: %v", errs.CodeOf(err), err)
	}
	msg := errs.Message(err)
	if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, want) {
		t.Errorf("error %q\nwant it to start %q and contain %q", msg, prefix, want)
	}
}

func TestGrid(t *testing.T) {
	s, err := ParseFlags([]string{"a=1,2,3", "b=x,y", "c=0.5", "d=p,q"})
	if err != nil {
		t.Fatal(err)
	}
	configs, err := s.grid("grid")
	if err != nil {
		t.Fatal(err)
	}
	if len(configs) != 12 {
		t.Fatalf("%d configurations, want 12", len(configs))
	}
	seen := map[string]bool{}
	for _, c := range configs {
		k := c["a"] + c["b"] + c["c"] + c["d"]
		if seen[k] || len(c) != 4 {
			t.Fatalf("configuration %v repeated or incomplete", c)
		}
		seen[k] = true
	}
	// The last parameter varies fastest.
	if got := configs[0]["a"] + configs[0]["b"] + configs[0]["d"] + configs[1]["d"] + configs[2]["b"] + configs[11]["a"]; got != "1xpqy3" {
		t.Fatalf("order: %s", got)
	}

	s, _ = ParseFlags([]string{"a=1,2", "eta=loguniform(0.01,0.3)"})
	_, err = Grid{}.plan(s)
	checkErr(t, err, "grid: ", "eta is log_uniform; a grid needs a list of values for every parameter")

	var big []string
	for i := range 6 {
		big = append(big, "p"+strconv.Itoa(i)+"=0,1,2,3,4,5,6,7")
	}
	s, _ = ParseFlags(big)
	_, err = Grid{}.plan(s)
	checkErr(t, err, "grid: ", "more than 100000 combinations")
}

func TestRandom(t *testing.T) {
	s, err := ParseFlags([]string{"eta=loguniform(0.001,1)", "subsample=uniform(0.5,1)", "mcw=intuniform(1,4)", "depth=3,4,6"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Random{Trials: 2000, Seed: 7}.plan(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Random{Trials: 2000, Seed: 7}.plan(s)
	c, _ := Random{Trials: 2000, Seed: 8}.plan(s)
	if !slices.EqualFunc(a.configs, b.configs, mapsEqual) {
		t.Fatal("the same seed drew different configurations")
	}
	if slices.EqualFunc(a.configs, c.configs, mapsEqual) {
		t.Fatal("different seeds drew the same configurations")
	}
	if len(a.configs) != 2000 || len(a.rungs) != 1 || a.rungs[0] != (rung{0, 2000}) {
		t.Fatalf("%d configurations, rungs %v", len(a.configs), a.rungs)
	}
	var etas, subs []float64
	ints, depths := map[string]int{}, map[string]int{}
	for _, cfg := range a.configs {
		eta, err1 := strconv.ParseFloat(cfg["eta"], 64)
		sub, err2 := strconv.ParseFloat(cfg["subsample"], 64)
		if err1 != nil || err2 != nil || eta < 0.001 || eta > 1 || sub < 0.5 || sub > 1 {
			t.Fatalf("out of bounds: %v", cfg)
		}
		etas, subs = append(etas, eta), append(subs, sub)
		ints[cfg["mcw"]]++
		depths[cfg["depth"]]++
	}
	// Log-uniform: each decade is about as likely, so the median is near
	// the geometric mean (0.0316), far below the arithmetic one.
	perDecade := [3]int{}
	for _, e := range etas {
		perDecade[min(2, int(math.Floor(math.Log10(e)+3)))]++
	}
	for d, n := range perDecade {
		if n < 550 || n > 780 {
			t.Errorf("decade %d holds %d of 2000 log-uniform draws, want about 667", d, n)
		}
	}
	if m := median(subs); math.Abs(m-0.75) > 0.03 {
		t.Errorf("uniform median %v, want about 0.75", m)
	}
	if len(ints) != 4 || len(depths) != 3 {
		t.Errorf("int_uniform drew %v, choice drew %v", ints, depths)
	}
	for _, n := range ints {
		if n < 400 {
			t.Errorf("int_uniform counts %v are uneven", ints)
		}
	}

	// A discrete space is drawn without repeats, and at most whole.
	s, _ = ParseFlags([]string{"a=1,2,3", "b=intuniform(0,2)"})
	p, err := Random{Trials: 50, Seed: 1}.plan(s)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, cfg := range p.configs {
		seen[cfg["a"]+","+cfg["b"]] = true
	}
	if len(p.configs) != 9 || len(seen) != 9 {
		t.Fatalf("%d configurations, %d distinct; want the 9 there are", len(p.configs), len(seen))
	}

	_, err = Random{Trials: 0}.plan(s)
	checkErr(t, err, "random: ", "trials 0: must be from 1 to 100000")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
