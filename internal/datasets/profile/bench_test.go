package profile

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// wideCSV is 50 columns cycling through integers, floats with gaps,
// categories, booleans, unique ids and dates, as bench/databench writes.
func wideCSV(rows int) []byte {
	var b bytes.Buffer
	cols := 50
	for c := range cols {
		if c > 0 {
			b.WriteByte(',')
		}
		b.WriteString("c" + strconv.Itoa(c))
	}
	b.WriteByte('\n')
	r := rand.New(rand.NewPCG(1, 1))
	cats := []string{"red", "green", "blue", "cyan", "magenta", "yellow", "black"}
	var line []byte
	for i := range rows {
		line = line[:0]
		for c := range cols {
			if c > 0 {
				line = append(line, ',')
			}
			switch c % 6 {
			case 0:
				line = strconv.AppendInt(line, int64(r.IntN(100000)), 10)
			case 1:
				if r.IntN(20) != 0 {
					line = strconv.AppendFloat(line, r.NormFloat64()*100, 'f', 3, 64)
				}
			case 2:
				line = append(line, cats[r.IntN(len(cats))]...)
			case 3:
				line = strconv.AppendBool(line, r.IntN(3) == 0)
			case 4:
				line = append(line, 'u')
				line = strconv.AppendInt(line, int64(i*cols+c), 36)
			case 5:
				line = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24))*time.Hour).AppendFormat(line, "2006-01-02")
			}
		}
		line = append(line, '\n')
		b.Write(line)
	}
	return b.Bytes()
}

// go test -bench CSV -cpuprofile cpu.out ./internal/datasets/profile
func BenchmarkCSV(b *testing.B) {
	data := wideCSV(100000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := CSV(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
