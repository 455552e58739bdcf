package tuning

import (
	"context"
	"slices"
	"testing"

	"github.com/slipwayml/slipway/internal/training"
)

func xorSpace(t *testing.T) Space {
	t.Helper()
	s, err := ParseSpace([]byte("max_depth: [1, 2, 4]\neta: [0.05, 0.3]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// On a problem only deeper trees can learn, successive halving, which
// gives most configurations 4 rounds, finds the configuration a full grid
// at 36 rounds finds, and scores it the same (training is deterministic).
func TestHalvingFindsTheGridBest(t *testing.T) {
	train, valid := xorData(2000, 1), xorData(1000, 2)
	base := training.DefaultGBDTParams()
	base.Rounds = 36
	fn := GBDTTrial(train, valid, base)

	grid, err := (&Tuner{Space: xorSpace(t), Strategy: Grid{}, Parallel: 2}).Run(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	halving, err := (&Tuner{Space: xorSpace(t), Strategy: SuccessiveHalving{MinResource: 4, MaxResource: 36}, Parallel: 2}).Run(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	gb, hb := grid.Best(), halving.Best()
	if gb.Params["max_depth"] != "4" {
		t.Fatalf("the grid's best is %v; the problem should need depth > 1", gb.Params)
	}
	if !mapsEqual(gb.Params, hb.Params) || gb.Score != hb.Score || hb.Resource != 36 || grid.Metric != "logloss" || grid.HigherIsBetter {
		t.Fatalf("halving's best %v (%s %v after %d rounds), the grid's %v (%v)", hb.Params, halving.Metric, hb.Score, hb.Resource, gb.Params, gb.Score)
	}
	// Depth 1 cannot learn XOR: its trials score about log(2).
	for _, r := range grid.Trials {
		if r.Params["max_depth"] == "1" && r.Score < 0.68 {
			t.Fatalf("a depth-1 model scored %v", r.Score)
		}
	}
	var sizes []int
	for _, r := range halving.Trials {
		for len(sizes) <= r.Rung {
			sizes = append(sizes, 0)
		}
		sizes[r.Rung]++
	}
	if !slices.Equal(sizes, []int{6, 2, 1}) || len(halving.Trials) != 9 {
		t.Fatalf("rung sizes %v", sizes)
	}
	// The best trial's model comes back, trained with its rounds.
	res, ok := hb.Artifact.(*training.Result)
	if !ok || res.Model.NumTrees() != 36 || res.Rounds != 36 || hb.Metrics["rounds"] != 36 || hb.Metrics["best_score"] != res.BestScore {
		t.Fatalf("artifact %T %+v, metrics %v", hb.Artifact, res, hb.Metrics)
	}
	if res.History[35] != hb.Score {
		t.Fatalf("score %v is not the 36-round model's %v", hb.Score, res.History[35])
	}
}

// Parallel GBDT trials (each with its share of threads) give the same
// summary as serial ones.
func TestGBDTParallelMatchesSerial(t *testing.T) {
	train, valid := xorData(1000, 3), xorData(500, 4)
	base := training.DefaultGBDTParams()
	base.EarlyStoppingRounds = 5
	base.EvalMetric = training.MetricAUC
	space, err := ParseFlags([]string{"max_depth=intuniform(1,5)", "eta=loguniform(0.02,0.5)", "subsample=uniform(0.5,1)"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(parallel int) *Summary {
		sum, err := (&Tuner{Space: space, Strategy: Random{Trials: 6, Seed: 11}, Parallel: parallel}).Run(context.Background(), GBDTTrial(train, valid, base))
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	serial, parallel := run(1), run(3)
	if diff := summaryDiff(serial, parallel); diff != "" {
		t.Fatal(diff)
	}
	if !serial.HigherIsBetter || serial.Metric != "auc" || serial.Best().Score < 0.9 {
		t.Fatalf("metric %s (higher is better: %v), best %+v", serial.Metric, serial.HigherIsBetter, serial.Best())
	}
	// With early stopping the score is the best round's, which the model
	// is cut back to.
	b := serial.Best()
	res := b.Artifact.(*training.Result)
	if b.Score != res.BestScore || res.Model.NumTrees() != res.BestIteration+1 {
		t.Fatalf("score %v, best %v at %d, %d trees", b.Score, res.BestScore, res.BestIteration, res.Model.NumTrees())
	}
}

func TestGBDTTrialErrors(t *testing.T) {
	train, valid := xorData(200, 5), xorData(100, 6)
	base := training.DefaultGBDTParams()
	base.Rounds = 3
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		space    []string
		strategy Strategy
		valid    *training.Dataset
		want     string
	}{
		{"rounds under halving", []string{"num_boost_round=5,10"}, SuccessiveHalving{MaxResource: 9}, valid,
			"all 2 trials failed; trial 0: num_boost_round: successive halving sets the number of rounds"},
		{"out of range", []string{"max_depth=0,40"}, Grid{}, valid, "all 2 trials failed; trial 0: max_depth 0: must be from 1 to 30"},
		{"unknown", []string{"depth=1,2"}, Grid{}, valid, `all 2 trials failed; trial 0: parameter "depth": unknown`},
		{"not a number", []string{"eta=fast"}, Grid{}, valid, `all 1 trials failed; trial 0: eta "fast": must be a number`},
		{"no validation data", []string{"eta=0.1"}, Grid{}, nil, "all 1 trials failed; trial 0: tuning: validation data is needed to score trials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			space, err := ParseFlags(c.space)
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&Tuner{Space: space, Strategy: c.strategy}).Run(ctx, GBDTTrial(train, c.valid, base))
			checkErr(t, err, "", c.want)
		})
	}
	// A grid may tune the rounds: they are just another parameter there.
	space, _ := ParseFlags([]string{"num_boost_round=2,4"})
	sum, err := (&Tuner{Space: space, Strategy: Grid{}}).Run(ctx, GBDTTrial(train, valid, base))
	if err != nil || sum.Trials[1].Metrics["rounds"] != 4 {
		t.Fatalf("%v %+v", err, sum)
	}
}

// HigherIsBetter agrees with the direction training's early stopping
// picks the best round by, for every metric of every objective.
func TestHigherIsBetterMatchesTraining(t *testing.T) {
	train, valid := xorData(300, 7), xorData(300, 8)
	for obj, metrics := range map[string][]string{
		training.BinaryLogistic:  {training.MetricLogLoss, training.MetricAUC, training.MetricError, training.MetricRMSE},
		training.RegSquaredError: {training.MetricRMSE, training.MetricMAE},
		training.MultiSoftprob:   {training.MetricMLogLoss, training.MetricMError},
		training.CountPoisson:    {training.MetricPoisson},
	} {
		for _, m := range metrics {
			p := training.DefaultGBDTParams()
			p.Objective, p.EvalMetric, p.Rounds, p.MaxDepth, p.LearningRate = obj, m, 30, 2, 0.5
			if obj == training.MultiSoftprob {
				p.NumClass = 2
			}
			res, err := training.TrainGBDT(context.Background(), p, train, valid)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Min(res.History)
			if HigherIsBetter(m) {
				want = slices.Max(res.History)
			}
			if res.BestScore != want || slices.Max(res.History) == slices.Min(res.History) {
				t.Errorf("%s %s: best %v, history from %v to %v; HigherIsBetter says %v", obj, m, res.BestScore, slices.Min(res.History), slices.Max(res.History), HigherIsBetter(m))
			}
		}
	}
}
