// Package spool is the MTA queue in queue_dir: one qf<ID> (envelope and
// per-recipient state, format in qf.go and docs/queue-format.md) and one
// df<ID> (the message, headers and body, CRLF line endings) per message.
//
// Durability: Create writes df, then qf (the commit point), each fsync'd and
// renamed into place, then fsyncs the directory. A message exists once its
// qf exists; readers list qf files only, and a qf whose df is gone is a
// message being removed by hand and is skipped. Update rewrites the qf
// through tf<ID> and a rename, so readers see the old or the new envelope,
// never half of one. Remove deletes qf first, then df.
//
// Locking: whoever delivers or changes a message holds an exclusive flock on
// its df (the df is never replaced, so the lock survives qf rewrites).
//
// A qf that fails to parse is renamed Qf<ID> (sendmail's "lost" file) and
// reported; it never stops a scan.
package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/safeio"
	"golang.org/x/sys/unix"
)

// Queue is a queue directory. Use one Queue per directory in a process:
// it batches the directory's fsyncs (groupsync.go).
type Queue struct {
	Dir    string
	syncer dirSyncer
	pool   *safeio.Pool // spare files, when this process owns the queue
}

// Open returns the queue in dir (which must exist).
func Open(dir string) *Queue {
	q := &Queue{Dir: dir}
	q.syncer.dir = dir
	return q
}

// Recycle makes the queue reuse the files of removed messages for new ones
// (safeio.Pool), keeping at most spares of them, as spare files named
// rf<N>. Only the process that owns queue_dir (the daemon) may call it.
// The owner should call Trim from time to time.
func (q *Queue) Recycle(spares int) error {
	p, err := safeio.NewPool(q.Dir, "rf", 0o600, spares)
	if err != nil {
		return err
	}
	q.pool = p
	return nil
}

// Trim empties the spare files (safeio.Pool.Trim), if recycling.
func (q *Queue) Trim() {
	if q.pool != nil {
		q.pool.Trim()
	}
}

// create starts writing a queue file: in a spare file when recycling,
// else in tmp (created exclusively), and Install puts it at final.
func (q *Queue) create(tmp, final string) (*safeio.Atomic, error) {
	if q.pool != nil {
		return q.pool.Create(final)
	}
	return safeio.Create(tmp, final, 0o600)
}

// remove takes a queue file out of use.
func (q *Queue) remove(path string) error { return q.removeHint(path, -1) }

// removeHint is remove with the file's size if known (-1 if not).
func (q *Queue) removeHint(path string, size int64) error {
	if q.pool != nil {
		return q.pool.RecycleSized(path, size)
	}
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// syncDir fsyncs the queue directory, shared with concurrent callers.
func (q *Queue) syncDir() error {
	if q.syncer.dir == "" {
		return safeio.SyncDir(q.Dir) // a Queue built without Open
	}
	return q.syncer.sync()
}

func (q *Queue) path(prefix, id string) string { return filepath.Join(q.Dir, prefix+id) }

// DataPath is the df file of a message.
func (q *Queue) DataPath(id string) string { return q.path("df", id) }

// EnvelopePath is the qf file of a message, for readers that parse it
// themselves with Unmarshal (mailq's fast listing).
func (q *Queue) EnvelopePath(id string) string { return q.path("qf", id) }

// ErrNotFound is returned for an ID that is not in the queue.
var ErrNotFound = errors.New("no such message in the queue")

// ErrLocked is returned when another process is working on the message.
var ErrLocked = errors.New("message is being delivered; try again later")

// Create adds a message. If env.ID is empty or taken, a new ID is assigned.
// body is copied into df once. On error nothing of the message remains.
func (q *Queue) Create(env *Envelope, body io.Reader) error {
	_, err := q.CreateSize(env, body)
	return err
}

// CreateSize is Create that also returns the size of the df.
func (q *Queue) CreateSize(env *Envelope, body io.Reader) (int64, error) {
	if env.Created.IsZero() {
		env.Created = time.Now()
	}
	for try := 0; ; try++ {
		if env.ID == "" || try > 0 {
			env.ID = NewID(time.Now())
		}
		size, err := q.create1(env, body)
		if !errors.Is(err, errTaken) {
			return size, err
		}
		if try > 100 {
			return 0, fmt.Errorf("spool: no free queue ID in %s", q.Dir)
		}
	}
}

// errTaken is create1's answer when env.ID is in use and nothing has been
// read from the body yet.
var errTaken = errors.New("queue ID in use")

func (q *Queue) create1(env *Envelope, body io.Reader) (int64, error) {
	if q.pool != nil {
		return q.createPooled(env, body)
	}
	if _, err := os.Lstat(q.path("qf", env.ID)); err == nil {
		return 0, errTaken
	}
	// The df needs no temporary name: without its qf it is not a
	// message, and CleanTemp removes it if the writer dies.
	f, err := safeio.CreateExclusive(q.DataPath(env.ID), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return 0, errTaken
	}
	if err != nil {
		return 0, err
	}
	return q.commit(env, body, safeio.Opened(f), nil)
}

// createPooled is Create when recycling: the df is written in a spare
// file and placed under the first free ID, so no name is looked up
// before (renameat2 refuses to replace a file).
func (q *Queue) createPooled(env *Envelope, body io.Reader) (int64, error) {
	df, err := q.pool.Create(q.DataPath(env.ID))
	if err != nil {
		return 0, err
	}
	return q.commit(env, body, df, func() string {
		env.ID = NewID(time.Now())
		return "df" + env.ID
	})
}

// commit writes body into df, installs it (under another ID from nextDf,
// when set and env.ID's df exists), then writes and installs the qf (the
// commit point) and fsyncs the directory once for both names.
func (q *Queue) commit(env *Envelope, body io.Reader, df *safeio.Atomic, nextDf func() string) (int64, error) {
	// Through a buffer: the message arrives in pieces (a Received field,
	// then the client's lines), and a small one should be one write.
	bw := copyBufs.Get().(*bufio.Writer)
	bw.Reset(df)
	// body hides its WriteTo: io.MultiReader's (a Received field, then the
	// message) allocates 32 KiB for each call, where bw's ReadFrom reads
	// straight into bw's buffer.
	size, err := io.Copy(bw, struct{ io.Reader }{body})
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	copyBufs.Put(bw)
	if err != nil {
		df.Abort()
		return 0, err
	}
	if nextDf != nil {
		err = df.InstallUnique(nextDf)
	} else {
		err = df.Install()
	}
	if err != nil {
		return 0, err
	}
	undo := func() { q.remove(q.DataPath(env.ID)) }
	a, err := q.create(q.path("tf", env.ID), q.path("qf", env.ID))
	if err != nil {
		undo()
		return 0, err
	}
	if _, err := a.Write(env.Marshal()); err != nil {
		a.Abort()
		undo()
		return 0, err
	}
	if err := a.Install(); err != nil {
		undo()
		return 0, err
	}
	if err := q.syncDir(); err != nil {
		// The qf may or may not survive a crash; the caller reports a
		// failure, so take the message back.
		q.remove(q.path("qf", env.ID))
		undo()
		return 0, err
	}
	return size, nil
}

// copyBufs are Create's write buffers.
var copyBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func (q *Queue) writeQf(env *Envelope) error {
	a, err := q.create(q.path("tf", env.ID), q.path("qf", env.ID))
	if err != nil {
		return err
	}
	if _, err := a.Write(env.Marshal()); err != nil {
		a.Abort()
		return err
	}
	if q.pool != nil {
		err = a.Replace()
	} else {
		err = a.Install()
	}
	if err != nil {
		return err
	}
	return q.syncDir()
}

// Update durably replaces the envelope of an existing message. The caller
// should hold the message's lock.
func (q *Queue) Update(env *Envelope) error {
	if _, err := os.Lstat(q.path("qf", env.ID)); err != nil {
		return ErrNotFound
	}
	return q.writeQf(env)
}

// Read returns the envelope of one message. A corrupt qf is set aside as
// Qf<ID> and the error says so.
func (q *Queue) Read(id string) (*Envelope, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not a queue ID", id)
	}
	env, err := q.readQf(id)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(q.DataPath(id)); err != nil {
		// Being removed by hand (df goes before qf in "rm *ID").
		return nil, ErrNotFound
	}
	return env, nil
}

// ReadClaimed is Read for the holder of the message's Claim, whose df is
// there.
func (q *Queue) ReadClaimed(id string) (*Envelope, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not a queue ID", id)
	}
	return q.readQf(id)
}

// readQf reads and parses a qf, setting a corrupt one aside. A qf that
// does not parse is read again first, and set aside only if it reads the
// same: the daemon reuses the files of removed messages (Recycle), so a
// reader that opened a qf as its message was removed may, once in a very
// long while, read a file that has meanwhile become another.
func (q *Queue) readQf(id string) (*Envelope, error) {
	data, err := q.readQfBytes(id)
	if err != nil {
		return nil, err
	}
	env, err := Unmarshal(id, data)
	if err == nil {
		return env, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	again, rerr := q.readQfBytes(id)
	if rerr != nil {
		return nil, rerr
	}
	if env, err2 := Unmarshal(id, again); err2 == nil {
		return env, nil
	}
	if bytes.Equal(again, data) {
		if rerr := os.Rename(q.path("qf", id), q.path("Qf", id)); rerr == nil {
			return nil, fmt.Errorf("%s: %w; set aside as Qf%s", id, err, id)
		}
	}
	return nil, fmt.Errorf("%s: %w", id, err)
}

func (q *Queue) readQfBytes(id string) ([]byte, error) {
	f, err := safeio.OpenFile(q.path("qf", id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	defer f.Close()
	return readSmall(f, MaxQfSize)
}

// readSmall reads a whole file of at most max+1 bytes. A qf is small:
// one read of 4 KB takes it, and a short read of a regular file is its end
// (Linux returns less than asked only at EOF), so that is two system calls
// fewer than io.ReadAll after an fstat.
func readSmall(f *os.File, max int64) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		want := cap(buf) - len(buf)
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		case int64(len(buf)) > max:
			return buf, nil // too large: the caller says so
		case n < want:
			return buf, nil
		}
		buf = append(buf, 0)[:len(buf)]
	}
}

// IDs lists the IDs of all committed messages, sorted.
func (q *Queue) IDs() ([]string, error) {
	d, err := os.Open(q.Dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var ids []string
	for {
		names, err := d.Readdirnames(4096)
		for _, n := range names {
			if strings.HasPrefix(n, "qf") && ValidID(n[2:]) {
				ids = append(ids, n[2:])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return ids, err
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Scan reads every message's envelope. Corrupt files are set aside and
// reported in errs; messages that vanish during the scan are skipped.
func (q *Queue) Scan() (envs []*Envelope, errs []error) {
	ids, err := q.IDs()
	if err != nil {
		return nil, []error{err}
	}
	for _, id := range ids {
		env, err := q.Read(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		envs = append(envs, env)
	}
	return envs, errs
}

// Size returns the size of the message data in bytes.
func (q *Queue) Size(id string) int64 {
	fi, err := os.Stat(q.DataPath(id))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Lock takes the message's exclusive lock without waiting. The returned
// function releases it.
func (q *Queue) Lock(id string) (unlock func(), err error) {
	c, err := q.Claim(id)
	if err != nil {
		return nil, err
	}
	return c.Release, nil
}

// Claim is a message held by one deliverer: its df open and locked.
type Claim struct {
	f    *os.File
	Size int64 // of the df
}

// Claim takes the message's exclusive lock without waiting, as Lock, and
// keeps its df open: the size and the data come from that one open.
func (q *Queue) Claim(id string) (*Claim, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not a queue ID", id)
	}
	f, err := safeio.OpenFile(q.DataPath(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	return &Claim{f: f, Size: st.Size}, nil
}

// Release gives the lock up.
func (c *Claim) Release() { c.f.Close() }

// Locked reports whether another process holds the message's lock.
func (q *Queue) Locked(id string) bool {
	_, locked, _ := q.Probe(id)
	return locked
}

// Probe returns the size of a message's data and whether it is locked
// (being delivered: Lock holds an exclusive flock on the df, which a
// shared non-blocking flock cannot get past), with one open. A missing
// df gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (q *Queue) Probe(id string) (size int64, locked bool, err error) {
	fd, err := unix.Open(q.DataPath(id), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, &fs.PathError{Op: "open", Path: q.DataPath(id), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, false, err
	}
	return st.Size, unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) != nil, nil
}

// Remove deletes a message: qf (the commit record) first, then df. The
// caller should hold the lock. The removal is not fsync'd, as in sendmail
// and Postfix: the next message's directory fsync carries it, and a crash
// before that at worst delivers the message again.
func (q *Queue) Remove(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%q is not a queue ID", id)
	}
	if q.pool == nil {
		if _, err := os.Lstat(q.path("qf", id)); err != nil {
			return ErrNotFound
		}
	}
	return q.removeSized(id, -1)
}

// RemoveClaimed is Remove for the holder of the message's Claim; with
// durable it returns only once the removal is on disk (a directory fsync
// shared with other writers).
func (q *Queue) RemoveClaimed(id string, c *Claim, durable bool) error {
	if !ValidID(id) {
		return fmt.Errorf("%q is not a queue ID", id)
	}
	if err := q.removeSized(id, c.Size); err != nil || !durable {
		return err
	}
	return q.syncDir()
}

// removeSized removes qf and df; dfSize (-1: unknown) spares the pool a
// stat of the df.
func (q *Queue) removeSized(id string, dfSize int64) error {
	err := q.removeHint(q.path("qf", id), 0) // a qf is small
	if err2 := q.removeHint(q.DataPath(id), dfSize); err == nil {
		err = err2
	}
	return err
}

// CleanTemp removes temporary files (tf, dt) and data files without an
// envelope older than age, left by writers that crashed before their
// commit point.
func (q *Queue) CleanTemp(age time.Duration) int {
	ents, err := os.ReadDir(q.Dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if (strings.HasPrefix(name, "tf") || strings.HasPrefix(name, "dt")) && ValidID(name[2:]) {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
				if os.Remove(filepath.Join(q.Dir, name)) == nil {
					n++
				}
			}
		}
	}
	// A df with no qf is a message whose commit never happened.
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "df") && ValidID(name[2:]) {
			if _, err := os.Lstat(q.path("qf", name[2:])); errors.Is(err, fs.ErrNotExist) {
				if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
					if q.remove(filepath.Join(q.Dir, name)) == nil {
						n++
					}
				}
			}
		}
	}
	return n
}
