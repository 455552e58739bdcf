package evaluation

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/slipwayml/slipway/internal/errs"
)

// BinaryMetrics rate a binary classifier's probabilities of the positive
// class. Every metric is a pointer: nil (JSON null) means undefined on
// this data, and Undefined says why under the metric's JSON name.
type BinaryMetrics struct {
	Rows int `json:"rows"`
	// Positives and Negatives are summed weights (row counts when
	// unweighted).
	Positives float64 `json:"positives"`
	Negatives float64 `json:"negatives"`

	// AUC is the area under the ROC curve by the trapezoidal rule over
	// distinct scores, so tied scores form one diagonal step, as sklearn's
	// roc_auc_score.
	AUC *float64 `json:"auc"`
	// AveragePrecision summarises the precision-recall curve as
	// sum((R_n - R_{n-1}) * P_n) over distinct scores, without
	// interpolation: sklearn's average_precision_score, which is not the
	// trapezoidal area (that one is optimistic).
	AveragePrecision *float64 `json:"average_precision"`
	// LogLoss clips probabilities to [eps, 1-eps] with eps the machine
	// epsilon of the probabilities' type, as sklearn's log_loss.
	LogLoss *float64 `json:"log_loss"`
	// Brier is the mean squared difference between probability and label.
	Brier *float64 `json:"brier"`

	// Threshold decides the class: a row is predicted positive when its
	// probability is >= Threshold, the same rule the ROC curve's points
	// (and sklearn's FixedThresholdClassifier) use.
	Threshold   float64           `json:"threshold"`
	Accuracy    *float64          `json:"accuracy"`
	Precision   *float64          `json:"precision"`
	Recall      *float64          `json:"recall"`
	F1          *float64          `json:"f1"`
	Confusion   BinaryConfusion   `json:"confusion"`
	Calibration Calibration       `json:"calibration"`
	Undefined   map[string]string `json:"undefined,omitempty"`
}

// BinaryConfusion holds summed weights (counts when unweighted).
type BinaryConfusion struct {
	TN float64 `json:"tn"`
	FP float64 `json:"fp"`
	FN float64 `json:"fn"`
	TP float64 `json:"tp"`
}

// Calibration is a reliability diagram over uniform bins of predicted
// probability and its expected calibration error.
type Calibration struct {
	Bins []CalibrationBin `json:"bins"`
	// ECE is the sum over bins of |FractionPositive - MeanPredicted|
	// weighted by the bin's share of the total weight.
	ECE *float64 `json:"ece"`
}

// CalibrationBin is one bin. A probability on an inner edge falls in the
// lower bin, as numpy.searchsorted places it in sklearn's
// calibration_curve; Lower and Upper are the edges numpy.linspace
// computes, so the bins match sklearn's to the bit.
type CalibrationBin struct {
	Lower  float64 `json:"lower"`
	Upper  float64 `json:"upper"`
	Rows   int     `json:"rows"`
	Weight float64 `json:"weight"`
	// MeanPredicted and FractionPositive are nil for a bin without
	// weight. For a multiclass model the bins hold the top class's
	// probability, and FractionPositive is the fraction of rows whose top
	// class is the true one.
	MeanPredicted    *float64 `json:"mean_predicted"`
	FractionPositive *float64 `json:"fraction_positive"`
}

// Binary rates probs, the probabilities of the positive class, against
// labels of 0 and 1, deciding the class at threshold.
func Binary[L, P Float](labels []L, probs []P, threshold float64, opt Options) (*BinaryMetrics, error) {
	if err := checkLengths("labels", len(labels), "probs", len(probs)); err != nil {
		return nil, err
	}
	if !(threshold >= 0 && threshold <= 1) {
		return nil, errs.Invalid("threshold is %v; it must be within [0, 1]", threshold)
	}
	bins, err := binsOf(opt.Bins)
	if err != nil {
		return nil, err
	}
	y, err := binaryLabels("labels", labels)
	if err != nil {
		return nil, err
	}
	p, err := probabilities("probs", probs)
	if err != nil {
		return nil, err
	}
	w, _, err := weightsOf("weights", opt.Weights, len(y), "labels")
	if err != nil {
		return nil, err
	}
	return binaryMetrics(y, p, w, threshold, bins, clipEps[P]()), nil
}

// binaryMetrics computes on checked inputs whose weights sum above zero.
func binaryMetrics(y, p, w []float64, threshold float64, bins int, eps float64) *BinaryMetrics {
	m := &BinaryMetrics{Rows: len(y), Threshold: threshold}
	c := &m.Confusion
	var loss, brier float64
	for i, label := range y {
		wi := w[i]
		predicted := p[i] >= threshold
		q := p[i]
		if label == 1 {
			m.Positives += wi
			if predicted {
				c.TP += wi
			} else {
				c.FN += wi
			}
		} else {
			q = 1 - q
			m.Negatives += wi
			if predicted {
				c.FP += wi
			} else {
				c.TN += wi
			}
		}
		loss -= wi * math.Log(min(max(q, eps), 1-eps))
		d := p[i] - label
		brier += wi * d * d
	}
	total := m.Positives + m.Negatives
	u := &m.Undefined
	setMetric(&m.LogLoss, u, "log_loss", loss/total, "")
	setMetric(&m.Brier, u, "brier", brier/total, "")
	setMetric(&m.Accuracy, u, "accuracy", (c.TP+c.TN)/total, "")

	why := ""
	if c.TP+c.FP == 0 {
		why = fmt.Sprintf("no row is predicted positive at threshold %v", threshold)
	}
	setMetric(&m.Precision, u, "precision", c.TP/(c.TP+c.FP), why)
	why = ""
	if m.Positives == 0 {
		why = noClass(m.Rows, "positive", "1")
	}
	setMetric(&m.Recall, u, "recall", c.TP/m.Positives, why)
	why = ""
	if 2*c.TP+c.FP+c.FN == 0 {
		why = "no row is positive in labels or predictions"
	}
	setMetric(&m.F1, u, "f1", 2*c.TP/(2*c.TP+c.FP+c.FN), why)

	auc, ap := rankMetrics(y, p, w)
	why = ""
	switch {
	case m.Positives == 0:
		why = noClass(m.Rows, "positive", "1") + "; AUC needs both classes"
	case m.Negatives == 0:
		why = noClass(m.Rows, "negative", "0") + "; AUC needs both classes"
	}
	setMetric(&m.AUC, u, "auc", auc, why)
	why = ""
	if m.Positives == 0 {
		why = noClass(m.Rows, "positive", "1") + "; average precision needs positives"
	}
	setMetric(&m.AveragePrecision, u, "average_precision", ap, why)

	m.Calibration = calibration(p, y, w, bins, total)
	return m
}

func noClass(rows int, class, label string) string {
	return fmt.Sprintf("no %s row (label %s, with weight above zero) among %d", class, label, rows)
}

// rankMetrics returns the ROC AUC and average precision of scores p for
// labels y; either is NaN when a class has no weight.
func rankMetrics(y, p, w []float64) (auc, ap float64) {
	idx := make([]int, 0, len(y))
	var pos, neg float64
	for i := range y {
		if w[i] == 0 {
			continue
		}
		idx = append(idx, i)
		if y[i] == 1 {
			pos += w[i]
		} else {
			neg += w[i]
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case p[a] > p[b]:
			return -1
		case p[a] < p[b]:
			return 1
		}
		return 0
	})
	var tp, fp, prevTP, prevFP, area float64
	for i := 0; i < len(idx); {
		score := p[idx[i]]
		for ; i < len(idx) && p[idx[i]] == score; i++ {
			if y[idx[i]] == 1 {
				tp += w[idx[i]]
			} else {
				fp += w[idx[i]]
			}
		}
		// One point per distinct score: tied rows move the curve
		// diagonally, which is what makes ties count half.
		area += (fp - prevFP) * (tp + prevTP) / 2
		if tp > prevTP {
			ap += (tp - prevTP) / pos * (tp / (tp + fp))
		}
		prevTP, prevFP = tp, fp
	}
	if pos == 0 || neg == 0 {
		auc = math.NaN()
	} else {
		auc = area / (pos * neg)
	}
	if pos == 0 {
		ap = math.NaN()
	}
	return auc, ap
}

// binEdges are numpy.linspace(0, 1, bins+1): i * (1/bins), with the last
// edge exactly 1.
func binEdges(bins int) []float64 {
	edges := make([]float64, bins+1)
	step := 1 / float64(bins)
	for i := range bins {
		edges[i] = float64(i) * step
	}
	edges[bins] = 1
	return edges
}

// calibration bins probabilities p against outcomes y (0 or 1).
func calibration(p, y, w []float64, bins int, total float64) Calibration {
	edges := binEdges(bins)
	inner := edges[1:bins]
	type acc struct {
		rows           int
		weight, sp, sy float64
	}
	accs := make([]acc, bins)
	for i, v := range p {
		b := sort.SearchFloat64s(inner, v)
		a := &accs[b]
		a.rows++
		a.weight += w[i]
		a.sp += w[i] * v
		a.sy += w[i] * y[i]
	}
	c := Calibration{Bins: make([]CalibrationBin, bins)}
	ece := 0.0
	for b, a := range accs {
		bin := CalibrationBin{Lower: edges[b], Upper: edges[b+1], Rows: a.rows, Weight: a.weight}
		if a.weight > 0 {
			mean, frac := a.sp/a.weight, a.sy/a.weight
			bin.MeanPredicted, bin.FractionPositive = &mean, &frac
			ece += a.weight / total * math.Abs(frac-mean)
		}
		c.Bins[b] = bin
	}
	c.ECE = &ece
	return c
}
