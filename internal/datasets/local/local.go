// Package local is the client side of data versions: it walks a file or a
// directory, hashes what changed since the last time, and remembers file
// stats in a per-tree index under the user's cache directory so that
// re-adding an unchanged tree of 100,000 files costs one stat per file, not
// one read. DVC re-hashes far more often, which is why `dvc status` on a
// large tree takes minutes.
package local

import (
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// File is one file found under the scanned root.
type File struct {
	Path   string // relative to the root, "/"-separated; the base name for a single file
	Abs    string
	Size   int64
	Digest string // SHA-256, lowercase hex
}

// Stats says how much work a scan did.
type Stats struct {
	Files       int
	Hashed      int   // files read and hashed
	HashedBytes int64 // bytes read
	Cached      int   // files whose digest came from the index
}

// stat is what the index keys a digest on: if any of these changed, the
// file is read again. The inode catches a file replaced by a rename, ctime
// catches a content change that preserved mtime (rsync -t, cp -p).
type stat struct {
	Size  int64
	Mtime int64 // ns
	Ctime int64 // ns
	Ino   uint64
}

// entry is one file in the on-disk index; gob encodes exported fields
// only, hence the field names.
type entry struct {
	Stat   stat
	Digest [32]byte
}

// indexFile is the on-disk index of one root.
type indexFile struct {
	Format  int
	Root    string
	Entries map[string]entry
}

const indexFormat = 1

// Index remembers digests of the files under one root.
type Index struct {
	path    string
	root    string
	entries map[string]entry
	mu      sync.Mutex
	next    map[string]entry
}

// CacheDir is where indexes live: $SLIPWAY_CACHE_DIR, else the user's
// cache directory ($XDG_CACHE_HOME or ~/.cache on Linux,
// ~/Library/Caches on macOS) plus "slipway".
func CacheDir() (string, error) {
	if d := os.Getenv("SLIPWAY_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "slipway"), nil
}

// OpenIndex loads the index for root from cacheDir. A missing or
// unreadable index is an empty one: it is a cache, and the worst outcome
// of losing it is hashing again.
func OpenIndex(cacheDir, root string) *Index {
	sum := sha256.Sum256([]byte(root))
	p := filepath.Join(cacheDir, "index", hex.EncodeToString(sum[:16])+".gob")
	idx := &Index{path: p, root: root, entries: map[string]entry{}, next: map[string]entry{}}
	f, err := os.Open(p)
	if err != nil {
		return idx
	}
	defer f.Close()
	var in indexFile
	if gob.NewDecoder(f).Decode(&in) == nil && in.Format == indexFormat && in.Root == root && in.Entries != nil {
		idx.entries = in.Entries
	}
	return idx
}

// Save writes the index atomically, holding only the files seen by the
// last scan, so deleted files do not accumulate.
func (x *Index) Save() error {
	if x == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(x.path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(x.path), ".index-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = gob.NewEncoder(tmp).Encode(indexFile{Format: indexFormat, Root: x.root, Entries: x.next})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), x.path)
}

func (x *Index) lookup(rel string, s stat) (string, bool) {
	if x == nil {
		return "", false
	}
	e, ok := x.entries[rel]
	if !ok || e.Stat != s {
		return "", false
	}
	return hex.EncodeToString(e.Digest[:]), true
}

// remember records a digest computed at hashedAt. A file modified within
// the timestamp granularity before it was hashed could change again with
// the same mtime, and the index would then vouch for stale content (git's
// "racy clean" problem); such entries are not kept, so the next scan reads
// the file again.
func (x *Index) remember(rel string, s stat, digest string, hashedAt time.Time) {
	if x == nil {
		return
	}
	margin := 2 * time.Second // file systems with whole-second mtimes
	if s.Mtime%int64(time.Second) != 0 {
		margin = 50 * time.Millisecond
	}
	if s.Mtime > hashedAt.Add(-margin).UnixNano() {
		return
	}
	var d [32]byte
	hex.Decode(d[:], []byte(digest))
	x.mu.Lock()
	x.next[rel] = entry{Stat: s, Digest: d}
	x.mu.Unlock()
}

func (x *Index) keep(rel string, s stat, digest string) {
	if x == nil {
		return
	}
	var d [32]byte
	hex.Decode(d[:], []byte(digest))
	x.mu.Lock()
	x.next[rel] = entry{Stat: s, Digest: d}
	x.mu.Unlock()
}

// Scan lists the regular files at root (a file or a directory), sorted by
// path, with their digests: from idx when a file's stats are unchanged,
// else by reading it. idx may be nil. Symbolic links to files are
// followed; links to directories are not (they could loop). Files are
// hashed in parallel.
func Scan(root string, idx *Index) ([]File, Stats, error) {
	var st Stats
	fi, err := os.Stat(root)
	if err != nil {
		return nil, st, err
	}
	type job struct {
		File
		stat stat
	}
	var jobs []job
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, st, fmt.Errorf("%s is not a regular file or a directory", root)
		}
		jobs = append(jobs, job{File{Path: filepath.Base(root), Abs: root, Size: fi.Size()}, statOf(fi)})
	} else {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode()&fs.ModeSymlink != 0 {
				if info, err = os.Stat(p); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			jobs = append(jobs, job{File{Path: filepath.ToSlash(rel), Abs: p, Size: info.Size()}, statOf(info)})
			return nil
		})
		if err != nil {
			return nil, st, err
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Path < jobs[j].Path })
	st.Files = len(jobs)

	started := time.Now()
	var todo []int
	for i := range jobs {
		if d, ok := idx.lookup(jobs[i].Path, jobs[i].stat); ok {
			jobs[i].Digest = d
			idx.keep(jobs[i].Path, jobs[i].stat, d)
			st.Cached++
		} else {
			todo = append(todo, i)
		}
	}
	// Small files are bound by open and read latency, not CPU: more
	// workers than cores keep the disk busy.
	workers := min(4*runtime.GOMAXPROCS(0), len(todo))
	var next atomic.Int64
	var hashedBytes atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) {
					return
				}
				j := &jobs[todo[i]]
				d, n, err := hashFile(j.Abs, buf)
				if err != nil {
					errs[w] = err
					return
				}
				if n != j.Size {
					// Changed while we looked: hash what is there now, but
					// do not let the index vouch for it.
					j.Size = n
					j.Digest = d
					hashedBytes.Add(n)
					continue
				}
				j.Digest = d
				hashedBytes.Add(n)
				idx.remember(j.Path, j.stat, d, started)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, st, err
	}
	st.Hashed, st.HashedBytes = len(todo), hashedBytes.Load()
	out := make([]File, len(jobs))
	for i, j := range jobs {
		out[i] = j.File
	}
	return out, st, nil
}

func hashFile(p string, buf []byte) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// HashFile returns the SHA-256 of the file at p.
func HashFile(p string) (string, error) {
	d, _, err := hashFile(p, make([]byte, 256<<10))
	return d, err
}
