package profile

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// acc accumulates one column. For CSV the type is not known up front: acc
// keeps every type the values seen so far still fit (integer within float,
// boolean, datetime; string always fits) and the statistics each needs,
// and decides at the end. A Parquet column has its type from the schema.
type acc struct {
	name    string
	fixed   string // the type from a Parquet schema, "" for CSV
	count   int64  // non-missing values
	missing int64

	canInt, canFloat, canBool, canTime bool

	// Numeric statistics (Welford), exact values until ExactQuantileLimit,
	// then the sketch.
	mean, m2 float64
	min, max float64
	exact    []float64
	sketch   *kll

	trues      int64
	layout     int   // index in timeLayouts that parsed last
	minT, maxT int64 // Unix nanoseconds

	minS, maxS string

	cats map[uint64]*category // exact distinct values and counts
	hll  *hll                 // once cats overflows
	mg   *misraGries          // once cats overflows
}

func newAcc(name, fixed string) *acc {
	return &acc{
		name: name, fixed: fixed,
		canInt: true, canFloat: true, canBool: true, canTime: true,
		min: math.Inf(1), max: math.Inf(-1), minT: math.MaxInt64, maxT: math.MinInt64,
		cats: make(map[uint64]*category),
	}
}

// isNA reports the strings pandas' read_csv treats as missing by default,
// so that a profile counts what a pandas user would count.
// IsMissing reports whether a CSV field is one pandas reads as missing.
func IsMissing(b []byte) bool { return isNA(b) }

func isNA(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(b) > 8 {
		return false
	}
	switch unsafe.String(&b[0], len(b)) {
	case "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
		"NA", "NULL", "NaN", "None", "n/a", "nan", "null":
		return true
	}
	return false
}

// addText adds one CSV field.
func (a *acc) addText(b []byte) {
	if isNA(b) {
		a.missing++
		return
	}
	a.count++
	s := unsafe.String(&b[0], len(b))
	if s < a.minS || a.count == 1 {
		a.minS = strings.Clone(s)
	}
	if s > a.maxS {
		a.maxS = strings.Clone(s)
	}
	if a.canFloat {
		if a.canInt {
			if v, ok := parseInt(b); ok {
				a.canBool, a.canTime = false, false
				a.addNumber(float64(v), s)
				return
			}
			a.canInt = false
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && !hasHexOrUnderscore(b) {
			a.canBool, a.canTime = false, false
			a.addNumber(f, s)
			return
		}
		a.canInt, a.canFloat = false, false
	}
	if a.canBool {
		switch s {
		case "true", "True", "TRUE":
			a.trues++
		case "false", "False", "FALSE":
		default:
			a.canBool = false
		}
	}
	if a.canTime {
		if ns, ok := a.parseTime(s); ok {
			a.minT, a.maxT = min(a.minT, ns), max(a.maxT, ns)
		} else {
			a.canTime = false
		}
	}
	a.addCategory(xxhash.Sum64String(s), s)
}

// hasHexOrUnderscore rejects what strconv.ParseFloat accepts but pandas
// reads as text: hexadecimal floats and digit separators.
func hasHexOrUnderscore(b []byte) bool {
	for _, c := range b {
		if c == 'x' || c == 'X' || c == '_' || c == 'p' || c == 'P' {
			return true
		}
	}
	return false
}

// parseInt parses a plain decimal integer, the common case, without the
// generality (and cost) of strconv.
func parseInt(b []byte) (int64, bool) {
	i, neg := 0, false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i = 1
	}
	if i == len(b) || len(b)-i > 18 {
		return 0, false
	}
	var v int64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int64(c)
	}
	if neg {
		v = -v
	}
	return v, true
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00"}

// parseTime reads the datetime forms a profile recognises. A plain date, the
// most common form in tables, is parsed by hand; for the others the layout
// that worked last time in this column is tried first, because each failed
// time.Parse allocates an error and a column nearly always keeps one form.
func (a *acc) parseTime(s string) (int64, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	if len(s) == 10 {
		return parseDate(s)
	}
	if t, err := time.Parse(timeLayouts[a.layout], s); err == nil {
		return t.UnixNano(), true
	}
	for i, l := range timeLayouts {
		if i == a.layout {
			continue
		}
		if t, err := time.Parse(l, s); err == nil {
			a.layout = i
			return t.UnixNano(), true
		}
	}
	return 0, false
}

func parseDate(s string) (int64, bool) {
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				return 0, false
			}
			n = n*10 + int(c)
		}
		return n, true
	}
	y, ok1 := num(s[0:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // 2023-02-30 and the like
		return 0, false
	}
	return t.UnixNano(), true
}

func (a *acc) addNumber(v float64, raw string) {
	if v == 0 {
		v = 0 // one key for -0 and +0
	}
	d := v - a.mean
	a.mean += d / float64(a.count)
	a.m2 += d * (v - a.mean)
	a.min, a.max = min(a.min, v), max(a.max, v)
	if a.sketch == nil {
		a.exact = append(a.exact, v)
		if len(a.exact) > ExactQuantileLimit {
			a.sketch = newKLL()
			for _, x := range a.exact {
				a.sketch.add(x)
			}
			a.exact = nil
		}
	} else {
		a.sketch.add(v)
	}
	a.addCategory(mix64(math.Float64bits(v)), raw)
}

func (a *acc) addCategory(key uint64, value string) {
	if a.hll != nil {
		a.hll.add(key)
		if a.mg != nil {
			a.mg.add(key, value)
		}
		return
	}
	if c, ok := a.cats[key]; ok {
		c.count++
		return
	}
	a.cats[key] = &category{value: strings.Clone(value), count: 1}
	if len(a.cats) > DistinctLimit {
		a.hll = new(hll)
		for k := range a.cats {
			a.hll.add(k)
		}
		// Heavy hitters among many distinct numbers mean little; only text
		// keeps approximate top categories.
		if !a.canFloat || a.fixed == TypeString {
			a.mg = newMisraGries(a.cats)
		}
		a.cats = nil
	}
}

// Typed adders for Parquet, where the schema gives the type.

func (a *acc) addNull() { a.missing++ }

func (a *acc) addFloat(v float64, raw func() string) {
	if math.IsNaN(v) {
		a.missing++ // pandas counts NaN as missing
		return
	}
	a.count++
	if v == 0 {
		v = 0
	}
	d := v - a.mean
	a.mean += d / float64(a.count)
	a.m2 += d * (v - a.mean)
	a.min, a.max = min(a.min, v), max(a.max, v)
	if a.sketch == nil {
		a.exact = append(a.exact, v)
		if len(a.exact) > ExactQuantileLimit {
			a.sketch = newKLL()
			for _, x := range a.exact {
				a.sketch.add(x)
			}
			a.exact = nil
		}
	} else {
		a.sketch.add(v)
	}
	key := mix64(math.Float64bits(v))
	if a.hll == nil {
		if _, ok := a.cats[key]; !ok {
			a.addCategory(key, raw())
			return
		}
	}
	a.addCategory(key, "")
}

func (a *acc) addBool(v bool) {
	a.count++
	s := "false"
	if v {
		a.trues++
		s = "true"
	}
	a.addCategory(xxhash.Sum64String(s), s)
}

func (a *acc) addString(b []byte) {
	a.count++
	s := unsafe.String(unsafe.SliceData(b), len(b))
	if s < a.minS || a.count == 1 {
		a.minS = strings.Clone(s)
	}
	if s > a.maxS {
		a.maxS = strings.Clone(s)
	}
	a.addCategory(xxhash.Sum64String(s), s)
}

func (a *acc) addTime(t time.Time) {
	a.count++
	ns := t.UnixNano()
	a.minT, a.maxT = min(a.minT, ns), max(a.maxT, ns)
	a.addCategory(mix64(uint64(ns)), t.UTC().Format(time.RFC3339Nano))
}

// typ decides the column's type.
func (a *acc) typ() string {
	switch {
	case a.fixed != "":
		return a.fixed
	case a.count == 0:
		return TypeEmpty
	case a.canInt:
		return TypeInteger
	case a.canFloat:
		return TypeFloat
	case a.canBool:
		return TypeBoolean
	case a.canTime:
		return TypeDatetime
	}
	return TypeString
}

func (a *acc) result() Column {
	c := Column{Name: a.name, Type: a.typ(), Count: a.count, Missing: a.missing}
	if n := a.count + a.missing; n > 0 {
		c.MissingRate = float64(a.missing) / float64(n)
	}
	if a.count == 0 {
		c.DistinctExact = true
		return c
	}
	switch c.Type {
	case TypeInteger, TypeFloat:
		c.Min, c.Max, c.Mean = ptr(a.min), ptr(a.max), ptr(a.mean)
		if a.count > 1 {
			c.Std = ptr(math.Sqrt(a.m2 / float64(a.count-1)))
		}
		qs := make([]float64, len(QuantileLevels))
		for i, l := range QuantileLevels {
			qs[i] = l.Q
		}
		var vals []float64
		if a.sketch != nil {
			vals = a.sketch.quantiles(qs)
		} else {
			vals = exactQuantiles(a.exact, qs)
			c.QuantilesExact = true
		}
		c.Quantiles = make(map[string]float64, len(qs))
		for i, l := range QuantileLevels {
			c.Quantiles[l.Name] = vals[i]
		}
	case TypeBoolean:
		c.Mean = ptr(float64(a.trues) / float64(a.count))
	case TypeDatetime:
		c.MinText = time.Unix(0, a.minT).UTC().Format(time.RFC3339Nano)
		c.MaxText = time.Unix(0, a.maxT).UTC().Format(time.RFC3339Nano)
	case TypeString:
		c.MinText, c.MaxText = truncate(a.minS), truncate(a.maxS)
	}
	if a.hll != nil {
		c.Distinct = a.hll.estimate()
	} else {
		c.Distinct, c.DistinctExact = int64(len(a.cats)), true
	}
	if c.Type == TypeFloat {
		return c
	}
	var top []*category
	switch {
	case a.cats != nil:
		top = make([]*category, 0, len(a.cats))
		for _, v := range a.cats {
			top = append(top, v)
		}
		c.TopExact = true
	case a.mg != nil && c.Type != TypeInteger:
		top = a.mg.top()
	}
	sortCategories(top)
	for i, v := range top {
		if i == TopK {
			break
		}
		c.Top = append(c.Top, Category{Value: truncate(v.value), Count: v.count})
	}
	return c
}

// truncate keeps long text values within the limits Validate enforces.
func truncate(s string) string {
	if len(s) <= 256 {
		return s
	}
	cut := 256
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func ptr(f float64) *float64 { return &f }
