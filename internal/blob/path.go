package blob

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/slipwayml/slipway/internal/errs"
)

// MaxKeyLen bounds an artifact path in bytes. S3 refuses longer keys; checking
// here turns what would be an internal backend failure into a clear 400.
const MaxKeyLen = 1024

// maxSegmentLen is NAME_MAX on the filesystems a local store lives on.
const maxSegmentLen = 255

// ArtifactScheme is the URI scheme of locations served by Slipway's artifact
// proxy, as in MLflow: a run's artifact URI looks like
// "mlflow-artifacts:/<experiment>/<run>/artifacts".
const ArtifactScheme = "mlflow-artifacts"

// CleanKey validates an artifact path sent by a client and returns it as a
// store key. It never rewrites a suspicious path into a harmless one: it
// either returns the path unchanged (minus one trailing "/") or refuses it
// with an InvalidArgument error naming the rule. The empty path is the root
// of the store and is returned as "".
//
// An accepted key is relative, uses "/" as its only separator, has no empty,
// "." or ".." segments (so path.Clean leaves it unchanged and it cannot climb
// out of the root), and carries nothing another layer could decode or
// normalise into such a path: no backslashes, NUL or control characters,
// percent-encoded sequences (%2e, %252e, %2F, %u002e), "?" or "#", URI scheme
// or drive-letter prefixes (file:, s3:, C:), nor Unicode characters that fold
// into "." "/" or "\" under NFKC normalisation or Windows best-fit mapping.
// These rules cover the attack classes in MLflow's CVE history
// (CVE-2023-1177, -2356, -2780, -6909, -6977, CVE-2024-1483, -1560, -1593,
// -3848 and their bypasses).
//
// Colons after the first segment ("runs/2024-01-01T10:00.json") are allowed:
// they cannot form a scheme there, and the local backend escapes them on
// Windows.
func CleanKey(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if rule := keyRule(p); rule != "" {
		return "", errs.Invalid("Invalid path %q: %s", p, rule)
	}
	return strings.TrimSuffix(p, "/"), nil
}

// ResolveLocation turns an artifact location a client sent (an experiment's
// artifact_location, a model version's source) into a store key. Only
// locations this server owns are accepted: "mlflow-artifacts:/<path>" (the
// form Slipway hands out) or a plain relative key. Anything else—file://,
// absolute paths, s3:// or other schemes, a host part, "..", "?", "#", ";",
// encoded tricks—is refused, as is a location naming the whole store.
//
// Other forms MLflow clients send, such as "runs:/<run_id>/<path>" and
// "models:/...", are the caller's to resolve into mlflow-artifacts form first.
// A caller that needs the key to lie under a particular run should check it
// with IsWithin.
func ResolveLocation(location string) (string, error) {
	rest := location
	const prefix = ArtifactScheme + ":"
	if len(location) >= len(prefix) && strings.EqualFold(location[:len(prefix)], prefix) {
		rest = location[len(prefix):]
		if strings.HasPrefix(rest, "//") {
			return "", errs.Invalid("invalid artifact location %q: must be %s/<path>; a host part is not accepted", location, prefix)
		}
		if !strings.HasPrefix(rest, "/") {
			return "", errs.Invalid("invalid artifact location %q: must be %s/<path>", location, prefix)
		}
		rest = rest[1:]
	}
	// MLflow parsed ";" as the start of URL path parameters, which let
	// traversal past its checks (CVE-2024-1593); a location never needs one.
	if strings.Contains(rest, ";") {
		return "", errs.Invalid(`invalid artifact location %q: must not contain ";"`, location)
	}
	if rest == "" || rest == "/" {
		return "", errs.Invalid("invalid artifact location %q: must name a path below the artifact root", location)
	}
	if rule := keyRule(rest); rule != "" {
		return "", errs.Invalid("invalid artifact location %q: %s", location, rule)
	}
	return strings.TrimSuffix(rest, "/"), nil
}

// IsWithin reports whether key is dir or lies below it, comparing whole
// segments so that "1/ab" is not within "1/a". Both must be clean keys; the
// empty dir is the store root and contains everything.
func IsWithin(key, dir string) bool {
	return dir == "" || key == dir || strings.HasPrefix(key, dir+"/")
}

// keyRule returns the first rule p breaks, or "" if it is an acceptable
// non-empty key.
func keyRule(p string) string {
	if len(p) > MaxKeyLen {
		return fmt.Sprintf("must be at most %d bytes", MaxKeyLen)
	}
	if !utf8.ValidString(p) {
		return "must be valid UTF-8"
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return "must not contain NUL bytes"
		case c < 0x20 || c == 0x7f:
			return "must not contain control characters"
		case c == '\\':
			return `must not contain backslashes (use "/" between directories)`
		case c == '?' || c == '#':
			return `must not contain "?" or "#"`
		}
	}
	if hasPercentEscape(p) {
		// The HTTP layer decodes a path once; an escape that survives that is
		// double encoding, which is how MLflow's ".." checks were bypassed.
		return "must not contain percent-encoded sequences such as %2e or %2f (send the path decoded once)"
	}
	if s, ok := schemePrefix(p); ok {
		if len(s) == 1 {
			return "must not start with a drive letter"
		}
		return "must not start with a URI scheme such as file: or s3:"
	}
	if rule := segmentRule(p); rule != "" {
		return rule
	}
	for _, r := range p {
		if isSlashLookalike(r) {
			return `must not contain Unicode look-alikes of "/" or "\"`
		}
	}
	// Clients, file systems and tools may apply compatibility normalisation,
	// under which U+FF0E U+FF0E becomes "..", U+2025 becomes ".." and U+FF0F
	// becomes "/". The path must stay safe after it too.
	if n := norm.NFKC.String(p); n != p {
		switch {
		case strings.ContainsRune(n, '\\'):
			return `must not contain characters that normalise (NFKC) to "\"`
		case hasPercentEscape(n):
			return "must not contain characters that normalise (NFKC) to a percent-encoded sequence"
		}
		if rule := segmentRule(n); rule != "" {
			return rule + " after Unicode (NFKC) normalisation"
		}
	}
	return ""
}

// segmentRule checks the "/"-separated structure of a non-empty path.
func segmentRule(p string) string {
	if p[0] == '/' {
		return `must be relative (no leading "/")`
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		switch {
		case seg == "":
			return `must not contain empty segments ("//")`
		case strings.Trim(seg, ".") == "":
			// "..." too: Windows strips trailing dots, so it can act as "." there.
			return `must not contain ".", ".." or other all-dot segments`
		case len(seg) > maxSegmentLen:
			return fmt.Sprintf("must not contain a name longer than %d bytes", maxSegmentLen)
		}
	}
	return ""
}

// hasPercentEscape reports whether p contains %XX or %uXXXX with hex digits.
func hasPercentEscape(p string) bool {
	for i := strings.IndexByte(p, '%'); i >= 0; {
		rest := p[i+1:]
		if len(rest) >= 2 && isHex(rest[0]) && isHex(rest[1]) {
			return true
		}
		if len(rest) >= 5 && (rest[0] == 'u' || rest[0] == 'U') &&
			isHex(rest[1]) && isHex(rest[2]) && isHex(rest[3]) && isHex(rest[4]) {
			return true
		}
		j := strings.IndexByte(rest, '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// schemePrefix reports whether p starts with an RFC 3986 scheme followed by
// ":" (which includes drive letters such as "C:") and returns the scheme.
func schemePrefix(p string) (string, bool) {
	i := strings.IndexByte(p, ':')
	if i <= 0 {
		return "", false
	}
	s := p[:i]
	for j := 0; j < len(s); j++ {
		c := s[j]
		isAlpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if j == 0 && !isAlpha {
			return "", false
		}
		if !isAlpha && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return "", false
		}
	}
	return s, true
}

// isSlashLookalike reports runes that NFKC leaves alone but that Windows
// "best fit" code-page conversion or careless tools turn into "/" or "\".
func isSlashLookalike(r rune) bool {
	switch r {
	case '\u2044', // FRACTION SLASH
		'\u2215', // DIVISION SLASH
		'\u2216', // SET MINUS
		'\u29f5', // REVERSE SOLIDUS OPERATOR
		'\u29f8', // BIG SOLIDUS
		'\u29f9', // BIG REVERSE SOLIDUS
		'\ufe68': // SMALL REVERSE SOLIDUS
		return true
	}
	return false
}
