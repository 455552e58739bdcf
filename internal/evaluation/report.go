// Package evaluation computes how good a model is on a labelled set:
// classification, calibration and regression metrics, the same metrics
// per slice of a categorical column, and feature importance. Metrics are
// defined as scikit-learn defines them (each type documents the choice)
// and cross-checked against it, so that a number Slipway reports is the
// number a data scientist would get in a notebook.
//
// A Report marshals to JSON without NaN or Inf: a metric that is
// undefined on the data is null, with the reason beside it.
package evaluation

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Report is one evaluation, as logged for a run: JSON as an artifact,
// Metrics as run metrics, Markdown for people.
type Report struct {
	Task     Task `json:"task"`
	Rows     int  `json:"rows"`
	Weighted bool `json:"weighted"`
	TaskMetrics
	Slices     []SliceReport `json:"slices,omitempty"`
	Importance *Importance   `json:"importance,omitempty"`
}

type namedMetric struct {
	key string
	v   *float64
}

func (m *BinaryMetrics) namedMetrics() []namedMetric {
	return []namedMetric{{"auc", m.AUC}, {"average_precision", m.AveragePrecision}, {"log_loss", m.LogLoss}, {"brier", m.Brier},
		{"accuracy", m.Accuracy}, {"precision", m.Precision}, {"recall", m.Recall}, {"f1", m.F1}, {"ece", m.Calibration.ECE}}
}

func (m *MulticlassMetrics) namedMetrics() []namedMetric {
	return []namedMetric{{"accuracy", m.Accuracy}, {"log_loss", m.LogLoss}, {"auc_ovr_macro", m.AUCMacro},
		{"precision_macro", m.PrecisionMacro}, {"recall_macro", m.RecallMacro}, {"f1_macro", m.F1Macro},
		{"precision_weighted", m.PrecisionWeighted}, {"recall_weighted", m.RecallWeighted}, {"f1_weighted", m.F1Weighted},
		{"ece", m.Calibration.ECE}}
}

func (m *RegressionMetrics) namedMetrics() []namedMetric {
	return []namedMetric{{"rmse", m.RMSE}, {"mse", m.MSE}, {"mae", m.MAE}, {"r2", m.R2}, {"mape", m.MAPE}}
}

// lowerIsBetter are the report's metrics of error or loss, where a
// smaller value is a better model; every other metric it reports (AUC,
// accuracy, precision, recall, F1, R2, ...) is better higher.
var lowerIsBetter = map[string]bool{"log_loss": true, "brier": true, "ece": true, "mse": true, "rmse": true, "mae": true, "mape": true}

// HigherIsBetter reports whether a larger value of metric, a key of
// Report.Metrics, means a better model, and whether the report has such a
// metric at all. A slice's metric ("slice.<column>.<value>.<metric>")
// goes by its metric. This is the one place the direction of a metric is
// defined: scorers, gates and comparisons ask here.
func HigherIsBetter(metric string) (higher, known bool) {
	if rest, ok := strings.CutPrefix(metric, "slice."); ok {
		metric = rest[strings.LastIndexByte(rest, '.')+1:]
	}
	for _, named := range [][]namedMetric{(&BinaryMetrics{}).namedMetrics(), (&MulticlassMetrics{}).namedMetrics(), (&RegressionMetrics{}).namedMetrics()} {
		for _, nm := range named {
			if nm.key == metric {
				return !lowerIsBetter[metric], true
			}
		}
	}
	return false, false
}

// MetricNames lists every metric a report may have for task, in the
// order reports list them.
func MetricNames(task Task) []string {
	var named []namedMetric
	switch task {
	case TaskBinary:
		named = (&BinaryMetrics{}).namedMetrics()
	case TaskMulticlass:
		named = (&MulticlassMetrics{}).namedMetrics()
	case TaskRegression:
		named = (&RegressionMetrics{}).namedMetrics()
	}
	out := make([]string, len(named))
	for i, nm := range named {
		out[i] = nm.key
	}
	return out
}

func (t TaskMetrics) named() ([]namedMetric, map[string]string) {
	switch {
	case t.Binary != nil:
		return t.Binary.namedMetrics(), t.Binary.Undefined
	case t.Multiclass != nil:
		return t.Multiclass.namedMetrics(), t.Multiclass.Undefined
	case t.Regression != nil:
		return t.Regression.namedMetrics(), t.Regression.Undefined
	}
	return nil, nil
}

// maxKeyPart bounds a column name or value inside a metric key, keeping
// keys well under MLflow's 250 characters.
const maxKeyPart = 80

// Metrics flattens the report's defined metrics for logging as run
// metrics: "auc", "log_loss", "rmse", ... for all rows, and
// "slice.<column>.<value>.<metric>" per slice. Characters MLflow refuses
// in a key (it allows letters, digits, _ - . space and /) become "_",
// as do "." and "/" inside a name so that keys split unambiguously; if
// two slices still meet on one key, later ones get "_2", "_3", ...
// Undefined metrics and skipped slices are left out. Importances stay in
// the JSON artifact: they describe features, not the model's quality.
func (r *Report) Metrics() map[string]float64 {
	out := map[string]float64{}
	named, _ := r.TaskMetrics.named()
	for _, nm := range named {
		if nm.v != nil {
			out[nm.key] = *nm.v
		}
	}
	used := map[string]bool{}
	for _, sr := range r.Slices {
		col := keyPart(sr.Column)
		for _, s := range sr.Slices {
			named, _ := s.TaskMetrics.named()
			if named == nil {
				continue
			}
			prefix := "slice." + col + "." + keyPart(s.Value)
			for n := 2; used[prefix]; n++ {
				prefix = "slice." + col + "." + keyPart(s.Value) + "_" + strconv.Itoa(n)
			}
			used[prefix] = true
			for _, nm := range named {
				if nm.v != nil {
					out[prefix+"."+nm.key] = *nm.v
				}
			}
		}
	}
	return out
}

func keyPart(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	if len(b) > maxKeyPart {
		b = b[:maxKeyPart]
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ' '
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// Markdown renders the report for people: the CLI prints it and logs it
// beside the JSON.
func (r *Report) Markdown() string {
	var b strings.Builder
	title := map[Task]string{TaskBinary: "binary classification", TaskMulticlass: "multiclass classification", TaskRegression: "regression"}[r.Task]
	fmt.Fprintf(&b, "# Evaluation: %s\n\n%d rows", title, r.Rows)
	if r.Weighted {
		b.WriteString(", weighted")
	}
	b.WriteString(".\n\n## Metrics\n\n| metric | value |\n| --- | --- |\n")
	named, undefined := r.TaskMetrics.named()
	for _, nm := range named {
		row(&b, nm.key, value(nm, undefined))
	}
	switch {
	case r.Binary != nil:
		m := r.Binary
		c := m.Confusion
		fmt.Fprintf(&b, "\n## Confusion matrix (threshold %s%s)\n\n| | predicted 0 | predicted 1 |\n| --- | --- | --- |\n", num(m.Threshold), weightNote(r.Weighted))
		row(&b, "actual 0", num(c.TN), num(c.FP))
		row(&b, "actual 1", num(c.FN), num(c.TP))
		calibrationTable(&b, m.Calibration, "fraction positive")
	case r.Multiclass != nil:
		m := r.Multiclass
		b.WriteString("\n## Per class\n\n| class | support | precision | recall | f1 | auc |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, c := range m.PerClass {
			row(&b, strconv.Itoa(c.Class), num(c.Support), value(namedMetric{"precision", c.Precision}, c.Undefined),
				value(namedMetric{"recall", c.Recall}, c.Undefined), value(namedMetric{"f1", c.F1}, c.Undefined),
				value(namedMetric{"auc", c.AUC}, c.Undefined))
		}
		fmt.Fprintf(&b, "\n## Confusion matrix (rows: actual, columns: predicted%s)\n\n|", weightNote(r.Weighted))
		for p := range m.Classes {
			fmt.Fprintf(&b, " | %d", p)
		}
		b.WriteString(" |\n|" + strings.Repeat(" --- |", m.Classes+1) + "\n")
		for t, counts := range m.Confusion {
			cells := make([]string, len(counts))
			for p, v := range counts {
				cells[p] = num(v)
			}
			row(&b, strconv.Itoa(t), cells...)
		}
		calibrationTable(&b, m.Calibration, "top class correct")
	}
	for _, sr := range r.Slices {
		sliceTable(&b, r.Task, sr)
	}
	if imp := r.Importance; imp != nil {
		if p := imp.Permutation; p != nil {
			fmt.Fprintf(&b, "\n## Permutation importance\n\nDrop in %s from %s when a feature is shuffled (%d repeats, seed %d).\n\n| feature | mean drop | std |\n| --- | --- | --- |\n",
				p.Metric, num(p.Baseline), p.Repeats, p.Seed)
			for _, f := range p.Features {
				row(&b, f.Feature, num(f.Mean), num(f.Std))
			}
		}
		if len(imp.Gain) > 0 {
			b.WriteString("\n## Gain importance\n\n| feature | gain | total gain | splits | share |\n| --- | --- | --- | --- | --- |\n")
			for _, g := range imp.Gain {
				row(&b, g.Feature, num(g.Gain), num(g.TotalGain), strconv.Itoa(g.Splits), num(g.Share))
			}
		}
	}
	return b.String()
}

// weightNote warns that confusion cells are summed weights, which need
// not add up to the row count.
func weightNote(weighted bool) string {
	if weighted {
		return "; cells are summed weights"
	}
	return ""
}

func calibrationTable(b *strings.Builder, c Calibration, observed string) {
	ece := "n/a"
	if c.ECE != nil {
		ece = num(*c.ECE)
	}
	fmt.Fprintf(b, "\n## Calibration (%d bins, ECE %s)\n\n| bin | rows | mean predicted | %s |\n| --- | --- | --- | --- |\n", len(c.Bins), ece, observed)
	for i, bin := range c.Bins {
		open := "("
		if i == 0 {
			open = "["
		}
		label := open + num(bin.Lower) + ", " + num(bin.Upper) + "]"
		mean, frac := "", ""
		if bin.MeanPredicted != nil {
			mean, frac = num(*bin.MeanPredicted), num(*bin.FractionPositive)
		}
		row(b, label, strconv.Itoa(bin.Rows), mean, frac)
	}
}

// sliceColumns are the metrics a slice table shows; the JSON has all.
var sliceColumns = map[Task][]string{
	TaskBinary:     {"auc", "log_loss", "accuracy", "f1"},
	TaskMulticlass: {"accuracy", "log_loss", "f1_macro"},
	TaskRegression: {"rmse", "mae", "r2"},
}

func sliceTable(b *strings.Builder, task Task, sr SliceReport) {
	cols := sliceColumns[task]
	fmt.Fprintf(b, "\n## Slices by %s\n\n| value | rows | %s | note |\n|%s\n", cell(sr.Column), strings.Join(cols, " | "), strings.Repeat(" --- |", len(cols)+3))
	for _, s := range sr.Slices {
		cells := []string{strconv.Itoa(s.Rows)}
		named, undefined := s.TaskMetrics.named()
		var notes []string
		for _, key := range cols {
			v := ""
			for _, nm := range named {
				if nm.key == key {
					if nm.v != nil {
						v = num(*nm.v)
					} else {
						v = "n/a"
						notes = append(notes, key+": "+undefined[key])
					}
				}
			}
			cells = append(cells, v)
		}
		if s.Skipped != "" {
			notes = append(notes, "skipped: "+s.Skipped)
		}
		value := s.Value
		if value == "" {
			value = "(empty)"
		}
		row(b, value, append(cells, strings.Join(notes, "; "))...)
	}
}

func value(nm namedMetric, undefined map[string]string) string {
	if nm.v == nil {
		if why := undefined[nm.key]; why != "" {
			return "n/a (" + why + ")"
		}
		return "n/a"
	}
	return num(*nm.v)
}

func row(b *strings.Builder, first string, rest ...string) {
	b.WriteString("| " + cell(first))
	for _, c := range rest {
		b.WriteString(" | " + cell(c))
	}
	b.WriteString(" |\n")
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// num prints whole numbers (counts, summed unit weights) without
// exponent and other values to six significant digits.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
