package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/spec"
)

// OutputRecord is one stored output of a cached step.
type OutputRecord struct {
	Name   string          `json:"name"`
	Path   string          `json:"path"` // relative to the project
	Type   spec.OutputType `json:"type"`
	Digest string          `json:"digest"`
	// Files holds one entry with an empty Path for a file output, and every
	// regular file for a dir output.
	Files []FileEntry `json:"files"`
}

// Manifest is a cache entry: what a step produced under a key.
type Manifest struct {
	Key      string             `json:"key"`
	Pipeline string             `json:"pipeline"`
	Step     string             `json:"step"`
	Created  time.Time          `json:"created"`
	Outputs  []OutputRecord     `json:"outputs"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
}

// State is what the last run of a step recorded, kept to explain the next
// run's miss. It is written before the step runs, with Status "running".
type State struct {
	Key        string     `json:"key"`
	Components Components `json:"components"`
	Status     Status     `json:"status"`
	Updated    time.Time  `json:"updated"`
}

// CacheStore keeps cache entries, their output objects and per-step state.
type CacheStore interface {
	// Lookup returns the entry for key, or nil without error when there is none.
	Lookup(ctx context.Context, key string) (*Manifest, error)
	// Save stores every output file named by m (read from projectDir) and
	// then m itself, so an entry never exists without its objects.
	Save(ctx context.Context, m *Manifest, projectDir string) error
	// Restore writes m's outputs into projectDir, verifying each digest.
	Restore(ctx context.Context, m *Manifest, projectDir string) error
	// LoadState returns nil without error when the step never ran.
	LoadState(ctx context.Context, pipeline, step string) (*State, error)
	SaveState(ctx context.Context, pipeline, step string, st *State) error
}

// BlobCache is a CacheStore on the artifact store. Output files are stored
// once by content, so identical outputs of many runs cost one object.
//
//	pipelines/cache/<key>/manifest.json
//	pipelines/objects/sha256/<hex>
//	pipelines/state/<pipeline>/<step>.json
type BlobCache struct {
	Store *blob.Store
}

// NewBlobCache returns a cache kept in store.
func NewBlobCache(store *blob.Store) *BlobCache { return &BlobCache{Store: store} }

func manifestKey(key string) string { return "pipelines/cache/" + key + "/manifest.json" }
func objectKey(digest string) string {
	return "pipelines/objects/sha256/" + hexOf(digest)
}
func stateKey(pipeline, step string) string {
	return "pipelines/state/" + pipeline + "/" + step + ".json"
}

func (c *BlobCache) getJSON(ctx context.Context, key string, v any) (bool, error) {
	r, _, err := c.Store.Get(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return false, errs.Wrap(err, "reading "+key)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, errs.Wrap(err, "decoding "+key)
	}
	return true, nil
}

func (c *BlobCache) putJSON(ctx context.Context, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = c.Store.Put(ctx, key, bytes.NewReader(data))
	return err
}

func (c *BlobCache) Lookup(ctx context.Context, key string) (*Manifest, error) {
	var m Manifest
	ok, err := c.getJSON(ctx, manifestKey(key), &m)
	if !ok || err != nil {
		return nil, err
	}
	if m.Key != key {
		return nil, errs.New(errs.Internal, "cache entry %s records key %s", key, m.Key)
	}
	return &m, nil
}

func (c *BlobCache) Save(ctx context.Context, m *Manifest, projectDir string) error {
	for _, o := range m.Outputs {
		for _, f := range o.Files {
			local := filepath.Join(projectDir, filepath.FromSlash(o.Path), filepath.FromSlash(f.Path))
			if err := c.putObject(ctx, local, f.Digest); err != nil {
				return fmt.Errorf("output %s: %w", o.Name, err)
			}
		}
	}
	return c.putJSON(ctx, manifestKey(m.Key), m)
}

func (c *BlobCache) putObject(ctx context.Context, local, digest string) error {
	key := objectKey(digest)
	if _, err := c.Store.Stat(ctx, key); err == nil {
		return nil
	} else if !errs.Is(err, errs.NotFound) {
		return err
	}
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	// Hash while uploading: a file changed since it was digested must not
	// be stored under the old digest.
	h := sha256.New()
	if _, err := c.Store.Put(ctx, key, io.TeeReader(f, h)); err != nil {
		return err
	}
	if got := digestPrefix + hex.EncodeToString(h.Sum(nil)); got != digest {
		_ = c.Store.Delete(ctx, key)
		return fmt.Errorf("%s changed while it was being stored", local)
	}
	return nil
}

// Restore goes on past a bad object so that every corrupt one is found and
// dropped now; one left behind would be skipped by the rerun's Save.
func (c *BlobCache) Restore(ctx context.Context, m *Manifest, projectDir string) error {
	var first error
	for _, o := range m.Outputs {
		if err := c.restoreOutput(ctx, o, projectDir); err != nil && first == nil {
			first = fmt.Errorf("restoring output %s (%s): %w", o.Name, o.Path, err)
		}
	}
	return first
}

func (c *BlobCache) restoreOutput(ctx context.Context, o OutputRecord, projectDir string) error {
	target := filepath.Join(projectDir, filepath.FromSlash(o.Path))
	if dg, err := pathDigest(target); err == nil && dg == o.Digest {
		return nil // already in place; rewriting would only touch mtimes
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	// Build next to the target and rename, so a failed restore never leaves
	// a half-written output that a later digest could mistake for real.
	if o.Type != spec.OutputDir {
		if len(o.Files) != 1 {
			return fmt.Errorf("cache entry lists %d files for a file output", len(o.Files))
		}
		tmp, err := c.fetchTemp(ctx, parent, o.Files[0])
		if err != nil {
			return err
		}
		if err := os.RemoveAll(target); err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, target)
	}
	tmpDir, err := os.MkdirTemp(parent, "."+filepath.Base(target)+".restore-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmpDir)
		}
	}()
	var fetchErr error
	for _, f := range o.Files {
		dst := filepath.Join(tmpDir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp, err := c.fetchTemp(ctx, filepath.Dir(dst), f)
		if err != nil {
			if fetchErr == nil {
				fetchErr = err
			}
			continue
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	if fetchErr != nil {
		return fetchErr
	}
	if err := os.Chmod(tmpDir, 0o755); err != nil {
		return err
	}
	if dg, err := pathDigest(tmpDir); err != nil || dg != o.Digest {
		return fmt.Errorf("restored directory does not match digest %s", o.Digest)
	}
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	if err := os.Rename(tmpDir, target); err != nil {
		return err
	}
	ok = true
	return nil
}

// fetchTemp downloads an object into a temp file in dir and checks its digest.
func (c *BlobCache) fetchTemp(ctx context.Context, dir string, f FileEntry) (string, error) {
	r, _, err := c.Store.Get(ctx, objectKey(f.Digest))
	if err != nil {
		return "", err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(dir, ".restore-")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if got := digestPrefix + hex.EncodeToString(h.Sum(nil)); got != f.Digest {
			err = fmt.Errorf("stored object %s is corrupt (content hashes to %s)", f.Digest, got)
			// Save skips objects that exist, so a bad one would otherwise
			// break every later hit on it; the rerun stores it afresh.
			_ = c.Store.Delete(ctx, objectKey(f.Digest))
		}
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

func (c *BlobCache) LoadState(ctx context.Context, pipeline, step string) (*State, error) {
	var st State
	ok, err := c.getJSON(ctx, stateKey(pipeline, step), &st)
	if !ok || err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *BlobCache) SaveState(ctx context.Context, pipeline, step string, st *State) error {
	return c.putJSON(ctx, stateKey(pipeline, step), st)
}
