package training_test

import (
	"context"
	"fmt"
	"math"

	"github.com/slipwayml/slipway/internal/training"
)

// Parameters are set by their XGBoost names; the model is XGBoost JSON.
func ExampleTrainGBDT() {
	nan := float32(math.NaN())
	train := &training.Dataset{
		Columns: [][]float32{
			{1, 2, 3, 4, 5, 6, 7, nan}, // a numeric feature, one value missing
			{0, 1, 2, 0, 1, 2, 0, 1},   // a categorical feature: codes
		},
		Names:       []string{"size", "color"},
		Categorical: []bool{false, true},
		Labels:      []float32{0, 0, 1, 0, 1, 1, 1, 1},
	}
	p := training.DefaultGBDTParams()
	for name, value := range map[string]string{"objective": "binary:logistic", "num_boost_round": "5", "max_depth": "2", "min_child_weight": "0"} {
		if err := p.Set(name, value); err != nil {
			panic(err)
		}
	}
	res, err := training.TrainGBDT(context.Background(), p, train, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Model.Booster(), res.Model.NumTrees(), "trees")
	_ = res.Model.JSON() // what xgboost.Booster(model_file=...) loads
	// Output: gbtree 5 trees
}
