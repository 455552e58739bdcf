package training_test

import (
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tabular"
	"github.com/slipwayml/slipway/internal/training"
)

func readCSV(t *testing.T, s string) *tabular.Table {
	t.Helper()
	tb, err := tabular.ReadCSV(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestFromTable(t *testing.T) {
	tb := readCSV(t, "id,city,income,label\n1,paris,10,yes\n2,lyon,20,no\n3,paris,,yes\n4,nice,40,maybe\n")
	tt, err := training.FromTable(tb, "label", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	d := tt.Data
	if strings.Join(d.Names, ",") != "city,income" || !d.Categorical[0] || d.Categorical[1] || strings.Join(tt.Levels["city"], ",") != "lyon,nice,paris" {
		t.Fatalf("features %v categorical %v levels %v", d.Names, d.Categorical, tt.Levels)
	}
	if strings.Join(tt.Classes, ",") != "maybe,no,yes" || d.Labels[0] != 2 || d.Labels[3] != 0 {
		t.Fatalf("classes %v labels %v", tt.Classes, d.Labels)
	}
	if obj, k := tt.InferObjective(); obj != training.MultiSoftprob || k != 3 {
		t.Fatalf("objective %s with %d classes; want multi:softprob with 3", obj, k)
	}

	// Validation data in the training table's codes: a city training never
	// saw is missing; a class it never saw is an error naming the row.
	valid, err := tt.Recode(readCSV(t, "label,income,city,id\nno,5,nice,9\nyes,6,rome,9\n"), "label")
	if err != nil {
		t.Fatal(err)
	}
	if valid.Columns[0][0] != 1 || valid.Columns[0][1] == valid.Columns[0][1] || valid.Labels[0] != 1 || valid.Labels[1] != 2 {
		t.Fatalf("recoded city %v labels %v", valid.Columns[0], valid.Labels)
	}
	if _, err := tt.Recode(readCSV(t, "label,income,city\nnever,5,nice\n"), "label"); err == nil || !strings.Contains(err.Error(), `row 1: class "never" does not occur in the training data`) {
		t.Fatalf("unseen class: %v", err)
	}

	for _, tc := range []struct{ csv, target, want string }{
		{"a,b\n1,2\n", "c", `no target column "c"`},
		{"a,b\n1,\n", "b", `target column "b", row 1: the label is missing`},
		{"b\n1\n", "b", "no feature columns"},
	} {
		if _, err := training.FromTable(readCSV(t, tc.csv), tc.target, nil); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromTable(%q): %v; want %q", tc.csv, err, tc.want)
		}
	}
}

func TestInferObjectiveAndSplit(t *testing.T) {
	for _, tc := range []struct{ labels, want string }{
		{"0\n1\n1\n", training.BinaryLogistic},
		{"0\n2\n1\n", training.MultiSoftprob},
		{"0.5\n2\n1\n", training.RegSquaredError},
		{"-1\n2\n1\n", training.RegSquaredError},
	} {
		tt, err := training.FromTable(readCSV(t, "y,x\n"+strings.ReplaceAll(tc.labels, "\n", ",1\n")), "y", nil)
		if err != nil {
			t.Fatal(err)
		}
		if obj, _ := tt.InferObjective(); obj != tc.want {
			t.Errorf("labels %q: %s; want %s", tc.labels, obj, tc.want)
		}
	}
	tt, err := training.FromTable(readCSV(t, "y,x\n0,1\n1,2\n0,3\n1,4\n0,5\n"), "y", nil)
	if err != nil {
		t.Fatal(err)
	}
	train, valid, err := tt.Data.Split(0.4, 1)
	if err != nil || train.Rows() != 3 || valid.Rows() != 2 {
		t.Fatalf("split: %v rows %d/%d", err, train.Rows(), valid.Rows())
	}
	seen := map[float32]bool{}
	for _, d := range []*training.Dataset{train, valid} {
		for _, v := range d.Columns[0] {
			seen[v] = true
		}
	}
	if len(seen) != 5 {
		t.Fatalf("rows lost or repeated by the split: %v", seen)
	}
	if _, _, err := tt.Data.Split(0.01, 1); err == nil {
		t.Fatal("a split that leaves validation empty must fail")
	}
}
