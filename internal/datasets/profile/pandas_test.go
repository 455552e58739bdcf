package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// The profiles are checked against pandas, computed independently by
// Debian's python3-pandas (apt-get install python3-pandas). /usr/bin/python3
// is used on purpose: other Pythons on PATH may lack pandas.
const python = "/usr/bin/python3"

func needPandas(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import pandas").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import pandas (%v); CI must install python3-pandas", python, err)
		}
		t.Skipf("%s cannot import pandas (%v); install python3-pandas to check profiles against pandas", python, err)
	}
}

// pandasScript reads the CSV with pandas' defaults and, for the profile
// Slipway computed, reports pandas' own statistics and where each of
// Slipway's quantiles falls in the data (its empirical rank), which is how
// a sketch's error is measured.
const pandasScript = `
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
ours = json.load(open(sys.argv[2]))
out = {"rows": int(len(df)), "columns": {}}
for col in ours["columns"]:
    name, typ = col["name"], col["type"]
    s = df[name]
    nn = s.dropna()
    c = {"count": int(nn.count()), "missing": int(s.isna().sum()), "distinct": int(nn.nunique())}
    if typ in ("integer", "float"):
        c.update(mean=float(nn.mean()), std=float(nn.std()) if len(nn) > 1 else None,
                 min=float(nn.min()), max=float(nn.max()))
        qs = {"p1": .01, "p5": .05, "p25": .25, "p50": .5, "p75": .75, "p95": .95, "p99": .99}
        c["quantiles"] = {k: float(nn.quantile(q)) for k, q in qs.items()}
        c["ranks"] = {k: float((nn <= v).mean()) for k, v in col.get("quantiles", {}).items()}
    if typ == "boolean":
        c["mean"] = float(nn.astype(bool).mean())
    if typ == "datetime":
        d = pd.to_datetime(nn, utc=True)
        c["min_text"] = d.min().isoformat()
        c["max_text"] = d.max().isoformat()
    if typ == "string":
        c["min_text"], c["max_text"] = str(nn.min()), str(nn.max())
    vc = nn.astype(str).value_counts() if typ != "integer" else nn.astype("int64").astype(str).value_counts()
    if typ == "boolean":
        vc = nn.map(lambda b: "true" if b else "false").value_counts()
    c["value_counts"] = {str(k): int(v) for k, v in vc.head(2000).items()}
    c["top_counts"] = [int(v) for v in vc.head(10).values]
    out["columns"][name] = c
json.dump(out, sys.stdout)
`

type pandasColumn struct {
	Count       int64              `json:"count"`
	Missing     int64              `json:"missing"`
	Distinct    int64              `json:"distinct"`
	Mean        *float64           `json:"mean"`
	Std         *float64           `json:"std"`
	Min         *float64           `json:"min"`
	Max         *float64           `json:"max"`
	Quantiles   map[string]float64 `json:"quantiles"`
	Ranks       map[string]float64 `json:"ranks"`
	MinText     string             `json:"min_text"`
	MaxText     string             `json:"max_text"`
	ValueCounts map[string]int64   `json:"value_counts"`
	TopCounts   []int64            `json:"top_counts"`
}

func runPandas(t *testing.T, csvPath string, p *Profile) (int64, map[string]pandasColumn) {
	t.Helper()
	ours := filepath.Join(t.TempDir(), "profile.json")
	raw, _ := json.Marshal(p)
	if err := os.WriteFile(ours, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", pandasScript, csvPath, ours)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, stderr.String())
	}
	var res struct {
		Rows    int64                   `json:"rows"`
		Columns map[string]pandasColumn `json:"columns"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pandas output: %v\n%s", err, out)
	}
	return res.Rows, res.Columns
}

// writeTestCSV writes rows of mixed columns, with missing values in
// several of pandas' spellings, reproducibly.
func writeTestCSV(t *testing.T, rows int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("id,age,income,city,member,signup,code,empty,note\n")
	cities := []string{"Paris", "Lyon", "Nice", "Lille", "Nantes", "Brest"}
	na := []string{"", "NA", "NaN", "null"}
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		age := strconv.Itoa(18 + r.IntN(70))
		if r.Float64() < 0.05 {
			age = na[r.IntN(len(na))]
		}
		income := strconv.FormatFloat(math.Exp(10+r.NormFloat64()), 'f', 2, 64)
		if r.Float64() < 0.1 {
			income = ""
		}
		city := cities[int(math.Min(float64(len(cities)-1), math.Abs(r.NormFloat64())*2))]
		member := "true"
		if r.Float64() < 0.3 {
			member = "false"
		}
		signup := start.Add(time.Duration(r.IntN(1000*24)) * time.Hour).Format("2006-01-02 15:04:05")
		code := fmt.Sprintf("c%d", r.IntN(rows))
		note := fmt.Sprintf(`"say ""hi"", %d"`, r.IntN(5))
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s,%s,%s,,%s\n", i, age, income, city, member, signup, code, note)
	}
	p := filepath.Join(t.TempDir(), "data.csv")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCSVProfileMatchesPandas(t *testing.T) {
	needPandas(t)
	for _, rows := range []int{3000, 150000} {
		t.Run(strconv.Itoa(rows), func(t *testing.T) {
			path := writeTestCSV(t, rows)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := CSV(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			pdRows, pd := runPandas(t, path, p)
			if p.Rows != pdRows {
				t.Fatalf("rows %d; pandas %d", p.Rows, pdRows)
			}
			wantTypes := map[string]string{"id": TypeInteger, "age": TypeInteger, "income": TypeFloat, "city": TypeString,
				"member": TypeBoolean, "signup": TypeDatetime, "code": TypeString, "empty": TypeEmpty, "note": TypeString}
			for _, c := range p.Columns {
				t.Run(c.Name, func(t *testing.T) { checkColumn(t, c, pd[c.Name], wantTypes[c.Name]) })
			}
			// The large case must exercise the sketches, not only the exact
			// paths.
			if rows > ExactQuantileLimit && (p.Columns[0].QuantilesExact || p.Columns[6].DistinctExact) {
				t.Errorf("%d rows: id quantiles exact %v, code distinct exact %v; want sketches", rows,
					p.Columns[0].QuantilesExact, p.Columns[6].DistinctExact)
			}
		})
	}
}

func checkColumn(t *testing.T, c Column, pd pandasColumn, wantType string) {
	if c.Type != wantType {
		t.Fatalf("type %s; want %s", c.Type, wantType)
	}
	if c.Count != pd.Count || c.Missing != pd.Missing {
		t.Errorf("count/missing %d/%d; pandas %d/%d", c.Count, c.Missing, pd.Count, pd.Missing)
	}
	if c.DistinctExact {
		if c.Distinct != pd.Distinct {
			t.Errorf("distinct %d (exact); pandas %d", c.Distinct, pd.Distinct)
		}
	} else if rel := math.Abs(float64(c.Distinct-pd.Distinct)) / float64(pd.Distinct); rel > 0.03 {
		// HyperLogLog: standard error 0.81%, so 3% is beyond 3 sigma.
		t.Errorf("distinct %d (estimate); pandas %d: off by %.2f%%", c.Distinct, pd.Distinct, 100*rel)
	}
	close := func(what string, got *float64, want *float64) {
		t.Helper()
		if (got == nil) != (want == nil) {
			t.Errorf("%s: %v; pandas %v", what, got, want)
			return
		}
		if got != nil && math.Abs(*got-*want) > 1e-9*math.Max(1, math.Abs(*want)) {
			t.Errorf("%s: %v; pandas %v", what, *got, *want)
		}
	}
	switch c.Type {
	case TypeInteger, TypeFloat:
		close("mean", c.Mean, pd.Mean)
		close("std", c.Std, pd.Std)
		close("min", c.Min, pd.Min)
		close("max", c.Max, pd.Max)
		for _, l := range QuantileLevels {
			got := c.Quantiles[l.Name]
			if c.QuantilesExact {
				want := pd.Quantiles[l.Name]
				close(l.Name, &got, &want)
				continue
			}
			// A sketch quantile is judged by its rank in the data: KLL
			// with k=256 keeps the rank error near 1%.
			if rank := pd.Ranks[l.Name]; math.Abs(rank-l.Q) > 0.02 {
				t.Errorf("%s = %v has rank %.4f in the data; want %.2f +- 0.02", l.Name, got, rank, l.Q)
			}
		}
	case TypeBoolean:
		close("mean", c.Mean, pd.Mean)
	case TypeDatetime, TypeString:
		if c.Type == TypeDatetime {
			for _, p := range [][2]string{{c.MinText, pd.MinText}, {c.MaxText, pd.MaxText}} {
				a, _ := time.Parse(time.RFC3339Nano, p[0])
				b, _ := time.Parse(time.RFC3339Nano, p[1])
				if !a.Equal(b) {
					t.Errorf("min/max %s; pandas %s", p[0], p[1])
				}
			}
		} else if c.MinText != pd.MinText || c.MaxText != pd.MaxText {
			t.Errorf("min/max %q/%q; pandas %q/%q", c.MinText, c.MaxText, pd.MinText, pd.MaxText)
		}
	}
	if c.Type == TypeFloat || c.Type == TypeEmpty {
		return
	}
	if c.TopExact {
		var counts []int64
		for _, cat := range c.Top {
			counts = append(counts, cat.Count)
			if want, ok := pd.ValueCounts[cat.Value]; ok && want != cat.Count {
				t.Errorf("top %q: %d; pandas %d", cat.Value, cat.Count, want)
			}
		}
		sort.Slice(counts, func(i, j int) bool { return counts[i] > counts[j] })
		if fmt.Sprint(counts) != fmt.Sprint(pd.TopCounts) {
			t.Errorf("top counts %v; pandas %v", counts, pd.TopCounts)
		}
	}
}
