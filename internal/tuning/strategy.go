package tuning

import (
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
)

// Strategy decides which configurations a search trains, and with how
// many boosting rounds: Grid, Random or SuccessiveHalving.
type Strategy interface {
	// Name is the strategy's name as a config file spells it.
	Name() string
	// Settings are the strategy's settings as text, for the parent run's
	// params.
	Settings() map[string]string
	plan(s Space) (*plan, error)
}

// plan is a search laid out before it runs: the configurations, then the
// rungs. Rung 0 trains every configuration; each later rung trains the
// best size of the one before it.
type plan struct {
	configs []map[string]string
	rungs   []rung
}

type rung struct {
	resource, size int
}

// Grid trains every combination of the space's choices once, with the
// trial function's own number of rounds.
type Grid struct{}

func (Grid) Name() string { return "grid" }

func (Grid) Settings() map[string]string { return map[string]string{"strategy": "grid"} }

func (g Grid) plan(s Space) (*plan, error) {
	configs, err := s.grid(g.Name())
	if err != nil {
		return nil, err
	}
	return &plan{configs: configs, rungs: []rung{{0, len(configs)}}}, nil
}

// Random trains Trials configurations drawn from the space with Seed, or
// every configuration when a discrete space has fewer. No configuration is
// drawn twice.
type Random struct {
	Trials int
	Seed   uint64
}

func (Random) Name() string { return "random" }

func (r Random) Settings() map[string]string {
	return map[string]string{"strategy": "random", "trials": strconv.Itoa(r.Trials), "seed": strconv.FormatUint(r.Seed, 10)}
}

func (r Random) plan(s Space) (*plan, error) {
	if err := checkTrials(r.Name(), r.Trials); err != nil {
		return nil, err
	}
	configs := s.sample(r.Trials, r.Seed)
	return &plan{configs: configs, rungs: []rung{{0, len(configs)}}}, nil
}

func checkTrials(strategy string, n int) error {
	if n < 1 || n > maxTrials {
		return errs.Invalid("%s: trials %d: must be from 1 to %d", strategy, n, maxTrials)
	}
	return nil
}

// DefaultReductionFactor is how many configurations successive halving
// trains per one it promotes, as in Hyperband and scikit-learn.
const DefaultReductionFactor = 3

// SuccessiveHalving trains many configurations with few rounds and keeps
// the best: each rung trains its configurations with r rounds, the best
// 1/ReductionFactor of them (rounded up) go on to the next rung, which
// gives them ReductionFactor times the rounds, up to MaxResource. The last
// configuration standing is trained with MaxResource rounds.
//
// Most of the budget goes to the configurations that showed promise early,
// which is what makes it cheaper than random search for the same number of
// configurations: a bet that early validation scores rank settings the way
// final ones would, which holds for boosting rounds more often than not.
type SuccessiveHalving struct {
	// Trials is the number of configurations drawn from the space with
	// Seed; 0 takes every combination of a space of choices.
	Trials int
	Seed   uint64
	// ReductionFactor is 0 for DefaultReductionFactor, else at least 2.
	ReductionFactor int
	// MinResource is the first rung's rounds. 0 picks enough rungs to
	// narrow the configurations to one: MaxResource divided by the
	// reduction factor once per rung, and at least 1.
	MinResource int
	// MaxResource is the most rounds a configuration trains with.
	MaxResource int
}

func (SuccessiveHalving) Name() string { return "successive_halving" }

func (h SuccessiveHalving) Settings() map[string]string {
	return map[string]string{"strategy": "successive_halving", "trials": strconv.Itoa(h.Trials),
		"seed": strconv.FormatUint(h.Seed, 10), "reduction_factor": strconv.Itoa(h.factor()),
		"min_resource": strconv.Itoa(h.MinResource), "max_resource": strconv.Itoa(h.MaxResource)}
}

func (h SuccessiveHalving) factor() int {
	if h.ReductionFactor == 0 {
		return DefaultReductionFactor
	}
	return h.ReductionFactor
}

// maxResource bounds MaxResource where it is multiplied, well above any
// number of boosting rounds anyone trains.
const maxResource = 1 << 30

func (h SuccessiveHalving) plan(s Space) (*plan, error) {
	name := h.Name()
	eta := h.factor()
	if eta < 2 {
		return nil, errs.Invalid("%s: reduction_factor %d: must be at least 2", name, h.ReductionFactor)
	}
	if h.MaxResource < 1 || h.MaxResource > maxResource {
		return nil, errs.Invalid("%s: max_resource %d: must be from 1 to %d boosting rounds", name, h.MaxResource, maxResource)
	}
	if h.MinResource < 0 || h.MinResource > h.MaxResource {
		return nil, errs.Invalid("%s: min_resource %d: must be from 1 to max_resource (%d), or 0 to choose", name, h.MinResource, h.MaxResource)
	}
	var configs []map[string]string
	if h.Trials == 0 {
		var err error
		if configs, err = s.grid(name + " with trials 0"); err != nil {
			return nil, err
		}
	} else {
		if err := checkTrials(name, h.Trials); err != nil {
			return nil, err
		}
		configs = s.sample(h.Trials, h.Seed)
	}
	return &plan{configs: configs, rungs: halvingRungs(len(configs), eta, h.MinResource, h.MaxResource)}, nil
}

// halvingRungs lays out the rungs for n configurations. A rung down to one
// configuration skips to maxR: nothing is left to compare, only the final
// score to measure.
func halvingRungs(n, eta, minR, maxR int) []rung {
	if minR == 0 {
		minR = maxR
		for size := n; size > 1 && minR > 1; size = ceilDiv(size, eta) {
			minR = max(1, minR/eta)
		}
	}
	var rungs []rung
	r, size := minR, n
	for {
		if size == 1 {
			r = maxR
		}
		rungs = append(rungs, rung{r, size})
		if r >= maxR {
			return rungs
		}
		size, r = ceilDiv(size, eta), min(r*eta, maxR)
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
