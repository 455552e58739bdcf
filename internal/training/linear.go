package training

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// LinearParams are the parameters of L2-regularised linear models.
// TrainLinear minimises
//
//	sum_i w_i loss(y_i, margin_i) / sum_i w_i  +  Lambda/2 * sum_j (c_j b_j)^2
//
// over the weights b_j and an unpenalised bias, where margin is the bias
// plus the weighted features (a missing value adding nothing, as in
// XGBoost's gblinear) and c_j is feature j's standard deviation when
// Standardize is set, else 1. With Standardize off this is exactly the
// objective XGBoost's gblinear minimises with the same lambda; with it on,
// Lambda penalises every feature alike whatever its units, as
// scikit-learn does after a StandardScaler.
type LinearParams struct {
	// Objective is binary:logistic, reg:squarederror, multi:softprob or
	// count:poisson.
	Objective string
	// NumClass is the number of classes for multi:softprob.
	NumClass int
	// Lambda is the L2 penalty (lambda).
	Lambda float64
	// Standardize penalises weights in units of their feature's standard
	// deviation; the model is written in the features' own units either
	// way.
	Standardize bool
	// MaxIter bounds the solver's iterations.
	MaxIter int
	// Tolerance stops the solver once the gradient's largest component is
	// this share of its first.
	Tolerance float64
	// Threads is the number of goroutines; 0 is GOMAXPROCS. The model
	// does not depend on it.
	Threads int
}

// DefaultLinearParams: logistic regression with a light penalty on
// standardised weights.
func DefaultLinearParams() LinearParams {
	return LinearParams{Objective: BinaryLogistic, Lambda: 1e-4, Standardize: true, MaxIter: 1000, Tolerance: 1e-7}
}

// Set sets one parameter by its XGBoost name (lambda, reg_lambda) or the
// names above in snake case (standardize, max_iter, tol).
func (p *LinearParams) Set(name, value string) error {
	if err := p.set(name, value); err != nil {
		return invalid(err)
	}
	return nil
}

func (p *LinearParams) set(name, value string) error {
	value = strings.TrimSpace(value)
	var err error
	switch name {
	case "objective":
		p.Objective = value
	case "num_class":
		p.NumClass, err = parseInt(name, value)
	case "lambda", "reg_lambda":
		p.Lambda, err = parseFloat(name, value)
	case "standardize":
		p.Standardize, err = strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("standardize %q: must be true or false", value)
		}
	case "max_iter":
		p.MaxIter, err = parseInt(name, value)
	case "tol":
		p.Tolerance, err = parseFloat(name, value)
	case "nthread", "n_jobs", "threads":
		p.Threads, err = parseInt(name, value)
	case "booster":
		if value != "gblinear" {
			return fmt.Errorf("booster %q: TrainLinear writes gblinear models; use TrainGBDT for gbtree", value)
		}
	case "alpha", "reg_alpha":
		return fmt.Errorf("%s: the linear trainer has no L1 penalty; use lambda", name)
	default:
		return fmt.Errorf("parameter %q: unknown (known: objective, num_class, lambda, standardize, max_iter, tol, nthread, booster)", name)
	}
	return err
}

// Validate checks every parameter; the error names the first that breaks
// a rule, and the rule.
func (p LinearParams) Validate() error {
	switch p.Objective {
	case BinaryLogistic, RegSquaredError, CountPoisson:
		if p.NumClass != 0 && p.NumClass != 1 {
			return fmt.Errorf("num_class %d: only multi:softprob has classes; leave it 0 for %s", p.NumClass, p.Objective)
		}
	case MultiSoftprob:
		if p.NumClass < 2 || p.NumClass > 1<<16 {
			return fmt.Errorf("num_class %d: must be from 2 to %d for %s", p.NumClass, 1<<16, p.Objective)
		}
	default:
		return fmt.Errorf("objective %q: must be one of %s, %s, %s, %s", p.Objective, BinaryLogistic, MultiSoftprob, RegSquaredError, CountPoisson)
	}
	if err := notNegative("lambda", p.Lambda); err != nil {
		return err
	}
	if p.MaxIter < 1 {
		return fmt.Errorf("max_iter %d: must be at least 1", p.MaxIter)
	}
	if !(p.Tolerance > 0 && p.Tolerance < 1) {
		return fmt.Errorf("tol %v: must be greater than 0 and less than 1", p.Tolerance)
	}
	if p.Threads < 0 {
		return fmt.Errorf("nthread %d: must not be negative (0 uses every core)", p.Threads)
	}
	return nil
}

// linChunk rows make one task of a pass over the data.
const linChunk = 16384

// linearProblem is the objective in standardised coordinates: with
// z_j = (x_j - mean_j) / sd_j (a missing x_j read as 0), the margin is
// b' + sum_j g_j z_j, so g_j = b_j sd_j. The solver works on (g, b'),
// which are all of one scale, so it converges in few iterations; the
// passes over the data use the raw weights b_j = g_j / sd_j.
type linearProblem struct {
	d       *Dataset
	obj     objective
	p, k    int // features, groups
	mean    []float64
	sd      []float64
	penalty []float64 // per feature, on g_j
	wsum    float64
	workers int
}

func (lp *linearProblem) dim() int { return (lp.p + 1) * lp.k }

// raw turns (g, b') into raw weights and biases, layout as gblinear's:
// feature-major, groups within a feature, the bias row last.
func (lp *linearProblem) raw(theta []float64) []float64 {
	p, k := lp.p, lp.k
	w := make([]float64, (p+1)*k)
	for g := range k {
		bias := theta[g*(p+1)+p]
		for j := range p {
			if lp.sd[j] == 0 {
				continue
			}
			b := theta[g*(p+1)+j] / lp.sd[j]
			w[j*k+g] = b
			bias -= b * lp.mean[j]
		}
		w[p*k+g] = bias
	}
	return w
}

// eval returns the objective and its gradient with respect to theta.
func (lp *linearProblem) eval(theta, grad []float64) float64 {
	p, k, n := lp.p, lp.k, lp.d.Rows()
	w := lp.raw(theta)
	nc := chunks(n, linChunk)
	// Each chunk's loss and raw gradient (features then bias, per group),
	// summed in chunk order afterwards.
	partLoss := make([]float64, nc)
	partGrad := make([][]float64, nc)
	forEach(lp.workers, nc, func(c int) {
		lo, hi := c*linChunk, min((c+1)*linChunk, n)
		m := hi - lo
		margins := make([]float64, m*k)
		for r := range m {
			copy(margins[r*k:(r+1)*k], w[p*k:])
		}
		for j, col := range lp.d.Columns {
			if lp.sd[j] == 0 {
				continue
			}
			wj := w[j*k : (j+1)*k]
			for r, v := range col[lo:hi] {
				if v == v {
					for g := range k {
						margins[r*k+g] += wj[g] * float64(v)
					}
				}
			}
		}
		resid := margins // reused: dloss/dmargin, times the row's weight
		loss := lp.lossAndResiduals(margins, resid, lo, hi)
		gr := make([]float64, (p+1)*k)
		for j, col := range lp.d.Columns {
			if lp.sd[j] == 0 {
				continue
			}
			for r, v := range col[lo:hi] {
				if v == v {
					for g := range k {
						gr[j*k+g] += resid[r*k+g] * float64(v)
					}
				}
			}
		}
		for r := range m {
			for g := range k {
				gr[p*k+g] += resid[r*k+g]
			}
		}
		partLoss[c], partGrad[c] = loss, gr
	})
	loss := 0.0
	rawGrad := make([]float64, (p+1)*k)
	for c := range nc {
		loss += partLoss[c]
		for i, v := range partGrad[c] {
			rawGrad[i] += v
		}
	}
	f := loss / lp.wsum
	for g := range k {
		gb := rawGrad[p*k+g] / lp.wsum
		grad[g*(p+1)+p] = gb
		for j := range p {
			i := g*(p+1) + j
			if lp.sd[j] == 0 {
				grad[i] = 0
				continue
			}
			gj := theta[i]
			grad[i] = (rawGrad[j*k+g]/lp.wsum-lp.mean[j]*gb)/lp.sd[j] + lp.penalty[j]*gj
			f += 0.5 * lp.penalty[j] * gj * gj
		}
	}
	return f
}

// lossAndResiduals returns the rows' weighted loss and overwrites margins
// with each row's weighted derivative of the loss by its margins.
func (lp *linearProblem) lossAndResiduals(margins, resid []float64, lo, hi int) float64 {
	k := lp.k
	loss := 0.0
	for r := range hi - lo {
		y := float64(lp.d.Labels[lo+r])
		w := float64(lp.d.weight(lo + r))
		switch lp.obj.name {
		case BinaryLogistic:
			m := margins[r]
			// log(1 + e^m) - y m, without overflow.
			loss += w * (math.Max(m, 0) + math.Log1p(math.Exp(-math.Abs(m))) - y*m)
			resid[r] = w * (1/(1+math.Exp(-m)) - y)
		case RegSquaredError:
			d := margins[r] - y
			loss += w * 0.5 * d * d
			resid[r] = w * d
		case CountPoisson:
			mu := math.Exp(margins[r])
			loss += w * (mu - y*margins[r])
			resid[r] = w * (mu - y)
		case MultiSoftprob:
			row := margins[r*k : (r+1)*k]
			top := row[0]
			for _, v := range row[1:] {
				top = math.Max(top, v)
			}
			sum := 0.0
			for _, v := range row {
				sum += math.Exp(v - top)
			}
			lse := top + math.Log(sum)
			cls := int(y)
			loss += w * (lse - row[cls])
			for g := range k {
				pg := math.Exp(row[g] - lse)
				if g == cls {
					pg--
				}
				resid[r*k+g] = w * pg
			}
		}
	}
	return loss
}

// LinearResult is a trained linear model and how the solver went.
type LinearResult struct {
	Model *Model
	// Iterations is the number of solver iterations; Converged says
	// whether the gradient fell to Tolerance before MaxIter ran out.
	Iterations int
	Converged  bool
	// Loss is the minimised objective: the mean loss plus the penalty.
	Loss float64
}

// TrainLinear fits an L2-regularised linear model (see LinearParams) and
// returns it as an XGBoost gblinear model. It takes numeric features only.
func TrainLinear(ctx context.Context, p LinearParams, d *Dataset) (*LinearResult, error) {
	if err := p.Validate(); err != nil {
		return nil, invalid(err)
	}
	obj := newObjective(p.Objective, p.NumClass, 1, 0)
	if err := d.validate("training data", nil); err != nil {
		return nil, invalid(err)
	}
	if err := obj.checkLabels("training data", d.Labels); err != nil {
		return nil, invalid(err)
	}
	for j := range d.Columns {
		if d.isCategorical(j) {
			// Codes are names, not amounts: a weight per code step would
			// be a model of the coding, not of the data.
			return nil, errs.Invalid("training data: feature %s is categorical; the linear trainer reads numbers only (one-hot encode it, or leave it out)", d.featureName(j))
		}
	}
	nf := d.NumFeatures()
	lp := &linearProblem{d: d, obj: obj, p: nf, k: obj.groups, workers: threadCount(p.Threads),
		mean: make([]float64, nf), sd: make([]float64, nf), penalty: make([]float64, nf)}
	for r := range d.Rows() {
		lp.wsum += float64(d.weight(r))
	}
	forEach(lp.workers, nf, func(j int) {
		var sum, sq float64
		for r, v := range d.Columns[j] {
			if v == v {
				w := float64(d.weight(r))
				sum += w * float64(v)
				sq += w * float64(v) * float64(v)
			}
		}
		mean := sum / lp.wsum
		lp.mean[j] = mean
		lp.sd[j] = math.Sqrt(math.Max(sq/lp.wsum-mean*mean, 0))
		// A feature constant to float64 rounding carries no signal; its
		// weight stays 0 rather than dividing by a rounding error.
		if lp.sd[j] <= 1e-12*math.Max(math.Abs(mean), 1) {
			lp.sd[j] = 0
		}
		if p.Standardize {
			lp.penalty[j] = p.Lambda
		} else if lp.sd[j] > 0 {
			lp.penalty[j] = p.Lambda / (lp.sd[j] * lp.sd[j])
		}
	})
	theta := make([]float64, lp.dim())
	lp.initBias(theta)
	res := &LinearResult{}
	var err error
	if res.Loss, res.Iterations, res.Converged, err = lbfgs(ctx, lp, theta, p.MaxIter, p.Tolerance); err != nil {
		return nil, err
	}
	w := lp.raw(theta)
	weights := make([]float32, len(w))
	for i, v := range w {
		weights[i] = float32(v)
	}
	base := float32(0) // the bias carries the intercept: base_score adds a zero margin
	switch obj.name {
	case BinaryLogistic, MultiSoftprob:
		base = 0.5
	case CountPoisson:
		base = 1
	}
	res.Model = &Model{
		objective: obj, booster: "gblinear", numFeat: nf, names: d.Names, types: d.featureTypes(),
		baseScore: base, linear: weights, rounds: 1,
		attributes: map[string]string{"best_iteration": "0", "best_ntree_limit": "0"},
	}
	return res, nil
}

// initBias starts the bias at the best constant model.
func (lp *linearProblem) initBias(theta []float64) {
	d := lp.d
	k, p := lp.k, lp.p
	if lp.obj.name == MultiSoftprob {
		counts := make([]float64, k)
		for r, y := range d.Labels {
			counts[int(y)] += float64(d.weight(r))
		}
		for g := range k {
			theta[g*(p+1)+p] = math.Log(math.Max(counts[g]/lp.wsum, 1e-6))
		}
		return
	}
	mean := 0.0
	for r, y := range d.Labels {
		mean += float64(d.weight(r)) * float64(y)
	}
	mean /= lp.wsum
	switch lp.obj.name {
	case BinaryLogistic:
		mean = math.Min(math.Max(mean, 1e-6), 1-1e-6)
		theta[p] = math.Log(mean / (1 - mean))
	case CountPoisson:
		theta[p] = math.Log(math.Max(mean, 1e-6))
	default:
		theta[p] = mean
	}
}

// lbfgs minimises the problem from theta in place: limited-memory BFGS
// with ten pairs and a backtracking line search. Every objective here is
// convex and smooth, so that is enough. It returns the objective, the
// iterations taken and whether the gradient met the tolerance.
func lbfgs(ctx context.Context, lp *linearProblem, theta []float64, maxIter int, tol float64) (float64, int, bool, error) {
	const memory = 10
	n := len(theta)
	grad := make([]float64, n)
	f := lp.eval(theta, grad)
	g0 := normInf(grad)
	if g0 == 0 {
		return f, 0, true, nil
	}
	var ss, ys [][]float64
	var rhos []float64
	dir := make([]float64, n)
	next := make([]float64, n)
	nextGrad := make([]float64, n)
	alpha := make([]float64, memory)
	for iter := 0; iter < maxIter; iter++ {
		if err := ctx.Err(); err != nil {
			return 0, iter, false, err
		}
		if normInf(grad) <= tol*g0 {
			return f, iter, true, nil
		}
		// Two-loop recursion: dir = -H grad.
		copy(dir, grad)
		for i := len(ss) - 1; i >= 0; i-- {
			alpha[i] = rhos[i] * dot(ss[i], dir)
			axpy(-alpha[i], ys[i], dir)
		}
		if len(ss) > 0 {
			last := len(ss) - 1
			scale(dot(ss[last], ys[last])/dot(ys[last], ys[last]), dir)
		} else {
			scale(1/math.Max(normInf(grad), 1), dir)
		}
		for i := range ss {
			beta := rhos[i] * dot(ys[i], dir)
			axpy(alpha[i]-beta, ss[i], dir)
		}
		scale(-1, dir)
		slope := dot(grad, dir)
		if slope >= 0 {
			// Not a descent direction (rounding): restart from the gradient.
			ss, ys, rhos = nil, nil, nil
			copy(dir, grad)
			scale(-1/math.Max(normInf(grad), 1), dir)
			slope = dot(grad, dir)
		}
		step := 1.0
		var fn float64
		for tries := 0; ; tries++ {
			for i := range theta {
				next[i] = theta[i] + step*dir[i]
			}
			fn = lp.eval(next, nextGrad)
			if fn <= f+1e-4*step*slope {
				break
			}
			if tries == 60 {
				// No step decreases f: as converged as float64 allows.
				return f, iter, true, nil
			}
			step /= 2
		}
		s := make([]float64, n)
		y := make([]float64, n)
		for i := range theta {
			s[i] = next[i] - theta[i]
			y[i] = nextGrad[i] - grad[i]
		}
		if sy := dot(s, y); sy > 1e-12*dot(y, y) {
			if len(ss) == memory {
				ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
			}
			ss, ys, rhos = append(ss, s), append(ys, y), append(rhos, 1/sy)
		}
		copy(theta, next)
		copy(grad, nextGrad)
		if f-fn <= 1e-15*math.Max(math.Abs(f), 1) && normInf(grad) <= math.Sqrt(tol)*g0 {
			return fn, iter + 1, true, nil // no longer improving
		}
		f = fn
	}
	return f, maxIter, normInf(grad) <= tol*g0, nil
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

func normInf(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
