package local

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// createSeq keeps the temporary names of createOwned apart within the
// process.
var createSeq atomic.Uint64

// createOwned creates name in dirfd, a regular file (opened with flags)
// or, with dir, a directory, already owned by uid:gid with mode perm when
// it appears under that name. Root creating a file and then giving it away
// leaves a moment in which a concurrent delivery finds a root-owned
// mailbox and refuses it as unsafe; so the entry is made under a
// temporary name, given its owner and mode, and renamed into place with
// RENAME_NOREPLACE, which fails with EEXIST if the name was taken
// meanwhile. Where the file system cannot do that, the entry is created
// in place and the short window remains (a delivery that hits it fails
// temporarily and is retried). It returns an open descriptor.
func createOwned(dirfd int, name string, dir bool, flags int, perm uint32, uid, gid int) (int, error) {
	var tmp string
	var fd int
	var err error
	for range 10 {
		tmp = fmt.Sprintf(".%s.%d.%d.new", name, os.Getpid(), createSeq.Add(1))
		fd, err = makeEntry(dirfd, tmp, dir, flags, perm)
		if !errors.Is(err, syscall.EEXIST) {
			break
		}
	}
	if err != nil {
		return -1, err
	}
	remove := func() {
		if dir {
			unix.Unlinkat(dirfd, tmp, unix.AT_REMOVEDIR)
		} else {
			unix.Unlinkat(dirfd, tmp, 0)
		}
	}
	if err := giveAway(fd, perm, uid, gid); err != nil {
		unix.Close(fd)
		remove()
		return -1, err
	}
	err = renameNoReplace(dirfd, tmp, name)
	if err == nil {
		return fd, nil
	}
	unix.Close(fd)
	remove()
	if errors.Is(err, syscall.EEXIST) {
		return -1, err
	}
	// No RENAME_NOREPLACE here (EINVAL, ENOTSUP, ENOSYS): in place.
	if fd, err = makeEntry(dirfd, name, dir, flags, perm); err != nil {
		return -1, err
	}
	if err := giveAway(fd, perm, uid, gid); err != nil {
		unix.Close(fd)
		if dir {
			unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		} else {
			unix.Unlinkat(dirfd, name, 0)
		}
		return -1, err
	}
	return fd, nil
}

// makeEntry exclusively creates and opens a file or directory.
func makeEntry(dirfd int, name string, dir bool, flags int, perm uint32) (int, error) {
	if !dir {
		return unix.Openat(dirfd, name, flags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	}
	if err := unix.Mkdirat(dirfd, name, perm); err != nil {
		return -1, err
	}
	fd, err := unix.Openat(dirfd, name, dirFlags, 0)
	if err != nil {
		unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	}
	return fd, err
}

// giveAway sets the owner (uid < 0: keep ours) and the exact mode, which
// the umask may have narrowed at creation.
func giveAway(fd int, perm uint32, uid, gid int) error {
	if uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, perm); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}
