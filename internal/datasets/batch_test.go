package datasets_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

type entry struct {
	name, body string
	typ        byte
}

func tarOf(t testing.TB, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if typ != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: typ, Name: e.name, Size: size, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestBatchUpload(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	ctx := context.Background()

	contents := []string{"alpha", "beta", "", strings.Repeat("gamma", 10_000)}
	var entries []entry
	var refs []datasets.ObjectRef
	for _, c := range contents {
		entries = append(entries, entry{name: digest(c), body: c})
		refs = append(refs, datasets.ObjectRef{Digest: digest(c), Size: int64(len(c))})
	}
	res, err := f.svc.PutObjects(ctx, tarOf(t, entries...))
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != len(contents) || res.Bytes != int64(5+4+0+50_000) {
		t.Fatalf("PutObjects = %+v; want %d objects, %d bytes", res, len(contents), 50_009)
	}
	missing, err := f.svc.Missing(ctx, refs)
	if err != nil || len(missing) != 0 {
		t.Fatalf("after the batch, Missing = %v, %v; want none", missing, err)
	}
	for _, c := range contents {
		r, _, err := f.svc.OpenObject(ctx, digest(c))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(r)
		r.Close()
		if got.String() != c {
			t.Fatalf("object %s holds %d bytes; want %d", digest(c)[:12], got.Len(), len(c))
		}
	}

	good := entry{name: digest("kept"), body: "kept"}
	for _, tc := range []struct {
		name    string
		body    *bytes.Buffer
		wantMsg string
		absent  string // an object the refused batch must not have stored
	}{
		{"content does not match its name", tarOf(t, good, entry{name: digest("x"), body: "y"}), "entry 2: body does not match digest", digest("y")},
		{"name is not a digest", tarOf(t, entry{name: "../etc/passwd", body: "z"}), `entry 1: name "../etc/passwd": must be a SHA-256 digest`, digest("z")},
		{"directory entry", tarOf(t, entry{name: digest("d"), typ: tar.TypeDir}), "entry 1 (" + digest("d") + "): must be a regular file", digest("d")},
		{"symlink entry", tarOf(t, entry{name: digest("l"), typ: tar.TypeSymlink}), "must be a regular file", digest("l")},
		{"not a tar stream", bytes.NewBufferString(strings.Repeat("garbage!", 100)), "entry 1: not a readable tar entry", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.PutObjects(ctx, tc.body)
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), tc.wantMsg) {
				t.Fatalf("PutObjects = %v; want invalid argument containing %q", err, tc.wantMsg)
			}
			if tc.absent == "" {
				return
			}
			missing, err := f.svc.Missing(ctx, []datasets.ObjectRef{{Digest: tc.absent, Size: 1}})
			if err != nil || len(missing) != 1 {
				t.Fatalf("Missing(%s) = %v, %v; the refused entry must not be stored", tc.absent[:12], missing, err)
			}
		})
	}

	big := strings.Repeat("b", datasets.MaxBatchObjectSize+1)
	_, err = f.svc.PutObjects(ctx, tarOf(t, entry{name: digest(big), body: big}))
	if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), "upload it alone") {
		t.Fatalf("oversized entry: %v; want invalid argument saying to upload it alone", err)
	}
}
