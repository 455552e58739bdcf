package tabular

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"

	"github.com/slipwayml/slipway/internal/datasets/profile"
)

// ReadCSV reads a CSV file with a header row. Missing values are what
// pandas reads as missing (empty, NA, NaN, null, ...).
func ReadCSV(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: a header row naming the columns is required")
	}
	if err != nil {
		return nil, fmt.Errorf("header row: %w", err)
	}
	builders := make([]*builder, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		if h == "" {
			return nil, fmt.Errorf("header row: column %d has no name", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("header row: column %q appears twice", h)
		}
		seen[h] = true
		builders[i] = newBuilder(h)
	}
	rows := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var perr *csv.ParseError
			if errors.As(err, &perr) && errors.Is(perr.Err, csv.ErrFieldCount) {
				return nil, fmt.Errorf("row %d: %d fields; the header has %d columns", rows+1, len(rec), len(header))
			}
			return nil, fmt.Errorf("row %d: %w", rows+1, err)
		}
		for i, field := range rec {
			if profile.IsMissing([]byte(field)) {
				builders[i].missing()
			} else if err := builders[i].textValue(field, true); err != nil {
				return nil, err
			}
		}
		rows++
	}
	if rows == 0 {
		return nil, errors.New("the file has a header but no rows")
	}
	t := &Table{Rows: rows, Columns: make([]Column, len(builders))}
	for i, b := range builders {
		t.Columns[i] = b.finish()
	}
	return t, nil
}
