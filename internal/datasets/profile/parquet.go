package profile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet profiles a Parquet file. Types come from the schema: booleans;
// integers (INT32/INT64 without a time annotation); floats (FLOAT, DOUBLE,
// DECIMAL); datetimes (TIMESTAMP, DATE, INT96); strings (everything held
// in byte arrays). Nested groups are flattened to dotted names; repeated
// (list) columns are left out, as they are not one value per row. Each
// column is read page by page, so memory stays bounded by the page size
// and the sketches, whatever the file's size.
func Parquet(r io.ReaderAt, size int64) (*Profile, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("reading parquet: %w", err)
	}
	var leaves []*parquet.Column
	var walk func(c *parquet.Column)
	walk = func(c *parquet.Column) {
		if c.Leaf() {
			if c.MaxRepetitionLevel() == 0 {
				leaves = append(leaves, c)
			}
			return
		}
		for _, child := range c.Columns() {
			walk(child)
		}
	}
	walk(f.Root())
	if len(leaves) > MaxColumns {
		return nil, fmt.Errorf("%d columns; at most %d are profiled", len(leaves), MaxColumns)
	}
	p := &Profile{Format: "parquet", Rows: f.NumRows(), Columns: make([]Column, len(leaves))}
	errs := make([]error, len(leaves))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, leaf := range leaves {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := parquetColumn(leaf)
			p.Columns[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

type valueFunc func(a *acc, v parquet.Value)

func parquetColumn(leaf *parquet.Column) (Column, error) {
	name := strings.Join(leaf.Path(), ".")
	typ, add := parquetType(leaf.Type())
	a := newAcc(name, typ)
	pages := leaf.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		page, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Column{}, fmt.Errorf("column %s: %w", name, err)
		}
		vr := page.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				if v.IsNull() {
					a.addNull()
				} else {
					add(a, v)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(page)
				return Column{}, fmt.Errorf("column %s: %w", name, err)
			}
		}
		parquet.Release(page)
	}
	return a.result(), nil
}

func parquetType(t parquet.Type) (string, valueFunc) {
	lt := t.LogicalType()
	var logical format.LogicalTypeValue
	if lt != nil {
		logical = lt.Value
	}
	intOf := func(v parquet.Value) int64 {
		if t.Kind() == parquet.Int32 {
			return int64(v.Int32())
		}
		return v.Int64()
	}
	switch l := logical.(type) {
	case *format.TimestampType:
		unit := time.Nanosecond
		if l.Unit.Value != nil {
			unit = l.Unit.Value.Duration()
		}
		return TypeDatetime, func(a *acc, v parquet.Value) {
			x := intOf(v)
			a.addTime(time.Unix(0, 0).Add(time.Duration(x) * unit))
		}
	case *format.DateType:
		return TypeDatetime, func(a *acc, v parquet.Value) {
			a.addTime(time.Unix(int64(v.Int32())*86400, 0))
		}
	case *format.DecimalType:
		scale := math.Pow10(int(l.Scale))
		return TypeFloat, func(a *acc, v parquet.Value) {
			var x float64
			switch t.Kind() {
			case parquet.Int32, parquet.Int64:
				x = float64(intOf(v)) / scale
			default:
				x = decimalBytes(v.ByteArray()) / scale
			}
			a.addFloat(x, func() string { return strconv.FormatFloat(x, 'g', -1, 64) })
		}
	case *format.IntType:
		if !l.IsSigned && l.BitWidth == 64 {
			return TypeInteger, func(a *acc, v parquet.Value) {
				x := v.Uint64()
				a.addFloat(float64(x), func() string { return strconv.FormatUint(x, 10) })
			}
		}
		if !l.IsSigned && l.BitWidth == 32 {
			return TypeInteger, func(a *acc, v parquet.Value) {
				x := v.Uint32()
				a.addFloat(float64(x), func() string { return strconv.FormatUint(uint64(x), 10) })
			}
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		return TypeBoolean, func(a *acc, v parquet.Value) { a.addBool(v.Boolean()) }
	case parquet.Int32, parquet.Int64:
		return TypeInteger, func(a *acc, v parquet.Value) {
			x := intOf(v)
			a.addFloat(float64(x), func() string { return strconv.FormatInt(x, 10) })
		}
	case parquet.Int96:
		return TypeDatetime, func(a *acc, v parquet.Value) {
			// Impala's legacy timestamps: nanoseconds of the day, then the
			// Julian day number.
			x := v.Int96()
			nanos := int64(x[1])<<32 | int64(x[0])
			days := int64(x[2]) - 2440588
			a.addTime(time.Unix(days*86400, nanos))
		}
	case parquet.Float:
		return TypeFloat, func(a *acc, v parquet.Value) {
			x := float64(v.Float())
			a.addFloat(x, func() string { return strconv.FormatFloat(x, 'g', -1, 32) })
		}
	case parquet.Double:
		return TypeFloat, func(a *acc, v parquet.Value) {
			x := v.Double()
			a.addFloat(x, func() string { return strconv.FormatFloat(x, 'g', -1, 64) })
		}
	}
	return TypeString, func(a *acc, v parquet.Value) { a.addString(v.ByteArray()) }
}

// decimalBytes reads a big-endian two's-complement unscaled decimal.
func decimalBytes(b []byte) float64 {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	f, _ := new(big.Float).SetInt(x).Float64()
	return f
}
