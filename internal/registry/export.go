package registry

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
)

// Export writes the files of a READY version into dir (which must not
// exist yet, or be empty), each checked against the version's manifest as
// it is read, so what lands on disk is what was registered. Pipelines
// fetch model inputs and serving loads deployed models this way.
func (s *Service) Export(ctx context.Context, v ModelVersion, dir string) error {
	if v.Status != StatusReady {
		return errs.New(errs.FailedPrecondition, "models:/%s/%d is %s, not READY", v.Name, v.Version, v.Status)
	}
	root, err := blob.ResolveLocation(v.StorageLocation)
	if err != nil {
		return err
	}
	return s.exportTree(ctx, root, root, dir)
}

func (s *Service) exportTree(ctx context.Context, root, key, dir string) error {
	entries, err := s.artifacts.List(ctx, key)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir {
			if err := s.exportTree(ctx, root, e.Key, dir); err != nil {
				return err
			}
			continue
		}
		rel := strings.TrimPrefix(e.Key, root+"/")
		if rel == e.Key || strings.HasPrefix(path.Clean(rel), "..") {
			return errs.New(errs.Internal, "registry file %s lies outside %s", e.Key, root)
		}
		rc, _, err := s.OpenVerified(ctx, e.Key)
		if err != nil {
			return err
		}
		err = writeExported(filepath.Join(dir, filepath.FromSlash(rel)), rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeExported writes a file read-only: an exported version is shared by
// whoever reads it and must not be changed in place.
func writeExported(dest string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
