package blob

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/slipwayml/slipway/internal/errs"
)

// A multipart upload works the same on every backend: each part is stored as
// an ordinary object under UploadsDir/<uploadID>/, next to a small object
// recording the target key, and CompleteUpload streams the parts, in
// part-number order, into the target. Parts therefore make one extra trip
// through this process on completion, the price of not depending on
// S3-specific multipart calls; in return an upload behaves identically on a
// laptop and on MinIO, and a completed object appears atomically.

// MaxParts is the largest part number, as in S3.
const MaxParts = 10000

// Part names one uploaded part when completing an upload.
type Part struct {
	Number int
	// ETag is the value PutPart returned for the part. Surrounding double
	// quotes, as in an HTTP ETag header, are ignored.
	ETag string
}

var uploadIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func uploadDir(id string) string { return UploadsDir + "/" + id }

// targetKey is the object recording which key an upload is for, so that an
// upload ID cannot be used to write somewhere else.
func targetKey(id string) string { return uploadDir(id) + "/target" }

func partKey(id string, n int) string { return fmt.Sprintf("%s/part-%05d", uploadDir(id), n) }

// CreateUpload starts a multipart upload to key and returns its ID.
func (s *Store) CreateUpload(ctx context.Context, key string) (string, error) {
	k, err := objectKey(key)
	if err != nil {
		return "", err
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	id := hex.EncodeToString(b[:])
	if _, err := s.put(ctx, targetKey(id), strings.NewReader(k)); err != nil {
		return "", err
	}
	return id, nil
}

// PutPart stores part number partNumber (1 to MaxParts) of an upload,
// replacing an earlier upload of the same number, and returns its ETag: the
// hex MD5 of its content, as S3 gives for a plain part.
func (s *Store) PutPart(ctx context.Context, key, uploadID string, partNumber int, r io.Reader) (string, error) {
	if _, err := s.checkUpload(ctx, key, uploadID); err != nil {
		return "", err
	}
	if partNumber < 1 || partNumber > MaxParts {
		return "", errs.Invalid("part number %d is out of range: must be 1 to %d", partNumber, MaxParts)
	}
	h := md5.New()
	if _, err := s.put(ctx, partKey(uploadID, partNumber), io.TeeReader(r, h)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CompleteUpload joins the listed parts, in part-number order whatever the
// order of the list, into the upload's key, replacing any object there, and
// then discards the upload. Uploaded parts not listed are dropped, as in S3.
// A listed part that was never uploaded, or whose ETag does not match what
// was stored, fails the completion with InvalidArgument and leaves both the
// key and the upload untouched, so the client can fix the part and retry.
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, parts []Part) error {
	k, err := s.checkUpload(ctx, key, uploadID)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return errs.Invalid("completing upload %q: at least one part is required", uploadID)
	}
	sorted := slices.Clone(parts)
	slices.SortFunc(sorted, func(a, b Part) int { return a.Number - b.Number })
	for i, p := range sorted {
		switch {
		case p.Number < 1 || p.Number > MaxParts:
			return errs.Invalid("completing upload %q: part number %d is out of range: must be 1 to %d", uploadID, p.Number, MaxParts)
		case i > 0 && sorted[i-1].Number == p.Number:
			return errs.Invalid("completing upload %q: part %d is listed twice", uploadID, p.Number)
		case normETag(p.ETag) == "":
			return errs.Invalid("completing upload %q: part %d has no etag", uploadID, p.Number)
		}
	}
	// Look before writing so a missing part is reported by number without
	// streaming the others first.
	for _, p := range sorted {
		ok, err := s.bucket.Exists(ctx, partKey(uploadID, p.Number))
		if err != nil {
			return s.mapErr(err, k, "reading upload of")
		}
		if !ok {
			return errs.Invalid("completing upload %q: part %d was not uploaded", uploadID, p.Number)
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.newWriter(wctx, k)
	if err != nil {
		return err
	}
	for _, p := range sorted {
		if err := s.appendPart(ctx, w, uploadID, p); err != nil {
			cancel() // aborts the write: the key keeps its old content.
			_ = w.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		return s.mapErr(err, k, "writing")
	}
	// The object is complete; leftover parts only cost space and are what
	// PruneUploads is for, so a failed cleanup does not fail the request.
	_ = s.deleteAll(ctx, uploadDir(uploadID))
	return nil
}

// appendPart copies a part into w, checking its content against p.ETag as it
// goes. Hashing the bytes actually read back verifies the part end to end,
// not merely its name.
func (s *Store) appendPart(ctx context.Context, w io.Writer, id string, p Part) error {
	r, err := s.bucket.NewReader(ctx, partKey(id, p.Number), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return errs.Invalid("completing upload %q: part %d was not uploaded", id, p.Number)
		}
		return s.mapErr(err, partKey(id, p.Number), "reading")
	}
	defer r.Close()
	h := md5.New()
	if _, err := io.Copy(w, io.TeeReader(r, h)); err != nil {
		return s.mapErr(err, partKey(id, p.Number), "copying")
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != normETag(p.ETag) {
		return errs.Invalid("completing upload %q: etag %q of part %d does not match the uploaded part", id, p.ETag, p.Number)
	}
	return nil
}

func normETag(etag string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(etag), `"`))
}

// AbortUpload discards an upload and its parts.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	if _, err := s.checkUpload(ctx, key, uploadID); err != nil {
		return err
	}
	return s.deleteAll(ctx, uploadDir(uploadID))
}

// checkUpload validates key and uploadID and checks that the upload exists
// and is for key; it returns the clean key.
func (s *Store) checkUpload(ctx context.Context, key, uploadID string) (string, error) {
	k, err := objectKey(key)
	if err != nil {
		return "", err
	}
	// The ID becomes part of an object key: anything but the exact format
	// CreateUpload produces is refused before it gets near one.
	if !uploadIDPattern.MatchString(uploadID) {
		return "", errs.Invalid("invalid upload id %q", uploadID)
	}
	r, err := s.bucket.NewReader(ctx, targetKey(uploadID), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return "", errs.NotFoundf("upload %q not found", uploadID)
		}
		return "", s.mapErr(err, k, "reading upload of")
	}
	defer r.Close()
	target, err := io.ReadAll(io.LimitReader(r, MaxKeyLen+1))
	if err != nil {
		return "", s.mapErr(err, k, "reading upload of")
	}
	if string(target) != k {
		return "", errs.Invalid("upload %q is not for artifact path %q", uploadID, k)
	}
	return k, nil
}

// PruneUploads discards uploads that have seen no new part for olderThan:
// clients that crash or give up never abort, and their parts would otherwise
// stay forever. It returns how many uploads it removed. Servers run it
// periodically, much as S3 users set a lifecycle rule for the same purpose.
func (s *Store) PruneUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	latest := map[string]time.Time{}
	it := s.bucket.List(&blob.ListOptions{Prefix: UploadsDir + "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, s.mapErr(err, UploadsDir, "listing")
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(obj.Key, UploadsDir+"/"), "/")
		if !uploadIDPattern.MatchString(id) {
			continue
		}
		if obj.ModTime.After(latest[id]) {
			latest[id] = obj.ModTime
		}
	}
	n := 0
	for id, t := range latest {
		if t.After(cutoff) {
			continue
		}
		if err := s.deleteAll(ctx, uploadDir(id)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
