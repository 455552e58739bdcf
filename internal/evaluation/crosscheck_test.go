package evaluation_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayml/slipway/internal/evaluation"
	"github.com/slipwayml/slipway/internal/models/xgboost"
)

// python is Debian's interpreter, which has python3-sklearn; another
// python3 on PATH may not.
const python = "/usr/bin/python3"

// needPython skips the test when python cannot import the modules, except
// in CI, where the cross-check must run.
func needPython(t *testing.T, modules, packages string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+modules).Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import %s (apt-get install %s): %v", python, modules, packages, err)
		}
		t.Skipf("cross-check skipped: %s cannot import %s (apt-get install %s)", python, modules, packages)
	}
}

type binaryCase struct {
	Name      string    `json:"name"`
	Labels    []float64 `json:"labels"`
	Probs     any       `json:"probs"` // []float64 or []float32
	Weights   []float64 `json:"weights"`
	Threshold float64   `json:"threshold"`
	Bins      int       `json:"bins"`
	Float32   bool      `json:"float32"`
}

type multiclassCase struct {
	Name    string    `json:"name"`
	Labels  []int     `json:"labels"`
	Probs   []float64 `json:"probs"`
	Classes int       `json:"classes"`
	Weights []float64 `json:"weights"`
}

type regressionCase struct {
	Name    string    `json:"name"`
	Y       []float64 `json:"y"`
	Pred    []float64 `json:"pred"`
	Weights []float64 `json:"weights"`
}

type cases struct {
	Binary     []binaryCase     `json:"binary"`
	Multiclass []multiclassCase `json:"multiclass"`
	Regression []regressionCase `json:"regression"`
}

type sklearnBinary struct {
	AUC               float64   `json:"auc"`
	AveragePrecision  float64   `json:"average_precision"`
	LogLoss           float64   `json:"log_loss"`
	Brier             float64   `json:"brier"`
	Accuracy          float64   `json:"accuracy"`
	Precision         float64   `json:"precision"`
	Recall            float64   `json:"recall"`
	F1                float64   `json:"f1"`
	ECE               float64   `json:"ece"`
	Confusion         []float64 `json:"confusion"`
	FractionPositive  []float64 `json:"fraction_positive"`
	MeanPredicted     []float64 `json:"mean_predicted"`
	CalibrationSource string    `json:"calibration_source"`
}

type sklearnMulticlass struct {
	Accuracy          float64     `json:"accuracy"`
	LogLoss           float64     `json:"log_loss"`
	PrecisionMacro    float64     `json:"precision_macro"`
	RecallMacro       float64     `json:"recall_macro"`
	F1Macro           float64     `json:"f1_macro"`
	PrecisionWeighted float64     `json:"precision_weighted"`
	RecallWeighted    float64     `json:"recall_weighted"`
	F1Weighted        float64     `json:"f1_weighted"`
	AUCOvrMacro       *float64    `json:"auc_ovr_macro"`
	AUCError          string      `json:"auc_error"`
	Confusion         [][]float64 `json:"confusion"`
}

type sklearnOut struct {
	Version    string                       `json:"sklearn"`
	Binary     map[string]sklearnBinary     `json:"binary"`
	Multiclass map[string]sklearnMulticlass `json:"multiclass"`
	Regression map[string]struct {
		MSE  float64 `json:"mse"`
		RMSE float64 `json:"rmse"`
		MAE  float64 `json:"mae"`
		R2   float64 `json:"r2"`
		MAPE float64 `json:"mape"`
	} `json:"regression"`
	XGBoost *struct {
		Version   string             `json:"version"`
		Weight    map[string]float64 `json:"weight"`
		Gain      map[string]float64 `json:"gain"`
		TotalGain map[string]float64 `json:"total_gain"`
	} `json:"xgboost"`
}

// generate builds the cases: ties (scores rounded to a grid), zero and
// fractional weights, probabilities of exactly 0 and 1, values on the
// calibration bin edges, float32 probabilities, classes never predicted
// or never present, and zero regression targets.
func generate() cases {
	r := rand.New(rand.NewPCG(42, 1))
	bern := func(p float64) float64 {
		if r.Float64() < p {
			return 1
		}
		return 0
	}
	weights := func(n int) []float64 {
		w := make([]float64, n)
		for i := range w {
			switch r.IntN(5) {
			case 0:
				w[i] = 0
			case 1:
				w[i] = 1
			default:
				w[i] = r.Float64() * 3
			}
		}
		return w
	}
	var c cases

	n := 600
	y, p := make([]float64, n), make([]float64, n)
	for i := range n {
		p[i] = math.Round(r.Float64()*20) / 20
		y[i] = bern(0.2 + 0.6*p[i])
	}
	c.Binary = append(c.Binary, binaryCase{Name: "ties_weighted", Labels: y, Probs: p, Weights: weights(n), Threshold: 0.5, Bins: 10})

	n = 400
	y, p = make([]float64, n), make([]float64, n)
	for i := range n {
		p[i] = r.Float64()
		y[i] = bern(p[i])
	}
	c.Binary = append(c.Binary, binaryCase{Name: "smooth", Labels: y, Probs: p, Threshold: 0.3, Bins: 7})

	// k/10 is not k*0.1 (3/10 < 0.30000000000000004 = 3*0.1, numpy's
	// edge), so these land on either side of the edges.
	n = 300
	y, p = make([]float64, n), make([]float64, n)
	for i := range n {
		p[i] = float64(r.IntN(11)) / 10
		y[i] = bern(0.5)
	}
	c.Binary = append(c.Binary, binaryCase{Name: "edges_and_extremes", Labels: y, Probs: p, Threshold: 0.7, Bins: 10})
	c.Binary = append(c.Binary, binaryCase{Name: "edges_weighted", Labels: y, Probs: p, Weights: weights(n), Threshold: 0.7, Bins: 10})

	n = 1000
	y, p = make([]float64, n), make([]float64, n)
	for i := range n {
		y[i] = bern(0.03)
		p[i] = min(1, max(0, 0.05+0.4*y[i]+r.NormFloat64()*0.15))
	}
	c.Binary = append(c.Binary, binaryCase{Name: "imbalanced", Labels: y, Probs: p, Threshold: 0.2, Bins: 20})

	for _, weighted := range []bool{false, true} {
		n = 500
		y32, p32 := make([]float64, n), make([]float32, n)
		for i := range n {
			p32[i] = float32(math.Round(r.Float64()*64) / 64 * 0.999)
			y32[i] = bern(float64(p32[i]))
		}
		bc := binaryCase{Name: "float32", Labels: y32, Probs: p32, Threshold: 0.5, Bins: 5, Float32: true}
		if weighted {
			bc.Name, bc.Weights = "float32_weighted", weights(n)
		}
		c.Binary = append(c.Binary, bc)
	}

	softmax := func(logits []float64) []float64 {
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = max(mx, v)
		}
		s := 0.0
		out := make([]float64, len(logits))
		for i, v := range logits {
			out[i] = math.Exp(v - mx)
			s += out[i]
		}
		for i := range out {
			out[i] /= s
		}
		return out
	}
	multi := func(name string, n, k int, weighted bool, label func(i int) int, logit func(i, label, c int) float64) {
		mc := multiclassCase{Name: name, Classes: k, Labels: make([]int, n)}
		for i := range n {
			mc.Labels[i] = label(i)
			l := make([]float64, k)
			for j := range k {
				l[j] = logit(i, mc.Labels[i], j)
			}
			mc.Probs = append(mc.Probs, softmax(l)...)
		}
		if weighted {
			mc.Weights = weights(n)
		}
		c.Multiclass = append(c.Multiclass, mc)
	}
	signal := func(i, label, j int) float64 {
		v := r.NormFloat64()
		if j == label {
			v += 1.2
		}
		return v
	}
	multi("k3_weighted", 500, 3, true, func(int) int { return r.IntN(3) }, signal)
	multi("k4_never_predicted", 400, 4, false, func(int) int { return r.IntN(4) }, func(i, label, j int) float64 {
		if j == 3 {
			return -20
		}
		return signal(i, label, j)
	})
	multi("k4_never_labelled", 400, 4, true, func(int) int { return []int{0, 1, 3}[r.IntN(3)] }, signal)
	// Rounded logits tie often, so argmax's first-wins rule matters.
	multi("k5_ties", 300, 5, false, func(int) int { return r.IntN(5) }, func(i, label, j int) float64 {
		return math.Round(signal(i, label, j))
	})

	reg := func(name string, n int, weighted bool, zeros bool) {
		rc := regressionCase{Name: name, Y: make([]float64, n), Pred: make([]float64, n)}
		for i := range n {
			rc.Y[i] = r.NormFloat64()*10 + 3
			if zeros && i%50 == 0 {
				rc.Y[i] = 0
			}
			rc.Pred[i] = rc.Y[i] + r.NormFloat64()*2
		}
		if weighted {
			rc.Weights = weights(n)
		}
		c.Regression = append(c.Regression, rc)
	}
	reg("plain", 300, false, false)
	reg("weighted_zero_targets", 500, true, true)
	return c
}

func runSklearn(t *testing.T, c cases, xgbDir string) sklearnOut {
	t.Helper()
	dir := t.TempDir()
	in, outPath := filepath.Join(dir, "cases.json"), filepath.Join(dir, "out.json")
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"testdata/crosscheck.py", in, outPath}
	if xgbDir != "" {
		args = append(args, xgbDir)
	}
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	raw, err = os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var o sklearnOut
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// near fails unless got is within tol of want, relative to |want| when
// that is above 1.
func near(t *testing.T, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got null, sklearn %v", what, want)
		return
	}
	diff := math.Abs(*got - want)
	if s := math.Abs(want); s > 1 {
		diff /= s
	}
	if !(diff <= tol) {
		t.Errorf("%s: got %.17g, sklearn %.17g (difference %.3g)", what, *got, want, diff)
	}
}

func ptr(v float64) *float64 { return &v }

// TestMatchesScikitLearn holds every metric to sklearn's within 1e-9 on
// float64 data. On float32 probabilities sklearn computes log-loss partly
// in float32, so that one is held to 1e-6.
func TestMatchesScikitLearn(t *testing.T) {
	t.Parallel()
	needPython(t, "sklearn, numpy", "python3-sklearn")
	c := generate()
	want := runSklearn(t, c, "")
	t.Logf("scikit-learn %s", want.Version)
	const tol = 1e-9

	for _, bc := range c.Binary {
		t.Run("binary/"+bc.Name, func(t *testing.T) {
			w, ok := want.Binary[bc.Name]
			if !ok {
				t.Fatal("no sklearn result")
			}
			var m *evaluation.BinaryMetrics
			var err error
			opt := evaluation.Options{Weights: bc.Weights, Bins: bc.Bins}
			if bc.Float32 {
				m, err = evaluation.Binary(bc.Labels, bc.Probs.([]float32), bc.Threshold, opt)
			} else {
				m, err = evaluation.Binary(bc.Labels, bc.Probs.([]float64), bc.Threshold, opt)
			}
			if err != nil {
				t.Fatal(err)
			}
			lossTol := tol
			if bc.Float32 {
				lossTol = 1e-6
			}
			near(t, "auc", m.AUC, w.AUC, tol)
			near(t, "average_precision", m.AveragePrecision, w.AveragePrecision, tol)
			near(t, "log_loss", m.LogLoss, w.LogLoss, lossTol)
			near(t, "brier", m.Brier, w.Brier, tol)
			near(t, "accuracy", m.Accuracy, w.Accuracy, tol)
			near(t, "precision", m.Precision, w.Precision, tol)
			near(t, "recall", m.Recall, w.Recall, tol)
			near(t, "f1", m.F1, w.F1, tol)
			cm := m.Confusion
			for i, v := range []float64{cm.TN, cm.FP, cm.FN, cm.TP} {
				near(t, "confusion "+[]string{"tn", "fp", "fn", "tp"}[i], ptr(v), w.Confusion[i], tol)
			}
			var frac, mean []float64
			for _, b := range m.Calibration.Bins {
				if b.MeanPredicted != nil {
					frac, mean = append(frac, *b.FractionPositive), append(mean, *b.MeanPredicted)
				}
			}
			if len(frac) != len(w.FractionPositive) {
				t.Fatalf("calibration: %d non-empty bins, sklearn (%s) %d", len(frac), w.CalibrationSource, len(w.FractionPositive))
			}
			for i := range frac {
				near(t, "calibration fraction_positive", &frac[i], w.FractionPositive[i], tol)
				near(t, "calibration mean_predicted", &mean[i], w.MeanPredicted[i], tol)
			}
			near(t, "ece", m.Calibration.ECE, w.ECE, tol)
		})
	}

	for _, mc := range c.Multiclass {
		t.Run("multiclass/"+mc.Name, func(t *testing.T) {
			w, ok := want.Multiclass[mc.Name]
			if !ok {
				t.Fatal("no sklearn result")
			}
			m, err := evaluation.Multiclass(mc.Labels, mc.Probs, mc.Classes, evaluation.Options{Weights: mc.Weights})
			if err != nil {
				t.Fatal(err)
			}
			near(t, "accuracy", m.Accuracy, w.Accuracy, tol)
			near(t, "log_loss", m.LogLoss, w.LogLoss, tol)
			near(t, "precision_macro", m.PrecisionMacro, w.PrecisionMacro, tol)
			near(t, "recall_macro", m.RecallMacro, w.RecallMacro, tol)
			near(t, "f1_macro", m.F1Macro, w.F1Macro, tol)
			near(t, "precision_weighted", m.PrecisionWeighted, w.PrecisionWeighted, tol)
			near(t, "recall_weighted", m.RecallWeighted, w.RecallWeighted, tol)
			near(t, "f1_weighted", m.F1Weighted, w.F1Weighted, tol)
			for i, row := range w.Confusion {
				for j, v := range row {
					near(t, "confusion", &m.Confusion[i][j], v, tol)
				}
			}
			switch {
			case w.AUCOvrMacro != nil:
				near(t, "auc_ovr_macro", m.AUCMacro, *w.AUCOvrMacro, tol)
			case m.AUCMacro != nil:
				t.Errorf("auc_ovr_macro: got %v; sklearn refuses: %s", *m.AUCMacro, w.AUCError)
			default:
				t.Logf("auc_ovr_macro undefined as in sklearn (%s): %s", w.AUCError, m.Undefined["auc_ovr_macro"])
			}
		})
	}

	for _, rc := range c.Regression {
		t.Run("regression/"+rc.Name, func(t *testing.T) {
			w := want.Regression[rc.Name]
			m, err := evaluation.Regression(rc.Y, rc.Pred, evaluation.Options{Weights: rc.Weights})
			if err != nil {
				t.Fatal(err)
			}
			near(t, "mse", m.MSE, w.MSE, tol)
			near(t, "rmse", m.RMSE, w.RMSE, tol)
			near(t, "mae", m.MAE, w.MAE, tol)
			near(t, "r2", m.R2, w.R2, tol)
			near(t, "mape", m.MAPE, w.MAPE, tol)
		})
	}
}

// TestGainMatchesXGBoost checks that the XGBoost runtime's gain statistics
// are what Booster.get_score reports for the same model.
func TestGainMatchesXGBoost(t *testing.T) {
	t.Parallel()
	needPython(t, "sklearn, numpy, xgboost", "python3-sklearn python3-xgboost")
	dir := t.TempDir()
	want := runSklearn(t, cases{}, dir)
	if want.XGBoost == nil {
		t.Fatal("crosscheck.py wrote no XGBoost scores")
	}
	m, err := xgboost.LoadFile(filepath.Join(dir, "gain.json"))
	if err != nil {
		t.Fatal(err)
	}
	var importer evaluation.GainImporter = m
	got, err := evaluation.Gain(importer.FeatureGain())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("XGBoost %s", want.XGBoost.Version)
	for _, g := range got {
		// get_score leaves out features no tree splits on.
		if g.Splits == 0 {
			if _, ok := want.XGBoost.Weight[g.Feature]; ok {
				t.Errorf("%s: no splits, XGBoost counts %v", g.Feature, want.XGBoost.Weight[g.Feature])
			}
			continue
		}
		near(t, g.Feature+" splits", ptr(float64(g.Splits)), want.XGBoost.Weight[g.Feature], 0)
		// XGBoost sums float32 loss changes in float32 arithmetic.
		near(t, g.Feature+" total_gain", &g.TotalGain, want.XGBoost.TotalGain[g.Feature], 1e-6)
		near(t, g.Feature+" gain", &g.Gain, want.XGBoost.Gain[g.Feature], 1e-6)
	}
	if len(want.XGBoost.Weight) == 0 {
		t.Fatal("XGBoost reported no splits")
	}
}
