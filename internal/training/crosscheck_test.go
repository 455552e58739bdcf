package training

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// python is Debian's interpreter, which has python3-xgboost; another
// python3 on PATH may not.
const python = "/usr/bin/python3"

// needXGBoost skips the test without XGBoost and scikit-learn, except in
// CI, where they must be there.
func needXGBoost(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import xgboost, sklearn").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import xgboost and sklearn (apt-get install python3-xgboost python3-sklearn): %v", python, err)
		}
		t.Skipf("XGBoost cross-check skipped: %s cannot import xgboost and sklearn (apt-get install python3-xgboost python3-sklearn)", python)
	}
}

func runPython(t *testing.T, args ...string) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("xgbcheck.py %s: %v", args[0], time.Since(start).Round(time.Millisecond)) }()
	out, err := exec.Command(python, append([]string{"testdata/xgbcheck.py"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xgbcheck.py %v: %v\n%s", args, err, out)
	}
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
	}
	return out
}

func writeF32(t *testing.T, path string, v []float32) {
	t.Helper()
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[i*4:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// columns turns row-major values into a Dataset.
func columns(x []float32, nf int, labels []float32) *Dataset {
	n := len(labels)
	d := &Dataset{Columns: make([][]float32, nf), Labels: labels}
	for j := range nf {
		d.Columns[j] = make([]float32, n)
		for r := range n {
			d.Columns[j][r] = x[r*nf+j]
		}
	}
	return d
}

type exported struct {
	Name     string `json:"name"`
	Features int    `json:"features"`
	Train    int    `json:"train"`
	Test     int    `json:"test"`
}

type scoreJob struct {
	Model    string `json:"model"`
	X        string `json:"x"`
	Rows     int    `json:"rows"`
	Features int    `json:"features"`
	Out      string `json:"out"`
}

type trainJob struct {
	Params   map[string]any `json:"params"`
	Rounds   int            `json:"rounds"`
	X        string         `json:"x"`
	Y        string         `json:"y"`
	Rows     int            `json:"rows"`
	Features int            `json:"features"`
	Types    []string       `json:"types,omitempty"`
	TestX    string         `json:"test_x"`
	TestRows int            `json:"test_rows"`
	Out      string         `json:"out"`
	ModelOut string         `json:"model_out,omitempty"`
}

// sklearnJob fits a scikit-learn linear model with the objective
// TrainLinear minimises (missing values read as 0, features standardised
// when asked) and predicts the test rows.
type sklearnJob struct {
	Kind        string  `json:"kind"`
	Lambda      float64 `json:"lambda"`
	Standardize bool    `json:"standardize"`
	X           string  `json:"x"`
	Y           string  `json:"y"`
	Rows        int     `json:"rows"`
	Features    int     `json:"features"`
	TestX       string  `json:"test_x"`
	TestRows    int     `json:"test_rows"`
	Out         string  `json:"out"`
}

type manifest struct {
	Score   []scoreJob   `json:"score"`
	Train   []trainJob   `json:"train"`
	Sklearn []sklearnJob `json:"sklearn"`
}

// crossCase trains one model with Slipway and (when compare is set) the
// same parameters with XGBoost hist on the same split.
type crossCase struct {
	name    string
	data    string
	params  map[string]string
	linear  bool
	compare bool
	// sklearn names the scikit-learn estimator a linear model must agree
	// with: ridge, logistic or poisson.
	sklearn string
	// validate trains with the test rows as validation data.
	validate bool
}

// TestXGBoostCrossCheck trains Slipway models on scikit-learn's bundled
// data and a synthetic categorical set, then has XGBoost (1) load each
// model and score the test rows, which must equal Slipway's runtime within
// 1e-6, and (2) train hist with the same parameters on the same split,
// whose test AUC Slipway must reach within 0.005 (classification) and
// whose RMSE within 2% (regression).
func TestXGBoostCrossCheck(t *testing.T) {
	needXGBoost(t)
	dir := t.TempDir()
	runPython(t, "export", dir)
	var meta struct {
		XGBoost  string     `json:"xgboost"`
		Datasets []exported `json:"datasets"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "datasets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	sets := map[string][2]*Dataset{}
	for _, e := range meta.Datasets {
		load := func(part string, rows int) *Dataset {
			x := readF32(t, filepath.Join(dir, e.Name+"."+part+".x.f32"))
			y := readF32(t, filepath.Join(dir, e.Name+"."+part+".y.f32"))
			if len(y) != rows || len(x) != rows*e.Features {
				t.Fatalf("%s.%s: %d labels and %d values for %d rows of %d features", e.Name, part, len(y), len(x), rows, e.Features)
			}
			return columns(x, e.Features, y)
		}
		sets[e.Name] = [2]*Dataset{load("train", e.Train), load("test", e.Test)}
	}
	// A categorical feature whose effect is not monotone in its code.
	sets["categorical"] = [2]*Dataset{synth(4000, BinaryLogistic, 5), synth(2000, BinaryLogistic, 6)}
	sets["categorical_multi"] = [2]*Dataset{synth(3000, MultiSoftprob, 7), synth(1000, MultiSoftprob, 8)}
	sets["poisson"] = [2]*Dataset{synth(3000, CountPoisson, 9), synth(1000, CountPoisson, 10)}
	// The linear trainer takes numbers only.
	numeric := func(d *Dataset) *Dataset { c := *d; c.Categorical = nil; return &c }
	sets["poisson_numeric"] = [2]*Dataset{numeric(sets["poisson"][0]), numeric(sets["poisson"][1])}
	unnamed := func(d *Dataset) *Dataset { c := *d; c.Names = nil; return &c }
	sets["categorical_unnamed"] = [2]*Dataset{unnamed(sets["categorical"][0]), unnamed(sets["categorical"][1])}

	cases := []crossCase{
		{name: "cancer_default", data: "cancer", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "50"}, compare: true},
		{name: "cancer_regularised", data: "cancer_missing", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "100",
			"max_depth": "4", "eta": "0.1", "min_child_weight": "2", "lambda": "2", "gamma": "0.1", "alpha": "0.1"}, compare: true},
		{name: "cancer_sampled", data: "cancer_missing", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "100",
			"max_depth": "3", "eta": "0.1", "subsample": "0.8", "colsample_bytree": "0.8", "colsample_bynode": "0.8"}, compare: true},
		{name: "diabetes", data: "diabetes", params: map[string]string{"objective": RegSquaredError, "num_boost_round": "200",
			"max_depth": "2", "eta": "0.05"}, compare: true},
		{name: "friedman", data: "friedman", params: map[string]string{"objective": RegSquaredError, "num_boost_round": "200",
			"max_depth": "6", "eta": "0.1"}, compare: true},
		{name: "friedman_sampled", data: "friedman", params: map[string]string{"objective": RegSquaredError, "num_boost_round": "200",
			"max_depth": "5", "eta": "0.1", "subsample": "0.7", "colsample_bytree": "0.8", "max_bin": "64"}, compare: true},
		{name: "wine", data: "wine", params: map[string]string{"objective": MultiSoftprob, "num_class": "3", "num_boost_round": "50",
			"max_depth": "3", "eta": "0.1"}, compare: true},
		{name: "digits", data: "digits", params: map[string]string{"objective": MultiSoftprob, "num_class": "10", "num_boost_round": "30",
			"max_depth": "4"}, compare: true},
		{name: "categorical", data: "categorical", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "50",
			"max_depth": "4", "eta": "0.1"}, compare: true},
		{name: "categorical_onehot", data: "categorical", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "20",
			"max_depth": "3", "max_cat_to_onehot": "16"}},
		{name: "categorical_multi", data: "categorical_multi", params: map[string]string{"objective": MultiSoftprob, "num_class": "3",
			"num_boost_round": "20", "max_depth": "4"}},
		{name: "categorical_unnamed", data: "categorical_unnamed", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "10"}},
		{name: "early_stopped", data: "categorical_multi", validate: true, params: map[string]string{"objective": MultiSoftprob, "num_class": "3",
			"num_boost_round": "500", "eta": "0.5", "max_depth": "8", "min_child_weight": "0", "early_stopping_rounds": "3"}},
		// gamma above any gain: every tree is one leaf.
		{name: "stumps", data: "cancer", params: map[string]string{"objective": BinaryLogistic, "num_boost_round": "5", "gamma": "1e9"}},
		{name: "poisson", data: "poisson", params: map[string]string{"objective": CountPoisson, "num_boost_round": "30"}, compare: true},
	}
	cases = append(cases, linearCrossCases()...)

	var man manifest
	type trained struct {
		c       crossCase
		test    *Dataset
		runtime []float32
		outputs int
		xgbPred string
		skPred  string
	}
	var all []trained
	for _, c := range cases {
		train, test := sets[c.data][0], sets[c.data][1]
		var model *Model
		if c.linear {
			p := DefaultLinearParams()
			for k, v := range c.params {
				if err := p.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			res, err := TrainLinear(context.Background(), p, train)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !res.Converged {
				t.Errorf("%s: not converged after %d iterations", c.name, res.Iterations)
			}
			model = res.Model
		} else {
			p := DefaultGBDTParams()
			p.Seed = 3
			for k, v := range c.params {
				if err := p.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			var valid *Dataset
			if c.validate {
				valid = test
			}
			res, err := TrainGBDT(context.Background(), p, train, valid)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			model = res.Model
		}
		path := filepath.Join(dir, c.name+".model.json")
		if err := model.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		pred, rt := runtimePredict(t, model, test)
		xpath := filepath.Join(dir, c.name+".x.f32")
		writeF32(t, xpath, rowMajor(test))
		man.Score = append(man.Score, scoreJob{Model: path, X: xpath, Rows: test.Rows(), Features: test.NumFeatures(), Out: filepath.Join(dir, c.name+".score.f32")})
		tr := trained{c: c, test: test, runtime: pred, outputs: rt.NumOutputs()}
		if c.compare || c.sklearn != "" {
			writeF32(t, filepath.Join(dir, c.name+".train.x.f32"), rowMajor(train))
			writeF32(t, filepath.Join(dir, c.name+".train.y.f32"), train.Labels)
		}
		if c.sklearn != "" {
			p := DefaultLinearParams()
			for k, v := range c.params {
				_ = p.Set(k, v) // checked above
			}
			tr.skPred = filepath.Join(dir, c.name+".sklearn.f32")
			man.Sklearn = append(man.Sklearn, sklearnJob{Kind: c.sklearn, Lambda: p.Lambda, Standardize: p.Standardize,
				X: filepath.Join(dir, c.name+".train.x.f32"), Y: filepath.Join(dir, c.name+".train.y.f32"), Rows: train.Rows(),
				Features: train.NumFeatures(), TestX: xpath, TestRows: test.Rows(), Out: tr.skPred})
		}
		if c.compare {
			params := map[string]any{"tree_method": "hist", "seed": 3, "nthread": 1, "base_score": float64(model.BaseScore())}
			rounds := 0
			for k, v := range c.params {
				if k == "num_boost_round" {
					rounds, _ = strconv.Atoi(v)
					continue
				}
				params[k] = v
			}
			trainX := filepath.Join(dir, c.name+".train.x.f32")
			trainY := filepath.Join(dir, c.name+".train.y.f32")
			tr.xgbPred = filepath.Join(dir, c.name+".xgb.f32")
			man.Train = append(man.Train, trainJob{Params: params, Rounds: rounds, X: trainX, Y: trainY, Rows: train.Rows(),
				Features: train.NumFeatures(), Types: train.featureTypes(), TestX: xpath, TestRows: test.Rows(), Out: tr.xgbPred})
		}
		all = append(all, tr)
	}
	manPath := filepath.Join(dir, "manifest.json")
	raw, err = json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	runPython(t, "check", manPath)
	var result struct {
		TrainSeconds map[string]float64 `json:"train_seconds"`
	}
	if raw, err := os.ReadFile(manPath + ".result.json"); err == nil {
		_ = json.Unmarshal(raw, &result)
	}
	for k, v := range result.TrainSeconds {
		t.Logf("XGBoost trained %s in %.2fs", filepath.Base(k), v)
	}
	t.Logf("XGBoost %s", meta.XGBoost)
	for _, tr := range all {
		t.Run(tr.c.name, func(t *testing.T) {
			xgbScores := readF32(t, filepath.Join(dir, tr.c.name+".score.f32"))
			compareClose(t, tr.runtime, xgbScores, tr.outputs)
			if tr.skPred != "" {
				sk := readF32(t, tr.skPred)
				worst, scale := 0.0, 0.0
				for i := range sk {
					worst = max(worst, math.Abs(float64(sk[i])-float64(tr.runtime[i])))
					scale = max(scale, math.Abs(float64(sk[i])))
				}
				t.Logf("largest difference from scikit-learn's predictions: %.3g (largest prediction %.3g)", worst, scale)
				// The model holds float32 weights and XGBoost sums them in
				// float32; on raw features of a few thousand that alone
				// moves margins by about 1e-4.
				if worst > 5e-4*max(scale, 1) {
					t.Errorf("predictions differ from scikit-learn's by up to %.3g", worst)
				}
			}
			if tr.xgbPred == "" {
				return
			}
			theirs := readF32(t, tr.xgbPred)
			ours := tr.runtime
			labels := tr.test.Labels
			switch tr.c.params["objective"] {
			case BinaryLogistic:
				a, b := auc(ours, labels, nil), auc(theirs, labels, nil)
				t.Logf("test AUC: Slipway %.5f, XGBoost %.5f", a, b)
				if a < b-0.005 {
					t.Errorf("test AUC %.5f is more than 0.005 below XGBoost's %.5f", a, b)
				}
			case RegSquaredError:
				a, b := rmse(ours, labels), rmse(theirs, labels)
				t.Logf("test RMSE: Slipway %.5f, XGBoost %.5f (ratio %.4f)", a, b, a/b)
				if a > b*1.02 {
					t.Errorf("test RMSE %.5f is more than 2%% above XGBoost's %.5f", a, b)
				}
			case CountPoisson:
				a, b := poissonDeviance(ours, labels), poissonDeviance(theirs, labels)
				t.Logf("test Poisson deviance: Slipway %.5f, XGBoost %.5f (ratio %.4f)", a, b, a/b)
				if a > b*1.02 {
					t.Errorf("test Poisson deviance %.5f is more than 2%% above XGBoost's %.5f", a, b)
				}
			case MultiSoftprob:
				k := tr.outputs
				la, lb := mlogloss(ours, labels, k), mlogloss(theirs, labels, k)
				aa, ab := accuracy(ours, labels, k), accuracy(theirs, labels, k)
				t.Logf("test mlogloss: Slipway %.5f, XGBoost %.5f; accuracy %.4f, %.4f", la, lb, aa, ab)
				if la > lb*1.05+0.01 || aa < ab-0.02 {
					t.Errorf("test mlogloss %.5f / accuracy %.4f: not close to XGBoost's %.5f / %.4f", la, aa, lb, ab)
				}
			}
		})
	}
}

// compareClose requires XGBoost's scores within 1e-6 (relative above 1)
// of the runtime's.
func compareClose(t *testing.T, ours, theirs []float32, outputs int) {
	t.Helper()
	if len(ours) != len(theirs) {
		t.Fatalf("XGBoost gave %d scores; the runtime %d", len(theirs), len(ours))
	}
	worst, at := 0.0, 0
	for i := range ours {
		diff := math.Abs(float64(ours[i]) - float64(theirs[i]))
		if scale := math.Abs(float64(theirs[i])); scale > 1 {
			diff /= scale
		}
		if diff > worst || diff != diff {
			worst, at = diff, i
		}
	}
	if worst > 1e-6 || worst != worst {
		t.Fatalf("row %d output %d: runtime %v, XGBoost %v (difference %.3g)", at/outputs, at%outputs, ours[at], theirs[at], worst)
	}
}

func rmse(pred, labels []float32) float64 {
	s := 0.0
	for i, y := range labels {
		d := float64(pred[i]) - float64(y)
		s += d * d
	}
	return math.Sqrt(s / float64(len(labels)))
}

func poissonDeviance(pred, labels []float32) float64 {
	s := 0.0
	for i, y32 := range labels {
		y, mu := float64(y32), float64(pred[i])
		d := mu - y
		if y > 0 {
			d += y * math.Log(y/mu)
		}
		s += 2 * d
	}
	return s / float64(len(labels))
}

func mlogloss(prob, labels []float32, k int) float64 {
	s := 0.0
	for r, y := range labels {
		s -= math.Log(max(float64(prob[r*k+int(y)]), 1e-16))
	}
	return s / float64(len(labels))
}

func accuracy(prob, labels []float32, k int) float64 {
	right := 0
	for r, y := range labels {
		best := 0
		for g := range k {
			if prob[r*k+g] > prob[r*k+best] {
				best = g
			}
		}
		if best == int(y) {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}
