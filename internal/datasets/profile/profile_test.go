package profile

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

type row struct {
	ID     int64     `parquet:"id"`
	Age    *int64    `parquet:"age,optional"`
	Income *float64  `parquet:"income,optional"`
	City   string    `parquet:"city"`
	Member bool      `parquet:"member"`
	Signup time.Time `parquet:"signup,timestamp(millisecond)"`
}

// A Parquet file and a CSV file holding the same table have the same
// profile (the CSV profiler is the one checked against pandas).
func TestParquetMatchesCSV(t *testing.T) {
	var rows []row
	var csv strings.Builder
	csv.WriteString("id,age,income,city,member,signup\n")
	start := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5000 {
		r := row{ID: int64(i), City: []string{"a", "b", "c"}[i%3], Member: i%4 == 0, Signup: start.Add(time.Duration(i) * time.Hour)}
		age, income := "", ""
		if i%10 != 0 {
			a := int64(20 + i%50)
			r.Age, age = &a, fmt.Sprint(a)
		}
		if i%7 != 0 {
			f := float64(i%997) * 1.25
			r.Income, income = &f, fmt.Sprint(f)
		}
		rows = append(rows, r)
		fmt.Fprintf(&csv, "%d,%s,%s,%s,%v,%s\n", r.ID, age, income, r.City, r.Member, r.Signup.Format(time.RFC3339))
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows, parquet.MaxRowsPerRowGroup(1500)); err != nil {
		t.Fatal(err)
	}
	pq, err := Parquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := CSV(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	if pq.Rows != cp.Rows || len(pq.Columns) != len(cp.Columns) {
		t.Fatalf("parquet %d rows %d columns; csv %d rows %d columns", pq.Rows, len(pq.Columns), cp.Rows, len(cp.Columns))
	}
	for i, a := range pq.Columns {
		b := cp.Columns[i]
		if a.Name != b.Name || a.Type != b.Type || a.Count != b.Count || a.Missing != b.Missing || a.Distinct != b.Distinct {
			t.Errorf("column %d: parquet %s %s count %d missing %d distinct %d; csv %s %s %d %d %d", i,
				a.Name, a.Type, a.Count, a.Missing, a.Distinct, b.Name, b.Type, b.Count, b.Missing, b.Distinct)
		}
		for _, p := range [][2]*float64{{a.Mean, b.Mean}, {a.Std, b.Std}, {a.Min, b.Min}, {a.Max, b.Max}} {
			if (p[0] == nil) != (p[1] == nil) || p[0] != nil && math.Abs(*p[0]-*p[1]) > 1e-9 {
				t.Errorf("column %s: parquet stats %v; csv %v", a.Name, p[0], p[1])
			}
		}
		if a.MinText != b.MinText || a.MaxText != b.MaxText || fmt.Sprint(a.Top) != fmt.Sprint(b.Top) || fmt.Sprint(a.Quantiles) != fmt.Sprint(b.Quantiles) {
			t.Errorf("column %s: parquet %q %q %v %v; csv %q %q %v %v", a.Name, a.MinText, a.MaxText, a.Top, a.Quantiles, b.MinText, b.MaxText, b.Top, b.Quantiles)
		}
	}
}

func TestCSVEdgeCases(t *testing.T) {
	in := "\xef\xbb\xbfa,a,,b\r\n" +
		"1,\"x,\"\"y\"\"\",3,\"multi\nline\"\r\n" +
		"\n" +
		"2,z\n"
	p, err := CSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range p.Columns {
		names = append(names, c.Name)
	}
	if p.Rows != 2 || fmt.Sprint(names) != "[a a.1 Unnamed: 2 b]" {
		t.Fatalf("rows %d names %v", p.Rows, names)
	}
	if c := p.Columns[1]; c.MinText != `x,"y"` || c.MaxText != "z" {
		t.Errorf("quoted column: %q %q", c.MinText, c.MaxText)
	}
	if c := p.Columns[3]; c.MinText != "multi\nline" || c.Missing != 1 {
		t.Errorf("multi-line column: %+v", c)
	}
	if _, err := CSV(strings.NewReader("a,b\n1,2,3\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("too many fields: %v", err)
	}
	if _, err := CSV(strings.NewReader("a\n\"open\n")); err == nil {
		t.Error("unterminated quote: no error")
	}
	if p, err := CSV(strings.NewReader("")); err != nil || p.Rows != 0 {
		t.Errorf("empty file: %v %v", p, err)
	}
}

// The same bytes give the same profile: the sketches are seeded.
func TestDeterministic(t *testing.T) {
	var b strings.Builder
	b.WriteString("x,s\n")
	for i := range 200000 {
		fmt.Fprintf(&b, "%d,s%d\n", (i*7919)%100003, i)
	}
	p1, _ := CSV(strings.NewReader(b.String()))
	p2, _ := CSV(strings.NewReader(b.String()))
	if fmt.Sprint(p1.Columns[0].Quantiles, p1.Columns[1].Distinct) != fmt.Sprint(p2.Columns[0].Quantiles, p2.Columns[1].Distinct) {
		t.Fatal("two profiles of the same data differ")
	}
}
