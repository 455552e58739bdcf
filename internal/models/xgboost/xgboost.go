// Package xgboost loads XGBoost models saved as JSON or UBJSON (the formats
// of Booster.save_model; UBJSON is the default since XGBoost 2.1) and
// predicts exactly what XGBoost predicts, without Python: boosters gbtree,
// dart and gblinear; numeric and categorical splits; missing values with
// default directions; the objectives of classification, regression and
// counts.
package xgboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/slipwayml/slipway/internal/models"
)

// Model is a loaded XGBoost model. It is immutable and safe for
// concurrent use.
type Model struct {
	objective   string
	booster     string
	numFeature  int
	numGroup    int // margins per row: classes for multi:*, else 1
	baseMargin  []float32
	transform   transform
	numOutputs  int
	signature   models.Signature
	version     []int
	attributes  map[string]string
	forest      forest    // gbtree and dart
	linear      []float32 // gblinear: (numFeature+1) x numGroup, bias last
	featureName []string
}

var _ models.Model = (*Model)(nil)

// maxClasses bounds num_class, so that a damaged file cannot make the
// loader allocate without limit.
const maxClasses = 1 << 16

// LoadFile reads a model file; see Load.
func LoadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load reads a model saved by XGBoost as JSON or UBJSON, telling them
// apart by content. Errors name what is wrong with the file.
func Load(data []byte) (*Model, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("xgboost model: the file is empty")
	}
	if trimmed[0] != '{' {
		return nil, errors.New("xgboost model: neither JSON nor UBJSON (an XGBoost binary .model/.bin file? load it in XGBoost and save_model it as .json or .ubj)")
	}
	if len(trimmed) > 1 && !isJSONAfterBrace(trimmed[1]) {
		converted, err := ubjsonToJSON(trimmed)
		if err != nil {
			return nil, fmt.Errorf("xgboost model: %w", err)
		}
		trimmed = converted
	}
	var f modelFile
	if err := json.Unmarshal(quoteNonFinite(trimmed), &f); err != nil {
		return nil, fmt.Errorf("xgboost model: %w", jsonError(err))
	}
	m, err := build(&f)
	if err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	return m, nil
}

// isJSONAfterBrace tells JSON's "{" from UBJSON's: in JSON a key's quote,
// whitespace or "}" follows; in UBJSON the key's length marker, "$" or "#".
func isJSONAfterBrace(b byte) bool {
	return b == '"' || b == '}' || b == ' ' || b == '\n' || b == '\r' || b == '\t'
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Errorf("field %s: must not be a JSON %s", typeErr.Field, typeErr.Value)
	}
	return err
}

func build(f *modelFile) (*Model, error) {
	if f.Learner == nil {
		return nil, errors.New(`no "learner" object: not an XGBoost model`)
	}
	l := f.Learner
	m := &Model{objective: l.Objective.Name, version: f.Version, attributes: l.Attributes}
	var err error
	if m.numFeature, err = intParam("learner_model_param.num_feature", l.LearnerModelParam.NumFeature, 0); err != nil {
		return nil, err
	}
	if m.numFeature == 0 || m.numFeature > featureMask {
		return nil, fmt.Errorf("learner_model_param.num_feature %d: must be from 1 to %d", m.numFeature, featureMask)
	}
	numClass, err := intParam("learner_model_param.num_class", l.LearnerModelParam.NumClass, 0)
	if err != nil {
		return nil, err
	}
	numTarget, err := intParam("learner_model_param.num_target", l.LearnerModelParam.NumTarget, 1)
	if err != nil {
		return nil, err
	}
	if numTarget > 1 {
		return nil, fmt.Errorf("learner_model_param.num_target %d: multi-target models are not supported", numTarget)
	}
	if numClass > maxClasses {
		return nil, fmt.Errorf("learner_model_param.num_class %d: more than %d classes", numClass, maxClasses)
	}
	m.numGroup = max(numClass, 1)
	if m.transform, m.numOutputs, err = objective(m.objective, m.numGroup); err != nil {
		return nil, err
	}
	base, err := baseScores(l.LearnerModelParam.BaseScore)
	if err != nil {
		return nil, err
	}
	if len(base) != 1 && len(base) != m.numGroup {
		return nil, fmt.Errorf("base_score has %d values for %d output groups", len(base), m.numGroup)
	}
	m.baseMargin = make([]float32, m.numGroup)
	for g := range m.baseMargin {
		b := base[0]
		if len(base) > 1 {
			b = base[g]
		}
		if m.baseMargin[g], err = probToMargin(m.objective, b); err != nil {
			return nil, err
		}
	}
	if err := m.features(l.FeatureNames, l.FeatureTypes); err != nil {
		return nil, err
	}
	if err := m.loadBooster(l.GradientBooster); err != nil {
		return nil, err
	}
	m.signature = m.buildSignature(l.FeatureTypes)
	return m, nil
}

func (m *Model) features(names, types []string) error {
	if len(names) != 0 && len(names) != m.numFeature {
		return fmt.Errorf("feature_names has %d names for %d features", len(names), m.numFeature)
	}
	if len(types) != 0 && len(types) != m.numFeature {
		return fmt.Errorf("feature_types has %d types for %d features", len(types), m.numFeature)
	}
	for i, t := range types {
		switch t {
		case "float", "q", "int", "i", "c":
		default:
			return fmt.Errorf("feature_types[%d] %q: unknown feature type (known: float, q, int, i, c)", i, t)
		}
	}
	m.featureName = names
	return nil
}

func (m *Model) loadBooster(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New(`no "gradient_booster": the model has no booster`)
	}
	var h boosterHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("gradient_booster: %w", jsonError(err))
	}
	m.booster = h.Name
	switch h.Name {
	case "gbtree":
		var b gbtreeBooster
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("gradient_booster: %w", jsonError(err))
		}
		return m.loadTrees(&b.Model, nil)
	case "dart":
		var b dartBooster
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("gradient_booster: %w", jsonError(err))
		}
		var weights float32s
		if err := weights.parse("weight_drop", b.WeightDrop); err != nil {
			return err
		}
		if weights == nil {
			weights = float32s{}
		}
		return m.loadTrees(&b.GBTree.Model, weights)
	case "gblinear":
		var b gblinearBooster
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("gradient_booster: %w", jsonError(err))
		}
		var weights float32s
		if err := weights.parse("weights", b.Model.Weights); err != nil {
			return err
		}
		want := (m.numFeature + 1) * m.numGroup
		if len(weights) != want {
			return fmt.Errorf("gblinear weights: %d values; %d features and %d output groups need %d", len(weights), m.numFeature, m.numGroup, want)
		}
		m.linear = weights
		return nil
	case "":
		return errors.New(`gradient_booster: no "name"`)
	}
	return fmt.Errorf("gradient_booster %q: unsupported booster (supported: gbtree, dart, gblinear)", h.Name)
}

func (m *Model) loadTrees(g *gbtreeModel, weights []float32) error {
	n, err := intParam("gbtree_model_param.num_trees", g.Param.NumTrees, len(g.Trees))
	if err != nil {
		return err
	}
	if n != len(g.Trees) || len(g.TreeInfo) != len(g.Trees) {
		return fmt.Errorf("gbtree: num_trees %d, %d trees and %d tree_info entries must agree", n, len(g.Trees), len(g.TreeInfo))
	}
	if weights != nil && len(weights) != len(g.Trees) {
		return fmt.Errorf("dart: %d weight_drop values for %d trees", len(weights), len(g.Trees))
	}
	m.forest, err = buildForest(g.Trees, g.TreeInfo, weights, m.numFeature, m.numGroup)
	return err
}

// objective returns how margins become predictions, and how many values
// a row predicts to.
func objective(name string, groups int) (transform, int, error) {
	multi := groups > 1
	switch name {
	case "multi:softprob":
		if !multi {
			return 0, 0, errors.New("objective multi:softprob: num_class must be at least 2")
		}
		return softmax, groups, nil
	case "multi:softmax":
		if !multi {
			return 0, 0, errors.New("objective multi:softmax: num_class must be at least 2")
		}
		return argmax, 1, nil
	case "":
		return 0, 0, errors.New("objective: the model names none")
	}
	if multi {
		return 0, 0, fmt.Errorf("objective %s with num_class %d: only multi:softprob and multi:softmax have several classes", name, groups)
	}
	switch name {
	case "binary:logistic", "reg:logistic":
		return sigmoid, 1, nil
	case "binary:logitraw", "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror",
		"reg:absoluteerror", "rank:pairwise", "rank:ndcg", "rank:map":
		return identity, 1, nil
	case "count:poisson", "reg:tweedie", "reg:gamma", "survival:cox":
		return exponent, 1, nil
	case "binary:hinge":
		return hinge, 1, nil
	}
	return 0, 0, fmt.Errorf("objective %q: not supported (supported: binary:logistic, binary:logitraw, binary:hinge, multi:softprob, multi:softmax, reg:squarederror, reg:logistic, reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, reg:gamma, reg:tweedie, count:poisson, survival:cox, rank:pairwise, rank:ndcg, rank:map)", name)
}

// probToMargin turns base_score, stored in prediction space, into the
// margin trees add to, as each XGBoost objective's ProbToMargin does.
// binary:logitraw predicts margins, and XGBoost adds its base_score as is.
func probToMargin(objective string, base float32) (float32, error) {
	switch objective {
	case "binary:logistic", "reg:logistic":
		if base <= 0 || base >= 1 {
			return 0, fmt.Errorf("base_score %v: must be between 0 and 1 for %s", base, objective)
		}
		return float32(-math.Log(1/float64(base) - 1)), nil
	case "count:poisson", "reg:tweedie", "reg:gamma", "survival:cox":
		if base <= 0 {
			return 0, fmt.Errorf("base_score %v: must be positive for %s", base, objective)
		}
		return float32(math.Log(float64(base))), nil
	}
	return base, nil
}

func (m *Model) buildSignature(types []string) models.Signature {
	var sig models.Signature
	for i := 0; i < m.numFeature; i++ {
		name := fmt.Sprintf("f%d", i)
		if len(m.featureName) > 0 {
			name = m.featureName[i]
		}
		c := models.Column{Name: name, Type: "float"}
		if len(types) > 0 {
			switch types[i] {
			case "int":
				c.Type = "long"
			case "i":
				c.Type = "boolean"
			case "c":
				c.Type, c.Categorical = "long", true
			}
		}
		sig.Inputs = append(sig.Inputs, c)
	}
	if m.numOutputs == 1 {
		sig.Outputs = []models.Column{{Name: "prediction", Type: "float"}}
		if m.transform == argmax {
			sig.Outputs[0].Type = "long"
		}
	} else {
		for g := 0; g < m.numOutputs; g++ {
			sig.Outputs = append(sig.Outputs, models.Column{Name: fmt.Sprintf("probability_%d", g), Type: "float"})
		}
	}
	return sig
}

// Signature implements models.Model.
func (m *Model) Signature() models.Signature { return m.signature }

// NumFeatures implements models.Model.
func (m *Model) NumFeatures() int { return m.numFeature }

// NumOutputs implements models.Model.
func (m *Model) NumOutputs() int { return m.numOutputs }

// Objective is the XGBoost objective the model was trained with.
func (m *Model) Objective() string { return m.objective }

// Booster is gbtree, dart or gblinear.
func (m *Model) Booster() string { return m.booster }

// NumTrees is the number of trees (0 for gblinear).
func (m *Model) NumTrees() int { return len(m.forest.roots) }

// Version is the XGBoost version that saved the model.
func (m *Model) Version() []int { return m.version }

// Attributes are the learner's attributes, such as best_iteration.
func (m *Model) Attributes() map[string]string { return m.attributes }

// FeatureGain is each feature's total split gain and split count over the
// trees (nil for gblinear), as XGBoost's get_score computes them.
func (m *Model) FeatureGain() []models.FeatureGain {
	if m.linear != nil {
		return nil
	}
	out := make([]models.FeatureGain, m.numFeature)
	for i := range out {
		out[i] = models.FeatureGain{Feature: m.signature.Inputs[i].Name, TotalGain: m.forest.gain[i], Splits: m.forest.splits[i]}
	}
	return out
}
