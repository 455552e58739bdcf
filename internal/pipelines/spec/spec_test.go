package spec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, path string) *Pipeline {
	t.Helper()
	p, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseValid(t *testing.T) {
	p := mustParse(t, "testdata/valid/credit.yaml")
	if p.Name != "credit" || len(p.Steps) != 3 {
		t.Fatalf("got name %q with %d steps", p.Name, len(p.Steps))
	}
	want := map[string]Param{
		"lr":         {Name: "lr", Type: ParamFloat, Value: 0.1, Text: "0.1"},
		"max_depth":  {Name: "max_depth", Type: ParamInt, Value: int64(6), Text: "6"},
		"objective":  {Name: "objective", Type: ParamString, Value: "binary", Text: "binary"},
		"early_stop": {Name: "early_stop", Type: ParamBool, Value: true, Text: "true"},
	}
	for name, w := range want {
		if got := p.Params[name]; got == nil || *got != w {
			t.Errorf("param %s = %+v, want %+v", name, got, w)
		}
	}
	train := p.Step("train")
	wantTrain := &Step{
		Name: "train", Line: train.Line,
		Argv: []string{"python", "train.py", "--lr", "${params.lr}", "--data", "${inputs.train}", "--depth", "${params.max_depth}"},
		Inputs: []Input{
			{Name: "train", Kind: InputStep, Ref: "${steps.prepare.outputs.train}", Step: "prepare", Output: "train"},
			{Name: "base", Kind: InputModel, Ref: "models:/credit@production", Model: "credit", Alias: "production"},
		},
		Outputs: []Output{
			{Name: "model", Path: "out/model", Type: OutputDir},
			{Name: "metrics", Path: "out/metrics.json", Type: OutputMetrics},
		},
		Needs:   []string{"prepare"},
		Retries: Retries{Max: 2, Backoff: 5 * time.Second},
		Timeout: 30 * time.Minute,
		Cache:   true,
		Env:     map[string]string{"OMP_NUM_THREADS": "2", "OBJECTIVE": "${params.objective}"},
	}
	if !reflect.DeepEqual(train, wantTrain) {
		t.Errorf("train step\n got %+v\nwant %+v", train, wantTrain)
	}
	prep := p.Step("prepare")
	if prep.Shell == "" || prep.Argv != nil || !slices.Equal(prep.Code, []string{"prepare.py", "lib"}) {
		t.Errorf("prepare step %+v", prep)
	}
	if in := prep.Input("raw"); in.Kind != InputData || in.Dataset != "credit-raw" || in.Version != 0 {
		t.Errorf("raw input %+v", in)
	}
	eval := p.Step("evaluate")
	if !eval.CodeGit || eval.Cache || eval.Retries.Max != 1 || !slices.Equal(eval.Needs, []string{"train"}) {
		t.Errorf("evaluate step %+v", eval)
	}
	if in := eval.Input("holdout"); in.Dataset != "credit-holdout" || in.Version != 3 {
		t.Errorf("holdout input %+v", in)
	}
	if in := eval.Input("prev"); in.Model != "credit" || in.Version != 4 {
		t.Errorf("prev input %+v", in)
	}
	levels, err := p.Order()
	if err != nil || !reflect.DeepEqual(levels, [][]string{{"prepare"}, {"train"}, {"evaluate"}}) {
		t.Errorf("Order() = %v, %v", levels, err)
	}
}

// TestRoundTrip checks that Encode keeps every field: parsing the encoded
// spec gives back the same pipeline.
func TestRoundTrip(t *testing.T) {
	p := mustParse(t, "testdata/valid/credit.yaml")
	if err := p.ApplyOverrides(map[string]string{"objective": "true", "lr": "1e-3"}); err != nil {
		t.Fatal(err)
	}
	p.Env["TRICKY"] = "yes: no # not a comment"
	data, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(p.File, data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	for _, s := range append(p.Steps, q.Steps...) {
		s.Line = 0
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("round trip changed the pipeline\n%s", data)
	}
	again, err := q.Encode()
	if err != nil || string(again) != string(data) {
		t.Errorf("Encode is not stable:\n%s\nvs\n%s", data, again)
	}
}

func TestParseMinimal(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: x\nsteps:\n  a:\n    command: echo hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Step("a")
	if a.Shell != "echo hi" || !a.Cache || len(a.Needs) != 0 || a.Timeout != 0 {
		t.Errorf("step %+v", a)
	}
}

func TestMultipleErrorsAllReported(t *testing.T) {
	_, err := Parse("p.yaml", []byte(`name: x
steps:
  a:
    command: run ${params.nope}
    timeout: soon
    cache: maybe
  b:
    command: run
    needs: [zz]
`))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	if len(list) != 4 {
		t.Fatalf("got %d errors, want 4:\n%v", len(list), err)
	}
	for i, line := range []int{4, 5, 6, 9} {
		if list[i].Line != line || list[i].File != "p.yaml" {
			t.Errorf("error %d at %s:%d, want line %d", i, list[i].File, list[i].Line, line)
		}
	}
}

func TestApplyOverrides(t *testing.T) {
	cases := []struct {
		name string
		in   map[string]string
		err  string
		want map[string]any
	}{
		{name: "typed", in: map[string]string{"lr": "0.05", "max_depth": "8", "early_stop": "false", "objective": "reg"},
			want: map[string]any{"lr": 0.05, "max_depth": int64(8), "early_stop": false, "objective": "reg"}},
		{name: "int accepted for float", in: map[string]string{"lr": "1"}, want: map[string]any{"lr": 1.0}},
		{name: "string takes anything", in: map[string]string{"objective": "42"}, want: map[string]any{"objective": "42"}},
		{name: "bad int", in: map[string]string{"max_depth": "6.5"},
			err: `-p max_depth: param "max_depth" expects int, got "6.5" (hint: the default 6 fixes the type)`},
		{name: "bad float", in: map[string]string{"lr": "fast"},
			err: `-p lr: param "lr" expects float, got "fast" (hint: the default 0.1 fixes the type)`},
		{name: "non-finite float", in: map[string]string{"lr": "NaN"},
			err: `-p lr: param "lr" expects float, got "NaN" (hint: the default 0.1 fixes the type)`},
		{name: "bad bool", in: map[string]string{"early_stop": "yes"},
			err: `-p early_stop: param "early_stop" expects bool, got "yes" (hint: the default true fixes the type)`},
		{name: "unknown", in: map[string]string{"l_r": "1"},
			err: `-p l_r: unknown param "l_r" (hint: did you mean "lr"?)`},
		{name: "unknown far", in: map[string]string{"zzzzzz": "1"},
			err: `-p zzzzzz: unknown param "zzzzzz" (hint: declare it under params: with a default)`},
		{name: "all errors, nothing applied", in: map[string]string{"lr": "0.2", "max_depth": "x", "nope": "1"},
			err:  "-p max_depth: param \"max_depth\" expects int, got \"x\" (hint: the default 6 fixes the type)\n-p nope: unknown param \"nope\" (hint: declare it under params: with a default)",
			want: map[string]any{"lr": 0.1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, "testdata/valid/credit.yaml")
			err := p.ApplyOverrides(c.in)
			if c.err == "" && err != nil {
				t.Fatal(err)
			}
			if c.err != "" && (err == nil || err.Error() != c.err) {
				t.Fatalf("err = %v\nwant %s", err, c.err)
			}
			for k, v := range c.want {
				if got := p.Params[k].Value; got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
		})
	}
}

func TestParseOverrides(t *testing.T) {
	m, err := ParseOverrides([]string{"lr=0.1", "expr=a=b", "empty="})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"lr": "0.1", "expr": "a=b", "empty": ""}) {
		t.Errorf("got %v, %v", m, err)
	}
	_, err = ParseOverrides([]string{"novalue", "=x", "a=1", "a=2"})
	want := "-p novalue: expected key=value (hint: e.g. -p lr=0.05)\n-p =x: expected key=value (hint: e.g. -p lr=0.05)\n-p a=2: param \"a\" given twice"
	if err == nil || err.Error() != want {
		t.Errorf("got %v", err)
	}
}

func TestRender(t *testing.T) {
	p := mustParse(t, "testdata/valid/credit.yaml")
	if err := p.ApplyOverrides(map[string]string{"objective": "it's; rm -rf /"}); err != nil {
		t.Fatal(err)
	}
	r, err := p.Render("prepare", map[string]string{"inputs.raw": "/cache/data/credit raw.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "python prepare.py --in '/cache/data/credit raw.csv' --out out/train.csv --cost $5"; r.Shell != want {
		t.Errorf("shell\n got %s\nwant %s", r.Shell, want)
	}
	if r.Env["PYTHONHASHSEED"] != "0" {
		t.Errorf("env %v", r.Env)
	}

	r, err = p.Render("train", map[string]string{"outputs.model": "/work/run1/out/model"})
	if err != nil {
		t.Fatal(err)
	}
	wantArgv := []string{"python", "train.py", "--lr", "0.1", "--data", "out/train.csv", "--depth", "6"}
	if !slices.Equal(r.Argv, wantArgv) || r.Shell != "" {
		t.Errorf("argv %q, want %q", r.Argv, wantArgv)
	}
	if r.Env["OBJECTIVE"] != "it's; rm -rf /" || r.Env["OMP_NUM_THREADS"] != "2" || r.Env["PYTHONHASHSEED"] != "0" {
		t.Errorf("env %v", r.Env)
	}

	// A resolved step output wins over the declared path.
	r, err = p.Render("train", map[string]string{"steps.prepare.outputs.train": "/runs/7/train.csv"})
	if err != nil || r.Argv[5] != "/runs/7/train.csv" {
		t.Errorf("argv %q, %v", r.Argv, err)
	}

	_, err = p.Render("evaluate", nil)
	if err == nil || err.Error() != "step evaluate: no value for ${inputs.holdout}" {
		t.Errorf("got %v", err)
	}
	r, err = p.Render("evaluate", map[string]string{"inputs.holdout": "/d/h.csv"})
	if want := "python eval.py out/model /d/h.csv > reports/eval.json"; err != nil || r.Shell != want {
		t.Errorf("got %q, %v", r.Shell, err)
	}
	if _, err := p.Render("nope", nil); err == nil {
		t.Error("want error for unknown step")
	}

	p, err = Parse("p.yaml", []byte("name: q\nparams: {msg: \"it's\"}\nsteps:\n  a:\n    command: echo ${params.msg} $HOME $$HOME\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err = p.Render("a", nil)
	if want := `echo 'it'\''s' $HOME $HOME`; err != nil || r.Shell != want {
		t.Errorf("got %s, %v; want %s", r.Shell, err, want)
	}
}

func TestScanTemplate(t *testing.T) {
	cases := map[string]string{
		"plain":            "plain",
		"$HOME ${a.b} $$":  "$HOME |a.b| $",
		"${a}${b.c}":       "|a||b.c|",
		"x$":               "x$",
		"$${not.a.ref}":    "${not.a.ref}",
		"${a.b":            "error",
		"${}":              "error",
		"${a..b}":          "error",
		"${a b}":           "error",
		"cost $$5 and $5}": "cost $5 and $5}",
	}
	for in, want := range cases {
		segs, err := scanTemplate(in)
		var got strings.Builder
		if err != nil {
			got.WriteString("error")
		}
		for _, s := range segs {
			if s.ref != nil {
				got.WriteString("|" + strings.Join(s.ref, ".") + "|")
			} else {
				got.WriteString(s.lit)
			}
		}
		if got.String() != want {
			t.Errorf("scanTemplate(%q) = %q, want %q", in, got.String(), want)
		}
	}
}

// randomDAG writes a spec whose step i may need any step j < i, then
// shuffles the file order so Order cannot lean on it.
func randomDAG(r *rand.Rand, n int) (string, map[string][]string) {
	deps := map[string][]string{}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
	}
	var b strings.Builder
	b.WriteString("name: random\nsteps:\n")
	for _, i := range r.Perm(n) {
		name := names[i]
		fmt.Fprintf(&b, "  %s:\n    outputs: {o: out/%s}\n", name, name)
		var needs, refs []string
		for j := 0; j < i; j++ {
			if r.IntN(4) == 0 {
				if r.IntN(2) == 0 {
					needs = append(needs, names[j])
				} else {
					refs = append(refs, "${steps."+names[j]+".outputs.o}")
				}
				deps[name] = append(deps[name], names[j])
			}
		}
		fmt.Fprintf(&b, "    command: run %s %s\n", name, strings.Join(refs, " "))
		if len(needs) > 0 {
			fmt.Fprintf(&b, "    needs: [%s]\n", strings.Join(needs, ", "))
		}
	}
	return b.String(), deps
}

func TestOrderProperties(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 42))
		n := 1 + r.IntN(25)
		src, deps := randomDAG(r, n)
		p, err := Parse("random.yaml", []byte(src))
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, src)
		}
		levels, err := p.Order()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		level := map[string]int{}
		for li, names := range levels {
			if len(names) == 0 || !slices.IsSorted(names) {
				t.Fatalf("seed %d: level %d = %v, want non-empty and sorted", seed, li, names)
			}
			for _, name := range names {
				if _, dup := level[name]; dup {
					t.Fatalf("seed %d: %s appears twice", seed, name)
				}
				level[name] = li
			}
		}
		if len(level) != n {
			t.Fatalf("seed %d: %d steps ordered, want %d", seed, len(level), n)
		}
		for _, st := range p.Steps {
			want := slices.Clone(deps[st.Name])
			slices.Sort(want)
			if !slices.Equal(st.Needs, want) && !(len(want) == 0 && len(st.Needs) == 0) {
				t.Fatalf("seed %d: %s needs %v, want %v", seed, st.Name, st.Needs, want)
			}
			// Each step sits exactly one level below its deepest need, so
			// levels are as shallow (as parallel) as the DAG allows.
			deepest := -1
			for _, d := range st.Needs {
				if level[d] >= level[st.Name] {
					t.Fatalf("seed %d: %s (level %d) not after %s (level %d)", seed, st.Name, level[st.Name], d, level[d])
				}
				deepest = max(deepest, level[d])
			}
			if level[st.Name] != deepest+1 {
				t.Fatalf("seed %d: %s at level %d, want %d", seed, st.Name, level[st.Name], deepest+1)
			}
		}
		p2, _ := Parse("random.yaml", []byte(src))
		again, _ := p2.Order()
		if !reflect.DeepEqual(levels, again) {
			t.Fatalf("seed %d: Order not deterministic", seed)
		}
	}
}

// TestCycleDetectionRandom closes a random back edge in a random DAG and
// checks Parse names a cycle whose links are all real dependencies.
func TestCycleDetectionRandom(t *testing.T) {
	for seed := uint64(0); seed < 100; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		n := 2 + r.IntN(15)
		// A chain s00 <- s01 <- ... guarantees a path to close.
		var b strings.Builder
		b.WriteString("name: cyc\nsteps:\n")
		from, to := r.IntN(n), 0
		to = r.IntN(from + 1)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  s%02d:\n    command: x\n", i)
			var needs []string
			if i > 0 {
				needs = append(needs, fmt.Sprintf("s%02d", i-1))
			}
			if i == to && from != to {
				needs = append(needs, fmt.Sprintf("s%02d", from))
			}
			if len(needs) > 0 {
				fmt.Fprintf(&b, "    needs: [%s]\n", strings.Join(needs, ", "))
			}
		}
		_, err := Parse("cyc.yaml", []byte(b.String()))
		if from == to {
			if err != nil {
				t.Fatalf("seed %d: unexpected %v", seed, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "dependency cycle: ") {
			t.Fatalf("seed %d: got %v\n%s", seed, err, b.String())
		}
		msg := err.Error()
		cycle := msg[strings.Index(msg, "cycle: ")+7 : strings.Index(msg, " (hint")]
		links := strings.Split(cycle, " -> ")
		if links[0] != links[len(links)-1] || len(links) != from-to+2 {
			t.Fatalf("seed %d: cycle %q for back edge s%02d -> s%02d", seed, cycle, to, from)
		}
	}
}

func TestOrderRejectsHandBuiltCycle(t *testing.T) {
	p := &Pipeline{Name: "x", Steps: []*Step{{Name: "a", Needs: []string{"b"}}, {Name: "b", Needs: []string{"a"}}, {Name: "c"}}}
	if _, err := p.Order(); err == nil || !strings.Contains(err.Error(), "cycle among steps a, b") {
		t.Errorf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := os.ReadDir("testdata/errors")
	for _, e := range seeds {
		if data, err := os.ReadFile("testdata/errors/" + e.Name()); err == nil {
			f.Add(data)
		}
	}
	if data, err := os.ReadFile("testdata/valid/credit.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("pipeline returned with errors")
			}
			return
		}
		if _, err := p.Order(); err != nil {
			t.Fatalf("valid spec cannot be ordered: %v", err)
		}
		for _, s := range p.Steps {
			_, _ = p.Render(s.Name, nil)
		}
		out, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse("fuzz.yaml", out); err != nil {
			t.Fatalf("encoded spec does not parse: %v\n%s", err, out)
		}
	})
}

func TestEmptyMapsAreEmpty(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: x\nparams:\nenv:\nsteps:\n  a:\n    command: [run]\n    inputs:\n    outputs:\n    code:\n    needs:\n    env:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Step("a"); len(a.Inputs)+len(a.Outputs)+len(a.Code)+len(a.Needs)+len(a.Env) != 0 {
		t.Errorf("step %+v", a)
	}
	if _, err := Parse("p.yaml", []byte("name: x\nsteps:\n")); err == nil || !strings.Contains(err.Error(), "no steps") {
		t.Errorf("got %v", err)
	}
}

func TestParamTextIsPortable(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: x\nparams: {a: 0x10, b: 1e-3, c: .5}\nsteps:\n  s: {command: [run, '${params.a}', '${params.b}', '${params.c}']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Render("s", nil)
	if want := []string{"run", "16", "1e-3", ".5"}; err != nil || !slices.Equal(r.Argv, want) {
		t.Errorf("argv %q, %v; want %q", r.Argv, err, want)
	}
}

func TestSizeLimit(t *testing.T) {
	data := []byte("name: x\nsteps:\n  a: {command: x}\n# " + strings.Repeat("x", MaxSpecSize))
	_, err := Parse("big.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "the limit is 1048576") {
		t.Errorf("got %v", err)
	}
}
