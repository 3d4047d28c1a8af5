package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

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
// hand out the same spare file. A spare keeps the bytes it had (unless it
// is larger than BigSpare) until it is reused, cut to the new length then,
// or Trim empties it: emptying each one at once would free its blocks
// only to allocate them again. Spare files hold nothing that matters; a
// crash at any point leaves at most spares with stale bytes, which the
// next NewPool adopts and empties.
//
// Readers in other processes, and unlocked readers in this one, open queue
// files without coordinating with the pool. A file is reused only after it
// has rested Rest as a spare, so a reader that opened it under its old name
// reads it whole long before it can change; readers that must not be
// fooled even then read twice (spool's set-aside of a corrupt qf).
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
	rest   time.Duration // Rest; tests shorten it

	mu    sync.Mutex
	spare []spare // out of use, oldest first
	next  uint64
}

// spare is a file out of use and since when.
type spare struct {
	name  string
	since time.Time
}

// Rest is how long a file stays a spare before it is reused.
const Rest = 200 * time.Millisecond

// BigSpare is the size above which a file is emptied when it becomes a
// spare, so that a burst of large messages frees its disk space when it
// is delivered.
const BigSpare = 16 << 10

// NewPool returns a pool of at most max spare files in dir, named prefix
// and a number, created with mode perm. Spare files already there (from
// an earlier run) are adopted, emptied, up to max; the rest are removed.
func NewPool(dir, prefix string, perm os.FileMode, max int) (*Pool, error) {
	p := &Pool{dir: dir, prefix: prefix, perm: perm, max: max, rest: Rest}
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
			p.spare = append(p.spare, spare{name: n})
			continue
		}
		os.Remove(path)
	}
	return p, nil
}

// Final is the name a file was installed under (InstallUnique may have
// picked another than the one asked for).
func (a *Atomic) Final() string { return a.final }

// InstallUnique is Install for a file of a Pool that, while the final
// name exists, tries the names (in the same directory) that next returns.
// Final tells which name it got.
func (a *Atomic) InstallUnique(next func() string) error {
	if a.done {
		return errors.New("safeio: commit after commit or abort")
	}
	a.done = true
	if a.pool == nil {
		return errors.New("safeio: InstallUnique of a file not made by a Pool")
	}
	return a.installPooled(false, next)
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
	if len(p.spare) > 0 && time.Since(p.spare[0].since) >= p.rest {
		name = p.spare[0].name
		p.spare = p.spare[1:]
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
	p.spare = append(p.spare, spare{name: name, since: time.Now()})
	return true
}

// giveSince returns a spare keeping its time of rest.
func (p *Pool) giveSince(sp spare) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.spare) >= p.max {
		return false
	}
	p.spare = append(p.spare, sp)
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
		flags := os.O_WRONLY | unix.O_NOFOLLOW
		if !recycled {
			flags |= os.O_CREATE | os.O_EXCL
		}
		f, err := OpenFile(path, flags, p.perm)
		if err != nil {
			// A spare someone removed by hand, or a new name taken by
			// a file we did not make: try the next one.
			if try < 100 && (errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist)) {
				continue
			}
			return nil, err
		}
		crashPoint("create")
		return &Atomic{f: f, tmp: path, final: final, pool: p, reuse: recycled}, nil
	}
}

// Recycle takes the file at path (in the pool's directory) out of use: it
// is renamed to a spare name, or removed when the pool is full. A missing
// file is not an error. Like a removal, the change is not fsync'd: after a
// crash the file may be back under its old name.
func (p *Pool) Recycle(path string) error { return p.RecycleSized(path, -1) }

// RecycleSized is Recycle for a file whose size the caller knows, which
// saves a stat; -1 means unknown.
func (p *Pool) RecycleSized(path string, size int64) error {
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
	sparePath := filepath.Join(p.dir, name)
	if err := renameNoReplace(path, sparePath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if size < 0 {
		if fi, err := os.Lstat(sparePath); err == nil {
			size = fi.Size()
		} else {
			size = BigSpare + 1
		}
	}
	if size > BigSpare {
		if p.empty(sparePath) != nil {
			os.Remove(sparePath)
			return nil
		}
	}
	if !p.give(name) {
		os.Remove(sparePath)
	}
	return nil
}

// Trim empties the spare files, so that the bytes of removed files do not
// stay on disk under spare names while the pool is idle. The daemon calls
// it from time to time; spares being trimmed are not handed out.
func (p *Pool) Trim() {
	p.mu.Lock()
	spares := p.spare
	p.spare = nil
	p.mu.Unlock()
	for _, sp := range spares {
		path := filepath.Join(p.dir, sp.name)
		if p.empty(path) != nil || !p.giveSince(sp) {
			os.Remove(path)
		}
	}
}

// installPooled moves a's spare file to its final name (commit of a pool
// file): trying the names next gives while the final one exists, when next
// is set; with replace, the old final file, if any, becomes a spare.
func (a *Atomic) installPooled(replace bool, next func() string) error {
	if a.reuse {
		// A spare may be longer than what was written into it.
		if err := a.f.Truncate(a.n); err != nil {
			return a.failPooled(err)
		}
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
		for try := 0; ; try++ {
			err := renameNoReplace(a.tmp, a.final)
			if err == nil {
				break
			}
			if next == nil || !errors.Is(err, os.ErrExist) || try >= 100 {
				return a.failPooled(err)
			}
			a.final = filepath.Join(filepath.Dir(a.final), next())
		}
		crashPoint("rename")
		return nil
	}
	switch err := unix.Renameat2(unix.AT_FDCWD, a.tmp, unix.AT_FDCWD, a.final, unix.RENAME_EXCHANGE); {
	case err == nil:
		crashPoint("rename")
		// a.tmp now names the old file: keep it as a spare.
		if !a.pool.give(filepath.Base(a.tmp)) {
			os.Remove(a.tmp)
		}
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

// failPooled gives the spare back after a failed install (or an Abort).
// As in RecycleSized, a file over BigSpare is emptied first: a message
// that failed because the disk is full must not keep the space it took.
func (a *Atomic) failPooled(err error) error {
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	if a.n > BigSpare && a.pool.empty(a.tmp) != nil || !a.pool.give(filepath.Base(a.tmp)) {
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
