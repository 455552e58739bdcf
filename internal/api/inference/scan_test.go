package inference

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The scanner's numbers are the values strconv.ParseFloat gives, bit for
// bit, on the fast path and off it.
func TestNumberMatchesParseFloat(t *testing.T) {
	texts := []string{"0", "-0", "1", "-1", "0.1", "0.3", "1e22", "1e23", "-1e-22", "1e-23", "9007199254740992",
		"9007199254740993", "9007199254740993e-5", "123456789012345678901234567890", "0.000000000000000000000000001",
		"1.7976931348623157e308", "5e-324", "1e400", "-1e400", "1e-400", "2.2250738585072014e-308", "0.1e1", "10E+2",
		"1.0000000000000000000000000001", "4.35", "-17.625e-3", "1234567890123456789", "12345678901234567.8"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f32 := math.Float32frombits(r.Uint32())
		f64 := math.Float64frombits(r.Uint64())
		if !math.IsNaN(float64(f32)) && !math.IsInf(float64(f32), 0) {
			texts = append(texts, strconv.FormatFloat(float64(f32), 'g', -1, 32), strconv.FormatFloat(float64(f32), 'f', -1, 32))
		}
		if !math.IsNaN(f64) && !math.IsInf(f64, 0) {
			texts = append(texts, strconv.FormatFloat(f64, 'g', -1, 64))
		}
		texts = append(texts, strconv.Itoa(r.IntN(1_000_000))+"."+strconv.Itoa(r.IntN(1_000_000))+"e"+strconv.Itoa(r.IntN(60)-30))
	}
	for _, text := range texts {
		want, err := strconv.ParseFloat(text, 64)
		if err != nil && !math.IsInf(want, 0) && want != 0 {
			t.Fatalf("%s: %v", text, err)
		}
		var s scanner
		s.reset([]byte(text))
		got, ok := s.number()
		if !ok || s.i != len(text) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%s read as %v (ok %v, %d of %d bytes), ParseFloat gives %v", text, got, ok, s.i, len(text), want)
		}
	}
}
