package datasets

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayml/slipway/internal/errs"
)

// Limits of one batch upload. A batch is for many small objects (one HTTP
// request and one round of verification per object dominated the first
// add of a tree of small files); large objects go one per request.
const (
	MaxBatchObjects    = 10_000
	MaxBatchObjectSize = 4 << 20
)

// batchWriters bounds the objects of one batch written concurrently: the
// tar stream is read in order, but writes to the blob store (a file
// creation and rename locally, a request on S3) overlap.
const batchWriters = 8

// BatchResult says what a batch upload stored.
type BatchResult struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// PutObjects stores every object of a tar stream whose entries are named by
// their SHA-256 digests. Each object is verified like one PutObject; the
// first entry that is invalid (a name that is not a digest, not a regular
// file, too large, or content that does not match its name) ends the batch
// with an error naming it. Objects stored before it stay: they are verified
// content that only a committed version makes visible.
func (s *Service) PutObjects(ctx context.Context, r io.Reader) (BatchResult, error) {
	var res BatchResult
	tr := tar.NewReader(r)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWriters)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			g.Wait()
			return res, &errs.Error{Code: errs.InvalidArgument, Message: fmt.Sprintf("batch: entry %d: not a readable tar entry: %v", i+1, err), Err: err}
		}
		if err := checkBatchEntry(i, hdr); err != nil {
			g.Wait()
			return res, err
		}
		// Reading the entry whole lets the next one be read while this one
		// is written; MaxBatchObjectSize bounds what that holds.
		body := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, body); err != nil {
			g.Wait()
			return res, &errs.Error{Code: errs.InvalidArgument, Err: err,
				Message: fmt.Sprintf("batch: entry %d (%s): body ends before its %d bytes", i+1, hdr.Name, hdr.Size)}
		}
		if gctx.Err() != nil {
			break
		}
		digest := hdr.Name
		g.Go(func() error {
			if _, err := s.PutObject(gctx, digest, int64(len(body)), bytes.NewReader(body)); err != nil {
				if errs.CodeOf(err) == errs.InvalidArgument {
					return errs.Invalid("batch: entry %d: %s", i+1, errs.Message(err))
				}
				return err
			}
			return nil
		})
		res.Objects++
		res.Bytes += hdr.Size
	}
	if err := g.Wait(); err != nil {
		return BatchResult{}, err
	}
	return res, ctx.Err()
}

func checkBatchEntry(i int, hdr *tar.Header) error {
	if i >= MaxBatchObjects {
		return errs.Invalid("batch: more than %d objects; split it into several batches", MaxBatchObjects)
	}
	if hdr.Typeflag != tar.TypeReg {
		return errs.Invalid("batch: entry %d (%s): must be a regular file", i+1, hdr.Name)
	}
	if err := ValidateDigest(fmt.Sprintf("batch: entry %d: name", i+1), hdr.Name); err != nil {
		return err
	}
	if hdr.Size > MaxBatchObjectSize {
		return errs.Invalid("batch: entry %d (%s): %d bytes is more than the %d a batched object may have; upload it alone", i+1, hdr.Name, hdr.Size, MaxBatchObjectSize)
	}
	return nil
}
