package tuning

import (
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
strategy: successive_halving
trials: 27
seed: 7
parallel: 2
reduction_factor: 3
min_resource: 10
max_resource: 270
space:
  max_depth: [2, 4, 6]
  eta: {log_uniform: [0.01, 0.3]}
`))
	if err != nil {
		t.Fatal(err)
	}
	tu, err := c.Tuner()
	if err != nil {
		t.Fatal(err)
	}
	want := SuccessiveHalving{Trials: 27, Seed: 7, ReductionFactor: 3, MinResource: 10, MaxResource: 270}
	if tu.Strategy != want || tu.Parallel != 2 || len(tu.Space.Params) != 2 || tu.Space.Params[1].Dist != LogUniform {
		t.Fatalf("%+v", tu)
	}
	if s := tu.Strategy.Settings(); s["strategy"] != "successive_halving" || s["max_resource"] != "270" || s["seed"] != "7" {
		t.Fatalf("settings %v", s)
	}
	for _, c := range []struct{ spec, strategy string }{
		{"strategy: grid\nspace: {a: [1, 2]}", "grid"},
		{`{"strategy": "random", "trials": 5, "space": {"eta": {"uniform": [0, 1]}}}`, "random"},
		{"strategy: halving\nmax_resource: 9\nspace: {a: [1, 2]}", "successive_halving"},
	} {
		cfg, err := ParseConfig([]byte(c.spec))
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if tu, _ := cfg.Tuner(); tu.Strategy.Name() != c.strategy {
			t.Fatalf("%s: strategy %s", c.spec, tu.Strategy.Name())
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, spec, want string }{
		{"unknown key", "strategy: grid\nmethod: grid\nspace: {a: [1]}", "tuning config: line 2: field method not found in type tuning.Config"},
		{"missing strategy", "space: {a: [1]}", "strategy: missing; one of grid, random, successive_halving"},
		{"unknown strategy", "strategy: bayes\nspace: {a: [1]}", `strategy "bayes": must be one of grid, random, successive_halving`},
		{"grid with trials", "strategy: grid\ntrials: 5\nspace: {a: [1]}", "trials: grid does not use it"},
		{"grid with seed", "strategy: grid\nseed: 5\nspace: {a: [1]}", "seed: grid does not use it"},
		{"random with max_resource", "strategy: random\ntrials: 5\nmax_resource: 9\nspace: {a: [1]}", "max_resource: random does not use it"},
		{"random without trials", "strategy: random\nspace: {a: [1]}", "random: trials 0: must be from 1 to 100000"},
		{"grid over continuous", "strategy: grid\nspace: {eta: {uniform: [0, 1]}}", "grid: eta is uniform; a grid needs a list of values"},
		{"no space", "strategy: grid", "search space: no parameters to search over"},
		{"null space", "strategy: grid\nspace:", "search space: no parameters to search over"},
		{"bad space", "strategy: grid\nspace:\n  eta: {log_uniform: [0, 1]}", "search space: eta (line 3): log_uniform: low 0: must be greater than 0"},
		{"parallel", "strategy: grid\nparallel: -2\nspace: {a: [1]}", "parallel -2: must be from 1 to 1024"},
		{"empty", "", "tuning config: empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.spec))
			checkErr(t, err, "", c.want)
		})
	}
}
