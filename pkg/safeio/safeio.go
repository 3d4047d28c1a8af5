// Package safeio is the one place where gosendmail makes writes durable.
//
// Every file that must survive a crash is written through an Atomic: a
// temporary file in the same directory, written, fsync'd, renamed over its
// final name, and then the directory fsync'd. Until Commit returns nil the
// final name holds the old content or nothing; after it, the new content is
// on disk. Abort undoes everything before the commit point.
//
// Builds with the tag crashtest stop the process with SIGKILL at the Nth
// durability step when GOSENDMAIL_CRASH_AT=N, so tests can kill a writer
// between any two steps and check that readers see all or nothing.
package safeio

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Atomic is a file being written that appears at its final name only on Commit.
type Atomic struct {
	f     *os.File
	tmp   string
	final string
	done  bool
	pool  *Pool // the spare file's pool, for files made by Pool.Create
	n     int64 // bytes written
	reuse bool  // a spare that may hold older, longer content
}

// Create starts writing final through the temporary file tmp, which must be
// in the same directory. tmp is created exclusively, so two writers with the
// same temporary name cannot mix their bytes.
func Create(tmp, final string, perm os.FileMode) (*Atomic, error) {
	if filepath.Dir(tmp) != filepath.Dir(final) {
		return nil, errors.New("safeio: temporary file must be in the final file's directory")
	}
	f, err := OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return nil, err
	}
	crashPoint("create")
	return &Atomic{f: f, tmp: tmp, final: final}, nil
}

// OpenFile opens a regular file like os.OpenFile (adding O_CLOEXEC), but
// without offering it to the network poller: os.OpenFile tries, and for a
// disk file that costs four fcntl calls and a refused epoll_ctl on every
// open, a measurable share of a busy queue's system time.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Write appends to the temporary file.
func (a *Atomic) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.n += int64(n)
	return n, err
}

// File exposes the underlying file (for fchmod, fchown).
func (a *Atomic) File() *os.File { return a.f }

// Commit makes the content durable under the final name: fsync the file,
// close it, rename it into place and fsync the directory.
func (a *Atomic) Commit() error {
	if err := a.Install(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(a.final))
}

// Install is Commit without the directory fsync, for a caller that puts
// several files in one directory and then fsyncs it once (SyncDir): until
// then the new name may not survive a crash.
func (a *Atomic) Install() error {
	if a.done {
		return errors.New("safeio: commit after commit or abort")
	}
	a.done = true
	if a.pool != nil {
		return a.installPooled(false, nil)
	}
	crashPoint("write")
	if err := a.f.Sync(); err != nil {
		a.f.Close()
		os.Remove(a.tmp)
		return err
	}
	crashPoint("fsync")
	if err := a.f.Close(); err != nil {
		os.Remove(a.tmp)
		return err
	}
	if a.tmp == a.final {
		return nil // Opened: already at its name
	}
	if err := os.Rename(a.tmp, a.final); err != nil {
		os.Remove(a.tmp)
		return err
	}
	crashPoint("rename")
	return nil
}

// Replace is Install for a file of a Pool that replaces the final file if
// there is one; the old file goes back to the pool.
func (a *Atomic) Replace() error {
	if a.done {
		return errors.New("safeio: commit after commit or abort")
	}
	a.done = true
	if a.pool == nil {
		return errors.New("safeio: Replace of a file not made by a Pool")
	}
	return a.installPooled(true, nil)
}

// Abort discards the temporary file. It is safe after Commit (a no-op).
func (a *Atomic) Abort() {
	if a.done {
		return
	}
	a.done = true
	if a.pool != nil {
		a.failPooled(nil)
		return
	}
	a.f.Close()
	os.Remove(a.tmp)
}

// CreateExclusive creates a new file at its final name, for files that
// are meaningless until another one refers to them (a queue df before its
// qf): no temporary name is needed. Write it, then SyncClose it.
func CreateExclusive(path string, perm os.FileMode) (*os.File, error) {
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err == nil {
		crashPoint("create")
	}
	return f, err
}

// Opened wraps a file created at its final name (CreateExclusive) so that
// it is written like the others: Install fsyncs and closes it, Abort
// closes and removes it.
func Opened(f *os.File) *Atomic {
	return &Atomic{f: f, tmp: f.Name(), final: f.Name()}
}

// SyncClose fsyncs and closes a file.
func SyncClose(f *os.File) error {
	if err := Sync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteFile durably replaces path with what write produces, through tmp.
func WriteFile(tmp, path string, perm os.FileMode, write func(io.Writer) error) error {
	a, err := Create(tmp, path, perm)
	if err != nil {
		return err
	}
	if err := write(a); err != nil {
		a.Abort()
		return err
	}
	return a.Commit()
}

// SyncDir fsyncs a directory so that renames and creations in it persist.
func SyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	crashPoint("dirsync")
	return nil
}

// Sync fsyncs an open file; a crash point for files that are not renamed
// into place (drop files are created at their final name).
func Sync(f *os.File) error {
	crashPoint("write")
	err := f.Sync()
	crashPoint("fsync")
	return err
}

// Remove removes the named files in order and fsyncs dir; missing files
// are not an error. The first name is the commit record: once it is gone
// the rest is garbage, so a crash between removals is harmless.
func Remove(dir string, names ...string) error {
	var first error
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	if err := SyncDir(dir); err != nil && first == nil {
		first = err
	}
	return first
}
