package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// appendSpec says which mbox-format file to append to and on whose behalf.
type appendSpec struct {
	what      string // "mailbox" or "file", for error texts
	dir, name string // the file is name in the directory dir
	acct      *Account
	mode      uint32 // permissions of a new file
	gid       int    // group of a new file when we are root
	// asUser makes root check what the account itself could do: create
	// files in dir, write the file. Mailboxes are the MTA's to create, as
	// mail.local does; files named in aliases are the account's business.
	asUser bool
}

func (a *Agent) deliverMbox(ctx context.Context, req Request, acct *Account) error {
	if a.SpoolDir == "" {
		return configError("mail_spool_dir is not set")
	}
	s := appendSpec{what: "mailbox", dir: a.SpoolDir, name: req.User, acct: acct, mode: 0o600}
	if isRoot() {
		s.mode = 0o660
		s.gid = a.mailGID(acct)
	}
	return a.appendMbox(ctx, &req, s)
}

func (a *Agent) deliverFile(ctx context.Context, req Request, acct *Account) error {
	p := req.Target.Path
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return configError("file target %q is not a clean absolute path", clean(p))
	}
	if err := a.checkRunAs("file "+p, acct); err != nil {
		return err
	}
	s := appendSpec{what: "file", dir: filepath.Dir(p), name: filepath.Base(p), acct: acct,
		mode: 0o600, gid: acct.GID, asUser: true}
	return a.appendMbox(ctx, &req, s)
}

// mailGID is the group of new mailboxes: MailGroup, or the user's group.
func (a *Agent) mailGID(acct *Account) int {
	name := a.MailGroup
	if name == "" {
		name = "mail"
	}
	if g, err := user.LookupGroup(name); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			return gid
		}
	}
	return acct.GID
}

// appendMbox appends the message in mbox format under both locks.
func (a *Agent) appendMbox(ctx context.Context, req *Request, s appendSpec) error {
	path := filepath.Join(s.dir, s.name)
	dir, err := os.Open(s.dir)
	if err != nil {
		return withCause(configError("Cannot open the directory of %s %s", s.what, path), err)
	}
	defer dir.Close()
	dirfd := int(dir.Fd())

	b := &backoff{ctx: ctx, deadline: time.Now().Add(orDefault(a.LockTimeout, defaultLockTimeout))}
	endTurn, err := a.turns.take(b, path)
	if err != nil {
		return lockError(s.what, path, "too many deliveries to it at once", err)
	}
	defer endTurn()
	release, err := a.dotLock(b, dirfd, s.dir, s.name)
	if err != nil {
		return lockError(s.what, path, "dot-lock "+s.name+".lock held by another program", err)
	}
	defer release()

	// A reader (mailx emptying a mailbox, a user) may remove or replace
	// the file between our open and our lock: we would then append to a
	// file nobody will read. Check after locking; open again if so.
	for range 3 {
		f, err := a.openAppend(dirfd, path, s)
		if err != nil {
			return err
		}
		unlock, err := lockFile(b, f)
		if err != nil {
			f.Close()
			return lockError(s.what, path, "locked by another program", err)
		}
		same, err := stillNamed(dirfd, s.name, f)
		if err == nil && same {
			err = a.writeLocked(f, req, path, s)
			unlock()
			f.Close()
			return err
		}
		unlock()
		f.Close()
		if err != nil {
			return ioError(s.what, path, err)
		}
	}
	return lockBusy(s.what, path, "it keeps being replaced")
}

func lockError(what, path, how string, err error) error {
	switch {
	case errors.Is(err, errLockTimeout):
		return lockBusy(what, path, how)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return interrupted(err)
	}
	return ioError(what, path, err)
}

// openAppend opens the file for appending, creating it if missing, and
// checks that it is safe to write.
func (a *Agent) openAppend(dirfd int, path string, s appendSpec) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO planted in place of the file must not
	// hang; it is refused below. O_NOFOLLOW: a symlink fails with ELOOP.
	const flags = unix.O_RDWR | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	for range 3 {
		created := false
		fd, err := unix.Openat(dirfd, s.name, flags, 0)
		if errors.Is(err, syscall.ENOENT) {
			fd, err = a.createTarget(dirfd, path, s, flags)
			if errors.Is(err, syscall.EEXIST) {
				continue // someone else created it meanwhile: open theirs
			}
			created = err == nil
		}
		if err != nil {
			var me *mailerr.Error
			switch {
			case errors.As(err, &me):
				return nil, me
			case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.EMLINK):
				// EMLINK is how the BSDs report O_NOFOLLOW on a symlink.
				return nil, unsafeTarget(s.what, path, "it is a symbolic link")
			case errors.Is(err, syscall.EISDIR):
				return nil, unsafeTarget(s.what, path, "it is not a regular file")
			}
			return nil, ioError(s.what, path, pathErr("open", path, err))
		}
		if err := checkTarget(fd, path, s, created); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, ioError(s.what, path, err)
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	return nil, lockBusy(s.what, path, "it keeps being created and removed")
}

// createTarget creates the missing file exclusively with its owner and
// mode. An EEXIST comes back raw so the caller opens the file another
// process created.
func (a *Agent) createTarget(dirfd int, path string, s appendSpec, flags int) (int, error) {
	uid := -1 // not root: the file is ours
	if isRoot() {
		uid = s.acct.UID
		if s.asUser {
			var st unix.Stat_t
			if err := unix.Fstat(dirfd, &st); err != nil {
				return -1, ioError(s.what, path, err)
			}
			if !mayWrite(&st, s.acct) {
				return -1, ioError(s.what, path, fmt.Errorf("uid %d may not create files in %s: %w", s.acct.UID, s.dir, syscall.EACCES))
			}
		}
	}
	fd, err := createOwned(dirfd, s.name, false, flags, s.mode, uid, s.gid)
	if err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return -1, err
		}
		return -1, ioError(s.what, path, pathErr("create", path, err))
	}
	// The new name must be durable before a message in it counts as
	// delivered.
	if err := unix.Fsync(dirfd); err != nil {
		unix.Close(fd)
		return -1, ioError(s.what, path, pathErr("fsync", s.dir, err))
	}
	return fd, nil
}

// checkTarget refuses a file that is not a plain, single-linked file of
// the account: the classic ways to make an MTA running as root write where
// it should not.
func checkTarget(fd int, path string, s appendSpec, created bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ioError(s.what, path, err)
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
		return unsafeTarget(s.what, path, "it is not a regular file")
	}
	if n := uint64(st.Nlink); n != 1 {
		return unsafeTarget(s.what, path, fmt.Sprintf("it has %d hard links", n))
	}
	if created {
		return nil
	}
	if !ownedBy(st.Uid, s.acct) {
		return unsafeTarget(s.what, path, fmt.Sprintf("it is owned by uid %d, not by uid %d", st.Uid, s.acct.UID))
	}
	if isRoot() && s.asUser && st.Mode&0o200 == 0 {
		return unsafeTarget(s.what, path, "it is not writable by its owner")
	}
	return nil
}

// ownedBy reports whether a file or directory owned by uid may be written
// for acct: it must be the account's; a daemon that is not root also
// accepts its own files (it created them 0600, see the package doc).
func ownedBy(uid uint32, acct *Account) bool {
	if int64(uid) == int64(acct.UID) {
		return true
	}
	return !isRoot() && int(uid) == os.Geteuid()
}

// mayWrite tells from the mode bits whether acct may create entries in
// the directory st. It stands in for the kernel's check while we act as
// root; it ignores ACLs and supplementary groups, so it errs on refusing.
func mayWrite(st *unix.Stat_t, acct *Account) bool {
	mode := uint32(st.Mode)
	switch {
	case int64(st.Uid) == int64(acct.UID):
		return mode&0o300 == 0o300
	case int64(st.Gid) == int64(acct.GID):
		return mode&0o030 == 0o030
	}
	return mode&0o003 == 0o003
}

// stillNamed reports whether name in dirfd is still the file f.
func stillNamed(dirfd int, name string, f *os.File) (bool, error) {
	var named, open unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &named, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Fstat(int(f.Fd()), &open); err != nil {
		return false, err
	}
	return uint64(named.Dev) == uint64(open.Dev) && uint64(named.Ino) == uint64(open.Ino), nil
}

// writeLocked appends the message to the locked file f and syncs it; on
// any failure it cuts the file back to its old length, so no partial
// message stays for a reader to choke on.
func (a *Agent) writeLocked(f *os.File, req *Request, path string, s appendSpec) error {
	fi, err := f.Stat()
	if err != nil {
		return ioError(s.what, path, err)
	}
	size := fi.Size()
	w := bufio.NewWriterSize(f, 64<<10)
	if size > 0 {
		// A file damaged by someone else may lack its final newline; our
		// From_ line must start a line to be seen.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err == nil && last[0] != '\n' {
			w.WriteByte('\n')
		}
	}
	err = writeMessage(w, req, true, a.now())
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(size); terr != nil {
			a.log().Error("local: cannot undo a partial delivery", "queueid", req.QueueID, "file", path, "size", size, "err", terr)
		} else {
			f.Sync()
		}
		return ioError(s.what, path, err)
	}
	return nil
}

// checkRunAs refuses root for deliveries that run as an account from the
// aliases (files and commands), unless the configuration allows it.
func (a *Agent) checkRunAs(what string, acct *Account) error {
	if acct.UID == 0 && !a.AllowRoot {
		return configError("Delivery to %s as root refused", clean(what))
	}
	return nil
}
