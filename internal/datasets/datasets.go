// Package datasets keeps versioned data: a dataset is a name with numbered,
// immutable versions; a version is a manifest of files (relative path,
// SHA-256, size) with a statistical profile for each tabular file. File
// contents are content-addressed in the blob store under
// objects/sha256/<first two hex digits>/<digest>, so identical content is
// stored once across every version of every dataset.
//
// Writing a version is a three-step protocol that never half-applies: the
// client asks which objects are missing, uploads those (each verified
// against its digest as it streams in, and discarded on mismatch), then
// commits the manifest, which succeeds only if every object is present
// with the right size.
package datasets

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
)

// Limits on what one request may carry.
const (
	// MaxFiles bounds a version's manifest.
	MaxFiles = 1_000_000
	// MaxMessage bounds a version's message.
	MaxMessage = 5000
	// MaxListResults bounds one page of datasets.
	MaxListResults = 1000
)

// ObjectsDir is the blob-store folder holding content-addressed objects.
// The HTTP layer keeps MLflow's artifact proxy from writing there.
const ObjectsDir = "objects"

// File is one entry of a version's manifest.
type File struct {
	Path   string `json:"path"`
	Digest string `json:"digest"` // SHA-256, lowercase hex
	Size   int64  `json:"size"`
}

// Dataset is a named series of versions.
type Dataset struct {
	Name           string `json:"name"`
	LatestVersion  int64  `json:"latest_version"`
	CreationTime   int64  `json:"creation_time"`
	LastUpdateTime int64  `json:"last_update_time"`
	// Latest summarises the newest version (no files or profiles).
	Latest *Version `json:"latest,omitempty"`
}

// Version is one immutable version of a dataset. Files and Profiles are
// set only when asked for.
type Version struct {
	Name         string `json:"name"`
	Version      int64  `json:"version"`
	Digest       string `json:"digest"`
	FileCount    int64  `json:"file_count"`
	TotalSize    int64  `json:"total_size"`
	Message      string `json:"message,omitempty"`
	CreatedBy    string `json:"created_by,omitempty"`
	CreationTime int64  `json:"creation_time"`
	// RunID is the run that produced the version, if one was named.
	RunID    string                      `json:"run_id,omitempty"`
	Files    []File                      `json:"files,omitempty"`
	Profiles map[string]*profile.Profile `json:"profiles,omitempty"`
}

// Commit is what a client sends to create a version.
type Commit struct {
	Files []File `json:"files"`
	// Profiles maps a path in Files to that file's profile.
	Profiles map[string]*profile.Profile `json:"profiles,omitempty"`
	Message  string                      `json:"message,omitempty"`
	// RunID names the run that produced the data, for lineage.
	RunID string `json:"run_id,omitempty"`
}

// ValidateRunID checks the form of a run id a version names (MLflow's are
// 32 hex digits; any short token of letters, digits, - and _ is taken).
func ValidateRunID(id string) error {
	if len(id) > 256 {
		return errs.Invalid("run_id: at most 256 characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return errs.Invalid("run_id %q: may hold only letters, digits, - and _", id)
		}
	}
	return nil
}

// ObjectRef names an object by digest and size.
type ObjectRef struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// ObjectKey is where the object with digest lives in the blob store.
func ObjectKey(digest string) string {
	return ObjectsDir + "/sha256/" + digest[:2] + "/" + digest
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidateName checks a dataset name. Names go into URLs and CLI references
// (NAME@v3), so they are kept to a conservative alphabet.
func ValidateName(name string) error {
	if name == "" {
		return errs.Invalid("name is required")
	}
	if !namePattern.MatchString(name) {
		return errs.Invalid("name %q: must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateDigest checks a SHA-256 digest in lowercase hex.
func ValidateDigest(field, d string) error {
	if len(d) != 64 {
		return errs.Invalid("%s %q: must be a SHA-256 digest, 64 lowercase hex digits", field, d)
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errs.Invalid("%s %q: must be a SHA-256 digest, 64 lowercase hex digits", field, d)
		}
	}
	return nil
}

// ValidateFiles checks a manifest: at least one file, at most MaxFiles,
// each path a clean relative path (the artifact rules: no "..", absolute
// paths, backslashes, encoded tricks), no path twice, and no path that is
// also a folder of another (the version could not be written out).
func ValidateFiles(files []File) error {
	if len(files) == 0 {
		return errs.Invalid("files: at least one file is required")
	}
	if len(files) > MaxFiles {
		return errs.Invalid("files: %d files; at most %d are allowed in one version", len(files), MaxFiles)
	}
	seen := make(map[string]struct{}, len(files))
	for i, f := range files {
		if f.Path == "" {
			return errs.Invalid("files[%d].path is required", i)
		}
		if k, err := blob.CleanKey(f.Path); err != nil {
			return errs.Invalid("files[%d].path: %s", i, errs.Message(err))
		} else if k != f.Path {
			return errs.Invalid("files[%d].path %q: must not end with \"/\"", i, f.Path)
		}
		if err := ValidateDigest("files["+strconv.Itoa(i)+"].digest", f.Digest); err != nil {
			return err
		}
		if f.Size < 0 {
			return errs.Invalid("files[%d].size %d: must not be negative", i, f.Size)
		}
		if _, dup := seen[f.Path]; dup {
			return errs.Invalid("files[%d].path %q: listed twice", i, f.Path)
		}
		seen[f.Path] = struct{}{}
	}
	for i, f := range files {
		for dir := f.Path; ; {
			j := strings.LastIndexByte(dir, '/')
			if j < 0 {
				break
			}
			dir = dir[:j]
			if _, clash := seen[dir]; clash {
				return errs.Invalid("files[%d].path %q: %q is listed as a file and cannot also be a folder", i, f.Path, dir)
			}
		}
	}
	return nil
}

// VersionDigest is the digest of a version: SHA-256 over its files sorted
// by path (byte order), each as path, NUL, file digest, NUL, decimal size,
// newline. It depends on content and names only, never on time or order,
// so the same tree always has the same digest.
func VersionDigest(files []File) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	var buf []byte
	for _, f := range sorted {
		buf = append(buf[:0], f.Path...)
		buf = append(buf, 0)
		buf = append(buf, f.Digest...)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, f.Size, 10)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParseRef splits "NAME", "NAME@latest", "NAME@v3" or "NAME@3" into a
// name and a version number (0 for latest).
func ParseRef(ref string) (string, int64, error) {
	name, v, ok := strings.Cut(ref, "@")
	if err := ValidateName(name); err != nil {
		return "", 0, err
	}
	if !ok || v == "latest" {
		return name, 0, nil
	}
	n, err := ParseVersion(v)
	return name, n, err
}

// ParseVersion reads "3", "v3" or "latest" (0).
func ParseVersion(v string) (int64, error) {
	if v == "latest" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(v, "v"), 10, 64)
	if err != nil || n < 1 {
		return 0, errs.Invalid("version %q: must be a number from 1 (v1, v2, ...) or \"latest\"", v)
	}
	return n, nil
}
