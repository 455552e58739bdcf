package datasets_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

type fixture struct {
	svc  *datasets.Service
	dir  string // the local blob store's folder
	blob *blob.Store
}

func newFixture(t *testing.T, db *store.DB) fixture {
	dir := t.TempDir()
	b, err := blob.Open(context.Background(), dir, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return fixture{svc: datasets.New(db, b), dir: dir, blob: b}
}

func digest(content string) string {
	s := sha256.Sum256([]byte(content))
	return hex.EncodeToString(s[:])
}

// tree is a version's content by path.
type tree map[string]string

func (tr tree) files() []datasets.File {
	var out []datasets.File
	for p, c := range tr {
		out = append(out, datasets.File{Path: p, Digest: digest(c), Size: int64(len(c))})
	}
	return out
}

// push does what a client does: ask what is missing, upload it, commit.
func (f fixture) push(t *testing.T, name string, tr tree) (datasets.Version, bool, int) {
	t.Helper()
	ctx := context.Background()
	files := tr.files()
	refs := make([]datasets.ObjectRef, len(files))
	byDigest := map[string]string{}
	for i, fl := range files {
		refs[i] = datasets.ObjectRef{Digest: fl.Digest, Size: fl.Size}
		byDigest[fl.Digest] = tr[fl.Path]
	}
	missing, err := f.svc.Missing(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range missing {
		if _, err := f.svc.PutObject(ctx, d, int64(len(byDigest[d])), strings.NewReader(byDigest[d])); err != nil {
			t.Fatal(err)
		}
	}
	v, created, err := f.svc.Commit(ctx, name, datasets.Commit{Files: files}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return v, created, len(missing)
}

// objects counts the files in the blob store's object folder.
func (f fixture) objects(t *testing.T) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(f.dir, datasets.ObjectsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestContentAddressing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tr := tree{"a.csv": "x,y\n1,2\n", "b/c.txt": "hello", "b/d.txt": "hello", "e.bin": "\x00\x01"}
		v1, created, uploaded := f.push(t, "ds", tr)
		if !created || v1.Version != 1 || uploaded != 3 || f.objects(t) != 3 {
			t.Fatalf("first add: version %d created %v uploaded %d objects %d; want 1 true 3 3", v1.Version, created, uploaded, f.objects(t))
		}
		if v1.FileCount != 4 || v1.Digest != datasets.VersionDigest(tr.files()) || v1.CreatedBy != "alice" {
			t.Fatalf("version 1 = %+v", v1)
		}

		// The same tree again stores nothing and makes no version.
		again, created, uploaded := f.push(t, "ds", tr)
		if created || again.Version != 1 || uploaded != 0 || f.objects(t) != 3 {
			t.Fatalf("re-add: version %d created %v uploaded %d objects %d; want 1 false 0 3", again.Version, created, uploaded, f.objects(t))
		}

		// One changed file stores exactly one object.
		tr["b/c.txt"] = "hello, world"
		v2, created, uploaded := f.push(t, "ds", tr)
		if !created || v2.Version != 2 || uploaded != 1 || f.objects(t) != 4 {
			t.Fatalf("one change: version %d created %v uploaded %d objects %d; want 2 true 1 4", v2.Version, created, uploaded, f.objects(t))
		}

		// Another dataset with known content shares the objects.
		_, created, uploaded = f.push(t, "other", tree{"copy.csv": "x,y\n1,2\n"})
		if !created || uploaded != 0 || f.objects(t) != 4 {
			t.Fatalf("other dataset: created %v uploaded %d objects %d; want true 0 4", created, uploaded, f.objects(t))
		}

		// Going back to version 1's content is a new version (3), not a no-op.
		tr["b/c.txt"] = "hello"
		v3, created, _ := f.push(t, "ds", tr)
		if !created || v3.Version != 3 || v3.Digest != v1.Digest {
			t.Fatalf("revert: version %d created %v digest %s; want 3 true %s", v3.Version, created, v3.Digest, v1.Digest)
		}
		found, err := f.svc.ByDigest(context.Background(), v1.Digest)
		if err != nil || len(found) != 2 {
			t.Fatalf("ByDigest = %v, %v; want versions 1 and 3", found, err)
		}
	})
}

func TestCommitNeverHalfApplies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		tr := tree{"a": "one", "b": "two"}
		// Only one of two objects uploaded.
		if _, err := f.svc.PutObject(ctx, digest("one"), 3, strings.NewReader("one")); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.svc.Commit(ctx, "ds", datasets.Commit{Files: tr.files()}, "")
		if !errs.Is(err, errs.FailedPrecondition) || !strings.Contains(err.Error(), "1 of the 2 objects") {
			t.Fatalf("commit with a missing object: %v; want FailedPrecondition naming 1 of 2", err)
		}
		if _, err := f.svc.Get(ctx, "ds"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("dataset after failed commit: %v; want NotFound", err)
		}

		// A body that does not hash to its digest is refused and not stored.
		d := digest("two")
		if _, err := f.svc.PutObject(ctx, d, 3, strings.NewReader("TWO")); !errs.Is(err, errs.InvalidArgument) {
			t.Fatalf("put with wrong content: %v; want InvalidArgument", err)
		}
		if _, err := f.svc.PutObject(ctx, d, 5, strings.NewReader("two")); !errs.Is(err, errs.InvalidArgument) {
			t.Fatalf("put with wrong size: %v; want InvalidArgument", err)
		}
		if _, err := f.blob.Stat(ctx, datasets.ObjectKey(d)); !errs.Is(err, errs.NotFound) {
			t.Fatalf("object after refused puts: %v; want NotFound", err)
		}
		if f.objects(t) != 1 {
			t.Fatalf("%d objects stored; want 1", f.objects(t))
		}
		// A streamed body of unknown size is verified too.
		if stored, err := f.svc.PutObject(ctx, d, -1, strings.NewReader("two")); err != nil || !stored {
			t.Fatalf("put with unknown size: %v %v", stored, err)
		}
		if _, created, err := f.svc.Commit(ctx, "ds", datasets.Commit{Files: tr.files()}, ""); err != nil || !created {
			t.Fatalf("commit once complete: %v %v", created, err)
		}
	})
}

func TestValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		good := datasets.File{Path: "a.csv", Digest: digest("a"), Size: 1}
		cases := []struct {
			name  string
			ds    string
			files []datasets.File
			want  string
		}{
			{"no files", "ds", nil, "at least one file"},
			{"bad name", "../x", []datasets.File{good}, "name"},
			{"bad name space", "my data", []datasets.File{good}, "name"},
			{"traversal", "ds", []datasets.File{{Path: "../etc/passwd", Digest: good.Digest, Size: 1}}, "files[0].path"},
			{"absolute", "ds", []datasets.File{{Path: "/etc/passwd", Digest: good.Digest, Size: 1}}, "files[0].path"},
			{"encoded", "ds", []datasets.File{{Path: "a/%2e%2e/b", Digest: good.Digest, Size: 1}}, "files[0].path"},
			{"backslash", "ds", []datasets.File{{Path: `a\b`, Digest: good.Digest, Size: 1}}, "files[0].path"},
			{"bad digest", "ds", []datasets.File{{Path: "a", Digest: "abc", Size: 1}}, "files[0].digest"},
			{"upper digest", "ds", []datasets.File{{Path: "a", Digest: strings.ToUpper(good.Digest), Size: 1}}, "files[0].digest"},
			{"negative size", "ds", []datasets.File{{Path: "a", Digest: good.Digest, Size: -1}}, "files[0].size"},
			{"duplicate", "ds", []datasets.File{good, good}, "listed twice"},
			{"file and folder", "ds", []datasets.File{{Path: "a", Digest: good.Digest, Size: 1}, {Path: "a/b", Digest: good.Digest, Size: 1}}, "cannot also be a folder"},
		}
		for _, c := range cases {
			_, _, err := f.svc.Commit(ctx, c.ds, datasets.Commit{Files: c.files}, "")
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v; want InvalidArgument mentioning %q", c.name, err, c.want)
			}
		}
		_, _, err := f.svc.Commit(ctx, "ds", datasets.Commit{Files: []datasets.File{good},
			Profiles: map[string]*profile.Profile{"nope.csv": {Format: "csv"}}}, "")
		if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), `profiles["nope.csv"]`) {
			t.Errorf("profile for unknown path: %v", err)
		}
		_, _, err = f.svc.Commit(ctx, "ds", datasets.Commit{Files: []datasets.File{good},
			Profiles: map[string]*profile.Profile{"a.csv": {Format: "xls"}}}, "")
		if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), "format") {
			t.Errorf("bad profile: %v", err)
		}
		if _, err := f.svc.PutObject(ctx, "../../x", 1, strings.NewReader("x")); !errs.Is(err, errs.InvalidArgument) {
			t.Errorf("put with bad digest: %v", err)
		}
		if _, err := f.svc.Missing(ctx, []datasets.ObjectRef{{Digest: "zz"}}); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), "objects[0].digest") {
			t.Errorf("missing with bad digest: %v", err)
		}
		if _, err := f.svc.Version(ctx, "ds", 7, false); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown version: %v", err)
		}
	})
}

func TestVersionsProfilesAndDiff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		csv1 := "id,x,city\n1,1.0,a\n2,2.0,b\n3,3.0,a\n"
		csv2 := "id,x,city,new\n1,10.0,a,1\n2,20.0,c,2\n3,,c,3\n4,40.0,c,4\n"
		prof := func(s string) *profile.Profile {
			p, err := profile.CSV(strings.NewReader(s))
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		put := func(tr tree, profiles map[string]*profile.Profile) datasets.Version {
			for _, c := range tr {
				if _, err := f.svc.PutObject(ctx, digest(c), int64(len(c)), strings.NewReader(c)); err != nil {
					t.Fatal(err)
				}
			}
			v, _, err := f.svc.Commit(ctx, "tab", datasets.Commit{Files: tr.files(), Profiles: profiles, Message: "m"}, "")
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		put(tree{"t.csv": csv1, "gone.txt": "g", "same.txt": "s"}, map[string]*profile.Profile{"t.csv": prof(csv1)})
		put(tree{"t.csv": csv2, "new.txt": "n", "same.txt": "s"}, map[string]*profile.Profile{"t.csv": prof(csv2)})

		v, err := f.svc.Version(ctx, "tab", 0, true)
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 2 || len(v.Files) != 3 || v.Files[0].Path != "new.txt" || v.Profiles["t.csv"].Rows != 4 {
			t.Fatalf("latest version = %+v", v)
		}
		d, err := f.svc.Diff(ctx, "tab", 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Added) != 1 || d.Added[0].Path != "new.txt" || len(d.Removed) != 1 || d.Removed[0].Path != "gone.txt" ||
			len(d.Changed) != 1 || d.Changed[0].Path != "t.csv" || d.Unchanged != 1 {
			t.Fatalf("file diff = %+v", d)
		}
		if len(d.Tables) != 1 {
			t.Fatalf("tables = %+v", d.Tables)
		}
		td := d.Tables[0]
		if td.FromRows != 3 || td.ToRows != 4 || fmt.Sprint(td.AddedColumns) != "[new]" || len(td.RemovedColumns) != 0 {
			t.Fatalf("table diff = %+v", td)
		}
		shifts := map[string]datasets.ColumnChange{}
		for _, s := range td.Shifts {
			shifts[s.Column] = s
		}
		x := shifts["x"]
		if x.MeanShift == nil || math.Abs(*x.MeanShift-(70.0/3-2)) > 1e-9 || x.ToMissingRate != 0.25 {
			t.Fatalf("x shift = %+v", x)
		}
		if city := shifts["city"]; fmt.Sprint(city.TopAdded) != "[c]" || fmt.Sprint(city.TopRemoved) != "[b]" {
			t.Fatalf("city shift = %+v", city)
		}

		list, next, err := f.svc.List(ctx, "", 1)
		if err != nil || len(list) != 1 || next != "" || list[0].Latest.Version != 2 {
			t.Fatalf("List = %+v %q %v", list, next, err)
		}
		vs, err := f.svc.Versions(ctx, "tab")
		if err != nil || len(vs) != 2 || vs[0].Version != 2 {
			t.Fatalf("Versions = %+v %v", vs, err)
		}
		r, n, err := f.svc.OpenObject(ctx, digest(csv2))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if n != int64(len(csv2)) || !bytes.Equal(got, []byte(csv2)) {
			t.Fatalf("object = %q", got)
		}
	})
}

func TestConcurrentCommitsNumberInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const n = 8
		for i := range n {
			c := fmt.Sprint(i)
			if _, err := f.svc.PutObject(ctx, digest(c), int64(len(c)), strings.NewReader(c)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		versions := make([]int64, n)
		errors := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, _, err := f.svc.Commit(ctx, "race", datasets.Commit{Files: tree{"f": fmt.Sprint(i)}.files()}, "")
				versions[i], errors[i] = v.Version, err
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i := range n {
			if errors[i] != nil {
				t.Fatal(errors[i])
			}
			seen[versions[i]] = true
		}
		if len(seen) != n {
			t.Fatalf("versions %v: want %d distinct", versions, n)
		}
	})
}

func TestParseRef(t *testing.T) {
	for ref, want := range map[string]string{"ds": "ds 0", "ds@latest": "ds 0", "ds@v3": "ds 3", "ds@12": "ds 12"} {
		name, v, err := datasets.ParseRef(ref)
		if err != nil || fmt.Sprintf("%s %d", name, v) != want {
			t.Errorf("ParseRef(%q) = %s %d %v; want %s", ref, name, v, err, want)
		}
	}
	for _, ref := range []string{"", "@v1", "ds@v0", "ds@x", "a b@v1"} {
		if _, _, err := datasets.ParseRef(ref); err == nil {
			t.Errorf("ParseRef(%q): want an error", ref)
		}
	}
}
