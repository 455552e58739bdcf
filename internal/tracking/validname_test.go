package tracking

import (
	"regexp"
	"testing"
)

// validName is the regexp MLflow's rule was written as, byte for byte.
func TestValidNameMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[/\w.\- ]*$`)
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}) + "b", ""} {
			if validName(s) != re.MatchString(s) {
				t.Fatalf("%q: %v vs %v", s, validName(s), re.MatchString(s))
			}
		}
	}
	for _, s := range []string{"métrica", "a\nb", "loss/train val-1.0"} {
		if validName(s) != re.MatchString(s) {
			t.Fatalf("%q", s)
		}
	}
}
