package tuning

import (
	"bytes"
	"errors"
	"io"

	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/internal/errs"
)

// Config is a search as a file (or the CLI's flags) describes it:
//
//	strategy: successive_halving   # grid, random or successive_halving (halving)
//	trials: 27                     # random, successive_halving
//	seed: 7                        # random, successive_halving
//	parallel: 2
//	reduction_factor: 3            # successive_halving
//	min_resource: 10               # successive_halving: rounds of the first rung
//	max_resource: 270              # successive_halving: rounds of the last
//	space:
//	  max_depth: [2, 4, 6]
//	  eta: {log_uniform: [0.01, 0.3]}
//
// A setting the strategy does not use is an error rather than ignored, so
// a search never runs differently from how its file reads.
type Config struct {
	Strategy        string `yaml:"strategy"`
	Trials          int    `yaml:"trials"`
	Seed            uint64 `yaml:"seed"`
	Parallel        int    `yaml:"parallel"`
	ReductionFactor int    `yaml:"reduction_factor"`
	MinResource     int    `yaml:"min_resource"`
	MaxResource     int    `yaml:"max_resource"`
	Space           Space  `yaml:"space"`
}

// ParseConfig reads a Config from strict YAML or JSON (unknown keys are
// errors) and checks it.
func ParseConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errs.Invalid("tuning config: empty")
		}
		var e *errs.Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, errs.Invalid("tuning config: %s", yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errs.Invalid("tuning config: more than one YAML document")
	}
	if _, err := c.Tuner(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Tuner checks c and returns the tuner it describes, hooks unset.
func (c Config) Tuner() (*Tuner, error) {
	s, err := c.strategy()
	if err != nil {
		return nil, err
	}
	if c.Parallel < 0 || c.Parallel > 1024 {
		return nil, errs.Invalid("parallel %d: must be from 1 to 1024 (0 is 1)", c.Parallel)
	}
	if err := c.Space.Validate(); err != nil {
		return nil, err
	}
	// Plan now so that a bad combination (a grid over a continuous
	// parameter, too many trials) is refused before any trial runs.
	if _, err := s.plan(c.Space); err != nil {
		return nil, err
	}
	return &Tuner{Space: c.Space, Strategy: s, Parallel: c.Parallel}, nil
}

// setting is a Config field and whether it was given.
type setting struct {
	name string
	set  bool
}

func unused(strategy string, settings ...setting) error {
	for _, s := range settings {
		if s.set {
			return errs.Invalid("%s: %s does not use it; remove it or choose another strategy", s.name, strategy)
		}
	}
	return nil
}

func (c Config) strategy() (Strategy, error) {
	halvingOnly := []setting{{"reduction_factor", c.ReductionFactor != 0}, {"min_resource", c.MinResource != 0}, {"max_resource", c.MaxResource != 0}}
	switch c.Strategy {
	case "grid":
		if err := unused("grid", append([]setting{{"trials", c.Trials != 0}, {"seed", c.Seed != 0}}, halvingOnly...)...); err != nil {
			return nil, err
		}
		return Grid{}, nil
	case "random":
		if err := unused("random", halvingOnly...); err != nil {
			return nil, err
		}
		return Random{Trials: c.Trials, Seed: c.Seed}, nil
	case "successive_halving", "halving":
		return SuccessiveHalving{Trials: c.Trials, Seed: c.Seed, ReductionFactor: c.ReductionFactor,
			MinResource: c.MinResource, MaxResource: c.MaxResource}, nil
	case "":
		return nil, errs.Invalid("strategy: missing; one of grid, random, successive_halving")
	}
	return nil, errs.Invalid("strategy %q: must be one of grid, random, successive_halving", c.Strategy)
}
