//go:build !linux

package local

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Without open-file-description locks a classic fcntl lock belongs to the
// process and does not keep two goroutines of this process apart, so the
// files this process has locked are also recorded here.
var procLocks struct {
	sync.Mutex
	held map[[2]uint64]bool
}

// tryLock takes a whole-file fcntl write lock without waiting. unlock
// must be called before f is closed.
func tryLock(f *os.File) (unlock func(), ok bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return nil, false, errors.New("no file identity")
	}
	key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	procLocks.Lock()
	defer procLocks.Unlock()
	if procLocks.held[key] {
		return nil, false, nil
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	switch {
	case err == nil:
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES):
		return nil, false, nil
	default:
		return nil, false, err
	}
	if procLocks.held == nil {
		procLocks.held = map[[2]uint64]bool{}
	}
	procLocks.held[key] = true
	return func() {
		procLocks.Lock()
		delete(procLocks.held, key)
		procLocks.Unlock()
	}, true, nil
}

// renameNoReplace is not available here; callers fall back.
func renameNoReplace(dirfd int, old, new string) error { return syscall.ENOTSUP }
