package engine

import (
	"encoding/gob"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DigestMemoFile is where, relative to a project, the engine remembers the
// digests of the files it has read, so that a re-run does not read
// unchanged inputs again.
const DigestMemoFile = ".slipway/digests"

// The digest memo. A digest is always the SHA-256 of a file's content; the
// memo only spares reading a file whose identity is exactly what it was
// when the file was last read: device, inode, size, and modification and
// change times to the nanosecond. The change time (ctime) is what makes
// this safe: the kernel sets it on every write, rename into place, chmod
// or chtimes, and no user call sets it back, so a file rewritten at the
// same path with the same size and the same (restored) mtime is read
// again. Two writes within the timestamp granularity could still leave
// ctime unchanged, so a digest is only remembered when the file's ctime is
// older than memoMargin before the read began (git's "racy clean" rule).
// Where inode and ctime are not available the memo is off and every file
// is read (memo_stat_other.go).
//
// One memo is kept per project, in DigestMemoFile, for files inside the
// project. Engine.Run holds it (useMemo) while it runs; concurrent runs of
// one project share it, and the last to finish saves it. A missing,
// unreadable or corrupt memo file is an empty memo: the worst outcome of
// losing it is reading the inputs again.

// fileID is what the memo compares.
type fileID struct {
	Dev, Ino           uint64
	Size, Mtime, Ctime int64 // bytes; ns since the epoch
}

// memoEntry is one remembered digest; gob encodes exported fields only.
type memoEntry struct {
	ID     fileID
	Digest [32]byte
}

type memoData struct {
	Format  int
	Entries map[string]memoEntry // by slash-separated path in the project
}

const memoFormat = 1

type digestMemo struct {
	root string // the project, absolute
	file string
	refs int // guarded by memos

	mu      sync.Mutex
	old     map[string]memoEntry // as loaded
	cur     map[string]memoEntry // confirmed or recorded since loading
	changed bool
}

var memos = struct {
	sync.Mutex
	byRoot map[string]*digestMemo
}{byRoot: map[string]*digestMemo{}}

// useMemo makes the memo of the project at root (absolute) serve digests of
// files under root until the returned function is called.
func useMemo(root string) (release func()) {
	if !identityAvailable {
		return func() {}
	}
	memos.Lock()
	m := memos.byRoot[root]
	if m == nil {
		m = loadMemo(root)
		memos.byRoot[root] = m
	}
	m.refs++
	memos.Unlock()
	return func() {
		memos.Lock()
		m.refs--
		last := m.refs == 0
		if last {
			delete(memos.byRoot, root)
		}
		memos.Unlock()
		if last {
			_ = m.save() // a memo that cannot be written costs a re-read, no more
		}
	}
}

func loadMemo(root string) *digestMemo {
	m := &digestMemo{root: root, file: filepath.Join(root, filepath.FromSlash(DigestMemoFile)),
		old: map[string]memoEntry{}, cur: map[string]memoEntry{}}
	f, err := os.Open(m.file)
	if err != nil {
		return m
	}
	defer f.Close()
	var d memoData
	if gob.NewDecoder(f).Decode(&d) == nil && d.Format == memoFormat && d.Entries != nil {
		m.old = d.Entries
	} else {
		m.changed = true // rewrite it
	}
	return m
}

// memoFor returns the memo in use for a file at path (absolute, clean) and
// the file's path in that project, or nil.
func memoFor(path string) (*digestMemo, string) {
	memos.Lock()
	defer memos.Unlock()
	var best *digestMemo
	var rel string
	for root, m := range memos.byRoot {
		r, ok := strings.CutPrefix(path, root+string(filepath.Separator))
		if ok && r != "" && (best == nil || len(root) > len(best.root)) {
			best, rel = m, r
		}
	}
	return best, filepath.ToSlash(rel)
}

// memoMargin is how long before a read a file must last have changed for
// its digest to be remembered. Coarse file-system clocks tick every 1 to
// 10 ms; whole-second ones get 2 s.
func memoMargin(id fileID) int64 {
	if id.Ctime%int64(time.Second) == 0 && id.Mtime%int64(time.Second) == 0 {
		return int64(2 * time.Second)
	}
	return int64(50 * time.Millisecond)
}

// fileDigest returns the digest and size of the regular file at path, from
// the memo when its identity is unchanged, else by reading it.
func (m *digestMemo) fileDigest(path, rel string) (string, int64, error) {
	begin := time.Now().UnixNano()
	info, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	id, ok := identityOf(info)
	if !ok || !info.Mode().IsRegular() {
		return hashFile(path)
	}
	m.mu.Lock()
	e, hit := m.cur[rel]
	if !hit {
		e, hit = m.old[rel]
	}
	if hit && e.ID == id {
		m.cur[rel] = e
		m.mu.Unlock()
		return digestPrefix + hex.EncodeToString(e.Digest[:]), id.Size, nil
	}
	m.mu.Unlock()

	dg, n, after, err := hashOpenFile(path)
	if err != nil {
		return "", 0, err
	}
	// Keep it only if what was read is the file that was looked at (not
	// replaced or written meanwhile) and it had settled before the read.
	if after == id && n == id.Size && id.Ctime < begin-memoMargin(id) {
		var d [32]byte
		if _, err := hex.Decode(d[:], []byte(hexOf(dg))); err == nil {
			m.mu.Lock()
			m.cur[rel] = memoEntry{ID: id, Digest: d}
			m.changed = true
			m.mu.Unlock()
		}
	}
	return dg, n, nil
}

// save writes the entries confirmed or recorded since loading, and the
// loaded ones whose files are still as recorded (a run that stopped early
// did not look at them); entries of files that changed or went are
// dropped. The file is replaced atomically.
func (m *digestMemo) save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for rel, e := range m.old {
		if _, seen := m.cur[rel]; seen {
			continue
		}
		info, err := os.Stat(filepath.Join(m.root, filepath.FromSlash(rel)))
		if err == nil {
			if id, ok := identityOf(info); ok && id == e.ID {
				m.cur[rel] = e
				continue
			}
		}
		m.changed = true
	}
	if !m.changed {
		return nil
	}
	dir := filepath.Dir(m.file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".digests-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = gob.NewEncoder(tmp).Encode(memoData{Format: memoFormat, Entries: m.cur})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), m.file)
}
