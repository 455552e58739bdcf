package local

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, p, content string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Old enough that the index may vouch for it (see remember).
	old := time.Now().Add(-age)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestIndexAvoidsRehashing(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	files := map[string]string{"a.txt": "a", "d/b.txt": "bb", "d/e/c.txt": "ccc"}
	for p, c := range files {
		write(t, filepath.Join(root, p), c, time.Hour)
	}
	scan := func() ([]File, Stats) {
		t.Helper()
		idx := OpenIndex(cache, root)
		fs, st, err := Scan(root, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.Save(); err != nil {
			t.Fatal(err)
		}
		return fs, st
	}
	got, st := scan()
	if st.Hashed != 3 || st.Cached != 0 || len(got) != 3 || got[1].Path != "d/b.txt" {
		t.Fatalf("first scan: %+v %+v", st, got)
	}
	for _, f := range got {
		sum := sha256.Sum256([]byte(files[f.Path]))
		if f.Digest != hex.EncodeToString(sum[:]) || f.Size != int64(len(files[f.Path])) {
			t.Fatalf("%s: %s", f.Path, f.Digest)
		}
	}
	if _, st = scan(); st.Hashed != 0 || st.Cached != 3 {
		t.Fatalf("unchanged rescan: %+v; want nothing hashed", st)
	}
	// Same size, different content, different mtime: hashed again.
	write(t, filepath.Join(root, "d/b.txt"), "BB", 30*time.Minute)
	got, st = scan()
	sum := sha256.Sum256([]byte("BB"))
	if st.Hashed != 1 || st.Cached != 2 || got[1].Digest != hex.EncodeToString(sum[:]) {
		t.Fatalf("after one change: %+v", st)
	}
	// A file written just now is hashed but not trusted from the index.
	write(t, filepath.Join(root, "new.txt"), "n", 0)
	if _, st = scan(); st.Hashed != 1 {
		t.Fatalf("new file: %+v", st)
	}
	if _, st = scan(); st.Hashed != 1 || st.Cached != 3 {
		t.Fatalf("racily clean file: %+v; want it hashed again", st)
	}
	// A single file scans as itself, named by its base name.
	one, _, err := Scan(filepath.Join(root, "a.txt"), nil)
	if err != nil || len(one) != 1 || one[0].Path != "a.txt" {
		t.Fatalf("single file: %+v %v", one, err)
	}
}
