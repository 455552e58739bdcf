package tuning

import (
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

// Whatever a spec holds, parsing ends in a valid space or an
// InvalidArgument error, and a valid space can be drawn from.
func FuzzParseSpace(f *testing.F) {
	for _, s := range []string{"max_depth: [3, 4, 6]\neta: {log_uniform: [0.01, 0.3]}", "a: {int_uniform: [-2, 2]}", `{"b": {"uniform": [0, 1]}}`, "c: &x [1]\nd: *x", "[1]", "e: {choice: []}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSpace([]byte(spec))
		checkParsed(t, s, err)
	})
}

func FuzzParseFlag(f *testing.F) {
	for _, s := range []string{"max_depth=3,4,6", "eta=loguniform(0.01,0.3)", "n=intuniform(-1,1)", "x=uniform(1e308,inf)", "=", "a=choice()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		s, err := ParseFlags([]string{arg})
		checkParsed(t, s, err)
	})
}

func checkParsed(t *testing.T, s Space, err error) {
	if err != nil {
		if !errs.Is(err, errs.InvalidArgument) {
			t.Fatalf("error not InvalidArgument: %v", err)
		}
		return
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("parsed an invalid space: %v", err)
	}
	if configs := s.sample(3, 1); len(configs) == 0 || len(configs) > 3 {
		t.Fatalf("%d samples", len(configs))
	}
}
