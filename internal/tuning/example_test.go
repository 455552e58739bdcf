package tuning_test

import (
	"context"
	"fmt"

	"github.com/slipwayml/slipway/internal/training"
	"github.com/slipwayml/slipway/internal/tuning"
)

// A random search over two GBDT parameters, two trials at a time.
func ExampleTuner() {
	train := &training.Dataset{Columns: [][]float32{{1, 2, 3, 4, 5, 6, 7, 8}}, Labels: []float32{0, 0, 1, 0, 1, 1, 1, 1}}
	valid := &training.Dataset{Columns: [][]float32{{1.5, 2.5, 6.5, 7.5}}, Labels: []float32{0, 0, 1, 1}}
	space, err := tuning.ParseFlags([]string{"max_depth=1,2,3", "eta=loguniform(0.05,0.5)", "min_child_weight=0"})
	if err != nil {
		panic(err)
	}
	base := training.DefaultGBDTParams()
	base.Rounds = 10
	tu := &tuning.Tuner{Space: space, Strategy: tuning.Random{Trials: 4, Seed: 1}, Parallel: 2}
	sum, err := tu.Run(context.Background(), tuning.GBDTTrial(train, valid, base))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(sum.Trials), "trials ranked by", sum.Metric, "- best is trial", sum.Best().Index)
	// Output: 4 trials ranked by logloss - best is trial 1
}
