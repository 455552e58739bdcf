package blob

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// IsAbsoluteLocation reports whether location has one of the forms RootKey
// reads: an absolute path, a file: URL or an s3:// URL. It says nothing of
// whether the location is inside the store.
func IsAbsoluteLocation(location string) bool {
	return strings.HasPrefix(location, "/") || hasPrefixFold(location, "file:") || hasPrefixFold(location, "s3://")
}

// RootKey resolves an absolute location inside the store's root to its
// key. An MLflow client that writes to the artifact root itself, instead
// of through the server's artifact proxy, names what it wrote that way:
// for a local store a path ("/data/artifacts/1/<run>/artifacts/model") or a
// file: URL (file:///data/..., file://localhost/..., file:/data/...); for
// an S3 store s3://<bucket>/<prefix>/....
//
// Everything else is refused with InvalidArgument: the other backend's
// form, another folder, bucket or prefix (including look-alikes such as
// /data/artifacts-evil, which share the root's first characters), the root
// itself, a rest that breaks CleanKey's rules (".." and "." segments,
// percent-encoded or double-encoded sequences, "?", "#", backslashes,
// Unicode look-alikes), ";" anywhere, and, for a local store, a path that
// leaves the root's real folder through a symbolic link. A file: URL is
// percent-decoded once, as RFC 8089 says, and the decoded path is what is
// checked and used; paths and s3:// URLs are taken as written. Messages do
// not name the root: a client going through the proxy has no business
// learning the server's folders.
func (s *Store) RootKey(location string) (string, error) {
	outside := errs.Invalid("%q is not inside the server's artifact root", location)
	if strings.Contains(location, ";") {
		// MLflow read ";" as URL path parameters, which let traversal past
		// its checks (CVE-2024-1593); no location needs one.
		return "", errs.Invalid(`%q must not contain ";"`, location)
	}
	var rest string
	switch {
	case hasPrefixFold(location, "s3://"):
		if s.s3Bucket == "" {
			return "", outside
		}
		bucket, p, _ := strings.Cut(location[len("s3://"):], "/")
		if bucket != s.s3Bucket {
			return "", outside
		}
		if rest = p; s.s3Prefix != "" {
			var ok bool
			if rest, ok = cutRoot(p, s.s3Prefix); !ok {
				return "", outside
			}
		}
	case hasPrefixFold(location, "file:"), strings.HasPrefix(location, "/"):
		if s.localDir == "" {
			return "", outside
		}
		p, err := localPath(location)
		if err != nil {
			return "", err
		}
		var ok bool
		if rest, ok = cutRoot(p, filepath.ToSlash(s.localDir)); !ok {
			// The root may be reached through a symbolic link; a client can
			// name it by either path.
			real, err := filepath.EvalSymlinks(s.localDir)
			if err != nil {
				return "", outside
			}
			if rest, ok = cutRoot(p, filepath.ToSlash(real)); !ok {
				return "", outside
			}
		}
	default:
		return "", errs.Invalid("%q is not an absolute location (a path, file: or s3:// URL)", location)
	}
	if strings.Trim(rest, "/") == "" {
		return "", errs.Invalid("%q names the whole artifact root, not a location inside it", location)
	}
	if rule := keyRule(rest); rule != "" {
		return "", errs.Invalid("%q is refused: the path below the artifact root %s", location, rule)
	}
	key := strings.TrimSuffix(rest, "/")
	if s.localDir != "" && !s.staysInside(key) {
		return "", errs.Invalid("%q is refused: it leads outside the artifact root through a symbolic link", location)
	}
	return key, nil
}

// localPath is the path a local location names: the location itself, or
// a file: URL's path, decoded once.
func localPath(location string) (string, error) {
	if strings.HasPrefix(location, "/") {
		return location, nil
	}
	bad := errs.Invalid("%q must be file:///absolute/path", location)
	rest := location[len("file:"):]
	if strings.HasPrefix(rest, "//") {
		host, p, _ := strings.Cut(rest[2:], "/")
		if host != "" && !strings.EqualFold(host, "localhost") {
			return "", bad
		}
		rest = "/" + p
	}
	if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "?#") {
		return "", bad
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", bad
	}
	return p, nil
}

// cutRoot returns what follows root in p, when p is root or below it,
// comparing whole segments.
func cutRoot(p, root string) (string, bool) {
	if p == root {
		return "", true
	}
	return strings.CutPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

// staysInside reports whether key, with every symbolic link on its way
// followed, is still inside the store's real root folder. A key that
// cannot be resolved (missing, or below a file) passes: nothing can be
// read through it, and the caller's read says so.
func (s *Store) staysInside(key string) bool {
	p, err := filepath.EvalSymlinks(filepath.Join(s.localDir, filepath.FromSlash(key)))
	if err != nil {
		return true
	}
	root, err := filepath.EvalSymlinks(s.localDir)
	if err != nil {
		return false
	}
	_, ok := cutRoot(filepath.ToSlash(p), filepath.ToSlash(root))
	return ok
}
