// Package validate checks new data against a reference data version by
// their profiles (package profile): the schema, the missing rates, the
// numeric ranges and, optionally, the categories. It is the logic of
// `slipway data validate`, a pipeline's first line of defence: a step that
// trains on data whose columns vanished, changed type, filled with
// missing values or left their usual range should stop before training,
// and say why.
//
// Only what a profile holds exactly is compared: types, missing counts,
// min and max, and the full set of a column's values when the profile
// lists every one of them. Nothing here is a statistical test; drift in
// distributions is monitoring's business.
package validate

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
)

// Rules, as findings name them.
const (
	// RuleTableMissing: a table of the reference has no counterpart.
	RuleTableMissing = "table_missing"
	// RuleRows: the data has no rows.
	RuleRows = "rows"
	// RuleColumnMissing: a reference column is not in the data.
	RuleColumnMissing = "column_missing"
	// RuleType: a column's type changed.
	RuleType = "type"
	// RuleMissingRate: a column's missing rate rose above the allowance.
	RuleMissingRate = "missing_rate"
	// RuleRange: numeric values outside the reference's widened range.
	RuleRange = "range"
	// RuleCategories: values the reference never had (StrictCategories).
	RuleCategories = "categories"

	// Warnings.

	// RuleNewColumn: a column the reference does not have.
	RuleNewColumn = "new_column"
	// RuleNewTable: a table the reference does not have.
	RuleNewTable = "new_table"
	// RuleCategoriesUnchecked: StrictCategories could not check a column
	// because its reference profile does not list every value.
	RuleCategoriesUnchecked = "categories_unchecked"
)

// Defaults of Options.
const (
	DefaultMaxMissingIncrease = 0.05
	DefaultRangeSlack         = 0.1
	DefaultMaxOutOfRange      = 0.01
)

// outOfRangeLevels are the tail shares a range check can allow: a profile
// keeps the 1% and 5% quantiles (and the minimum and maximum), and a share
// is checked by comparing the matching quantiles with the allowed range.
var outOfRangeLevels = map[float64][2]string{0.01: {"p1", "p99"}, 0.05: {"p5", "p95"}}

// Options say how much change is allowed.
type Options struct {
	// MaxMissingIncrease is how far (absolute, 0 to 1) a column's missing
	// rate may rise above the reference's.
	MaxMissingIncrease float64 `json:"max_missing_increase"`
	// RangeSlack widens the reference's [min, max] of a numeric column on
	// both sides by this share of max - min.
	RangeSlack float64 `json:"range_slack"`
	// MaxOutOfRange is the share of a column's values allowed below the
	// widened range, and again above it: 0, 0.01 or 0.05. Real columns
	// have long tails, where new rows land beyond the reference's extremes
	// without anything being wrong; 0 fails on a single such value.
	MaxOutOfRange float64 `json:"max_out_of_range"`
	// StrictCategories fails string and boolean columns holding a value
	// the reference does not.
	StrictCategories bool `json:"strict_categories"`
}

// DefaultOptions are the options of `slipway data validate` without flags.
func DefaultOptions() Options {
	return Options{MaxMissingIncrease: DefaultMaxMissingIncrease, RangeSlack: DefaultRangeSlack, MaxOutOfRange: DefaultMaxOutOfRange}
}

// Check rejects options that cannot mean anything, naming the flag.
func (o Options) Check() error {
	if math.IsNaN(o.MaxMissingIncrease) || o.MaxMissingIncrease < 0 || o.MaxMissingIncrease > 1 {
		return errs.Invalid("--max-missing-increase %v: must be between 0 and 1 (an absolute share of rows, 0.05 for 5 points)", o.MaxMissingIncrease)
	}
	if math.IsNaN(o.RangeSlack) || math.IsInf(o.RangeSlack, 0) || o.RangeSlack < 0 {
		return errs.Invalid("--range-slack %v: must be 0 or more (a share of the reference's max - min)", o.RangeSlack)
	}
	if _, ok := outOfRangeLevels[o.MaxOutOfRange]; !ok && o.MaxOutOfRange != 0 {
		return errs.Invalid("--max-out-of-range %v: must be 0, 0.01 or 0.05 (the tail shares a profile's quantiles measure)", o.MaxOutOfRange)
	}
	return nil
}

// Finding is one violation or warning. Reference and Observed hold the
// two values compared: numbers, type names, or lists of values.
type Finding struct {
	Table     string `json:"table,omitempty"`
	Column    string `json:"column,omitempty"`
	Rule      string `json:"rule"`
	Reference any    `json:"reference,omitempty"`
	Observed  any    `json:"observed,omitempty"`
	// Allowed is what the rule accepts, where that is not Reference
	// itself: the widened range, the raised missing rate.
	Allowed any    `json:"allowed,omitempty"`
	Message string `json:"message"`
}

// String is the finding on one line: table, column, rule and message.
func (f Finding) String() string {
	var b strings.Builder
	if f.Table != "" {
		b.WriteString(f.Table)
		b.WriteString(": ")
	}
	if f.Column != "" {
		fmt.Fprintf(&b, "column %s: ", f.Column)
	}
	b.WriteString(f.Rule)
	b.WriteString(": ")
	b.WriteString(f.Message)
	return b.String()
}

// Table says which tables were compared.
type Table struct {
	// Table is the table's path in the data, Reference its path in the
	// reference version.
	Table          string `json:"table"`
	Reference      string `json:"reference"`
	Rows           int64  `json:"rows"`
	ReferenceRows  int64  `json:"reference_rows"`
	ColumnsChecked int    `json:"columns_checked"`
}

// Report is the outcome of a validation.
type Report struct {
	Passed     bool      `json:"passed"`
	Options    Options   `json:"options"`
	Tables     []Table   `json:"tables"`
	Violations []Finding `json:"violations"`
	Warnings   []Finding `json:"warnings"`
}

// ColumnsChecked counts the columns compared over all tables.
func (r *Report) ColumnsChecked() int {
	n := 0
	for _, t := range r.Tables {
		n += t.ColumnsChecked
	}
	return n
}

// Compare validates the tables of data against those of ref, both keyed by
// path. A reference table is compared with the data's table of the same
// path; when each side has exactly one table, those two are compared
// whatever their names (a file renamed between versions, or a local file
// checked against a version). A reference table without a counterpart is a
// violation, a data table without one a warning.
func Compare(ref, data map[string]*profile.Profile, o Options) *Report {
	r := &Report{Options: o, Tables: []Table{}, Violations: []Finding{}, Warnings: []Finding{}}
	pairs := map[string]string{} // reference path -> data path
	if len(ref) == 1 && len(data) == 1 {
		for rp := range ref {
			for dp := range data {
				pairs[rp] = dp
			}
		}
	} else {
		for rp := range ref {
			if _, ok := data[rp]; ok {
				pairs[rp] = rp
			}
		}
	}
	paired := map[string]bool{}
	for _, rp := range sortedKeys(ref) {
		dp, ok := pairs[rp]
		if !ok {
			r.Violations = append(r.Violations, Finding{Table: rp, Rule: RuleTableMissing, Reference: rp,
				Message: fmt.Sprintf("the reference has table %s (%d rows); the data has no table at that path", rp, ref[rp].Rows)})
			continue
		}
		paired[dp] = true
		t, violations, warnings := compareTable(ref[rp], data[dp], o)
		t.Table, t.Reference = dp, rp
		for _, f := range violations {
			f.Table = dp
			r.Violations = append(r.Violations, f)
		}
		for _, f := range warnings {
			f.Table = dp
			r.Warnings = append(r.Warnings, f)
		}
		r.Tables = append(r.Tables, t)
	}
	for _, dp := range sortedKeys(data) {
		if !paired[dp] {
			r.Warnings = append(r.Warnings, Finding{Table: dp, Rule: RuleNewTable, Observed: dp,
				Message: fmt.Sprintf("table %s is not in the reference; it was not checked", dp)})
		}
	}
	r.Passed = len(r.Violations) == 0
	return r
}

func compareTable(ref, data *profile.Profile, o Options) (Table, []Finding, []Finding) {
	t := Table{Rows: data.Rows, ReferenceRows: ref.Rows}
	var violations, warnings []Finding
	if data.Rows == 0 && ref.Rows > 0 {
		violations = append(violations, Finding{Rule: RuleRows, Reference: ref.Rows, Observed: int64(0),
			Message: fmt.Sprintf("the data has no rows; the reference has %d", ref.Rows)})
	}
	have := make(map[string]*profile.Column, len(data.Columns))
	for i := range data.Columns {
		have[data.Columns[i].Name] = &data.Columns[i]
	}
	known := make(map[string]bool, len(ref.Columns))
	for i := range ref.Columns {
		rc := &ref.Columns[i]
		known[rc.Name] = true
		dc, ok := have[rc.Name]
		if !ok {
			violations = append(violations, Finding{Column: rc.Name, Rule: RuleColumnMissing, Reference: rc.Type,
				Message: fmt.Sprintf("the reference has this column (%s); the data does not", rc.Type)})
			continue
		}
		t.ColumnsChecked++
		v, w := compareColumn(rc, dc, o)
		violations = append(violations, v...)
		warnings = append(warnings, w...)
	}
	for _, c := range data.Columns {
		if !known[c.Name] {
			warnings = append(warnings, Finding{Column: c.Name, Rule: RuleNewColumn, Observed: c.Type,
				Message: fmt.Sprintf("the data has this column (%s); the reference does not, so it was not checked", c.Type)})
		}
	}
	return t, violations, warnings
}

// compatible reports whether data of type got can stand in for a
// reference column of type want: the same type, integers where floats
// were (every integer is a float), or a column with no values at all
// (which the missing-rate rule judges).
func compatible(want, got string) bool {
	return want == got || want == profile.TypeFloat && got == profile.TypeInteger ||
		got == profile.TypeEmpty || want == profile.TypeEmpty
}

func isNumeric(typ string) bool { return typ == profile.TypeInteger || typ == profile.TypeFloat }

// missingEpsilon absorbs float rounding in rates such as 0.15 - 0.1.
const missingEpsilon = 1e-12

func compareColumn(rc, dc *profile.Column, o Options) (violations, warnings []Finding) {
	if !compatible(rc.Type, dc.Type) {
		return []Finding{{Column: rc.Name, Rule: RuleType, Reference: rc.Type, Observed: dc.Type,
			Message: fmt.Sprintf("type %s; the reference's is %s", dc.Type, rc.Type)}}, nil
	}
	if limit := rc.MissingRate + o.MaxMissingIncrease; dc.MissingRate > limit+missingEpsilon {
		violations = append(violations, Finding{Column: rc.Name, Rule: RuleMissingRate, Reference: rc.MissingRate,
			Observed: dc.MissingRate, Allowed: math.Min(limit, 1),
			Message: fmt.Sprintf("%s missing (%d of %d rows); the reference has %s, and at most %s is allowed (+%s)",
				pct(dc.MissingRate), dc.Missing, dc.Missing+dc.Count, pct(rc.MissingRate), pct(math.Min(limit, 1)), pct(o.MaxMissingIncrease))})
	}
	if isNumeric(rc.Type) && isNumeric(dc.Type) && rc.Min != nil && rc.Max != nil && dc.Min != nil && dc.Max != nil {
		slack := o.RangeSlack * (*rc.Max - *rc.Min)
		lo, hi := *rc.Min-slack, *rc.Max+slack
		low, high, share := *dc.Min, *dc.Max, ""
		if q, ok := outOfRangeLevels[o.MaxOutOfRange]; ok {
			ql, okl := dc.Quantiles[q[0]]
			qh, okh := dc.Quantiles[q[1]]
			if okl && okh {
				low, high = ql, qh
				share = fmt.Sprintf(" (more than %s of values on a side: %s..%s [%s, %s])", pct(o.MaxOutOfRange), q[0], q[1], num(ql), num(qh))
			}
		}
		if low < lo || high > hi {
			violations = append(violations, Finding{Column: rc.Name, Rule: RuleRange,
				Reference: []float64{*rc.Min, *rc.Max}, Observed: []float64{low, high}, Allowed: []float64{lo, hi},
				Message: fmt.Sprintf("values span [%s, %s]%s; the reference's [%s, %s], widened by %s of its range, allows [%s, %s]",
					num(*dc.Min), num(*dc.Max), share, num(*rc.Min), num(*rc.Max), pct(o.RangeSlack), num(lo), num(hi))})
		}
	}
	if o.StrictCategories && (rc.Type == profile.TypeString || rc.Type == profile.TypeBoolean) && dc.Type == rc.Type {
		v, w := compareCategories(rc, dc)
		violations = append(violations, v...)
		warnings = append(warnings, w...)
	}
	return violations, warnings
}

// complete reports whether a profile lists every value of its column.
func complete(c *profile.Column) bool {
	return c.DistinctExact && c.TopExact && int64(len(c.Top)) == c.Distinct
}

// compareCategories finds values of dc that rc does not have. The
// reference must list all its values; the data need not: with more
// distinct values than a reference that lists all of its own, the data
// certainly has unseen ones, and its top categories name some of them.
func compareCategories(rc, dc *profile.Column) (violations, warnings []Finding) {
	if dc.Count == 0 {
		return nil, nil
	}
	if !complete(rc) {
		return nil, []Finding{{Column: rc.Name, Rule: RuleCategoriesUnchecked, Reference: rc.Distinct,
			Message: fmt.Sprintf("not checked: the reference has %d distinct values and its profile lists only the %d most frequent", rc.Distinct, len(rc.Top))}}
	}
	// A CSV's booleans keep their spelling (True, true, TRUE) as values.
	norm := func(v string) string { return v }
	if rc.Type == profile.TypeBoolean {
		norm = strings.ToLower
	}
	seen := make(map[string]bool, len(rc.Top))
	var ref []string
	for _, c := range rc.Top {
		if v := norm(c.Value); !seen[v] {
			seen[v] = true
			ref = append(ref, v)
		}
	}
	sort.Strings(ref)
	var unseen []string
	for _, c := range dc.Top {
		if v := norm(c.Value); !seen[v] {
			seen[v] = true
			unseen = append(unseen, v)
		}
	}
	sort.Strings(unseen)
	atLeast := int64(len(unseen))
	if !complete(dc) {
		atLeast = max(atLeast, dc.Distinct-rc.Distinct)
	}
	if atLeast == 0 {
		return nil, nil
	}
	msg := fmt.Sprintf("%d value(s) the reference does not have: %s; the reference has %s", atLeast, quoteList(unseen), quoteList(ref))
	if atLeast > int64(len(unseen)) {
		msg = fmt.Sprintf("at least %d values the reference does not have (%d distinct against its %d), among them %s; the reference has %s",
			atLeast, dc.Distinct, rc.Distinct, quoteList(unseen), quoteList(ref))
	}
	if unseen == nil {
		unseen = []string{}
	}
	return []Finding{{Column: rc.Name, Rule: RuleCategories, Reference: ref, Observed: unseen, Message: msg}}, nil
}

func quoteList(vs []string) string {
	if len(vs) == 0 {
		return "(none listed)"
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'g', 4, 64) + "%" }

func num(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
