//go:build !linux && !darwin

package local

import "io/fs"

// statOf keys the index on size and mtime only where inode and ctime are
// not at hand.
func statOf(fi fs.FileInfo) stat {
	return stat{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
}
