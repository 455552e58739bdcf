package tabular

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// ReadParquet reads a Parquet file's top-level columns: booleans, integers
// and floats as numbers, strings as categories. Repeated (list) columns
// are left out, as they are not one value per row.
func ReadParquet(r io.ReaderAt, size int64) (*Table, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("reading parquet: %w", err)
	}
	t := &Table{Rows: int(f.NumRows())}
	if t.Rows == 0 {
		return nil, errors.New("the file has no rows")
	}
	var walk func(c *parquet.Column) error
	walk = func(c *parquet.Column) error {
		if !c.Leaf() {
			for _, child := range c.Columns() {
				if err := walk(child); err != nil {
					return err
				}
			}
			return nil
		}
		if c.MaxRepetitionLevel() > 0 {
			return nil
		}
		col, err := readParquetColumn(c)
		if err != nil {
			return err
		}
		if len(col.Values) != t.Rows {
			return fmt.Errorf("column %q has %d values for %d rows", col.Name, len(col.Values), t.Rows)
		}
		t.Columns = append(t.Columns, col)
		return nil
	}
	if err := walk(f.Root()); err != nil {
		return nil, err
	}
	return t, nil
}

func readParquetColumn(leaf *parquet.Column) (Column, error) {
	b := newBuilder(strings.Join(leaf.Path(), "."))
	kind := leaf.Type().Kind()
	pages := leaf.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Column{}, fmt.Errorf("column %q: %w", b.name, err)
		}
		vr := page.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				if err := add(b, kind, v); err != nil {
					parquet.Release(page)
					return Column{}, err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(page)
				return Column{}, fmt.Errorf("column %q: %w", b.name, err)
			}
		}
		parquet.Release(page)
	}
	return b.finish(), nil
}

func add(b *builder, kind parquet.Kind, v parquet.Value) error {
	if v.IsNull() {
		b.missing()
		return nil
	}
	switch kind {
	case parquet.Boolean:
		if v.Boolean() {
			b.number(1)
		} else {
			b.number(0)
		}
	case parquet.Int32:
		b.number(float32(v.Int32()))
	case parquet.Int64:
		b.number(float32(v.Int64()))
	case parquet.Float:
		b.number(v.Float())
	case parquet.Double:
		b.number(float32(v.Double()))
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return b.textValue(string(v.ByteArray()), false)
	default:
		return fmt.Errorf("column %q: Parquet type %s is not supported as a feature", b.name, kind)
	}
	return nil
}
