package validate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/datasets/profile"
)

func prof(t *testing.T, csv string) *profile.Profile {
	t.Helper()
	p, err := profile.CSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keys names findings as table/column:rule, in report order.
func keys(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s:%s", f.Table, f.Column, f.Rule))
	}
	return out
}

// dropColumn removes a column from a CSV without quotes.
func dropColumn(csv, name string) string {
	lines := strings.Split(strings.TrimSuffix(csv, "\n"), "\n")
	i := slices.Index(strings.Split(lines[0], ","), name)
	for n, l := range lines {
		fields := strings.Split(l, ",")
		lines[n] = strings.Join(slices.Delete(fields, i, i+1), ",")
	}
	return strings.Join(lines, "\n") + "\n"
}

// reference is ten rows: x in [0, 10], 10% of y missing, colour red/green/blue.
const reference = `x,y,colour,flag,when
0,1.5,red,true,2024-01-01
1,2.5,green,false,2024-01-02
2,,blue,true,2024-01-03
3,3.5,red,false,2024-01-04
4,4.5,green,true,2024-01-05
5,5.5,blue,false,2024-01-06
6,6.5,red,true,2024-01-07
7,7.5,green,false,2024-01-08
8,8.5,blue,true,2024-01-09
10,9.5,red,false,2024-01-10
`

// tail is the reference's columns with n rows of x in [0, 10] followed by
// rows with the given x values.
func tail(n int, xs ...string) string {
	var b strings.Builder
	b.WriteString("x,y,colour,flag,when\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,2.5,red,true,2024-01-01\n", i%11)
	}
	for _, x := range xs {
		fmt.Fprintf(&b, "%s,2.5,red,true,2024-01-01\n", x)
	}
	return b.String()
}

func TestCompare(t *testing.T) {
	strict := DefaultOptions()
	strict.StrictCategories = true
	cases := []struct {
		name           string
		data           string
		opts           Options
		wantViolations []string
		wantWarnings   []string
	}{
		{name: "same data passes", data: reference, opts: strict},
		{name: "dropped column", data: dropColumn(reference, "colour"), wantViolations: []string{"t.csv/colour:column_missing"}},
		{name: "numeric to text", data: strings.Replace(reference, "4,4.5", "four,4.5", 1), wantViolations: []string{"t.csv/x:type"}},
		{name: "integer to float is a type change", data: strings.Replace(reference, "4,4.5", "4.5,4.5", 1), wantViolations: []string{"t.csv/x:type"}},
		{name: "integers where floats were are fine", data: strings.ReplaceAll(reference, ".5", "")},
		{name: "within the slack", data: strings.Replace(strings.Replace(reference, "10,9.5", "11,9.5", 1), "0,1.5", "-1,1.5", 1)},
		{name: "below the slack", data: strings.Replace(reference, "0,1.5", "-2,1.5", 1), wantViolations: []string{"t.csv/x:range"}},
		{name: "above the slack", data: strings.Replace(reference, "10,9.5", "12,9.5", 1), wantViolations: []string{"t.csv/x:range"}},
		// One value in 200 beyond the range is a long tail, not a break;
		// a strict check (0) fails on it, and so do 3 in 200 (1.5%).
		{name: "a long tail is allowed", data: tail(199, "100")},
		{name: "a long tail, strictly", data: tail(199, "100"), opts: Options{MaxMissingIncrease: 0.05, RangeSlack: 0.1}, wantViolations: []string{"t.csv/x:range"}},
		{name: "more than 1% out of range", data: tail(197, "100", "100", "100"), wantViolations: []string{"t.csv/x:range"}},
		{name: "within 5% out of range", data: tail(197, "100", "100", "100"), opts: Options{MaxMissingIncrease: 0.05, RangeSlack: 0.1, MaxOutOfRange: 0.05}},
		{name: "no slack", data: strings.Replace(reference, "10,9.5", "11,9.5", 1), opts: Options{MaxMissingIncrease: 0.05}, wantViolations: []string{"t.csv/x:range"}},
		// 3 of 20 missing: 15%, the reference's 10% plus exactly 5 points.
		{name: "missing within the allowance", data: reference + strings.Repeat("9,,red,true,2024-01-11\n", 2) + strings.Repeat("9,3,red,true,2024-01-11\n", 8)},
		{name: "missing above the allowance", data: strings.Replace(reference, "3.5", "", 1), wantViolations: []string{"t.csv/y:missing_rate"}},
		{name: "a higher allowance", data: strings.Replace(reference, "3.5", "", 1), opts: Options{MaxMissingIncrease: 0.1, RangeSlack: 0.1}},
		{name: "all missing", data: strings.NewReplacer("1.5", "", "2.5", "", "3.5", "", "4.5", "", "5.5", "", "6.5", "", "7.5", "", "8.5", "", "9.5", "").Replace(reference),
			wantViolations: []string{"t.csv/y:missing_rate"}},
		{name: "new column is a warning", data: strings.Replace(strings.ReplaceAll(reference, "\n", ",z\n"), "when,z", "when,extra", 1),
			wantWarnings: []string{"t.csv/extra:new_column"}},
		{name: "unseen category with strict", data: strings.Replace(reference, "red,true,2024-01-01", "purple,true,2024-01-01", 1), opts: strict,
			wantViolations: []string{"t.csv/colour:categories"}},
		{name: "unseen category without strict", data: strings.Replace(reference, "red,true,2024-01-01", "purple,true,2024-01-01", 1)},
		{name: "fewer categories with strict", data: strings.ReplaceAll(reference, "blue", "red"), opts: strict},
		{name: "boolean spelling is not a category", data: strings.ReplaceAll(reference, "true", "True"), opts: strict},
		{name: "no rows", data: "x,y,colour,flag,when\n", wantViolations: []string{"t.csv/:rows"}},
		{name: "several at once", data: dropColumn(strings.Replace(strings.Replace(reference, "3.5", "", 1), "10,9.5", "100,9.5", 1), "when"),
			wantViolations: []string{"t.csv/when:column_missing", "t.csv/x:range", "t.csv/y:missing_rate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			if o == (Options{}) {
				o = DefaultOptions()
			}
			data := tc.data
			r := Compare(map[string]*profile.Profile{"t.csv": prof(t, reference)}, map[string]*profile.Profile{"t.csv": prof(t, data)}, o)
			got := keys(r.Violations)
			want := tc.wantViolations
			if want == nil {
				want = []string{}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("violations %v, want %v\n%v", got, want, r.Violations)
			}
			wantW := tc.wantWarnings
			if wantW == nil {
				wantW = []string{}
			}
			if gotW := keys(r.Warnings); !slices.Equal(gotW, wantW) {
				t.Errorf("warnings %v, want %v", gotW, wantW)
			}
			if r.Passed != (len(want) == 0) {
				t.Errorf("passed %v with %d violations", r.Passed, len(got))
			}
			// Every finding names both values and reads as one line.
			for _, f := range r.Violations {
				if strings.Contains(f.String(), "\n") || f.Message == "" {
					t.Errorf("finding %q is not one line with a message", f.String())
				}
				if f.Rule != RuleColumnMissing && f.Rule != RuleTableMissing && (f.Reference == nil || f.Observed == nil) {
					t.Errorf("finding %s lacks a value: %+v", f.Rule, f)
				}
			}
		})
	}
}

// The messages say what was seen, what the reference had, and what was
// allowed.
func TestMessages(t *testing.T) {
	ref := prof(t, reference)
	cases := []struct {
		data string
		opts Options
		want string
	}{
		{strings.Replace(reference, "10,9.5", "12,9.5", 1), DefaultOptions(),
			"t.csv: column x: range: values span [0, 12] (more than 1% of values on a side: p1..p99 [0.09, 11.64]); the reference's [0, 10], widened by 10% of its range, allows [-1, 11]"},
		{strings.Replace(reference, "10,9.5", "12,9.5", 1), Options{RangeSlack: 0.1},
			"t.csv: column x: range: values span [0, 12]; the reference's [0, 10], widened by 10% of its range, allows [-1, 11]"},
		{strings.Replace(reference, "3.5", "", 1), DefaultOptions(),
			"t.csv: column y: missing_rate: 20% missing (2 of 10 rows); the reference has 10%, and at most 15% is allowed (+5%)"},
		{strings.Replace(reference, "4,4.5", "four,4.5", 1), DefaultOptions(),
			"t.csv: column x: type: type string; the reference's is integer"},
		{dropColumn(reference, "colour"), DefaultOptions(),
			"t.csv: column colour: column_missing: the reference has this column (string); the data does not"},
		{strings.Replace(reference, "red,true,2024-01-01", "purple,true,2024-01-01", 1), Options{StrictCategories: true},
			`t.csv: column colour: categories: 1 value(s) the reference does not have: "purple"; the reference has "blue", "green", "red"`},
	}
	for _, tc := range cases {
		r := Compare(map[string]*profile.Profile{"t.csv": ref}, map[string]*profile.Profile{"t.csv": prof(t, tc.data)}, tc.opts)
		if len(r.Violations) != 1 || r.Violations[0].String() != tc.want {
			t.Errorf("got %v\nwant %s", r.Violations, tc.want)
		}
	}
}

func TestCategoriesBeyondTheProfile(t *testing.T) {
	var b strings.Builder
	b.WriteString("c\n")
	for i := range 12 {
		fmt.Fprintf(&b, "v%d\n", i)
	}
	many := prof(t, b.String())
	few := prof(t, "c\nv0\nv1\nv2\n")
	strict := Options{StrictCategories: true}

	// A reference listing only its top values cannot be checked: a warning.
	r := Compare(map[string]*profile.Profile{"a": many}, map[string]*profile.Profile{"a": few}, strict)
	if !r.Passed || !slices.Equal(keys(r.Warnings), []string{"a/c:categories_unchecked"}) {
		t.Fatalf("incomplete reference: passed %v, warnings %v", r.Passed, keys(r.Warnings))
	}
	// Data with more distinct values than a complete reference has unseen
	// ones even where its profile does not name them.
	r = Compare(map[string]*profile.Profile{"a": few}, map[string]*profile.Profile{"a": many}, strict)
	if r.Passed || len(r.Violations) != 1 || !strings.Contains(r.Violations[0].Message, "at least 9 values the reference does not have (12 distinct against its 3)") {
		t.Fatalf("wider data: %v", r.Violations)
	}
}

func TestTablePairing(t *testing.T) {
	a, b := prof(t, reference), prof(t, reference)
	cases := []struct {
		name                 string
		ref, data            map[string]*profile.Profile
		violations, warnings []string
		compared             []string
	}{
		{"one table each, any names", map[string]*profile.Profile{"train.csv": a}, map[string]*profile.Profile{"new.csv": b},
			[]string{}, []string{}, []string{"train.csv->new.csv"}},
		{"by path", map[string]*profile.Profile{"p/1.csv": a, "p/2.csv": a}, map[string]*profile.Profile{"p/2.csv": b, "p/1.csv": b},
			[]string{}, []string{}, []string{"p/1.csv->p/1.csv", "p/2.csv->p/2.csv"}},
		{"missing and new tables", map[string]*profile.Profile{"p/1.csv": a, "p/2.csv": a}, map[string]*profile.Profile{"p/1.csv": b, "p/3.csv": b},
			[]string{"p/2.csv/:table_missing"}, []string{"p/3.csv/:new_table"}, []string{"p/1.csv->p/1.csv"}},
		{"no data tables", map[string]*profile.Profile{"t.csv": a}, map[string]*profile.Profile{},
			[]string{"t.csv/:table_missing"}, []string{}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(tc.ref, tc.data, DefaultOptions())
			if got := keys(r.Violations); !slices.Equal(got, tc.violations) {
				t.Errorf("violations %v, want %v", got, tc.violations)
			}
			if got := keys(r.Warnings); !slices.Equal(got, tc.warnings) {
				t.Errorf("warnings %v, want %v", got, tc.warnings)
			}
			compared := []string{}
			for _, tb := range r.Tables {
				compared = append(compared, tb.Reference+"->"+tb.Table)
			}
			if !slices.Equal(compared, tc.compared) {
				t.Errorf("compared %v, want %v", compared, tc.compared)
			}
		})
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{DefaultOptions(), ""},
		{Options{MaxMissingIncrease: 1, RangeSlack: 0}, ""},
		{Options{MaxMissingIncrease: -0.1}, "--max-missing-increase -0.1: must be between 0 and 1"},
		{Options{MaxMissingIncrease: 5}, "--max-missing-increase 5: must be between 0 and 1"},
		{Options{RangeSlack: -1}, "--range-slack -1: must be 0 or more"},
		{Options{MaxOutOfRange: 0.02}, "--max-out-of-range 0.02: must be 0, 0.01 or 0.05"},
	} {
		err := tc.o.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// The JSON report has empty lists, not null, and every finding's values.
func TestReportJSON(t *testing.T) {
	r := Compare(map[string]*profile.Profile{"t.csv": prof(t, reference)}, map[string]*profile.Profile{"t.csv": prof(t, reference)}, DefaultOptions())
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"violations":[]`) || !strings.Contains(string(raw), `"warnings":[]`) || !strings.Contains(string(raw), `"columns_checked":5`) {
		t.Fatalf("report JSON: %s", raw)
	}
}
