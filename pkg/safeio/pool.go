package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Pool recycles the files of one directory: a file that would be deleted
// is renamed to a spare name and emptied instead, and a new file is
// written under a spare name and renamed into place. A busy queue then
// allocates almost no inodes. That matters on ext4 (most of all without a
// journal, where each inode allocation skips every inode freed in the last
// minutes), where creating a file costs more than writing it.
//
// Spare names are Prefix followed by a number. Only one process may own a
// Pool for a directory (the daemon owns queue_dir's): two processes would
// hand out the same spare file. Spare files hold no data that matters; a
// crash at any point leaves at most a spare with stale bytes, which the
// next NewPool adopts and empties.
//
// Renames that must not replace a file use renameat2(RENAME_NOREPLACE), and
// a rewrite swaps the new file with the old (RENAME_EXCHANGE) so the old
// inode becomes a spare. Where the file system lacks either, the pool falls
// back to checking for the target first and to a plain rename.
type Pool struct {
	dir    string
	prefix string
	perm   os.FileMode
	max    int

	mu    sync.Mutex
	spare []string // names in dir, each an empty file
	next  uint64
}

// NewPool returns a pool of at most max spare files in dir, named prefix
// and a number, created with mode perm. Spare files already there (from
// an earlier run) are adopted, emptied, up to max; the rest are removed.
func NewPool(dir, prefix string, perm os.FileMode, max int) (*Pool, error) {
	p := &Pool{dir: dir, prefix: prefix, perm: perm, max: max}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		num, ok := p.number(n)
		if !ok {
			continue
		}
		if num >= p.next {
			p.next = num + 1
		}
		path := filepath.Join(dir, n)
		if len(p.spare) < max && p.empty(path) == nil {
			p.spare = append(p.spare, n)
			continue
		}
		os.Remove(path)
	}
	return p, nil
}

// number parses a spare name.
func (p *Pool) number(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, p.prefix)
	if !ok || rest == "" || rest[0] == '0' && len(rest) > 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// empty truncates a spare file to nothing, refusing anything but a
// regular file of ours (O_NOFOLLOW, fstat).
func (p *Pool) empty(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return errors.New("safeio: spare file is not a plain file")
	}
	if st.Size == 0 {
		return nil
	}
	return unix.Ftruncate(fd, 0)
}

// Spares reports how many spare files the pool holds.
func (p *Pool) Spares() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spare)
}

// take returns a spare name, or a new one that does not exist yet.
func (p *Pool) take() (name string, recycled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.spare); n > 0 {
		name = p.spare[n-1]
		p.spare = p.spare[:n-1]
		return name, true
	}
	name = p.prefix + strconv.FormatUint(p.next, 10)
	p.next++
	return name, false
}

// give returns an empty file's name to the pool, or reports that the
// pool is full.
func (p *Pool) give(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.spare) >= p.max {
		return false
	}
	p.spare = append(p.spare, name)
	return true
}

// newName is a fresh spare name.
func (p *Pool) newName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := p.prefix + strconv.FormatUint(p.next, 10)
	p.next++
	return name
}

// Create starts writing final (in the pool's directory) in a spare file.
// Install puts it in place, failing with fs.ErrExist if final exists;
// Replace puts it in place of final. Neither fsyncs the directory. Every
// file of a pool has the pool's mode.
func (p *Pool) Create(final string) (*Atomic, error) {
	if filepath.Dir(final) != filepath.Clean(p.dir) {
		return nil, errors.New("safeio: pool file outside the pool's directory")
	}
	for try := 0; ; try++ {
		name, recycled := p.take()
		path := filepath.Join(p.dir, name)
		flags := os.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if !recycled {
			flags |= os.O_CREATE | os.O_EXCL
		}
		f, err := os.OpenFile(path, flags, p.perm)
		if err != nil {
			// A spare someone removed by hand, or a new name taken by
			// a file we did not make: try the next one.
			if try < 100 && (errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist)) {
				continue
			}
			return nil, err
		}
		crashPoint("create")
		return &Atomic{f: f, tmp: path, final: final, pool: p}, nil
	}
}

// Recycle takes the file at path (in the pool's directory) out of use: it
// is renamed to a spare name and emptied, or removed when the pool is
// full. A missing file is not an error. Like a removal, the change is not
// fsync'd: after a crash the file may be back under its old name.
func (p *Pool) Recycle(path string) error {
	if filepath.Dir(path) != filepath.Clean(p.dir) {
		return errors.New("safeio: pool file outside the pool's directory")
	}
	p.mu.Lock()
	full := len(p.spare) >= p.max
	p.mu.Unlock()
	if full {
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	name := p.newName()
	spare := filepath.Join(p.dir, name)
	if err := renameNoReplace(path, spare); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := p.empty(spare); err != nil {
		os.Remove(spare)
		return nil // the file is out of use either way
	}
	if !p.give(name) {
		os.Remove(spare)
	}
	return nil
}

// installPooled moves a's spare file to its final name (commit of a pool file).
// With replace the old final file, if any, becomes a spare.
func (a *Atomic) installPooled(replace bool) error {
	if err := a.truncateHere(); err != nil {
		return a.failPooled(err)
	}
	crashPoint("write")
	if err := a.f.Sync(); err != nil {
		return a.failPooled(err)
	}
	crashPoint("fsync")
	if err := a.f.Close(); err != nil {
		a.f = nil
		return a.failPooled(err)
	}
	a.f = nil
	if !replace {
		if err := renameNoReplace(a.tmp, a.final); err != nil {
			return a.failPooled(err)
		}
		crashPoint("rename")
		return nil
	}
	switch err := unix.Renameat2(unix.AT_FDCWD, a.tmp, unix.AT_FDCWD, a.final, unix.RENAME_EXCHANGE); {
	case err == nil:
		crashPoint("rename")
		// a.tmp now names the old file: empty it and keep it.
		if a.pool.empty(a.tmp) == nil && a.pool.give(filepath.Base(a.tmp)) {
			return nil
		}
		os.Remove(a.tmp)
		return nil
	case errors.Is(err, unix.ENOENT):
		// No old file: a plain rename (which may race with a new one,
		// as any rewrite does).
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
	default:
		return a.failPooled(err)
	}
	if err := os.Rename(a.tmp, a.final); err != nil {
		return a.failPooled(err)
	}
	crashPoint("rename")
	return nil
}

// truncateHere cuts a recycled file at what was written, in case it was
// not empty.
func (a *Atomic) truncateHere() error {
	off, err := a.f.Seek(0, 1)
	if err != nil {
		return err
	}
	fi, err := a.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == off {
		return nil
	}
	return a.f.Truncate(off)
}

// failPooled gives the spare back (emptied) after a failed install.
func (a *Atomic) failPooled(err error) error {
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	if a.pool.empty(a.tmp) != nil || !a.pool.give(filepath.Base(a.tmp)) {
		os.Remove(a.tmp)
	}
	return err
}

// renameNoReplace renames old to new unless new exists (fs.ErrExist).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		// No RENAME_NOREPLACE here: link and unlink do the same, as
		// link never replaces.
		if err := os.Link(old, new); err != nil {
			return err
		}
		return os.Remove(old)
	default:
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
}
