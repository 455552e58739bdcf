package lineage

import (
	"strings"

	"github.com/slipwayml/slipway/internal/tracking"
)

// An MLflow dataset record (log-inputs) names a data version by the
// version's digest. MLflow caps dataset digests at 36 characters
// (tracking.MaxDatasetDigestSize) and a version digest is 64 hex digits, so
// a record names a version by a prefix of its digest: at least
// MinDigestPrefix lowercase hex digits, bare or after "sha256:". The first
// 32 digits (128 bits) fit either way and are what the docs suggest.
// MLflow's own digests (8 hex digits of an MD5) are too short to name one.

// MinDigestPrefix is the fewest digits that name a data version: as many as
// the CLI shows, so a digest copied from `slipway data add` works.
const MinDigestPrefix = 12

// digestPrefix returns the hex digits of an MLflow dataset digest that can
// name a data version.
func digestPrefix(digest string) (string, bool) {
	p := strings.TrimPrefix(digest, "sha256:")
	if len(p) < MinDigestPrefix || len(p) > 64 {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return p, true
}

// digestForms lists every dataset digest MLflow can store that names the
// data version with digest d.
func digestForms(d string) []string {
	var out []string
	for n := MinDigestPrefix; n <= len(d); n++ {
		if n <= tracking.MaxDatasetDigestSize {
			out = append(out, d[:n])
		}
		if f := "sha256:" + d[:n]; len(f) <= tracking.MaxDatasetDigestSize {
			out = append(out, f)
		}
	}
	return out
}
