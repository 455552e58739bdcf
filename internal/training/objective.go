package training

import (
	"fmt"
	"math"
	"sort"
)

// Objective names, as XGBoost spells them.
const (
	BinaryLogistic   = "binary:logistic"
	MultiSoftprob    = "multi:softprob"
	RegSquaredError  = "reg:squarederror"
	CountPoisson     = "count:poisson"
	poissonDeltaStep = 0.7 // XGBoost's max_delta_step for count:poisson
)

// objective is a loss with its gradients, as XGBoost computes them.
type objective struct {
	name           string
	groups         int     // margins per row
	scalePosWeight float32 // binary:logistic
	maxDeltaStep   float32 // count:poisson's hessian
}

func newObjective(name string, numClass int, scalePosWeight, maxDeltaStep float64) objective {
	o := objective{name: name, groups: 1, scalePosWeight: float32(scalePosWeight), maxDeltaStep: float32(maxDeltaStep)}
	if name == MultiSoftprob {
		o.groups = numClass
	}
	return o
}

// checkLabels refuses labels the objective cannot learn from.
func (o objective) checkLabels(role string, labels []float32) error {
	for r, y := range labels {
		switch o.name {
		case BinaryLogistic:
			if y < 0 || y > 1 {
				return fmt.Errorf("%s: label of row %d is %v; %s needs labels from 0 to 1", role, r, y, o.name)
			}
		case MultiSoftprob:
			if y < 0 || int(y) >= o.groups || y != float32(math.Trunc(float64(y))) {
				return fmt.Errorf("%s: label of row %d is %v; %s with num_class %d needs class labels 0 to %d", role, r, y, o.name, o.groups, o.groups-1)
			}
		case CountPoisson:
			if y < 0 {
				return fmt.Errorf("%s: label of row %d is %v; %s needs labels >= 0", role, r, y, o.name)
			}
		}
	}
	return nil
}

// defaultBaseScore is the weighted mean label (what XGBoost 2's intercept
// estimate gives for these objectives), clamped to the objective's domain
// so that a data set of one class still trains.
func (o objective) defaultBaseScore(d *Dataset) float64 {
	if o.name == MultiSoftprob {
		return 0.5 // softmax ignores a shift common to all classes
	}
	var sum, wsum float64
	for r, y := range d.Labels {
		w := float64(d.weight(r))
		sum += w * float64(y)
		wsum += w
	}
	mean := sum / wsum
	switch o.name {
	case BinaryLogistic:
		return min(max(mean, 1e-6), 1-1e-6)
	case CountPoisson:
		return max(mean, 1e-6)
	}
	return mean
}

// checkBaseScore refuses a base_score outside the objective's domain.
func (o objective) checkBaseScore(b float64) error {
	switch {
	case math.IsNaN(b) || math.IsInf(b, 0):
		return fmt.Errorf("base_score %v: must be a finite number", b)
	case o.name == BinaryLogistic && (b <= 0 || b >= 1):
		return fmt.Errorf("base_score %v: must be between 0 and 1 (exclusive) for %s", b, o.name)
	case o.name == CountPoisson && b <= 0:
		return fmt.Errorf("base_score %v: must be > 0 for %s", b, o.name)
	}
	return nil
}

// baseMargin turns a base_score into the margin trees add to, as the
// runtime (and XGBoost's ProbToMargin) does.
func (o objective) baseMargin(b float32) float32 {
	switch o.name {
	case BinaryLogistic:
		return float32(-math.Log(1/float64(b) - 1))
	case CountPoisson:
		return float32(math.Log(float64(b)))
	}
	return b
}

// gradients fills gpair (gradient, hessian pairs, group-major: group g's
// pairs at gpair[g]) for rows lo to hi from the margins (row-major, groups
// per row), in float32 as XGBoost computes them.
func (o objective) gradients(margins, labels, weights []float32, gpair [][]float32, lo, hi int) {
	w := float32(1)
	switch o.name {
	case BinaryLogistic:
		gp := gpair[0]
		for r := lo; r < hi; r++ {
			if weights != nil {
				w = weights[r]
			}
			y := labels[r]
			if y == 1 {
				w *= o.scalePosWeight
			}
			p := float32(1 / (1 + math.Exp(-float64(margins[r]))))
			gp[2*r] = (p - y) * w
			gp[2*r+1] = max(p*(1-p), 1e-16) * w
		}
	case RegSquaredError:
		gp := gpair[0]
		for r := lo; r < hi; r++ {
			if weights != nil {
				w = weights[r]
			}
			gp[2*r] = (margins[r] - labels[r]) * w
			gp[2*r+1] = w
		}
	case CountPoisson:
		gp := gpair[0]
		for r := lo; r < hi; r++ {
			if weights != nil {
				w = weights[r]
			}
			m := float64(margins[r])
			gp[2*r] = (float32(math.Exp(m)) - labels[r]) * w
			gp[2*r+1] = float32(math.Exp(m+float64(o.maxDeltaStep))) * w
		}
	case MultiSoftprob:
		k := o.groups
		var stack [16]float32
		var p []float32
		if k > len(stack) {
			p = make([]float32, k)
		} else {
			p = stack[:k]
		}
		for r := lo; r < hi; r++ {
			if weights != nil {
				w = weights[r]
			}
			softmax(margins[r*k:(r+1)*k], p)
			y := int(labels[r])
			for g := range k {
				target := float32(0)
				if g == y {
					target = 1
				}
				gpair[g][2*r] = (p[g] - target) * w
				gpair[g][2*r+1] = max(2*p[g]*(1-p[g]), 1e-16) * w
			}
		}
	}
}

func softmax(margins, out []float32) {
	top := margins[0]
	for _, v := range margins[1:] {
		top = max(top, v)
	}
	var sum float32
	for g, v := range margins {
		out[g] = float32(math.Exp(float64(v - top)))
		sum += out[g]
	}
	for g := range out {
		out[g] /= sum
	}
}

// Metric names, as XGBoost spells them.
const (
	MetricLogLoss  = "logloss"
	MetricError    = "error"
	MetricAUC      = "auc"
	MetricRMSE     = "rmse"
	MetricMAE      = "mae"
	MetricMLogLoss = "mlogloss"
	MetricMError   = "merror"
	MetricPoisson  = "poisson-nloglik"
)

// metricsFor lists the metrics that make sense for an objective; the first
// is the default, as in XGBoost.
func metricsFor(objective string) []string {
	switch objective {
	case BinaryLogistic:
		return []string{MetricLogLoss, MetricAUC, MetricError, MetricRMSE}
	case MultiSoftprob:
		return []string{MetricMLogLoss, MetricMError}
	case CountPoisson:
		return []string{MetricPoisson, MetricRMSE, MetricMAE}
	}
	return []string{MetricRMSE, MetricMAE}
}

func maximize(metric string) bool { return metric == MetricAUC }

// evaluate scores margins (row-major, groups per row) against labels.
func evaluate(metric string, o objective, margins, labels, weights []float32) float64 {
	const eps = 1e-16
	k := o.groups
	var sum, wsum float64
	w := 1.0
	pred := func(r int) float64 {
		m := float64(margins[r])
		switch o.name {
		case BinaryLogistic:
			return 1 / (1 + math.Exp(-m))
		case CountPoisson:
			return math.Exp(m)
		}
		return m
	}
	switch metric {
	case MetricAUC:
		return auc(margins, labels, weights)
	case MetricMLogLoss, MetricMError:
		p := make([]float32, k)
		for r, y := range labels {
			if weights != nil {
				w = float64(weights[r])
			}
			softmax(margins[r*k:(r+1)*k], p)
			if metric == MetricMLogLoss {
				sum -= w * math.Log(max(float64(p[int(y)]), eps))
			} else {
				best := 0
				for g := range p {
					if p[g] > p[best] {
						best = g
					}
				}
				if best != int(y) {
					sum += w
				}
			}
			wsum += w
		}
		return sum / wsum
	}
	for r, y32 := range labels {
		if weights != nil {
			w = float64(weights[r])
		}
		y, p := float64(y32), pred(r)
		switch metric {
		case MetricLogLoss:
			p = min(max(p, eps), 1-eps)
			sum -= w * (y*math.Log(p) + (1-y)*math.Log(1-p))
		case MetricError:
			if (p > 0.5) != (y > 0.5) {
				sum += w
			}
		case MetricRMSE:
			sum += w * (y - p) * (y - p)
		case MetricMAE:
			sum += w * math.Abs(y-p)
		case MetricPoisson:
			p = max(p, eps)
			lg, _ := math.Lgamma(y + 1)
			sum += w * (p - y*math.Log(p) + lg)
		}
		wsum += w
	}
	if metric == MetricRMSE {
		return math.Sqrt(sum / wsum)
	}
	return sum / wsum
}

// auc is the weighted area under the ROC curve, with tied scores counted
// as half, as XGBoost's binary AUC does. Margins rank rows as the
// probabilities would.
func auc(margins, labels, weights []float32) float64 {
	idx := make([]int, len(labels))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return margins[idx[a]] > margins[idx[b]] })
	var tp, fp, area float64
	for i := 0; i < len(idx); {
		var dtp, dfp float64
		j := i
		for ; j < len(idx) && margins[idx[j]] == margins[idx[i]]; j++ {
			w := 1.0
			if weights != nil {
				w = float64(weights[idx[j]])
			}
			y := float64(labels[idx[j]])
			dtp += w * y
			dfp += w * (1 - y)
		}
		area += dfp * (tp + dtp/2)
		tp += dtp
		fp += dfp
		i = j
	}
	if tp == 0 || fp == 0 {
		return math.NaN()
	}
	return area / (tp * fp)
}
