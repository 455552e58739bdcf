package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Digests are always computed from content, never from size or mtime: a
// file rewritten at the same path with the same timestamp must still change
// the key, or a cache hit would be stale. During a run, the digest memo
// (memo.go) spares reading a file whose device, inode, size, mtime and
// ctime are all unchanged since it was read; a rewrite always changes ctime.

const digestPrefix = "sha256:"

// FileEntry is one regular file inside a directory output or input.
type FileEntry struct {
	Path   string      `json:"path"` // slash-separated, relative to the directory
	Digest string      `json:"digest"`
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"`
}

// hashedBytes counts the bytes read to compute digests (tests use it to
// see whether the memo was used).
var hashedBytes atomic.Int64

// fileDigest returns the content digest and size of the file at path: from
// the memo of the project being run when the file is in it and unchanged,
// else by reading it.
func fileDigest(path string) (string, int64, error) {
	if m, rel := memoFor(path); m != nil {
		return m.fileDigest(path, rel)
	}
	return hashFile(path)
}

// hashFile reads and digests the file at path.
func hashFile(path string) (string, int64, error) {
	dg, n, _, err := hashOpenFile(path)
	return dg, n, err
}

// hashOpenFile also returns the identity of the file it read, taken after
// reading (zero where identities are not available).
func hashOpenFile(path string) (string, int64, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fileID{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	hashedBytes.Add(n)
	if err != nil {
		return "", 0, fileID{}, err
	}
	var id fileID
	if info, err := f.Stat(); err == nil {
		id, _ = identityOf(info)
	}
	return digestPrefix + hex.EncodeToString(h.Sum(nil)), n, id, nil
}

// dirEntries lists the regular files under dir, sorted by path. Symlinks are
// recorded by target so that repointing one changes the digest. Files are
// digested in parallel.
func dirEntries(dir string) ([]FileEntry, error) {
	var out []FileEntry
	var toHash []int // positions in out of regular files
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256([]byte("symlink\x00" + target))
			out = append(out, FileEntry{Path: rel, Digest: digestPrefix + hex.EncodeToString(sum[:]), Mode: fs.ModeSymlink})
			return nil
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		out = append(out, FileEntry{Path: rel, Mode: info.Mode().Perm()})
		toHash = append(toHash, len(out)-1)
		return nil
	})
	if err == nil {
		err = digestEntries(dir, out, toHash)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// digestEntries fills in the digest and size of out[i] for every i in
// which, with one worker per CPU; the error is that of the first file in
// walk order that failed.
func digestEntries(dir string, out []FileEntry, which []int) error {
	errs := make([]error, len(which))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(which)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(which) {
					return
				}
				e := &out[which[k]]
				dg, n, err := fileDigest(filepath.Join(dir, filepath.FromSlash(e.Path)))
				if err != nil {
					errs[k] = err
					continue
				}
				e.Digest, e.Size = dg, n
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// entriesDigest is a directory's digest: its sorted (path, digest) pairs,
// so renaming a file changes it as much as editing one.
func entriesDigest(entries []FileEntry) string {
	h := sha256.New()
	h.Write([]byte("dir\n"))
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%s\n", e.Path, e.Digest)
	}
	return digestPrefix + hex.EncodeToString(h.Sum(nil))
}

// pathDigest digests a file or a directory.
func pathDigest(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		entries, err := dirEntries(path)
		if err != nil {
			return "", err
		}
		return entriesDigest(entries), nil
	}
	dg, _, err := fileDigest(path)
	return dg, err
}

// gitDigest digests the working-tree content of every tracked file, so that
// uncommitted edits count: the index alone (git ls-files -s) would miss them.
func gitDigest(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git ls-files: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	sort.Strings(files)
	h := sha256.New()
	h.Write([]byte("git\n"))
	for _, f := range files {
		if f == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f))
		dg := "deleted"
		if info, err := os.Lstat(p); err == nil {
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				dg = "symlink:" + target
			case info.Mode().IsRegular():
				if dg, _, err = fileDigest(p); err != nil {
					return "", err
				}
			default:
				// Submodules appear as directories; their own commit is what
				// identifies them, and git records it in the index.
				dg = "other"
			}
		}
		fmt.Fprintf(h, "%s\x00%s\n", f, dg)
	}
	return digestPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, digestPrefix) }
