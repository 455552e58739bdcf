package runs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
)

// resolvedInput is what a data or model reference stood for in one run.
type resolvedInput struct {
	resolved string // data:NAME@vN or models:/NAME/N
	dataset  string // the dataset's name, for data inputs
	digest   string
}

// resolver fetches the data versions and model versions steps read into
// the service's working folder, once per version (they never change), and
// remembers what each reference meant in this run for lineage.
type resolver struct {
	s    *Service
	mu   sync.Mutex
	used map[string]resolvedInput
}

func (r *resolver) get(ref string) (resolvedInput, bool) {
	if r == nil {
		return resolvedInput{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	got, ok := r.used[ref]
	return got, ok
}

// Resolve implements engine.Resolver. The digest in a step's cache key is
// the version's content digest, so data:NAME@latest misses the cache
// exactly when a version with other content is added.
func (r *resolver) Resolve(ctx context.Context, ref string) (string, string, error) {
	var dir string
	var in resolvedInput
	var err error
	switch {
	case strings.HasPrefix(ref, "data:"):
		dir, in, err = r.data(ctx, strings.TrimPrefix(ref, "data:"))
	case strings.HasPrefix(ref, "models:/"):
		dir, in, err = r.model(ctx, strings.TrimPrefix(ref, "models:/"))
	default:
		err = errs.Invalid("%q is neither data:NAME@VERSION nor models:/NAME/VERSION", ref)
	}
	if err != nil {
		return "", "", err
	}
	r.mu.Lock()
	r.used[ref] = in
	r.mu.Unlock()
	return dir, in.digest, nil
}

func (r *resolver) data(ctx context.Context, ref string) (string, resolvedInput, error) {
	name, n, err := datasets.ParseRef(ref)
	if err != nil {
		return "", resolvedInput{}, err
	}
	v, err := r.s.data.Version(ctx, name, n, true)
	if err != nil {
		return "", resolvedInput{}, err
	}
	in := resolvedInput{resolved: fmt.Sprintf("data:%s@v%d", v.Name, v.Version), dataset: v.Name, digest: v.Digest}
	dir := filepath.Join(r.s.Dir, "inputs", "data", v.Name, "v"+strconv.FormatInt(v.Version, 10))
	err = fill(dir, func(tmp string) error {
		for _, f := range v.Files {
			if err := r.fetchObject(ctx, f, filepath.Join(tmp, filepath.FromSlash(f.Path))); err != nil {
				return err
			}
		}
		return nil
	})
	return dir, in, err
}

func (r *resolver) fetchObject(ctx context.Context, f datasets.File, dest string) error {
	rc, _, err := r.s.data.OpenObject(ctx, f.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if err := writeFile(dest, io.TeeReader(rc, h)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.Digest {
		return errs.New(errs.Internal, "stored object for %s has digest %s, not %s", f.Path, got, f.Digest)
	}
	return nil
}

func (r *resolver) model(ctx context.Context, ref string) (string, resolvedInput, error) {
	var v registry.ModelVersion
	var err error
	if name, alias, ok := strings.Cut(ref, "@"); ok {
		v, err = r.s.models.GetVersionByAlias(ctx, name, alias)
	} else {
		name, num, ok := strings.Cut(ref, "/")
		n, perr := strconv.ParseInt(num, 10, 64)
		if !ok || perr != nil {
			return "", resolvedInput{}, errs.Invalid("models:/%s: must be models:/NAME/VERSION or models:/NAME@ALIAS", ref)
		}
		v, err = r.s.models.GetModelVersion(ctx, name, n)
	}
	if err != nil {
		return "", resolvedInput{}, err
	}
	in := resolvedInput{resolved: fmt.Sprintf("models:/%s/%d", v.Name, v.Version), digest: v.Digest}
	dir := filepath.Join(r.s.Dir, "inputs", "models", v.Name, strconv.FormatInt(v.Version, 10))
	err = fill(dir, func(tmp string) error { return r.s.models.Export(ctx, v, tmp) })
	return dir, in, err
}

// fill makes dir hold what write puts in a fresh folder, unless an earlier
// fill completed it. Writing to a temporary sibling and renaming it means
// a crash or a concurrent fill never leaves a half-written dir behind.
func fill(dir string, write func(tmp string) error) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := write(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // a concurrent fill won
		}
		return err
	}
	return nil
}

func writeFile(dest string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	// Fetched inputs are shared by every run that reads the version: a
	// step must not be able to change them for the next.
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
