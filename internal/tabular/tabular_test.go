package tabular_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/slipwayml/slipway/internal/tabular"
)

const credit = `age,income,city,default
31,52000.5,paris,0
45,,lyon,1
NA,61000,paris,0
28,48000,nice,true
`

func nan(v float32) bool { return v != v }

func TestReadCSV(t *testing.T) {
	tb, err := tabular.ReadCSV(strings.NewReader(credit))
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rows != 4 || strings.Join(tb.Names(), ",") != "age,income,city,default" {
		t.Fatalf("read %d rows of %v", tb.Rows, tb.Names())
	}
	age, income, city, def := tb.Columns[0], tb.Columns[1], tb.Columns[2], tb.Columns[3]
	if age.Kind != tabular.Numeric || age.Values[0] != 31 || !nan(age.Values[2]) {
		t.Errorf("age = %v %v", age.Kind, age.Values)
	}
	if income.Values[0] != 52000.5 || !nan(income.Values[1]) {
		t.Errorf("income = %v", income.Values)
	}
	if city.Kind != tabular.Categorical || strings.Join(city.Levels, ",") != "lyon,nice,paris" ||
		city.Values[0] != 2 || city.Values[1] != 0 || city.Values[3] != 1 {
		t.Errorf("city = %v %v %v", city.Kind, city.Levels, city.Values)
	}
	if def.Kind != tabular.Numeric || def.Values[3] != 1 {
		t.Errorf("default = %v %v; true reads as 1", def.Kind, def.Values)
	}

	x, err := tb.Matrix([]tabular.Feature{{Name: "income"}, {Name: "city", Categorical: true, Levels: []string{"paris", "lyon"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{52000.5, 0, float32(math.NaN()), 1, 61000, 0, 48000, float32(math.NaN())}
	for i := range want {
		if x[i] != want[i] && !(nan(x[i]) && nan(want[i])) {
			t.Fatalf("matrix[%d] = %v; want %v (row-major, the model's levels, nice unseen so missing): %v", i, x[i], want[i], x)
		}
	}
}

func TestMixedColumnBecomesCategorical(t *testing.T) {
	tb, err := tabular.ReadCSV(strings.NewReader("size\n1\n2.5\nlarge\n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := tb.Columns[0]
	if c.Kind != tabular.Categorical || strings.Join(c.Levels, ",") != "1,2.5,large" || c.Values[3] != 0 {
		t.Fatalf("size = %v %v %v", c.Kind, c.Levels, c.Values)
	}
	_, err = tb.Matrix([]tabular.Feature{{Name: "size"}})
	if err == nil || err.Error() != `column "size", row 3: "large" is not a number` {
		t.Fatalf("Matrix = %v; want the column and row of the first text value", err)
	}
}

func TestBadData(t *testing.T) {
	for _, tc := range []struct{ name, csv, want string }{
		{"empty", "", "the file is empty"},
		{"header only", "a,b\n", "no rows"},
		{"ragged", "a,b\n1,2\n3\n", "row 2: 1 fields; the header has 2 columns"},
		{"unnamed column", "a,,c\n1,2,3\n", "column 2 has no name"},
		{"duplicate", "a,a\n1,2\n", `column "a" appears twice`},
		{"bad quoting", "a,b\n\"1,2\n", "row 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tabular.ReadCSV(strings.NewReader(tc.csv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadCSV = %v; want an error containing %q", err, tc.want)
			}
		})
	}
	tb, err := tabular.ReadCSV(strings.NewReader(credit))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Matrix([]tabular.Feature{{Name: "age"}, {Name: "debt"}, {Name: "tenure"}}); err == nil ||
		!strings.Contains(err.Error(), `no column "debt", "tenure" (it has "age", "income", "city", "default")`) {
		t.Fatalf("missing columns: %v", err)
	}
	codes, _ := tabular.ReadCSV(strings.NewReader("c\n1\n2.5\n"))
	if _, err := codes.Matrix([]tabular.Feature{{Name: "c", Categorical: true}}); err == nil ||
		!strings.Contains(err.Error(), `column "c", row 2: 2.5 is not a category code`) {
		t.Fatalf("fractional category code: %v", err)
	}
}

type parquetRow struct {
	Age    *int64   `parquet:"age,optional"`
	Income float64  `parquet:"income"`
	City   string   `parquet:"city"`
	Member bool     `parquet:"member"`
	Score  *float32 `parquet:"score,optional"`
}

func TestReadParquet(t *testing.T) {
	a, s := int64(40), float32(0.25)
	rows := []parquetRow{
		{Age: &a, Income: 1.5, City: "paris", Member: true, Score: &s},
		{Income: 2, City: "lyon"},
		{Age: &a, Income: 3, City: "paris", Member: true},
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := tabular.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rows != 3 || strings.Join(tb.Names(), ",") != "age,income,city,member,score" {
		t.Fatalf("read %d rows of %v", tb.Rows, tb.Names())
	}
	age, city, member, score := tb.Columns[0], tb.Columns[2], tb.Columns[3], tb.Columns[4]
	if age.Values[0] != 40 || !nan(age.Values[1]) || member.Values[0] != 1 || member.Values[1] != 0 || score.Values[0] != 0.25 || !nan(score.Values[2]) {
		t.Errorf("values: age %v member %v score %v", age.Values, member.Values, score.Values)
	}
	if city.Kind != tabular.Categorical || strings.Join(city.Levels, ",") != "lyon,paris" || city.Values[0] != 1 {
		t.Errorf("city = %v %v %v", city.Kind, city.Levels, city.Values)
	}
	if _, err := tabular.ReadFile(filepath.Join(t.TempDir(), "d.xlsx")); err == nil || !strings.Contains(err.Error(), "must end in .csv or .parquet") {
		t.Errorf("unknown extension: %v", err)
	}
}
