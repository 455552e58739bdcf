// Package profile infers the schema of a tabular file (CSV or Parquet) and
// computes a statistical profile of it in one streaming pass and bounded
// memory: row count and, per column, type, missing rate, min, max, mean,
// standard deviation, quantiles, distinct count and top categories. A
// profile stored with a data version is the baseline drift monitoring
// compares new data against, so it must be reproducible: the same bytes
// always give the same profile (the sketches use fixed seeds).
//
// Exactness, per column:
//   - row count, missing count, min, max, mean and std are exact (mean and
//     std by Welford's method in float64);
//   - quantiles are exact (linear interpolation, as pandas' default) while a
//     column has at most ExactQuantileLimit values, else they come from a
//     KLL sketch (k=256) whose rank error is below about 1% of the count;
//   - distinct counts are exact up to DistinctLimit values, else a
//     HyperLogLog estimate (2^14 registers, standard error 0.81%);
//   - top categories are exact up to DistinctLimit distinct values, else
//     Misra-Gries counts (lower bounds, off by at most rows/257).
//
// Each result says whether it is exact.
package profile

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Column types.
const (
	TypeInteger  = "integer"
	TypeFloat    = "float"
	TypeBoolean  = "boolean"
	TypeString   = "string"
	TypeDatetime = "datetime"
	// TypeEmpty is a column with no non-missing value: nothing to infer from.
	TypeEmpty = "empty"
)

// Bounds that keep memory flat however long the file is.
const (
	// ExactQuantileLimit is how many values per column are kept for exact
	// quantiles before the column switches to its sketch. With 50 columns
	// that is at most 50 * 64k * 8 bytes = 26 MB.
	ExactQuantileLimit = 1 << 16
	// DistinctLimit bounds the exact distinct-value table per column.
	DistinctLimit = 10000
	// TopK is how many top categories a profile lists.
	TopK = 10
	// MaxColumns is the widest table profiled; wider ones are refused so a
	// malformed file cannot make a profile of unbounded size.
	MaxColumns = 10000
)

// Profile describes one tabular file.
type Profile struct {
	Format  string   `json:"format"` // "csv" or "parquet"
	Rows    int64    `json:"rows"`
	Columns []Column `json:"columns"`
}

// Column is one column's schema and statistics. Numeric statistics are set
// for integer and float columns; MinText and MaxText for string and datetime
// columns (datetimes as RFC 3339 in UTC).
type Column struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Count       int64   `json:"count"` // non-missing values
	Missing     int64   `json:"missing"`
	MissingRate float64 `json:"missing_rate"`

	Min       *float64           `json:"min,omitempty"`
	Max       *float64           `json:"max,omitempty"`
	Mean      *float64           `json:"mean,omitempty"`
	Std       *float64           `json:"std,omitempty"` // sample standard deviation (n-1), as pandas
	Quantiles map[string]float64 `json:"quantiles,omitempty"`
	// QuantilesExact is false when quantiles come from the KLL sketch.
	QuantilesExact bool `json:"quantiles_exact,omitempty"`

	MinText string `json:"min_text,omitempty"`
	MaxText string `json:"max_text,omitempty"`

	Distinct      int64 `json:"distinct"`
	DistinctExact bool  `json:"distinct_exact"`
	// Top lists the most frequent values, most frequent first, for string
	// and boolean columns and for numeric ones with few distinct values.
	Top      []Category `json:"top,omitempty"`
	TopExact bool       `json:"top_exact,omitempty"`
}

// Category is a value and how many rows hold it.
type Category struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// QuantileLevels are the quantiles a profile reports, by name.
var QuantileLevels = []struct {
	Name string
	Q    float64
}{{"p1", 0.01}, {"p5", 0.05}, {"p25", 0.25}, {"p50", 0.50}, {"p75", 0.75}, {"p95", 0.95}, {"p99", 0.99}}

// Format names the tabular format of a file by its extension, "" if it is
// not one the profiler reads.
func Format(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return "csv"
	case ".parquet", ".pq":
		return "parquet"
	}
	return ""
}

// Validate checks a profile received from a client: it is stored as the
// drift baseline, so it must be well formed and of bounded size.
func (p *Profile) Validate() error {
	if p.Format != "csv" && p.Format != "parquet" {
		return fmt.Errorf("format must be csv or parquet, not %q", p.Format)
	}
	if p.Rows < 0 {
		return fmt.Errorf("rows must not be negative")
	}
	if len(p.Columns) > MaxColumns {
		return fmt.Errorf("at most %d columns are allowed", MaxColumns)
	}
	for i, c := range p.Columns {
		switch c.Type {
		case TypeInteger, TypeFloat, TypeBoolean, TypeString, TypeDatetime, TypeEmpty:
		default:
			return fmt.Errorf("columns[%d].type %q: must be integer, float, boolean, string, datetime or empty", i, c.Type)
		}
		if len(c.Name) > 1024 || len(c.MinText) > 1024 || len(c.MaxText) > 1024 {
			return fmt.Errorf("columns[%d]: name, min_text and max_text must be at most 1024 bytes", i)
		}
		if c.Count < 0 || c.Missing < 0 || c.Distinct < 0 {
			return fmt.Errorf("columns[%d]: counts must not be negative", i)
		}
		if len(c.Top) > 100 || len(c.Quantiles) > 100 {
			return fmt.Errorf("columns[%d]: at most 100 top categories and 100 quantiles are allowed", i)
		}
		for j, t := range c.Top {
			if len(t.Value) > 1024 {
				return fmt.Errorf("columns[%d].top[%d].value must be at most 1024 bytes", i, j)
			}
		}
	}
	return nil
}

// File profiles the file at name by its extension; it returns nil and no
// error for a file that is not tabular.
func File(name string) (*Profile, error) {
	format := Format(name)
	if format == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if format == "csv" {
		return CSV(f)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Parquet(f, fi.Size())
}
