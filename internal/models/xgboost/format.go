package xgboost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The structs below mirror XGBoost's JSON model schema
// (doc/model.schema in XGBoost's repository) as far as prediction needs it.
// XGBoost writes most scalar parameters as strings ("num_class": "3").

type modelFile struct {
	Learner *learner `json:"learner"`
	Version []int    `json:"version"`
}

type learner struct {
	Attributes        map[string]string `json:"attributes"`
	FeatureNames      []string          `json:"feature_names"`
	FeatureTypes      []string          `json:"feature_types"`
	GradientBooster   json.RawMessage   `json:"gradient_booster"`
	LearnerModelParam learnerParam      `json:"learner_model_param"`
	Objective         struct {
		Name string `json:"name"`
	} `json:"objective"`
}

type learnerParam struct {
	BaseScore  string `json:"base_score"`
	NumClass   string `json:"num_class"`
	NumFeature string `json:"num_feature"`
	NumTarget  string `json:"num_target"`
}

type boosterHeader struct {
	Name string `json:"name"`
}

type gbtreeBooster struct {
	Model gbtreeModel `json:"model"`
}

type dartBooster struct {
	GBTree     gbtreeBooster   `json:"gbtree"`
	WeightDrop json.RawMessage `json:"weight_drop"`
}

type gblinearBooster struct {
	Model struct {
		Weights json.RawMessage `json:"weights"`
	} `json:"model"`
}

type gbtreeModel struct {
	Param struct {
		NumTrees        string `json:"num_trees"`
		NumParallelTree string `json:"num_parallel_tree"`
	} `json:"gbtree_model_param"`
	TreeInfo ints
	Trees    []treeIn
}

// UnmarshalJSON decodes the number arrays itself so that an error names
// the field (the JSON decoder does not say which field a custom decoder
// failed in).
func (g *gbtreeModel) UnmarshalJSON(b []byte) error {
	var raw struct {
		Param    json.RawMessage   `json:"gbtree_model_param"`
		TreeInfo json.RawMessage   `json:"tree_info"`
		Trees    []json.RawMessage `json:"trees"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw.Param) > 0 {
		if err := json.Unmarshal(raw.Param, &g.Param); err != nil {
			return fmt.Errorf("gbtree_model_param: %w", err)
		}
	}
	if err := g.TreeInfo.parse("tree_info", raw.TreeInfo); err != nil {
		return err
	}
	g.Trees = make([]treeIn, len(raw.Trees))
	for i, t := range raw.Trees {
		if err := g.Trees[i].decode(t); err != nil {
			return fmt.Errorf("trees[%d]: %w", i, err)
		}
	}
	return nil
}

type treeParam struct {
	NumNodes       string `json:"num_nodes"`
	NumFeature     string `json:"num_feature"`
	SizeLeafVector string `json:"size_leaf_vector"`
}

type treeIn struct {
	TreeParam          treeParam
	LeftChildren       ints
	RightChildren      ints
	SplitIndices       ints
	SplitConditions    float32s
	LossChanges        float32s
	DefaultLeft        ints
	SplitType          ints
	Categories         ints
	CategoriesNodes    ints
	CategoriesSegments ints
	CategoriesSizes    ints
}

func (t *treeIn) decode(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if p, ok := raw["tree_param"]; ok {
		if err := json.Unmarshal(p, &t.TreeParam); err != nil {
			return fmt.Errorf("tree_param: %w", err)
		}
	}
	for name, dst := range map[string]*ints{
		"left_children": &t.LeftChildren, "right_children": &t.RightChildren, "split_indices": &t.SplitIndices,
		"default_left": &t.DefaultLeft, "split_type": &t.SplitType, "categories": &t.Categories,
		"categories_nodes": &t.CategoriesNodes, "categories_segments": &t.CategoriesSegments, "categories_sizes": &t.CategoriesSizes,
	} {
		if err := dst.parse(name, raw[name]); err != nil {
			return err
		}
	}
	if err := t.LossChanges.parse("loss_changes", raw["loss_changes"]); err != nil {
		return err
	}
	return t.SplitConditions.parse("split_conditions", raw["split_conditions"])
}

// float32s parses a JSON array of numbers straight to float32 (bitSize 32),
// so each value is the float32 XGBoost wrote; going through float64 could
// round some values twice.
type float32s []float32

func (f *float32s) parse(name string, b []byte) error {
	out := (*f)[:0]
	err := eachNumber(name, b, func(tok []byte) error {
		v, err := strconv.ParseFloat(string(bytes.Trim(tok, `"`)), 32)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, tok)
		}
		out = append(out, float32(v))
		return nil
	})
	*f = out
	return err
}

// ints parses a JSON array of integers; true and false count as 1 and 0,
// which is how XGBoost versions before 2.0 wrote default_left.
type ints []int64

func (n *ints) parse(name string, b []byte) error {
	out := (*n)[:0]
	err := eachNumber(name, b, func(tok []byte) error {
		switch string(tok) {
		case "true":
			out = append(out, 1)
			return nil
		case "false":
			out = append(out, 0)
			return nil
		}
		v, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", name, tok)
		}
		out = append(out, v)
		return nil
	})
	*n = out
	return err
}

// eachNumber calls fn with each element of a JSON array of scalars. The
// JSON decoder has already checked that b is well-formed JSON.
func eachNumber(name string, b []byte, fn func([]byte) error) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("%s: must be an array of numbers", name)
	}
	b = b[1 : len(b)-1]
	for len(bytes.TrimSpace(b)) > 0 {
		i := bytes.IndexByte(b, ',')
		tok := b
		if i >= 0 {
			tok, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if err := fn(bytes.TrimSpace(tok)); err != nil {
			return err
		}
	}
	return nil
}

// intParam reads one of XGBoost's string-typed integer parameters.
func intParam(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s %q: must be a whole number", name, s)
	}
	return v, nil
}

// baseScores reads base_score: one number, or since XGBoost 3.0 a
// bracketed list with one value per output group.
func baseScores(s string) ([]float32, error) {
	s = string(bytes.TrimSpace([]byte(s)))
	if s == "" {
		return []float32{0.5}, nil // XGBoost's default before 1.0 wrote none
	}
	if s[0] == '[' {
		var out float32s
		if err := out.parse("base_score", []byte(s)); err != nil || len(out) == 0 {
			return nil, fmt.Errorf("base_score %q: must be a number or a list of numbers", s)
		}
		return out, nil
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return nil, fmt.Errorf("base_score %q: must be a number", s)
	}
	return []float32{float32(v)}, nil
}

// quoteNonFinite puts quotes around the bare NaN, Infinity and -Infinity
// tokens XGBoost writes into its JSON (categorical splits have NaN split
// conditions), which JSON does not allow, so that a standard decoder reads
// the file; the number parsers above accept the quoted forms.
func quoteNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Inf")) && !bytes.Contains(b, []byte("inf")) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/16)
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					out = append(out, b[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		if tok := nonFiniteToken(b[i:]); tok > 0 {
			out = append(out, '"')
			out = append(out, b[i:i+tok]...)
			out = append(out, '"')
			i += tok - 1
			continue
		}
		out = append(out, c)
	}
	return out
}

// nonFiniteToken returns the length of a non-finite number token at the
// start of b, or 0.
func nonFiniteToken(b []byte) int {
	for _, t := range []string{"NaN", "-NaN", "Infinity", "-Infinity", "inf", "-inf", "Inf", "-Inf"} {
		if bytes.HasPrefix(b, []byte(t)) {
			return len(t)
		}
	}
	return 0
}
