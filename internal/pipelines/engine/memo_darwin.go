package engine

import (
	"io/fs"
	"syscall"
)

const identityAvailable = true

func identityOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(),
		Mtime: st.Mtimespec.Sec*1e9 + st.Mtimespec.Nsec, Ctime: st.Ctimespec.Sec*1e9 + st.Ctimespec.Nsec}, true
}
