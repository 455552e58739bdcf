package engine

import (
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// settle waits until files written so far are old enough for the memo to
// remember their digests (memoMargin before the read that records them).
func settle(t *testing.T) {
	t.Helper()
	if !identityAvailable {
		t.Skip("no inode and ctime on this platform: the digest memo is off")
	}
	time.Sleep(120 * time.Millisecond)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return digestPrefix + hex.EncodeToString(sum[:])
}

// memoSpec reads a large input, so that whether it was read shows in
// hashedBytes above everything else the engine reads.
const memoSpec = `name: memo
steps:
  count:
    command: wc -c < ${inputs.big} > ${outputs.n}
    inputs:
      big: data/big.bin
    outputs:
      n: out/n.txt
`

const bigSize = 1 << 20

func TestMemoSurvivesRestartAndSkipsReading(t *testing.T) {
	pr := newProject(t, map[string]string{"pipeline.yaml": memoSpec, "data/big.bin": strings.Repeat("a", bigSize)})
	settle(t)
	before := hashedBytes.Load()
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, map[string]Status{"count": StatusSucceeded})
	if got := hashedBytes.Load() - before; got < bigSize {
		t.Fatalf("first run read %d bytes, want the input's %d at least", got, bigSize)
	}
	memos.Lock()
	open := len(memos.byRoot)
	memos.Unlock()
	if open != 0 {
		t.Fatalf("%d memos still held after the run", open)
	}
	if _, err := os.Stat(filepath.Join(pr.dir, DigestMemoFile)); err != nil {
		t.Fatalf("memo not saved: %v", err)
	}

	// A new run loads the memo from disk and does not read the input.
	before = hashedBytes.Load()
	r = pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, map[string]Status{"count": StatusCached})
	if got := hashedBytes.Load() - before; got >= bigSize {
		t.Errorf("cached re-run read %d bytes: the memo was not used", got)
	}
	if r.Step("count").Decision.Changed != nil {
		t.Errorf("changed = %v", r.Step("count").Decision.Changed)
	}
}

// The guarantee of TestSamePathChangeIsNeverStale, with the memo holding
// the old content's digest: a rewrite at the same size and mtime changes
// ctime, so the file is read again and the step reruns.
func TestMemoSeesSameSizeSameMtimeRewrite(t *testing.T) {
	pr := newProject(t, demoFiles)
	raw := filepath.Join(pr.dir, "data/raw.csv")
	info, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	settle(t)
	pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	first := pr.read("out/report.txt")
	m := loadMemo(pr.dir)
	if _, ok := m.old["data/raw.csv"]; !ok {
		t.Fatalf("memo does not hold data/raw.csv: %v", m.old)
	}

	pr.write("data/raw.csv", "x,y\n9,9\n") // same length
	if err := os.Chtimes(raw, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, allStatus(StatusSucceeded))
	if got := r.Step("prepare").Decision.Reason; got != "input raw changed" {
		t.Errorf("prepare reason = %q", got)
	}
	if got := pr.read("out/report.txt"); !strings.Contains(got, "9,9") {
		t.Fatalf("report after change = %q", got)
	}

	pr.write("data/raw.csv", demoFiles["data/raw.csv"])
	if err := os.Chtimes(raw, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	r = pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
	wantStatuses(t, r, allStatus(StatusCached))
	if got := pr.read("out/report.txt"); got != first {
		t.Fatalf("restored report = %q, want %q", got, first)
	}
}

func TestMemoCorruptFileIsIgnored(t *testing.T) {
	for name, body := range map[string]string{
		"garbage":   "this is not a gob stream",
		"truncated": "",
		"other format": func() string {
			var b strings.Builder
			_ = gob.NewEncoder(&b).Encode(memoData{Format: memoFormat + 1, Entries: map[string]memoEntry{
				"data/big.bin": {ID: fileID{Size: bigSize}}}})
			return b.String()
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			pr := newProject(t, map[string]string{"pipeline.yaml": memoSpec, "data/big.bin": strings.Repeat("b", bigSize)})
			pr.write(DigestMemoFile, body)
			settle(t)
			before := hashedBytes.Load()
			r := pr.mustRun(pr.parse("pipeline.yaml", nil), Options{})
			wantStatuses(t, r, map[string]Status{"count": StatusSucceeded})
			if got := hashedBytes.Load() - before; got < bigSize {
				t.Errorf("read %d bytes, want the input read", got)
			}
			if got := strings.TrimSpace(pr.read("out/n.txt")); got != fmt.Sprint(bigSize) {
				t.Errorf("output = %q", got)
			}
			// Rewritten as a valid memo that the next run uses.
			if m := loadMemo(pr.dir); m.changed || len(m.old) == 0 {
				t.Errorf("memo after the run: changed %v, %d entries", m.changed, len(m.old))
			}
			before = hashedBytes.Load()
			wantStatuses(t, pr.mustRun(pr.parse("pipeline.yaml", nil), Options{}), map[string]Status{"count": StatusCached})
			if got := hashedBytes.Load() - before; got >= bigSize {
				t.Errorf("second run read %d bytes", got)
			}
		})
	}
}

// fileDigest through a memo in use, at the level of single files.
func TestMemoFileRules(t *testing.T) {
	dir := t.TempDir()
	release := useMemo(dir)
	defer release()
	p := filepath.Join(dir, "f.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(want string) int64 {
		t.Helper()
		before := hashedBytes.Load()
		dg, n, err := fileDigest(p)
		if err != nil || dg != sha(want) || n != int64(len(want)) {
			t.Fatalf("fileDigest = %s, %d, %v; want %s, %d", dg, n, err, sha(want), len(want))
		}
		return hashedBytes.Load() - before
	}

	// Just written: read every time, since a second write within the
	// clock's granularity could leave ctime as it is.
	write("hello")
	if first, second := digest("hello"), digest("hello"); first != 5 || second != 5 {
		t.Fatal("a file changed just now was not read again")
	}
	settle(t)
	if digest("hello") != 5 || digest("hello") != 0 {
		t.Fatal("a settled file was read twice")
	}

	// Same size, same mtime, new bytes.
	info, _ := os.Stat(p)
	write("jello")
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := digest("jello"); got != 5 {
		t.Fatalf("rewrite at same size and mtime read %d bytes", got)
	}

	// Replaced by a rename: another inode, whatever the times say.
	settle(t)
	digest("jello")
	info, _ = os.Stat(p)
	tmp := filepath.Join(dir, "g.txt")
	if err := os.WriteFile(tmp, []byte("mello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if got := digest("mello"); got != 5 {
		t.Fatalf("replaced file read %d bytes", got)
	}

	// Files outside a project in use are always read.
	other := filepath.Join(t.TempDir(), "o.txt")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle(t)
	for range 2 {
		before := hashedBytes.Load()
		if _, _, err := fileDigest(other); err != nil || hashedBytes.Load()-before != 1 {
			t.Fatalf("outside file: %v, read %d", err, hashedBytes.Load()-before)
		}
	}
}

// Concurrent runs of one project share the memo; the last one saves it.
func TestMemoSharedByConcurrentRuns(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(p, []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle(t)
	r1 := useMemo(dir)
	r2 := useMemo(dir)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dg, _, err := fileDigest(p); err != nil || dg != sha("shared") {
				t.Errorf("digest %s, %v", dg, err)
			}
		}()
	}
	wg.Wait()
	r1()
	if _, err := os.Stat(filepath.Join(dir, DigestMemoFile)); !os.IsNotExist(err) {
		t.Fatalf("memo saved while another run holds it (%v)", err)
	}
	r2()
	if m := loadMemo(dir); len(m.old) != 1 {
		t.Fatalf("saved memo holds %v", m.old)
	}
}

// dirEntries digests files in parallel; the result must be that of
// reading them one by one, in path order.
func TestDirEntriesParallel(t *testing.T) {
	dir := t.TempDir()
	var want []FileEntry
	for i := range 40 {
		rel := fmt.Sprintf("d%d/f%02d.txt", i%3, i)
		body := strings.Repeat(fmt.Sprint(i), i+1)
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		want = append(want, FileEntry{Path: rel, Digest: sha(body), Size: int64(len(body)), Mode: 0o640})
	}
	slices.SortFunc(want, func(a, b FileEntry) int { return strings.Compare(a.Path, b.Path) })
	got, err := dirEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("dirEntries =\n%v\nwant\n%v", got, want)
	}

	// An unreadable entry is still an error.
	if err := os.Remove(filepath.Join(dir, "d0/f00.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f03.txt", filepath.Join(dir, "d0/link")); err != nil {
		t.Fatal(err)
	}
	if _, err := dirEntries(dir); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d1", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "d1", "sub", "x"), os.O_CREATE|os.O_WRONLY, 0o000)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(f, "x")
	f.Close()
	if os.Geteuid() != 0 { // root reads anything
		if _, err := dirEntries(dir); err == nil {
			t.Fatal("unreadable file: no error")
		}
	}
}
