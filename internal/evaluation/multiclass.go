package evaluation

import (
	"fmt"
	"math"

	"github.com/slipwayml/slipway/internal/errs"
)

// MulticlassMetrics rate a classifier's class probabilities. The predicted
// class of a row is its most probable one, the first on ties (numpy's
// argmax). Metrics are pointers: nil (JSON null) means undefined on this
// data, and Undefined says why under the metric's JSON name.
type MulticlassMetrics struct {
	Rows    int `json:"rows"`
	Classes int `json:"classes"`

	Accuracy *float64 `json:"accuracy"`
	// LogLoss clips each probability to [eps, 1-eps], eps the machine
	// epsilon of the probabilities' type, and does not renormalise rows,
	// as sklearn's log_loss since 1.5.
	LogLoss *float64 `json:"log_loss"`

	// The averages run, as sklearn's by default, over the classes that
	// occur in the labels or the predictions (of any row, even one of
	// weight zero); a class's precision or
	// recall that is undefined (0/0) counts as 0 in them, as sklearn's
	// zero_division default does. Weighted averages weight each class by
	// its support.
	PrecisionMacro    *float64 `json:"precision_macro"`
	RecallMacro       *float64 `json:"recall_macro"`
	F1Macro           *float64 `json:"f1_macro"`
	PrecisionWeighted *float64 `json:"precision_weighted"`
	RecallWeighted    *float64 `json:"recall_weighted"`
	F1Weighted        *float64 `json:"f1_weighted"`
	// AUCMacro is the unweighted mean of the one-vs-rest ROC AUCs,
	// defined only when every class has both positive and negative rows,
	// as sklearn's roc_auc_score(multi_class="ovr").
	AUCMacro *float64 `json:"auc_ovr_macro"`

	PerClass []ClassMetrics `json:"per_class"`
	// Confusion[t][p] is the weight of rows of true class t predicted as
	// class p.
	Confusion [][]float64 `json:"confusion"`
	// Calibration bins the top class's probability (top-label
	// calibration, as in Guo et al. 2017).
	Calibration Calibration       `json:"calibration"`
	Undefined   map[string]string `json:"undefined,omitempty"`
}

// ClassMetrics are one class's one-vs-rest metrics.
type ClassMetrics struct {
	Class int `json:"class"`
	// Support is the weight of rows whose true class this is.
	Support   float64           `json:"support"`
	Precision *float64          `json:"precision"`
	Recall    *float64          `json:"recall"`
	F1        *float64          `json:"f1"`
	AUC       *float64          `json:"auc"`
	Undefined map[string]string `json:"undefined,omitempty"`
}

// Multiclass rates probs, a row-major matrix of one probability per class
// for each row, against labels in [0, classes).
func Multiclass[L Float | ~int, P Float](labels []L, probs []P, classes int, opt Options) (*MulticlassMetrics, error) {
	if classes < 2 {
		return nil, errs.Invalid("classes is %d; a classifier needs at least 2", classes)
	}
	if len(labels) == 0 {
		return nil, errs.Invalid("labels is empty; metrics need at least one row")
	}
	if len(probs) != len(labels)*classes {
		return nil, errs.Invalid("labels and probs differ in length: labels has %d rows, so probs needs %d values (%d classes each) but has %d",
			len(labels), len(labels)*classes, classes, len(probs))
	}
	bins, err := binsOf(opt.Bins)
	if err != nil {
		return nil, err
	}
	y, err := classLabels("labels", labels, classes)
	if err != nil {
		return nil, err
	}
	p, err := classProbabilities("probs", probs, classes)
	if err != nil {
		return nil, err
	}
	w, _, err := weightsOf("weights", opt.Weights, len(y), "labels")
	if err != nil {
		return nil, err
	}
	return multiclassMetrics(y, p, classes, w, bins, clipEps[P]()), nil
}

// multiclassMetrics computes on checked inputs whose weights sum above
// zero.
func multiclassMetrics(y []int, p []float64, k int, w []float64, bins int, eps float64) *MulticlassMetrics {
	n := len(y)
	m := &MulticlassMetrics{Rows: n, Classes: k, Confusion: make([][]float64, k)}
	for t := range m.Confusion {
		m.Confusion[t] = make([]float64, k)
	}
	// A class takes part in the averages when a row carries it as label
	// or prediction, whatever the row's weight: sklearn's unique_labels.
	present := make([]bool, k)
	top := make([]float64, n)
	correct := make([]float64, n)
	var total, right, loss float64
	for i, t := range y {
		row := p[i*k : (i+1)*k]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		wi := w[i]
		total += wi
		m.Confusion[t][best] += wi
		present[t], present[best] = true, true
		top[i] = row[best]
		if best == t {
			right += wi
			correct[i] = 1
		}
		loss -= wi * math.Log(min(max(row[t], eps), 1-eps))
	}
	u := &m.Undefined
	setMetric(&m.Accuracy, u, "accuracy", right/total, "")
	setMetric(&m.LogLoss, u, "log_loss", loss/total, "")

	var sums [6]float64 // precision, recall, F1: macro sums, then support-weighted sums
	nPresent := 0
	aucSum, aucWhy := 0.0, ""
	m.PerClass = make([]ClassMetrics, k)
	onehot := make([]float64, n)
	score := make([]float64, n)
	for c := range k {
		cm := ClassMetrics{Class: c}
		tp, predicted := m.Confusion[c][c], 0.0
		for t := range k {
			cm.Support += m.Confusion[c][t]
			predicted += m.Confusion[t][c]
		}
		prec, rec, f1 := tp/predicted, tp/cm.Support, 2*tp/(cm.Support+predicted)
		why := ""
		if predicted == 0 {
			why = fmt.Sprintf("no row is predicted as class %d", c)
		}
		setMetric(&cm.Precision, &cm.Undefined, "precision", prec, why)
		why = ""
		if cm.Support == 0 {
			why = fmt.Sprintf("no row of class %d carries weight", c)
		}
		setMetric(&cm.Recall, &cm.Undefined, "recall", rec, why)
		why = ""
		if cm.Support+predicted == 0 {
			why = fmt.Sprintf("class %d is neither a label nor a prediction of a weighted row", c)
		}
		setMetric(&cm.F1, &cm.Undefined, "f1", f1, why)

		for i, t := range y {
			onehot[i] = 0
			if t == c {
				onehot[i] = 1
			}
			score[i] = p[i*k+c]
		}
		auc, _ := rankMetrics(onehot, score, w)
		why = ""
		switch {
		case cm.Support == 0:
			why = fmt.Sprintf("no row of class %d carries weight; AUC needs both classes", c)
		case cm.Support == total:
			why = fmt.Sprintf("every weighted row is of class %d; AUC needs both classes", c)
		}
		setMetric(&cm.AUC, &cm.Undefined, "auc", auc, why)
		if cm.AUC != nil {
			aucSum += *cm.AUC
		} else if aucWhy == "" {
			aucWhy = cm.Undefined["auc"]
		}

		if present[c] {
			nPresent++
			for j, v := range []*float64{cm.Precision, cm.Recall, cm.F1} {
				if v != nil {
					sums[j] += *v
					sums[3+j] += cm.Support * *v
				}
			}
		}
		m.PerClass[c] = cm
	}
	macro := float64(nPresent)
	setMetric(&m.PrecisionMacro, u, "precision_macro", sums[0]/macro, "")
	setMetric(&m.RecallMacro, u, "recall_macro", sums[1]/macro, "")
	setMetric(&m.F1Macro, u, "f1_macro", sums[2]/macro, "")
	setMetric(&m.PrecisionWeighted, u, "precision_weighted", sums[3]/total, "")
	setMetric(&m.RecallWeighted, u, "recall_weighted", sums[4]/total, "")
	setMetric(&m.F1Weighted, u, "f1_weighted", sums[5]/total, "")
	setMetric(&m.AUCMacro, u, "auc_ovr_macro", aucSum/float64(k), aucWhy)
	m.Calibration = calibration(top, correct, w, bins, total)
	return m
}
