package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
)

// Layout of a version in the artifact store:
//
//	registry/<model_id>/<version>/MANIFEST.json
//	registry/<model_id>/<version>/files/...      the model's files
//
// The manifest sits outside files/ so that a model may contain a file of
// that name. Keys use the model's id, which a rename does not change.
const (
	filesDir     = "files"
	ManifestName = "MANIFEST.json"
)

// hashParallelism bounds concurrent file reads while hashing a version.
const hashParallelism = 8

// storeFiles copies a source into the version's storage, hashes what was
// written and writes MANIFEST.json. It returns the version's storage
// location, the manifest's digest and the manifest's JSON.
func (s *Service) storeFiles(ctx context.Context, src source, modelID, version int64) (location, digest, manifest string, err error) {
	dir := versionDir(modelID, version)
	files := dir + "/" + filesDir
	// Left-overs of an earlier failed attempt at this number must not end
	// up in the manifest.
	if err := s.artifacts.Delete(ctx, dir); err != nil {
		return "", "", "", err
	}
	dst := files
	if src.isFile {
		dst = files + "/" + path.Base(src.key)
	}
	if err := s.artifacts.Copy(ctx, dst, src.key); err != nil {
		if errs.Is(err, errs.NotFound) {
			return "", "", "", errs.Invalid("Invalid model version source: its files disappeared while they were being registered")
		}
		return "", "", "", err
	}
	m, err := s.hashTree(ctx, files)
	if err != nil {
		return "", "", "", err
	}
	raw, sum := encodeManifest(m)
	if _, err := s.artifacts.Put(ctx, dir+"/"+ManifestName, bytes.NewReader(raw)); err != nil {
		return "", "", "", err
	}
	return blob.ArtifactScheme + ":/" + dst, sum, string(raw), nil
}

// encodeManifest is the manifest's canonical JSON (files in path order)
// and its SHA-256, the version's digest.
func encodeManifest(m Manifest) ([]byte, string) {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if m.Files == nil {
		m.Files = []ManifestFile{}
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	raw = append(raw, '\n')
	sum := sha256.Sum256(raw)
	return raw, hex.EncodeToString(sum[:])
}

// listTree returns every file under dir, recursively, with keys relative
// to dir.
func (s *Service) listTree(ctx context.Context, dir string) ([]blob.Entry, error) {
	var out []blob.Entry
	var walk func(prefix string) error
	walk = func(prefix string) error {
		entries, err := s.artifacts.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir {
				if err := walk(e.Key); err != nil {
					return err
				}
				continue
			}
			e.Key = strings.TrimPrefix(e.Key, dir+"/")
			out = append(out, e)
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// hashTree hashes every file under dir.
func (s *Service) hashTree(ctx context.Context, dir string) (Manifest, error) {
	entries, err := s.listTree(ctx, dir)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Files: make([]ManifestFile, len(entries))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashParallelism)
	for i, e := range entries {
		g.Go(func() error {
			size, sum, err := s.hashFile(gctx, dir+"/"+e.Key)
			m.Files[i] = ManifestFile{Path: e.Key, Size: size, SHA256: sum}
			return err
		})
	}
	return m, g.Wait()
}

func (s *Service) hashFile(ctx context.Context, key string) (int64, string, error) {
	r, _, err := s.artifacts.Get(ctx, key)
	if err != nil {
		return 0, "", err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return 0, "", errs.Wrap(err, "reading "+key)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// manifestOf reads a version's manifest from the database, the copy that
// counts: MANIFEST.json in the store can be edited by whoever can edit the
// files.
func (s *Service) manifestOf(ctx context.Context, q queryer, modelID, version int64) (Manifest, string, error) {
	var raw string
	if err := q.QueryRowContext(ctx, s.db.Q(`SELECT manifest FROM model_versions WHERE model_id = ? AND version = ?`), modelID, version).Scan(&raw); err != nil {
		return Manifest{}, "", err
	}
	var m Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return Manifest{}, "", errs.Wrap(err, "reading a model version's manifest")
	}
	return m, raw, nil
}

// Verify checks every file of a version against its manifest.
func (s *Service) Verify(ctx context.Context, name string, version int64) (Report, error) {
	v, err := s.versionRow(ctx, s.db.Read, name, version)
	if err != nil {
		return Report{}, err
	}
	if v.Status != StatusReady {
		return Report{}, errs.New(errs.FailedPrecondition, "Model Version (name=%s, version=%d) is %s, not READY", name, version, v.Status)
	}
	return s.verify(ctx, v)
}

func (s *Service) verify(ctx context.Context, v ModelVersion) (Report, error) {
	m, raw, err := s.manifestOf(ctx, s.db.Read, v.modelID, v.Version)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Name: v.Name, Version: v.Version, Digest: v.Digest, Files: len(m.Files)}
	dir := versionDir(v.modelID, v.Version)
	got, err := s.hashTree(ctx, dir+"/"+filesDir)
	if err != nil {
		return Report{}, err
	}
	have := make(map[string]ManifestFile, len(got.Files))
	for _, f := range got.Files {
		have[f.Path] = f
	}
	for _, want := range m.Files {
		f, ok := have[want.Path]
		delete(have, want.Path)
		switch {
		case !ok:
			rep.Missing = append(rep.Missing, want.Path)
		case f.Size != want.Size || f.SHA256 != want.SHA256:
			rep.Changed = append(rep.Changed, FileChange{Path: want.Path, WantSize: want.Size, GotSize: f.Size, WantSHA256: want.SHA256, GotSHA256: f.SHA256})
		}
	}
	for p := range have {
		rep.Extra = append(rep.Extra, p)
	}
	sort.Strings(rep.Extra)
	_, sum, err := s.hashFile(ctx, dir+"/"+ManifestName)
	switch {
	case errs.Is(err, errs.NotFound):
	case err != nil:
		return Report{}, err
	default:
		want := sha256.Sum256([]byte(raw))
		rep.ManifestFileIntact = sum == hex.EncodeToString(want[:])
	}
	return rep, nil
}

// Summary describes what is wrong in one line, for messages.
func (r Report) Summary() string {
	var parts []string
	for _, c := range r.Changed {
		parts = append(parts, "changed "+c.Path)
	}
	for _, p := range r.Missing {
		parts = append(parts, "missing "+p)
	}
	for _, p := range r.Extra {
		parts = append(parts, "unexpected "+p)
	}
	if !r.ManifestFileIntact {
		parts = append(parts, ManifestName+" changed or missing")
	}
	if len(parts) == 0 {
		return "intact"
	}
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more", len(parts)-5))
	}
	return strings.Join(parts, ", ")
}

// IsStorageKey reports whether a store key lies in registry storage.
func IsStorageKey(key string) bool { return blob.IsWithin(key, StorageDir) }

// memoryLimit is the largest file OpenVerified checks in memory; larger
// ones are spooled to a temporary file.
const memoryLimit = 8 << 20

// OpenVerified opens a file of registry storage for reading after checking
// it against its version's manifest, so that a changed file is never served
// as the registered one. The content is checked in full before the first
// byte is returned, from a private copy, so a change made while the file is
// being sent cannot slip through. MANIFEST.json is served from the
// database's copy.
func (s *Service) OpenVerified(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	key, err := blob.CleanKey(key)
	if err != nil {
		return nil, 0, err
	}
	parts := strings.SplitN(key, "/", 5)
	if len(parts) < 4 || parts[0] != StorageDir {
		return nil, 0, errs.NotFoundf("artifact %q not found", key)
	}
	modelID, err1 := strconv.ParseInt(parts[1], 10, 64)
	version, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, 0, errs.NotFoundf("artifact %q not found", key)
	}
	var name, status string
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT rm.name, mv.status FROM model_versions mv JOIN registered_models rm ON rm.model_id = mv.model_id
		WHERE mv.model_id = ? AND mv.version = ? AND mv.current_stage <> ?`), modelID, version, stageDeleted).Scan(&name, &status)
	if errors.Is(err, sql.ErrNoRows) || err == nil && status != StatusReady {
		return nil, 0, errs.NotFoundf("artifact %q not found", key)
	}
	if err != nil {
		return nil, 0, err
	}
	m, raw, err := s.manifestOf(ctx, s.db.Read, modelID, version)
	if err != nil {
		return nil, 0, err
	}
	if len(parts) == 4 && parts[3] == ManifestName {
		return io.NopCloser(strings.NewReader(raw)), int64(len(raw)), nil
	}
	if len(parts) < 5 || parts[3] != filesDir {
		return nil, 0, errs.NotFoundf("artifact %q not found", key)
	}
	rel := parts[4]
	var want *ManifestFile
	for i := range m.Files {
		if m.Files[i].Path == rel {
			want = &m.Files[i]
			break
		}
	}
	if want == nil {
		if _, err := s.artifacts.Stat(ctx, key); err == nil {
			return nil, 0, tampered(name, version, rel, "it is not part of the registered version")
		}
		return nil, 0, errs.NotFoundf("artifact %q not found", key)
	}
	r, size, err := s.artifacts.Get(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return nil, 0, tampered(name, version, rel, "it is missing from registry storage")
	}
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	if size != want.Size {
		return nil, 0, tampered(name, version, rel, fmt.Sprintf("its size is %d bytes, registered %d", size, want.Size))
	}
	body, err := spool(r, want.Size)
	if err != nil {
		return nil, 0, err
	}
	if body.sum != want.SHA256 || body.size != want.Size {
		body.Close()
		return nil, 0, tampered(name, version, rel, "its SHA-256 is "+body.sum+", registered "+want.SHA256)
	}
	return body, body.size, nil
}

func tampered(name string, version int64, rel, why string) error {
	return errs.New(errs.FailedPrecondition,
		"Model Version (name=%s, version=%d) file '%s' does not match the version's manifest: %s. It was changed after registration and is not served; run `slipway models verify %s/%d`",
		name, version, rel, why, name, version)
}

// spooled is a verified private copy of a file, in memory or in a
// temporary file removed on Close.
type spooled struct {
	io.Reader
	f    *os.File
	size int64
	sum  string
}

func (b *spooled) Close() error {
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	os.Remove(b.f.Name())
	return err
}

func spool(r io.Reader, size int64) (*spooled, error) {
	h := sha256.New()
	if size <= memoryLimit {
		var buf bytes.Buffer
		n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(r, memoryLimit+1))
		if err != nil {
			return nil, errs.Wrap(err, "reading a registered file")
		}
		return &spooled{Reader: &buf, size: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
	}
	f, err := os.CreateTemp("", "slipway-verified-*")
	if err != nil {
		return nil, errs.Wrap(err, "spooling a registered file")
	}
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	b := &spooled{Reader: f, f: f, size: n, sum: hex.EncodeToString(h.Sum(nil))}
	if err != nil {
		b.Close()
		return nil, errs.Wrap(err, "spooling a registered file")
	}
	return b, nil
}
