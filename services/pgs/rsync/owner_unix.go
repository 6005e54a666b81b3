//go:build unix

package rsync

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the owner, group and device number a local file system reports.
func fileOwner(info fs.FileInfo) (uid, gid, rdev uint32) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid, uint32(st.Rdev)
	}
	return 0, 0, 0
}
