package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// maildirSeq numbers the Maildir files this process writes. Names must be
// unique per process (pid), so the counter is per process too, whatever
// the number of Agents.
var maildirSeq atomic.Uint64

func (a *Agent) deliverMaildir(req Request, acct *Account) error {
	base := req.Target.Path
	if base == "" {
		if acct.Home == "" || !filepath.IsAbs(acct.Home) {
			return configError("User %s has no home directory for a Maildir", req.User)
		}
		base = filepath.Join(acct.Home, "Maildir")
	}
	base = filepath.Clean(base)
	if !filepath.IsAbs(base) || base == "/" {
		return configError("Maildir %q is not an absolute path", clean(base))
	}
	parent, err := os.Open(filepath.Dir(base))
	if err != nil {
		return withCause(configError("Cannot open the directory of Maildir %s", base), err)
	}
	defer parent.Close()

	// Each level is opened relative to the one above with O_NOFOLLOW, so
	// nothing the user controls can point a root-run delivery elsewhere.
	md, err := openMaildirDir(int(parent.Fd()), filepath.Base(base), base, acct)
	if err != nil {
		return err
	}
	defer unix.Close(md)
	var sub [3]int
	for i, name := range []string{"tmp", "new", "cur"} {
		fd, err := openMaildirDir(md, name, filepath.Join(base, name), acct)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sub[i] = fd
	}
	tmp, newDir := sub[0], sub[1]

	path := filepath.Join(base, "tmp")
	var fd int
	var name string
	for range 10 {
		name = a.maildirName()
		fd, err = unix.Openat(tmp, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC, 0o600)
		if !errors.Is(err, syscall.EEXIST) {
			break
		}
	}
	if err != nil {
		return ioError("Maildir", base, pathErr("create", filepath.Join(path, name), err))
	}
	f := os.NewFile(uintptr(fd), filepath.Join(path, name))
	err = a.writeMaildirFile(f, &req, acct)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(tmp, name, newDir, name)
	}
	if err != nil {
		unix.Unlinkat(tmp, name, 0)
		return ioError("Maildir", base, err)
	}
	// The rename is the delivery; make it durable before saying so.
	if err := unix.Fsync(newDir); err != nil {
		return ioError("Maildir", base, pathErr("fsync", filepath.Join(base, "new"), err))
	}
	return nil
}

func (a *Agent) writeMaildirFile(f *os.File, req *Request, acct *Account) error {
	if isRoot() {
		if err := f.Chown(acct.UID, acct.GID); err != nil {
			return err
		}
	}
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := writeMessage(bufio.NewWriterSize(f, 64<<10), req, false, a.now()); err != nil {
		return err
	}
	return f.Sync()
}

// maildirName is a unique file name TIME.PID_SEQ.HOST, the form the
// Maildir specification gives for a process that delivers many messages.
func (a *Agent) maildirName() string {
	host := a.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "localhost"
	}
	// '/' cannot be in a file name and ':' starts the info part.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return fmt.Sprintf("%d.%d_%d.%s", a.now().Unix(), os.Getpid(), maildirSeq.Add(1), host)
}

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openMaildirDir opens (creating if missing) the directory name under
// dirfd, path for messages, and checks that it is a real directory of the
// account.
func openMaildirDir(dirfd int, name, path string, acct *Account) (int, error) {
	fd, err := unix.Openat(dirfd, name, dirFlags, 0)
	if errors.Is(err, syscall.ENOENT) {
		fd, err = makeMaildirDir(dirfd, name, path, acct)
		if errors.Is(err, syscall.EEXIST) {
			fd, err = unix.Openat(dirfd, name, dirFlags, 0)
		}
	}
	if err != nil {
		var me *mailerr.Error
		switch {
		case errors.As(err, &me):
			return -1, me
		case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EMLINK):
			return -1, unsafeTarget("Maildir directory", path, "it is a symbolic link or not a directory")
		}
		return -1, ioError("Maildir", path, pathErr("open", path, err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, ioError("Maildir", path, err)
	}
	if !ownedBy(st.Uid, acct) {
		unix.Close(fd)
		return -1, unsafeTarget("Maildir directory", path, fmt.Sprintf("it is owned by uid %d, not by uid %d", st.Uid, acct.UID))
	}
	return fd, nil
}

// makeMaildirDir creates the directory name under dirfd, mode 0700, for
// the account, and opens it. An EEXIST (a concurrent delivery made it)
// comes back raw.
func makeMaildirDir(dirfd int, name, path string, acct *Account) (int, error) {
	uid := -1
	if isRoot() {
		uid = acct.UID
		var st unix.Stat_t
		if err := unix.Fstat(dirfd, &st); err != nil {
			return -1, ioError("Maildir", path, err)
		}
		if !mayWrite(&st, acct) {
			return -1, ioError("Maildir", path, fmt.Errorf("uid %d may not create %s: %w", acct.UID, path, syscall.EACCES))
		}
	}
	fd, err := createOwned(dirfd, name, true, 0, 0o700, uid, acct.GID)
	if err != nil {
		return -1, err
	}
	if err := unix.Fsync(dirfd); err != nil {
		unix.Close(fd)
		return -1, ioError("Maildir", path, pathErr("fsync", filepath.Dir(path), err))
	}
	return fd, nil
}
