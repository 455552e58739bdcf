// Package tabular reads CSV and Parquet files into tables of features for
// training, evaluation and prediction: numeric columns as float32 (NaN is
// missing) and text columns as categories with integer codes, which is how
// XGBoost takes both. Errors name the column and the row.
package tabular

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind is how a column's values are held.
type Kind int

const (
	// Numeric columns hold numbers; booleans read as 0 and 1.
	Numeric Kind = iota
	// Categorical columns hold codes into Levels.
	Categorical
)

func (k Kind) String() string {
	if k == Categorical {
		return "categorical"
	}
	return "numeric"
}

// Column is one column of a table.
type Column struct {
	Name string
	Kind Kind
	// Values holds one value per row: the number, or for a categorical
	// column the index of its level; NaN is missing.
	Values []float32
	// Levels are a categorical column's distinct values, sorted.
	Levels []string
	// TextRow and Text are the first row (0-based, not counting the
	// header) whose value is not a number, for a column that became
	// categorical because of it; errors about numeric use cite them.
	TextRow int
	Text    string
}

// Table is a file's columns, all of Rows values.
type Table struct {
	Columns []Column
	Rows    int
}

// MaxLevels bounds the distinct values of a categorical column: beyond it
// a text column is an identifier or free text, not a feature.
const MaxLevels = 1 << 16

// ReadFile reads a .csv or .parquet file.
func ReadFile(path string) (*Table, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".csv" && ext != ".txt" && ext != ".parquet" && ext != ".pq" {
		return nil, fmt.Errorf("%s: unknown format; data files must end in .csv or .parquet", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var t *Table
	if ext == ".csv" || ext == ".txt" {
		t, err = ReadCSV(f)
	} else {
		st, serr := f.Stat()
		if serr != nil {
			return nil, serr
		}
		t, err = ReadParquet(f, st.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Index returns the position of the named column, or -1.
func (t *Table) Index(name string) int {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// Names lists the columns' names in order.
func (t *Table) Names() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// Feature says how a model reads one input column.
type Feature struct {
	Name        string
	Categorical bool
	// Levels are the categories the model was trained with, in code
	// order; a value it has not seen is passed on as missing.
	Levels []string
}

// Matrix lays out the named features row by row, as a model reads them.
// A missing column, or text in a column the model reads as numbers, is an
// error naming the column (and the row).
func (t *Table) Matrix(features []Feature) ([]float32, error) {
	idx := make([]int, len(features))
	var missing []string
	for j, f := range features {
		if idx[j] = t.Index(f.Name); idx[j] < 0 {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the data has no column %s (it has %s)", quoteList(missing), quoteList(t.Names()))
	}
	cols := make([][]float32, len(features))
	for j, f := range features {
		c := &t.Columns[idx[j]]
		switch {
		case !f.Categorical && c.Kind == Categorical:
			if c.Text == "" {
				return nil, fmt.Errorf("column %q is categorical; the model reads it as numbers", c.Name)
			}
			return nil, fmt.Errorf("column %q, row %d: %q is not a number", c.Name, c.TextRow+1, c.Text)
		case !f.Categorical:
			cols[j] = c.Values
		default:
			recoded, err := c.recode(f.Levels)
			if err != nil {
				return nil, err
			}
			cols[j] = recoded
		}
	}
	nf := len(features)
	out := make([]float32, t.Rows*nf)
	for j, col := range cols {
		for r, v := range col {
			out[r*nf+j] = v
		}
	}
	return out, nil
}

// recode maps the column's values onto levels, the model's categories:
// numeric codes stay as they are; text values are looked up, and values
// the model never saw become missing.
func (c *Column) recode(levels []string) ([]float32, error) {
	if c.Kind == Numeric {
		for r, v := range c.Values {
			if v == v && (v < 0 || v != float32(math.Trunc(float64(v)))) {
				return nil, fmt.Errorf("column %q, row %d: %v is not a category code (a whole number from 0)", c.Name, r+1, v)
			}
		}
		return c.Values, nil
	}
	if levels == nil {
		r := firstValue(c.Values)
		return nil, fmt.Errorf("column %q holds text (%q in row %d), but the model knows its categories only by code; pass the codes", c.Name, c.Levels[int(c.Values[r])], r+1)
	}
	code := make(map[string]float32, len(levels))
	for i, l := range levels {
		code[l] = float32(i)
	}
	byLevel := make([]float32, len(c.Levels))
	for i, l := range c.Levels {
		v, ok := code[l]
		if !ok {
			v = float32(math.NaN())
		}
		byLevel[i] = v
	}
	out := make([]float32, len(c.Values))
	for r, v := range c.Values {
		if v != v {
			out[r] = v
			continue
		}
		out[r] = byLevel[int(v)]
	}
	return out, nil
}

func firstValue(vs []float32) int {
	for r, v := range vs {
		if v == v {
			return r
		}
	}
	return 0
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) > 20 {
		q = append(q[:20], fmt.Sprintf("and %d more", len(names)-20))
	}
	return strings.Join(q, ", ")
}

// builder accumulates one column's values as they are read. A column is
// numeric until a value that is not a number arrives; it then becomes
// categorical, and the numbers before it become levels as their text.
type builder struct {
	name    string
	values  []float32
	numeric bool
	codes   map[string]float32 // level -> code in order of appearance
	levels  []string
	textRow int
	text    string
}

func newBuilder(name string) *builder { return &builder{name: name, numeric: true} }

func (b *builder) missing() { b.values = append(b.values, float32(math.NaN())) }

func (b *builder) number(v float32) {
	if b.numeric {
		b.values = append(b.values, v)
		return
	}
	b.values = append(b.values, b.code(strconv.FormatFloat(float64(v), 'g', -1, 32)))
}

// textValue adds a value that is text. With parse set (CSV, where every
// value is text), it is read as a number while the column is numeric.
func (b *builder) textValue(s string, parse bool) error {
	if b.numeric {
		if v, ok := parseNumber(s); ok && parse {
			b.values = append(b.values, v)
			return nil
		}
		b.numeric, b.textRow, b.text = false, len(b.values), s
		b.codes = map[string]float32{}
		for r, v := range b.values {
			if v == v {
				b.values[r] = b.code(strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
		}
	}
	if _, ok := b.codes[s]; !ok && len(b.levels) == MaxLevels {
		return fmt.Errorf("column %q, row %d: more than %d distinct values; a categorical column may have at most %d", b.name, len(b.values)+1, MaxLevels, MaxLevels)
	}
	b.values = append(b.values, b.code(s))
	return nil
}

func (b *builder) code(s string) float32 {
	c, ok := b.codes[s]
	if !ok {
		c = float32(len(b.levels))
		b.codes[s] = c
		b.levels = append(b.levels, s)
	}
	return c
}

// parseNumber reads a number, or true/false as 1/0.
func parseNumber(s string) (float32, bool) {
	switch s {
	case "true", "True", "TRUE":
		return 1, true
	case "false", "False", "FALSE":
		return 0, true
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
	if err != nil {
		var numErr *strconv.NumError
		// Out of float32's range is still a number: ParseFloat returns ±Inf.
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
			return float32(v), true
		}
		return 0, false
	}
	return float32(v), true
}

// finish returns the column, with a categorical column's levels sorted so
// that codes do not depend on the order rows arrive in.
func (b *builder) finish() Column {
	if b.numeric {
		return Column{Name: b.name, Kind: Numeric, Values: b.values}
	}
	sorted := slices.Clone(b.levels)
	sort.Strings(sorted)
	remap := make([]float32, len(b.levels))
	for i, l := range sorted {
		remap[int(b.codes[l])] = float32(i)
	}
	for r, v := range b.values {
		if v == v {
			b.values[r] = remap[int(v)]
		}
	}
	return Column{Name: b.name, Kind: Categorical, Values: b.values, Levels: sorted, TextRow: b.textRow, Text: b.text}
}
