package local

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// tryLock takes a whole-file write lock without waiting. It is an
// open-file-description lock: other programs' classic fcntl locks conflict
// with it as with their own kind, and unlike a classic lock it also
// conflicts with the locks of other goroutines here, which open the
// mailbox separately. Closing f releases it; unlock is for symmetry with
// other systems.
func tryLock(f *os.File) (unlock func(), ok bool, err error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return func() {}, true, nil
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES):
		return nil, false, nil
	}
	return nil, false, err
}

// renameNoReplace renames old to new in the directory dirfd unless new
// exists (EEXIST). File systems without RENAME_NOREPLACE answer EINVAL.
func renameNoReplace(dirfd int, old, new string) error {
	return unix.Renameat2(dirfd, old, dirfd, new, unix.RENAME_NOREPLACE)
}
