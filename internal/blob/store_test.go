package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/slipwayml/slipway/internal/errs"
)

// TestStore runs the same behavioural suite against every backend: a local
// folder always, and S3 when SLIPWAY_TEST_S3_ENDPOINT names a server such as
// MinIO.
func TestStore(t *testing.T) {
	backends := []struct {
		name  string
		ready func(t *testing.T)
		open  func(t *testing.T) *Store
	}{
		{"local", func(*testing.T) {}, openLocalTestStore},
		{"s3", func(t *testing.T) { s3Endpoint(t) }, openS3TestStore},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.ready(t)
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, b.open(t))
				})
			}
		})
	}
}

func openLocalTestStore(t *testing.T) *Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifacts")
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		// The folder must hold only what was put there: no .attrs sidecars,
		// no temporary files.
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".attrs") || strings.HasSuffix(p, ".tmp")) {
				t.Errorf("stray file in artifact folder: %s", p)
			}
			return nil
		})
	})
	return s
}

var s3Defaults sync.Once

// s3Endpoint returns the S3 server to test against. Without one, CI fails
// (it must exercise S3) and a laptop skips, saying how to run the tests.
func s3Endpoint(t *testing.T) string {
	t.Helper()
	endpoint := os.Getenv("SLIPWAY_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SLIPWAY_TEST_S3_ENDPOINT is not set; CI must run the S3 tests (e.g. against MinIO at http://127.0.0.1:9000)")
		}
		t.Skip("S3 tests skipped: set SLIPWAY_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:9000 for MinIO) to run them")
	}
	s3Defaults.Do(func() {
		// Fill in MinIO's default credentials only where none are set; tests
		// run in parallel, so t.Setenv is not an option.
		for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "minioadmin", "AWS_SECRET_ACCESS_KEY": "minioadmin"} {
			if os.Getenv(k) == "" {
				_ = os.Setenv(k, v)
			}
		}
	})
	return endpoint
}

func openS3TestStore(t *testing.T) *Store {
	t.Helper()
	endpoint := s3Endpoint(t)
	ctx := context.Background()
	opts := Options{Endpoint: endpoint, CreateBucket: true}
	bucket := "slipway-test-" + randomHex(t, 8)
	const prefix = "root/sub"
	s, err := Open(ctx, "s3://"+bucket+"/"+prefix, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	client, _, err := newS3Client(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		ctx := context.Background()
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Errorf("listing test bucket: %v", err)
				return
			}
			for _, o := range page.Contents {
				// Everything the store writes must stay under its prefix.
				if !strings.HasPrefix(aws.ToString(o.Key), prefix+"/") {
					t.Errorf("object %q written outside the store prefix %q", aws.ToString(o.Key), prefix)
				}
				if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
					t.Errorf("cleaning test bucket: %v", err)
				}
			}
		}
		if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("deleting test bucket: %v", err)
		}
	})
	return s
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// opaque hides a reader's concrete type, so the store cannot learn the size
// up front and has to stream, as it does with an HTTP request body.
type opaque struct{ io.Reader }

func put(t *testing.T, s *Store, key string, body []byte) {
	t.Helper()
	n, err := s.Put(context.Background(), key, opaque{bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if n != int64(len(body)) {
		t.Fatalf("Put(%q) wrote %d bytes, want %d", key, n, len(body))
	}
}

func get(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	r, size, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if size != int64(len(b)) {
		t.Fatalf("Get(%q) reported size %d, read %d bytes", key, size, len(b))
	}
	return b
}

func wantCode(t *testing.T, err error, code errs.Code, what string) {
	t.Helper()
	if !errs.Is(err, code) {
		t.Fatalf("%s: got %v (code %v), want code %v", what, err, errs.CodeOf(err), code)
	}
}

func list(t *testing.T, s *Store, prefix string) []Entry {
	t.Helper()
	es, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return es
}

var suite = []struct {
	name string
	run  func(t *testing.T, s *Store)
}{
	{"RoundTripMultiMB", func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Larger than one S3 upload part (8 MiB) and not a multiple of it.
		body := randomBytes(t, 9<<20+12345)
		put(t, s, "models/big model/weights.bin", body)
		e, err := s.Stat(ctx, "models/big model/weights.bin")
		if err != nil {
			t.Fatal(err)
		}
		if e != (Entry{Key: "models/big model/weights.bin", Size: int64(len(body))}) {
			t.Fatalf("Stat = %+v", e)
		}
		if got := get(t, s, "models/big model/weights.bin"); !bytes.Equal(got, body) {
			t.Fatal("content read back differs from what was written")
		}
		put(t, s, "models/big model/weights.bin", []byte("small"))
		if got := get(t, s, "models/big model/weights.bin"); string(got) != "small" {
			t.Fatalf("after overwrite got %q", got)
		}
		put(t, s, "empty.txt", nil)
		if got := get(t, s, "empty.txt"); len(got) != 0 {
			t.Fatalf("empty object read back as %d bytes", len(got))
		}
	}},
	{"List", func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, k := range []string{"d/a.txt", "d/sub/b.txt", "d/sub/c/d.txt", "d/z.bin", "other.txt", "d/模型 v1.json"} {
			put(t, s, k, []byte(k))
		}
		// An upload in flight must not show up in listings.
		if _, err := s.CreateUpload(ctx, "d/pending.bin"); err != nil {
			t.Fatal(err)
		}
		want := []Entry{
			{Key: "d/a.txt", Size: 7},
			{Key: "d/sub", IsDir: true},
			{Key: "d/z.bin", Size: 7},
			{Key: "d/模型 v1.json", Size: int64(len("d/模型 v1.json"))},
		}
		for _, p := range []string{"d", "d/"} {
			if got := list(t, s, p); !slices.Equal(got, want) {
				t.Errorf("List(%q) = %+v, want %+v", p, got, want)
			}
		}
		root := []Entry{{Key: "d", IsDir: true}, {Key: "other.txt", Size: 9}}
		if got := list(t, s, ""); !slices.Equal(got, root) {
			t.Errorf("List(root) = %+v, want %+v", got, root)
		}
		for _, p := range []string{"missing", "d/a.txt"} {
			if got := list(t, s, p); len(got) != 0 {
				t.Errorf("List(%q) = %+v, want empty", p, got)
			}
		}
		e, err := s.Stat(ctx, "d/sub")
		if err != nil || e != (Entry{Key: "d/sub", IsDir: true}) {
			t.Errorf("Stat(dir) = %+v, %v", e, err)
		}
		_, err = s.List(ctx, "../d")
		wantCode(t, err, errs.InvalidArgument, "List(../d)")
		_, err = s.List(ctx, UploadsDir)
		wantCode(t, err, errs.InvalidArgument, "List(reserved)")
	}},
	{"DeleteFileAndDir", func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, k := range []string{"d/a.txt", "d/sub/b.txt", "d/sub/c/d.txt", "d/subway.txt"} {
			put(t, s, k, []byte(k))
		}
		if err := s.Delete(ctx, "d/a.txt"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "d/a.txt")
		wantCode(t, err, errs.NotFound, "Stat after delete")
		if err := s.Delete(ctx, "d/sub"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"d/sub", "d/sub/b.txt", "d/sub/c/d.txt"} {
			_, err := s.Stat(ctx, k)
			wantCode(t, err, errs.NotFound, "Stat("+k+") after deleting its directory")
		}
		// A sibling sharing the name as a prefix survives.
		if got := list(t, s, "d"); !slices.Equal(got, []Entry{{Key: "d/subway.txt", Size: 12}}) {
			t.Fatalf("List(d) after deletes = %+v", got)
		}
		if err := s.Delete(ctx, "d/sub"); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
		// The deleted directory's name is free for a file.
		put(t, s, "d/sub", []byte("now a file"))
		if got := get(t, s, "d/sub"); string(got) != "now a file" {
			t.Fatalf("got %q", got)
		}
		// So is the name of a folder emptied by deleting its last file.
		put(t, s, "e/f/g.txt", []byte("x"))
		if err := s.Delete(ctx, "e/f/g.txt"); err != nil {
			t.Fatal(err)
		}
		put(t, s, "e/f", []byte("file"))
		wantCode(t, s.Delete(ctx, ""), errs.InvalidArgument, "Delete(root)")
		wantCode(t, s.Delete(ctx, "../x"), errs.InvalidArgument, "Delete(../x)")
	}},
	{"Copy", func(t *testing.T, s *Store) {
		ctx := context.Background()
		files := map[string]string{
			"runs/1/model/MLmodel":             "flavors: {}",
			"runs/1/model/data/model file.bin": "weights",
			"runs/1/model/données/模型.json":     "{}",
		}
		for k, v := range files {
			put(t, s, k, []byte(v))
		}
		if err := s.Copy(ctx, "copy/MLmodel", "runs/1/model/MLmodel"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "copy/MLmodel"); string(got) != files["runs/1/model/MLmodel"] {
			t.Fatalf("copied file holds %q", got)
		}
		if err := s.Copy(ctx, "registry/m/1", "runs/1/model"); err != nil {
			t.Fatal(err)
		}
		for k, v := range files {
			dst := "registry/m/1/" + strings.TrimPrefix(k, "runs/1/model/")
			if got := get(t, s, dst); string(got) != v {
				t.Errorf("%s holds %q, want %q", dst, got, v)
			}
			if got := get(t, s, k); string(got) != v {
				t.Errorf("source %s changed to %q", k, got)
			}
		}
		wantCode(t, s.Copy(ctx, "x", "missing"), errs.NotFound, "Copy(missing)")
		wantCode(t, s.Copy(ctx, "runs/1/model/again", "runs/1/model"), errs.InvalidArgument, "Copy into itself")
		wantCode(t, s.Copy(ctx, "x", "../etc/passwd"), errs.InvalidArgument, "Copy from ../")
	}},
	{"MissingIsNotFound", func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _, err := s.Get(ctx, "nope/missing.txt")
		wantCode(t, err, errs.NotFound, "Get(missing)")
		_, err = s.Stat(ctx, "nope/missing.txt")
		wantCode(t, err, errs.NotFound, "Stat(missing)")
		put(t, s, "dir/file.txt", []byte("x"))
		_, _, err = s.Get(ctx, "dir")
		wantCode(t, err, errs.NotFound, "Get(directory)")
	}},
	{"RefusesUnsafeKeys", func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, k := range []string{"../escape.txt", "/etc/passwd", "%2e%2e/x", UploadsDir + "/x", "", "a#b"} {
			_, err := s.Put(ctx, k, strings.NewReader("x"))
			wantCode(t, err, errs.InvalidArgument, "Put("+k+")")
			_, _, err = s.Get(ctx, k)
			wantCode(t, err, errs.InvalidArgument, "Get("+k+")")
		}
	}},
	{"FailedBodyStoresNothing", func(t *testing.T, s *Store) {
		ctx := context.Background()
		put(t, s, "keep.txt", []byte("old"))
		boom := errors.New("client went away")
		for _, k := range []string{"new.txt", "keep.txt"} {
			r := io.MultiReader(bytes.NewReader(randomBytes(t, 1<<20)), &failingReader{boom})
			if _, err := s.Put(ctx, k, r); !errors.Is(err, boom) {
				t.Fatalf("Put(%q) with a failing body: %v, want the body's error", k, err)
			}
		}
		_, err := s.Stat(ctx, "new.txt")
		wantCode(t, err, errs.NotFound, "Stat after failed Put")
		if got := get(t, s, "keep.txt"); string(got) != "old" {
			t.Fatalf("failed overwrite left %q", got)
		}
	}},
	{"MultipartOutOfOrder", func(t *testing.T, s *Store) {
		ctx := context.Background()
		key := "runs/1/artifacts/model.bin"
		id, err := s.CreateUpload(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		parts := [][]byte{randomBytes(t, 1<<20+1), []byte("abc"), randomBytes(t, 2<<20)}
		etags := make([]string, 3)
		for _, i := range []int{2, 0, 1} {
			if etags[i], err = s.PutPart(ctx, key, id, i+1, opaque{bytes.NewReader(parts[i])}); err != nil {
				t.Fatalf("PutPart(%d): %v", i+1, err)
			}
		}
		// Re-sending a part replaces it, and an HTTP-quoted etag is accepted.
		if etags[1], err = s.PutPart(ctx, key, id, 2, strings.NewReader("abc")); err != nil {
			t.Fatal(err)
		}
		err = s.CompleteUpload(ctx, key, id, []Part{
			{Number: 3, ETag: etags[2]}, {Number: 1, ETag: `"` + etags[0] + `"`}, {Number: 2, ETag: etags[1]},
		})
		if err != nil {
			t.Fatalf("CompleteUpload: %v", err)
		}
		if got := get(t, s, key); !bytes.Equal(got, bytes.Join(parts, nil)) {
			t.Fatalf("completed object is %d bytes, not the concatenation of the parts in order", len(got))
		}
		assertUploadGone(t, s, id)
		wantCode(t, s.CompleteUpload(ctx, key, id, []Part{{1, etags[0]}}), errs.NotFound, "completing twice")
	}},
	{"MultipartMissingOrBadPart", func(t *testing.T, s *Store) {
		ctx := context.Background()
		key := "m/file.bin"
		put(t, s, key, []byte("previous"))
		id, err := s.CreateUpload(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		e1, err := s.PutPart(ctx, key, id, 1, strings.NewReader("one"))
		if err != nil {
			t.Fatal(err)
		}
		e3, err := s.PutPart(ctx, key, id, 3, strings.NewReader("three"))
		if err != nil {
			t.Fatal(err)
		}
		err = s.CompleteUpload(ctx, key, id, []Part{{1, e1}, {2, e1}, {3, e3}})
		wantCode(t, err, errs.InvalidArgument, "completing with a missing part")
		if !strings.Contains(errs.Message(err), "part 2") {
			t.Fatalf("message %q does not name the missing part", errs.Message(err))
		}
		err = s.CompleteUpload(ctx, key, id, []Part{{1, e1}, {3, e1}})
		wantCode(t, err, errs.InvalidArgument, "completing with a wrong etag")
		for _, bad := range [][]Part{nil, {{1, e1}, {1, e1}}, {{0, e1}}, {{1, ""}}} {
			wantCode(t, s.CompleteUpload(ctx, key, id, bad), errs.InvalidArgument, "completing with bad part list")
		}
		if got := get(t, s, key); string(got) != "previous" {
			t.Fatalf("a refused completion changed the object to %q", got)
		}
		// The client can still finish the same upload.
		e2, err := s.PutPart(ctx, key, id, 2, strings.NewReader("two"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteUpload(ctx, key, id, []Part{{1, e1}, {2, e2}, {3, e3}}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, key); string(got) != "onetwothree" {
			t.Fatalf("got %q", got)
		}
	}},
	{"MultipartAbortAndIDs", func(t *testing.T, s *Store) {
		ctx := context.Background()
		key := "a/b.bin"
		id, err := s.CreateUpload(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 2; n++ {
			if _, err := s.PutPart(ctx, key, id, n, strings.NewReader("part")); err != nil {
				t.Fatal(err)
			}
		}
		_, err = s.PutPart(ctx, "other/key", id, 3, strings.NewReader("x"))
		wantCode(t, err, errs.InvalidArgument, "PutPart for another key")
		_, err = s.PutPart(ctx, key, id, MaxParts+1, strings.NewReader("x"))
		wantCode(t, err, errs.InvalidArgument, "PutPart out of range")
		for _, bad := range []string{"../../etc", "", strings.Repeat("A", 32), id + "/x"} {
			_, err = s.PutPart(ctx, key, bad, 1, strings.NewReader("x"))
			wantCode(t, err, errs.InvalidArgument, "PutPart with upload id "+bad)
		}
		_, err = s.PutPart(ctx, key, strings.Repeat("0", 32), 1, strings.NewReader("x"))
		wantCode(t, err, errs.NotFound, "PutPart to an unknown upload")

		if err := s.AbortUpload(ctx, key, id); err != nil {
			t.Fatal(err)
		}
		assertUploadGone(t, s, id)
		_, err = s.Stat(ctx, key)
		wantCode(t, err, errs.NotFound, "Stat after abort")
		_, err = s.PutPart(ctx, key, id, 1, strings.NewReader("x"))
		wantCode(t, err, errs.NotFound, "PutPart after abort")
		wantCode(t, s.AbortUpload(ctx, key, id), errs.NotFound, "aborting twice")
	}},
	{"PruneUploads", func(t *testing.T, s *Store) {
		ctx := context.Background()
		id, err := s.CreateUpload(ctx, "p.bin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPart(ctx, "p.bin", id, 1, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PruneUploads(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("PruneUploads(1h) = %d, %v; want 0 (the upload is fresh)", n, err)
		}
		if n, err := s.PruneUploads(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("PruneUploads(-1h) = %d, %v; want 1", n, err)
		}
		assertUploadGone(t, s, id)
	}},
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

func assertUploadGone(t *testing.T, s *Store, id string) {
	t.Helper()
	left, err := s.listAll(context.Background(), uploadDir(id)+"/")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("upload %s left objects behind: %v", id, left)
	}
}

// TestLocalStore covers what only a folder can get wrong.
func TestLocalStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+filepath.ToSlash(dir)+"/art", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "a/b.txt", []byte("x"))
	if _, err := os.Stat(filepath.Join(dir, "art", "a", "b.txt")); err != nil {
		t.Fatalf("file:// store did not write into its folder: %v", err)
	}
	// A file cannot also be a folder on disk; that is the caller's conflict,
	// not an internal error.
	_, err = s.Put(ctx, "a", strings.NewReader("x"))
	wantCode(t, err, errs.FailedPrecondition, "Put over a directory")
	_, err = s.Put(ctx, "a/b.txt/c", strings.NewReader("x"))
	wantCode(t, err, errs.FailedPrecondition, "Put below a file")
}

func TestOpenRefusesBadLocations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		loc  string
		opts Options
	}{
		{"", Options{}},
		{"gs://bucket/x", Options{}},
		{"file://evil-host/etc", Options{}},
		{"file:relative/path", Options{}},
		{"file:///tmp/x?metadata=yes", Options{}},
		{"s3://Bad_Bucket/x", Options{}},
		{"s3://bucket/../escape", Options{}},
		{"s3://bucket/x?endpoint=http://evil", Options{}},
		{"s3://user:pw@bucket/x", Options{}},
		{"s3://bucket/x", Options{Endpoint: "ftp://host"}},
		{t.TempDir(), Options{Endpoint: "http://127.0.0.1:9000"}},
	} {
		_, err := Open(ctx, tc.loc, tc.opts)
		wantCode(t, err, errs.InvalidArgument, "Open("+tc.loc+")")
	}
}

func TestOpenS3MissingBucket(t *testing.T) {
	endpoint := s3Endpoint(t)
	_, err := Open(context.Background(), "s3://slipway-missing-"+randomHex(t, 8), Options{Endpoint: endpoint})
	wantCode(t, err, errs.FailedPrecondition, "Open of a missing bucket without CreateBucket")
}
