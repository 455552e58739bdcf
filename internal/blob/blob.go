// Package blob is Slipway's artifact and object store: run artifacts, model
// version files and dataset blobs. It wraps gocloud.dev/blob so that a local
// folder and any S3-compatible server (AWS S3, MinIO, ...) behave the same,
// and adds what MLflow's artifact proxy needs on top: one-level listings,
// recursive delete and copy, and a backend-agnostic multipart upload.
//
// Every key a Store method takes goes through CleanKey, so a Store never
// reads or writes outside its root even if a caller forgets to validate; the
// reserved folder UploadsDir (multipart parts in flight) is out of reach of
// ordinary keys and hidden from listings.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayml/slipway/internal/errs"
)

// UploadsDir is the reserved top-level folder holding multipart parts until
// an upload is completed or aborted.
const UploadsDir = ".slipway-uploads"

// parallelism bounds concurrent object requests in recursive delete and copy:
// enough to hide S3 round trips, few enough not to trip rate limits.
const parallelism = 16

// maxServerSideCopy is the largest object S3's CopyObject accepts; larger
// ones are copied by streaming through this process.
const maxServerSideCopy = 5 << 30

// Store is an artifact store rooted at a local folder or an S3 bucket prefix.
// It is safe for concurrent use.
type Store struct {
	bucket *blob.Bucket
	// localDir is the root folder of a local store, "" for S3. It is used to
	// prune folders a delete leaves empty, which the object model hides but a
	// file system does not.
	localDir string
	// s3Bucket and s3Prefix are where an S3 store is rooted ("" for a
	// local one), for RootKey.
	s3Bucket, s3Prefix string
	// location is the location string the store was opened with.
	location string
}

// Entry describes a file or a directory in a store.
type Entry struct {
	// Key is the path from the store root, without a trailing "/" for
	// directories. MLflow's proxied list_artifacts wants path.Base(Key); its
	// tracking list-artifacts wants Key relative to the run's artifact root.
	Key   string
	IsDir bool
	// Size is the size in bytes of a file, 0 for a directory.
	Size int64
}

// Location returns the location the store was opened with.
func (s *Store) Location() string { return s.location }

// Close releases the store's resources.
func (s *Store) Close() error {
	if err := s.bucket.Close(); err != nil {
		return errs.Wrap(err, "closing artifact store")
	}
	return nil
}

// objectKey validates a key naming an object or directory a caller may touch.
func objectKey(key string) (string, error) {
	k, err := CleanKey(key)
	if err != nil {
		return "", err
	}
	if k == "" {
		return "", errs.Invalid("artifact path is required")
	}
	if IsWithin(k, UploadsDir) {
		return "", errs.Invalid("invalid artifact path %q: %s is reserved", key, UploadsDir)
	}
	return k, nil
}

// Put stores the contents of r under key, replacing any object there, and
// returns the number of bytes written. The body is streamed: a local store
// writes it to a temporary file renamed into place on success, S3 uploads it
// in parts of 8 MiB (at most 5 in flight). If r fails, nothing is stored.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	k, err := objectKey(key)
	if err != nil {
		return 0, err
	}
	return s.put(ctx, k, r)
}

func (s *Store) put(ctx context.Context, k string, r io.Reader) (int64, error) {
	// Cancelling the writer's context before Close is gocloud's way to abort
	// a write, so a failed read never leaves a truncated object behind.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.newWriter(wctx, k)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, r)
	if err != nil {
		cancel()
		_ = w.Close()
		return n, s.mapErr(err, k, "writing")
	}
	if err := w.Close(); err != nil {
		return n, s.mapErr(err, k, "writing")
	}
	return n, nil
}

// newWriter opens a writer for k; cancel ctx before Close to abort it.
func (s *Store) newWriter(ctx context.Context, k string) (*blob.Writer, error) {
	if s.localDir != "" {
		// A delete leaves the folders above the deleted key in place; if one
		// of them is where this file goes, it is empty and can go (os.Remove
		// fails on anything else, and the write then reports the conflict).
		p := filepath.Join(s.localDir, filepath.FromSlash(k))
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			_ = os.Remove(p)
		}
	}
	w, err := s.bucket.NewWriter(ctx, k, nil)
	if err != nil {
		return nil, s.mapErr(err, k, "writing")
	}
	return w, nil
}

// Get opens the object at key for reading and returns its size. The caller
// must close the reader. A missing key, or a directory, is NotFound.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	k, err := objectKey(key)
	if err != nil {
		return nil, 0, err
	}
	r, err := s.bucket.NewReader(ctx, k, nil)
	if err != nil {
		return nil, 0, s.mapErr(err, k, "reading")
	}
	return r, r.Size(), nil
}

// Stat describes the object or directory at key; NotFound if neither exists.
func (s *Store) Stat(ctx context.Context, key string) (Entry, error) {
	k, err := objectKey(key)
	if err != nil {
		return Entry{}, err
	}
	attrs, err := s.bucket.Attributes(ctx, k)
	if err == nil {
		return Entry{Key: k, Size: attrs.Size}, nil
	}
	if gcerrors.Code(err) != gcerrors.NotFound {
		return Entry{}, s.mapErr(err, k, "reading")
	}
	objs, _, err := s.bucket.ListPage(ctx, blob.FirstPageToken, 1, &blob.ListOptions{Prefix: k + "/"})
	if err != nil {
		return Entry{}, s.mapErr(err, k, "listing")
	}
	if len(objs) == 0 {
		return Entry{}, errs.NotFoundf("artifact %q not found", k)
	}
	return Entry{Key: k, IsDir: true}, nil
}

// List returns the files and directories directly under prefix ("" for the
// root), sorted by key. A prefix that is missing or names a file lists as
// empty, as MLflow's list_artifacts does.
func (s *Store) List(ctx context.Context, prefix string) ([]Entry, error) {
	p, err := CleanKey(prefix)
	if err != nil {
		return nil, err
	}
	if p != "" {
		if p, err = objectKey(p); err != nil {
			return nil, err
		}
		p += "/"
	}
	var out []Entry
	it := s.bucket.List(&blob.ListOptions{Prefix: p, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, s.mapErr(err, p, "listing")
		}
		k := strings.TrimSuffix(obj.Key, "/")
		// Skip the "dir/" marker objects some S3 tools create, and our own
		// upload area.
		if obj.Key == p || k == UploadsDir {
			continue
		}
		out = append(out, Entry{Key: k, IsDir: obj.IsDir, Size: obj.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object at key and everything under key/ if it is a
// directory. Deleting something that does not exist succeeds, so retries are
// safe. The root cannot be deleted this way.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := objectKey(key)
	if err != nil {
		return err
	}
	return s.deleteAll(ctx, k)
}

// deleteAll removes k and everything under k/ without validating k, so the
// multipart code can clean its reserved area.
func (s *Store) deleteAll(ctx context.Context, k string) error {
	keys, err := s.listAll(ctx, k+"/")
	if err != nil {
		return err
	}
	// Checked rather than deleted blindly: in a local store k may be the
	// folder itself, which cannot be removed while its files still are.
	if ok, err := s.bucket.Exists(ctx, k); err != nil {
		return s.mapErr(err, k, "reading")
	} else if ok {
		keys = append(keys, k)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for _, key := range keys {
		g.Go(func() error {
			err := s.bucket.Delete(gctx, key)
			if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return s.mapErr(err, key, "deleting")
			}
			return nil
		})
	}
	err = g.Wait()
	s.pruneEmptyDirs(k)
	return err
}

// listAll returns every object key under prefix, recursively.
func (s *Store) listAll(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, s.mapErr(err, prefix, "listing")
		}
		keys = append(keys, obj.Key)
	}
}

// pruneEmptyDirs removes, in a local store, the empty folders left at and
// under k after a delete, deepest first. Without this a later Put of a file
// named like the deleted directory would find the folder in the way.
// os.Remove refuses non-empty folders, so a concurrent writer's files are
// never touched.
func (s *Store) pruneEmptyDirs(k string) {
	if s.localDir == "" {
		return
	}
	var dirs []string
	_ = filepath.WalkDir(filepath.Join(s.localDir, filepath.FromSlash(k)), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}

// Copy copies the object at src to dst, or, if src is a directory, every
// object under src/ to the same place under dst/. Existing objects at the
// destination are overwritten. A missing src is NotFound.
func (s *Store) Copy(ctx context.Context, dst, src string) error {
	d, err := objectKey(dst)
	if err != nil {
		return err
	}
	sk, err := objectKey(src)
	if err != nil {
		return err
	}
	if IsWithin(d, sk) || IsWithin(sk, d) {
		return errs.Invalid("cannot copy %q to %q: source and destination overlap", src, dst)
	}
	attrs, err := s.bucket.Attributes(ctx, sk)
	switch {
	case err == nil:
		return s.copyObject(ctx, d, sk, attrs.Size)
	case gcerrors.Code(err) != gcerrors.NotFound:
		return s.mapErr(err, sk, "reading")
	}
	keys, err := s.listAll(ctx, sk+"/")
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errs.NotFoundf("artifact %q not found", sk)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for _, key := range keys {
		g.Go(func() error {
			return s.copyObject(gctx, d+strings.TrimPrefix(key, sk), key, -1)
		})
	}
	return g.Wait()
}

// copyObject copies one object; size is its size if known, else -1.
func (s *Store) copyObject(ctx context.Context, dst, src string, size int64) error {
	if s.localDir == "" && size > maxServerSideCopy {
		return s.streamCopy(ctx, dst, src)
	}
	err := s.bucket.Copy(ctx, dst, src, &blob.CopyOptions{BeforeCopy: fixCopySource})
	if err == nil {
		return nil
	}
	// Only now pay for a size lookup: directory copies pass -1.
	if size < 0 && s.localDir == "" && gcerrors.Code(err) != gcerrors.NotFound {
		if a, aerr := s.bucket.Attributes(ctx, src); aerr == nil && a.Size > maxServerSideCopy {
			return s.streamCopy(ctx, dst, src)
		}
	}
	return s.mapErr(err, src, "copying")
}

// fixCopySource re-encodes the source of an S3 CopyObject request. gocloud
// encodes it with url.QueryEscape, which turns a space into "+"; S3-compatible
// servers such as MinIO decode the header as a path and then look for a key
// with a literal "+", so copying "model file.bin" fails with NotFound. Every
// byte but RFC 3986 unreserved characters and "/" is percent-encoded instead,
// as the AWS SDKs do, which every server decodes the same way.
func fixCopySource(as func(any) bool) error {
	var in *s3.CopyObjectInput
	if !as(&in) || in.CopySource == nil {
		return nil
	}
	src, err := url.QueryUnescape(*in.CopySource)
	if err != nil {
		return err
	}
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	in.CopySource = aws.String(b.String())
	return nil
}

func (s *Store) streamCopy(ctx context.Context, dst, src string) error {
	r, err := s.bucket.NewReader(ctx, src, nil)
	if err != nil {
		return s.mapErr(err, src, "reading")
	}
	defer r.Close()
	_, err = s.put(ctx, dst, r)
	return err
}

// mapErr turns a gocloud error into a coded one. Input errors the local file
// system reports (a file where a folder is needed, or the reverse) become
// FailedPrecondition rather than an internal error; S3 has no such conflict.
func (s *Store) mapErr(err error, key, op string) error {
	var coded *errs.Error
	switch {
	case errors.As(err, &coded):
		// A coded error from the caller's reader (a size limit, say) passes
		// through unchanged.
		return err
	case gcerrors.Code(err) == gcerrors.NotFound:
		return errs.NotFoundf("artifact %q not found", key)
	case errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY):
		return &errs.Error{Code: errs.FailedPrecondition, Message: "artifact path " + quote(key) + " conflicts with an existing file or directory", Err: err}
	}
	return errs.Wrap(err, "artifact store: "+op+" "+quote(key)+" failed")
}

func quote(s string) string { return `"` + s + `"` }
