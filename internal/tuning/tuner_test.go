package tuning

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
)

// quadratic scores a configuration of a (0 to 8) and b (x or y) by how
// close a is to 5, better with b=y and with more rounds: a smooth problem
// whose ranking is known.
func quadratic(_ context.Context, t Trial) (TrialResult, error) {
	a, err := strconv.Atoi(t.Params["a"])
	if err != nil {
		return TrialResult{}, err
	}
	loss := float64((a-5)*(a-5)) + 1/float64(t.Resource+1)
	if t.Params["b"] == "x" {
		loss += 0.5
	}
	return TrialResult{Score: loss, Metric: "loss", Metrics: map[string]float64{"a": float64(a)}, Artifact: t.Index}, nil
}

func abSpace(t *testing.T) Space {
	t.Helper()
	s, err := ParseFlags([]string{"a=0,1,2,3,4,5,6,7,8", "b=x,y"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHalvingRungs(t *testing.T) {
	for _, c := range []struct {
		n, eta, minR, maxR int
		want               []rung
	}{
		{27, 3, 0, 270, []rung{{10, 27}, {30, 9}, {90, 3}, {270, 1}}},
		{27, 3, 10, 100, []rung{{10, 27}, {30, 9}, {90, 3}, {100, 1}}},
		{20, 3, 5, 50, []rung{{5, 20}, {15, 7}, {45, 3}, {50, 1}}},
		{100, 3, 10, 30, []rung{{10, 100}, {30, 34}}},
		{10, 2, 0, 100, []rung{{6, 10}, {12, 5}, {24, 3}, {48, 2}, {100, 1}}},
		{6, 3, 4, 36, []rung{{4, 6}, {12, 2}, {36, 1}}},
		{9, 3, 50, 50, []rung{{50, 9}}},
		{1, 3, 1, 50, []rung{{50, 1}}},
		{5, 3, 0, 1, []rung{{1, 5}}},
	} {
		if got := halvingRungs(c.n, c.eta, c.minR, c.maxR); !slices.Equal(got, c.want) {
			t.Errorf("halvingRungs(%d, %d, %d, %d) = %v, want %v", c.n, c.eta, c.minR, c.maxR, got, c.want)
		}
	}
}

// Each rung trains the best ceil(1/eta) of the one before, best first,
// with eta times the rounds.
func TestHalvingPromotesTheTop(t *testing.T) {
	tu := &Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{Trials: 14, Seed: 3, MinResource: 2, MaxResource: 50}, Parallel: 3}
	sum, err := tu.Run(context.Background(), quadratic)
	if err != nil {
		t.Fatal(err)
	}
	byRung := map[int][]TrialRecord{}
	for i, r := range sum.Trials {
		if r.Index != i || r.Status != Succeeded {
			t.Fatalf("trial %d: index %d, status %s", i, r.Index, r.Status)
		}
		byRung[r.Rung] = append(byRung[r.Rung], r)
	}
	sizes, resources := []int{}, []int{}
	for k := range len(byRung) {
		sizes, resources = append(sizes, len(byRung[k])), append(resources, byRung[k][0].Resource)
	}
	if !slices.Equal(sizes, []int{14, 5, 2, 1}) || !slices.Equal(resources, []int{2, 6, 18, 50}) || sum.Rungs != 4 {
		t.Fatalf("rung sizes %v, rounds %v, %d rungs", sizes, resources, sum.Rungs)
	}
	for k := 1; k < len(byRung); k++ {
		prev := slices.Clone(byRung[k-1])
		slices.SortStableFunc(prev, func(a, b TrialRecord) int { return cmpFloat(a.Score, b.Score) })
		for i, r := range byRung[k] {
			if r.Config != prev[i].Config || !mapsEqual(r.Params, prev[i].Params) {
				t.Fatalf("rung %d trial %d is config %d; the %d-th best of rung %d is config %d", k, i, r.Config, i, k-1, prev[i].Config)
			}
		}
	}
	best := sum.Best()
	if best == nil || best.Rung != 3 || best.Params["a"] != "5" || best.Params["b"] != "y" || best.Artifact != best.Index {
		t.Fatalf("best %+v", best)
	}
	for _, r := range sum.Trials {
		if r.Index != best.Index && r.Artifact != nil {
			t.Fatalf("trial %d kept its artifact", r.Index)
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Equal scores go to the lower trial index, in promotion and for best.
func TestTiesGoToTheLowerIndex(t *testing.T) {
	flat := func(_ context.Context, t Trial) (TrialResult, error) {
		return TrialResult{Score: 1, Metric: "auc", HigherIsBetter: true}, nil
	}
	tu := &Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{ReductionFactor: 2, MinResource: 1, MaxResource: 8}, Parallel: 4}
	sum, err := tu.Run(context.Background(), flat)
	if err != nil {
		t.Fatal(err)
	}
	var configs []int
	for _, r := range sum.Trials {
		if r.Rung == 1 {
			configs = append(configs, r.Config)
		}
	}
	if !slices.Equal(configs, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("rung 1 configs %v", configs)
	}
	if b := sum.Best(); b.Config != 0 || b.Rung != sum.Rungs-1 {
		t.Fatalf("best is config %d in rung %d", b.Config, b.Rung)
	}
}

func TestGridRunsEveryConfigurationOnce(t *testing.T) {
	var starts atomic.Int32
	seen := sync.Map{}
	tu := &Tuner{Space: abSpace(t), Strategy: Grid{}, Parallel: 4, OnTrialStart: func(tr Trial) {
		starts.Add(1)
		if _, dup := seen.LoadOrStore(tr.Params["a"]+tr.Params["b"], true); dup {
			t.Errorf("configuration %v ran twice", tr.Params)
		}
	}}
	sum, err := tu.Run(context.Background(), quadratic)
	if err != nil {
		t.Fatal(err)
	}
	if starts.Load() != 18 || len(sum.Trials) != 18 {
		t.Fatalf("%d starts, %d trials; want 18", starts.Load(), len(sum.Trials))
	}
	if b := sum.Best(); b.Params["a"] != "5" || b.Params["b"] != "y" || b.Resource != 0 || sum.Metric != "loss" || sum.HigherIsBetter {
		t.Fatalf("best %+v, metric %s", b, sum.Metric)
	}
}

// Trials finishing in any order give the same summary.
func TestParallelMatchesSerial(t *testing.T) {
	jittery := func(ctx context.Context, tr Trial) (TrialResult, error) {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		if tr.Params["a"] == "2" {
			return TrialResult{}, errors.New("a=2 fails")
		}
		return quadratic(ctx, tr)
	}
	run := func(parallel int) *Summary {
		tu := &Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{Trials: 16, Seed: 9, MaxResource: 27}, Parallel: parallel}
		sum, err := tu.Run(context.Background(), jittery)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	serial := run(1)
	for range 3 {
		if diff := summaryDiff(serial, run(4)); diff != "" {
			t.Fatal(diff)
		}
	}
}

// summaryDiff compares everything but durations.
func summaryDiff(a, b *Summary) string {
	if a.BestIndex != b.BestIndex || a.Metric != b.Metric || a.Rungs != b.Rungs || len(a.Trials) != len(b.Trials) {
		return fmt.Sprintf("best %d vs %d, metric %s vs %s, %d vs %d trials", a.BestIndex, b.BestIndex, a.Metric, b.Metric, len(a.Trials), len(b.Trials))
	}
	for i := range a.Trials {
		x, y := a.Trials[i], b.Trials[i]
		if x.Index != y.Index || x.Config != y.Config || x.Rung != y.Rung || x.Resource != y.Resource || !mapsEqual(x.Params, y.Params) ||
			x.Status != y.Status || x.Score != y.Score || fmt.Sprint(x.Err) != fmt.Sprint(y.Err) || fmt.Sprint(x.Metrics) != fmt.Sprint(y.Metrics) ||
			(x.Artifact == nil) != (y.Artifact == nil) {
			return fmt.Sprintf("trial %d differs:\n%+v\n%+v", i, x, y)
		}
	}
	return ""
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var started, ended []int
	tu := &Tuner{Space: abSpace(t), Strategy: Grid{}, Parallel: 2,
		OnTrialStart: func(tr Trial) {
			mu.Lock()
			started = append(started, tr.Index)
			mu.Unlock()
			if tr.Index == 3 {
				cancel()
			}
		},
		OnTrialEnd: func(r TrialRecord) {
			mu.Lock()
			ended = append(ended, r.Index)
			mu.Unlock()
		}}
	sum, err := tu.Run(ctx, func(ctx context.Context, tr Trial) (TrialResult, error) {
		if tr.Index >= 3 {
			<-ctx.Done()
			return TrialResult{}, ctx.Err()
		}
		return quadratic(ctx, tr)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if sum == nil || len(sum.Trials) < 4 || len(sum.Trials) > 5 {
		t.Fatalf("summary %+v; want the 3 trials that finished and the 1 or 2 cancelled", sum)
	}
	for i, r := range sum.Trials {
		want := Succeeded
		if i >= 3 {
			want = Cancelled
		}
		if r.Index != i || r.Status != want {
			t.Fatalf("trial %d: index %d status %s, want %s", i, r.Index, r.Status, want)
		}
	}
	if sum.Trials[3].Status.RunStatus() != "KILLED" {
		t.Fatal("a cancelled trial's run is not KILLED")
	}
	if b := sum.Best(); b == nil || b.Index > 2 {
		t.Fatalf("best %+v", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(started) != len(sum.Trials) || len(ended) != len(sum.Trials) {
		t.Fatalf("%d started, %d ended, %d recorded", len(started), len(ended), len(sum.Trials))
	}

	// Cancelled after the last trial ended: the search is complete.
	late, cancelLate := context.WithCancel(context.Background())
	defer cancelLate()
	sum, err = (&Tuner{Space: abSpace(t), Strategy: Grid{}, OnTrialEnd: func(r TrialRecord) {
		if r.Index == 17 {
			cancelLate()
		}
	}}).Run(late, quadratic)
	if err != nil || len(sum.Trials) != 18 {
		t.Fatalf("%v, %d trials", err, len(sum.Trials))
	}

	// Cancelled before it starts: nothing runs.
	sum, err = (&Tuner{Space: abSpace(t), Strategy: Grid{}}).Run(ctx, quadratic)
	if !errors.Is(err, context.Canceled) || len(sum.Trials) != 0 || sum.Best() != nil {
		t.Fatalf("%v, %+v", err, sum)
	}
}

func TestFailingTrials(t *testing.T) {
	var ends []TrialRecord
	var mu sync.Mutex
	fn := func(ctx context.Context, tr Trial) (TrialResult, error) {
		switch tr.Params["a"] {
		case "5":
			return TrialResult{}, errs.Invalid("a=5 diverged")
		case "4":
			return TrialResult{Score: math.NaN(), Metric: "loss"}, nil
		case "6":
			panic("boom")
		}
		return quadratic(ctx, tr)
	}
	tu := &Tuner{Space: abSpace(t), Strategy: Grid{}, Parallel: 2, OnTrialEnd: func(r TrialRecord) {
		mu.Lock()
		ends = append(ends, r)
		mu.Unlock()
	}}
	sum, err := tu.Run(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Count(Failed) != 6 || sum.Count(Succeeded) != 12 || len(ends) != 18 {
		t.Fatalf("%d failed, %d succeeded, %d ends", sum.Count(Failed), sum.Count(Succeeded), len(ends))
	}
	for _, r := range sum.Trials {
		var want string
		switch r.Params["a"] {
		case "5":
			want = "a=5 diverged"
		case "4":
			want = "loss is NaN; a trial needs a score to be ranked"
		case "6":
			want = "trial function panicked: boom"
		}
		if got := fmt.Sprint(r.Err); want != "" && (got != want || r.Status != Failed || r.Status.RunStatus() != "FAILED") {
			t.Errorf("trial %v: %s %q, want failed %q", r.Params, r.Status, got, want)
		}
	}
	if b := sum.Best(); b.Params["a"] != "3" || b.Params["b"] != "y" {
		t.Fatalf("best %v, want a=3 b=y (a tie with a=7 goes to the lower index)", b.Params)
	}

	// When every trial fails the search stops with the first failure's
	// code and message.
	sum, err = (&Tuner{Space: abSpace(t), Strategy: Grid{}, Parallel: 3}).Run(context.Background(), func(context.Context, Trial) (TrialResult, error) {
		return TrialResult{}, errs.Invalid("eta 2: must be at most 1")
	})
	if !errs.Is(err, errs.InvalidArgument) || errs.Message(err) != "all 18 trials failed; trial 0: eta 2: must be at most 1" {
		t.Fatalf("error %v (%v)", err, errs.CodeOf(err))
	}
	if sum == nil || len(sum.Trials) != 18 || sum.Best() != nil {
		t.Fatalf("summary %+v", sum)
	}

	// In a later rung too, keeping the earlier rung's best.
	sum, err = (&Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{MinResource: 1, MaxResource: 9}}).Run(context.Background(), func(ctx context.Context, tr Trial) (TrialResult, error) {
		if tr.Rung > 0 {
			return TrialResult{}, errors.New("out of memory")
		}
		return quadratic(ctx, tr)
	})
	if errs.CodeOf(err) != errs.Internal || errs.Message(err) != "all 6 trials of rung 1 failed; trial 18: out of memory" {
		t.Fatalf("error %v", err)
	}
	if b := sum.Best(); b == nil || b.Rung != 0 || b.Params["a"] != "5" {
		t.Fatalf("best %+v", b)
	}
}

func TestRunChecks(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tu   Tuner
		fn   TrialFunc
		want string
	}{
		{"no strategy", Tuner{Space: abSpace(t)}, quadratic, "tuning: no strategy"},
		{"no function", Tuner{Space: abSpace(t), Strategy: Grid{}}, nil, "tuning: no trial function"},
		{"parallel", Tuner{Space: abSpace(t), Strategy: Grid{}, Parallel: -1}, quadratic, "tuning: parallel -1: must be from 1 to 1024"},
		{"empty space", Tuner{Strategy: Grid{}}, quadratic, "search space: no parameters to search over"},
		{"reduction factor", Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{ReductionFactor: 1, MaxResource: 9}}, quadratic, "successive_halving: reduction_factor 1: must be at least 2"},
		{"max resource", Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{}}, quadratic, "successive_halving: max_resource 0: must be from 1"},
		{"min resource", Tuner{Space: abSpace(t), Strategy: SuccessiveHalving{MinResource: 10, MaxResource: 9}}, quadratic, "successive_halving: min_resource 10: must be from 1 to max_resource (9)"},
		{"halving grid", Tuner{Space: Space{Params: []Param{{Name: "eta", Dist: Uniform, Low: 0, High: 1}}}, Strategy: SuccessiveHalving{MaxResource: 9}}, quadratic,
			"successive_halving with trials 0: eta is uniform; a grid needs a list of values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.tu.Run(ctx, c.fn)
			checkErr(t, err, "", c.want)
		})
	}
	// Trials reporting different metrics cannot be ranked together.
	_, err := (&Tuner{Space: abSpace(t), Strategy: Grid{}}).Run(ctx, func(_ context.Context, tr Trial) (TrialResult, error) {
		return TrialResult{Score: 1, Metric: "m" + tr.Params["b"]}, nil
	})
	if errs.CodeOf(err) != errs.Internal || errs.Message(err) != `tuning: trial 1 reports "my" (higher is better: false) but trial 0 reported "mx" (higher is better: false); every trial must report the same metric` {
		t.Fatalf("error %v", err)
	}
}

func TestHooksAndThreads(t *testing.T) {
	var mu sync.Mutex
	events := map[int][]string{}
	artifacts := 0
	tu := &Tuner{Space: abSpace(t), Strategy: Random{Trials: 8, Seed: 1}, Parallel: 4,
		OnTrialStart: func(tr Trial) {
			mu.Lock()
			defer mu.Unlock()
			events[tr.Index] = append(events[tr.Index], "start")
		},
		OnTrialEnd: func(r TrialRecord) {
			mu.Lock()
			defer mu.Unlock()
			events[r.Index] = append(events[r.Index], "end:"+string(r.Status))
			if r.Artifact == r.Index {
				artifacts++
			}
		}}
	sum, err := tu.Run(context.Background(), func(ctx context.Context, tr Trial) (TrialResult, error) {
		mu.Lock()
		events[tr.Index] = append(events[tr.Index], "run")
		mu.Unlock()
		if tr.Threads < 1 {
			t.Errorf("trial %d has %d threads", tr.Index, tr.Threads)
		}
		tr.Params["a"] = "mutated" // the trial owns its map
		return quadratic(ctx, Trial{Params: map[string]string{"a": "1"}, Index: tr.Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if got := fmt.Sprint(events[i]); got != "[start run end:succeeded]" {
			t.Errorf("trial %d events %s", i, got)
		}
		if sum.Trials[i].Params["a"] == "mutated" {
			t.Error("the summary shares the trial's params map")
		}
	}
	if artifacts != 8 {
		t.Errorf("OnTrialEnd saw %d artifacts, want every trial's 8", artifacts)
	}
	if m := sum.Best().MetricValues(); len(m) != 2 || m["loss"] != sum.Best().Score || m["a"] != 1 {
		t.Errorf("metric values %v", m)
	}
}

func TestMarkdown(t *testing.T) {
	s, err := ParseFlags([]string{"a=3,4,5,6", "b=x,y"})
	if err != nil {
		t.Fatal(err)
	}
	zero := func() time.Time { return time.Unix(0, 0) }
	tu := &Tuner{Space: s, Strategy: SuccessiveHalving{ReductionFactor: 2, MinResource: 2, MaxResource: 8}, Now: zero}
	sum, err := tu.Run(context.Background(), func(ctx context.Context, tr Trial) (TrialResult, error) {
		if tr.Params["a"] == "3" && tr.Params["b"] == "y" {
			return TrialResult{}, errors.New("bad | value\nsecond line")
		}
		return quadratic(ctx, tr)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Tuning: successive halving

14 trials: 13 succeeded, 1 failed, 0 cancelled. 3 rungs.

Best: trial 12, loss 0.111111 (lower is better) after 8 rounds, with a=5, b=y.

| trial | config | rung | rounds | a | b | loss | status | time |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 0 | 0 | 0 | 2 | 3 | x | 4.83333 | succeeded | 0s |
| 1 | 1 | 0 | 2 | 3 | y |  | failed: bad \| value second line | 0s |
| 2 | 2 | 0 | 2 | 4 | x | 1.83333 | succeeded | 0s |
| 3 | 3 | 0 | 2 | 4 | y | 1.33333 | succeeded | 0s |
| 4 | 4 | 0 | 2 | 5 | x | 0.833333 | succeeded | 0s |
| 5 | 5 | 0 | 2 | 5 | y | 0.333333 | succeeded | 0s |
| 6 | 6 | 0 | 2 | 6 | x | 1.83333 | succeeded | 0s |
| 7 | 7 | 0 | 2 | 6 | y | 1.33333 | succeeded | 0s |
| 8 | 5 | 1 | 4 | 5 | y | 0.2 | succeeded | 0s |
| 9 | 4 | 1 | 4 | 5 | x | 0.7 | succeeded | 0s |
| 10 | 3 | 1 | 4 | 4 | y | 1.2 | succeeded | 0s |
| 11 | 7 | 1 | 4 | 6 | y | 1.2 | succeeded | 0s |
| **12** | 5 | 2 | 8 | 5 | y | **0.111111** | best | 0s |
| 13 | 4 | 2 | 8 | 5 | x | 0.611111 | succeeded | 0s |
`
	if got := sum.Markdown(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
