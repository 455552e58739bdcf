package evaluation

import (
	"fmt"
	"math"
)

// RegressionMetrics rate predictions of a numeric target. Metrics are
// pointers: nil (JSON null) means undefined on this data (or beyond
// float64), and Undefined says why under the metric's JSON name.
type RegressionMetrics struct {
	Rows int      `json:"rows"`
	MSE  *float64 `json:"mse"`
	RMSE *float64 `json:"rmse"`
	MAE  *float64 `json:"mae"`
	// R2 is 1 - SS_res/SS_tot around the weighted mean, undefined when
	// the targets are constant. (sklearn's r2_score reports 1.0 or 0.0
	// there instead, a convention, not a measurement.)
	R2 *float64 `json:"r2"`
	// MAPE is mean(|y - pred| / max(|y|, eps)) with eps float64's machine
	// epsilon, as a fraction (0.1 is 10%), as sklearn's
	// mean_absolute_percentage_error: a zero target makes it enormous
	// rather than infinite. ZeroTargets counts such rows so that a huge
	// MAPE can be told apart from a bad model.
	MAPE        *float64          `json:"mape"`
	ZeroTargets int               `json:"zero_targets,omitempty"`
	Undefined   map[string]string `json:"undefined,omitempty"`
}

// Regression rates pred against the targets y.
func Regression[L, P Float](y []L, pred []P, opt Options) (*RegressionMetrics, error) {
	if err := checkLengths("y", len(y), "pred", len(pred)); err != nil {
		return nil, err
	}
	t, err := finite("y", y)
	if err != nil {
		return nil, err
	}
	p, err := finite("pred", pred)
	if err != nil {
		return nil, err
	}
	w, _, err := weightsOf("weights", opt.Weights, len(t), "y")
	if err != nil {
		return nil, err
	}
	return regressionMetrics(t, p, w), nil
}

// regressionMetrics computes on checked inputs whose weights sum above
// zero.
func regressionMetrics(y, p, w []float64) *RegressionMetrics {
	const eps = 0x1p-52
	m := &RegressionMetrics{Rows: len(y)}
	var total, sse, sae, sape, sy float64
	for i, t := range y {
		wi := w[i]
		d := t - p[i]
		total += wi
		sse += wi * d * d
		sae += wi * math.Abs(d)
		if math.Abs(t) < eps {
			m.ZeroTargets++
		}
		sape += wi * math.Abs(d) / max(math.Abs(t), eps)
		sy += wi * t
	}
	mean := sy / total
	sst := 0.0
	for i, t := range y {
		d := t - mean
		sst += w[i] * d * d
	}
	u := &m.Undefined
	mse := sse / total
	setMetric(&m.MSE, u, "mse", mse, "")
	setMetric(&m.RMSE, u, "rmse", math.Sqrt(mse), "")
	setMetric(&m.MAE, u, "mae", sae/total, "")
	setMetric(&m.MAPE, u, "mape", sape/total, "")
	why := ""
	switch {
	case len(y) < 2:
		why = "R2 needs at least 2 rows"
	case sst == 0:
		why = fmt.Sprintf("every target with weight is %v, so R2 has no variance to explain", mean)
	}
	setMetric(&m.R2, u, "r2", 1-sse/sst, why)
	return m
}
