package inference

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/tabular"
)

// problem is what is wrong with one value for its column.
type problem uint8

const (
	fine problem = iota
	// probText is text in a column the model reads as numbers.
	probText
	// probNoLevels is text in a categorical column whose categories the
	// model knows only by code.
	probNoLevels
	// probCode is a number that is not a category code.
	probCode
	// probBool is true or false in a categorical column.
	probBool
)

// levelIndex finds a categorical feature's codes by name.
type levelIndex struct {
	built  bool
	sorted bool
	m      map[string]float32
}

func (li *levelIndex) code(levels []string, s []byte) float32 {
	if !li.built {
		li.built = true
		li.sorted = slices.IsSorted(levels)
		if !li.sorted && len(levels) > 16 {
			li.m = make(map[string]float32, len(levels))
			for i, l := range levels {
				if _, dup := li.m[l]; !dup {
					li.m[l] = float32(i)
				}
			}
		}
	}
	switch {
	case li.sorted:
		if i, ok := slices.BinarySearch(levels, string(s)); ok {
			return float32(i)
		}
	case li.m != nil:
		if c, ok := li.m[string(s)]; ok {
			return c
		}
	default:
		for i, l := range levels {
			if l == string(s) {
				return float32(i)
			}
		}
	}
	return float32(math.NaN())
}

// cell converts one value for feature f as tabular.Table.Matrix does:
// numbers (and booleans as 0/1) for numeric features; for categorical
// ones, text looked up among the levels (unknown text is missing) or a
// whole-number code.
func cell(f *tabular.Feature, li *levelIndex, v value) (float32, problem) {
	switch v.kind {
	case kindNull:
		return float32(math.NaN()), fine
	case kindString:
		if !f.Categorical {
			return 0, probText
		}
		if f.Levels == nil {
			return 0, probNoLevels
		}
		return li.code(f.Levels, v.str), fine
	case kindBool:
		if f.Categorical {
			return 0, probBool
		}
		return float32(v.num), fine
	}
	if f.Categorical && v.num == v.num && (v.num < 0 || v.num != math.Trunc(v.num) || math.IsInf(v.num, 0)) {
		return 0, probCode
	}
	return float32(v.num), fine
}

// describe renders a value for an error message.
func describe(v value) string {
	switch v.kind {
	case kindNull:
		return "null"
	case kindString:
		s := string(v.str)
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:40]) + "..."
		}
		return strconv.Quote(s)
	case kindBool:
		if v.num != 0 {
			return "true"
		}
		return "false"
	}
	return strconv.FormatFloat(v.num, 'g', -1, 64)
}

// columnType is how the signature types column name, for messages.
func columnType(sig models.Signature, f *tabular.Feature) string {
	if f.Categorical {
		return "categorical"
	}
	for _, c := range sig.Inputs {
		if c.Name == f.Name && c.Type != "" {
			return c.Type
		}
	}
	return "float"
}

// problemMessage explains a problem with value v of feature f; where says
// where the value is (`column "age", row 3`).
func problemMessage(p problem, where string, f *tabular.Feature, v value, sig models.Signature) string {
	switch p {
	case probText:
		return fmt.Sprintf("%s: %s is text, but the model's column %q is %s", where, describe(v), f.Name, columnType(sig, f))
	case probNoLevels:
		return fmt.Sprintf("%s: %s is text, but the model knows the categories of column %q only by code; send the codes", where, describe(v), f.Name)
	case probCode:
		return fmt.Sprintf("%s: %s is not a category code (a whole number from 0)", where, describe(v))
	case probBool:
		return fmt.Sprintf("%s: %s is not a category code (a whole number from 0)", where, describe(v))
	}
	return where + ": invalid value"
}

// featureIndex finds the feature named name, trying hint first (inputs
// usually arrive in the model's order).
func featureIndex(features []tabular.Feature, name []byte, hint int) int {
	if hint >= 0 && hint < len(features) && features[hint].Name == string(name) {
		return hint
	}
	for j := range features {
		if features[j].Name == string(name) {
			return j
		}
	}
	return -1
}

// quoteList quotes names, eliding past 20.
func quoteList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == 20 {
			fmt.Fprintf(&b, " and %d more", len(names)-20)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n))
	}
	return b.String()
}

func featureNames(features []tabular.Feature) []string {
	out := make([]string, len(features))
	for i := range features {
		out[i] = features[i].Name
	}
	return out
}

// missingMessage names the features not seen.
func missingMessage(what string, features []tabular.Feature, seen []bool) string {
	var missing []string
	for j := range features {
		if !seen[j] {
			missing = append(missing, features[j].Name)
		}
	}
	if len(missing) == 1 {
		return fmt.Sprintf("missing %s %q", what, missing[0])
	}
	return fmt.Sprintf("missing %ss %s", what, quoteList(missing))
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			} else {
				b = append(b, `\ufffd`...)
			}
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendValue appends one output value typed as the signature's column
// type says; non-finite values are null.
func appendValue(b []byte, v float32, typ string) []byte {
	if v != v || math.IsInf(float64(v), 0) {
		return append(b, "null"...)
	}
	switch typ {
	case "long", "integer":
		return strconv.AppendInt(b, int64(v), 10)
	case "boolean":
		return strconv.AppendBool(b, v != 0)
	case "double":
		return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}
