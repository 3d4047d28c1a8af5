// Package maildrop is the submission spool in maildrop_dir: the files that
// the sendmail command leaves for the daemon's pickup.
//
// The directory is mode 0730 and group-writable by the drop group only, so
// the setgid sendmail can create files there but cannot list, read or fsync
// the directory. Like Postfix's maildrop, a file is therefore created at its
// final name (the queue ID), written, fsync'd, and only then marked complete
// by setting the owner-execute bit with fchmod and fsync'd again. Pickup
// takes only complete, regular, single-linked files; the submitting user is
// the file's owner, never anything written inside it.
//
// Layout, every envelope line a code letter and an escaped value (the same
// escaping as the queue's qf files):
//
//	VD1                  version, always first
//	T<unix>              submission time
//	S<addr>              envelope sender given with -f/-r (absent: none given)
//	B<type>              body type (7BIT, 8BITMIME)
//	Z<envid>             DSN ENVID (-V)
//	E<ret>               DSN RET (-R)
//	R<notify> <addr>     one per recipient (-N value or "")
//	D                    the message follows
//	<message>            headers and body, CRLF line endings, ends in CRLF
//	.<n>                 trailer, last line: n = length of the message
package maildrop

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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"golang.org/x/sys/unix"
)

// Version is the first line of every drop file.
const Version = "VD1"

// MaxEnvelope bounds the envelope part a reader accepts.
const MaxEnvelope = 16 << 20

// Envelope is what the sendmail command records besides the message.
type Envelope struct {
	ID        string
	Created   time.Time
	Sender    string // the -f value; meaningful only if SenderSet
	SenderSet bool
	BodyType  string
	EnvID     string
	Ret       string
	Rcpts     []Rcpt
}

// Rcpt is one recipient with its DSN NOTIFY value.
type Rcpt struct {
	Addr   string
	Notify string
}

func (e *Envelope) marshal() []byte {
	var b bytes.Buffer
	b.WriteString(Version + "\n")
	fmt.Fprintf(&b, "T%d\n", e.Created.Unix())
	if e.SenderSet {
		b.WriteString("S" + spool.Escape(e.Sender) + "\n")
	}
	for _, kv := range []struct {
		code byte
		v    string
	}{{'B', e.BodyType}, {'Z', e.EnvID}, {'E', e.Ret}} {
		if kv.v != "" {
			b.WriteString(string(kv.code) + spool.Escape(kv.v) + "\n")
		}
	}
	for _, r := range e.Rcpts {
		b.WriteString("R" + spool.Escape(r.Notify) + " " + spool.Escape(r.Addr) + "\n")
	}
	b.WriteString("D\n")
	return b.Bytes()
}

// Writer is a drop file being written.
type Writer struct {
	ID   string
	f    *os.File
	path string
	n    int64
	last [2]byte
	done bool
}

// Create makes a new drop file in dir for env and writes the envelope;
// the message follows with Write. The file is named env.ID if that is a
// free queue ID, else a fresh one (env.ID is updated).
func Create(dir string, env *Envelope) (*Writer, error) {
	if env.Created.IsZero() {
		env.Created = time.Now()
	}
	for try := 0; ; try++ {
		if try > 0 || !spool.ValidID(env.ID) {
			env.ID = spool.NewID(time.Now())
		}
		path := filepath.Join(dir, env.ID)
		// Mode 0644 under a 0730 directory: only the daemon (the directory's
		// owner) can reach it. The execute bit is set on commit.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		w := &Writer{ID: env.ID, f: f, path: path}
		if err := f.Chmod(0o644); err != nil {
			w.Abort()
			return nil, err
		}
		if _, err := f.Write(env.marshal()); err != nil {
			w.Abort()
			return nil, err
		}
		return w, nil
	}
}

// Write appends message bytes.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	if n >= 2 {
		copy(w.last[:], p[n-2:n])
	} else if n == 1 {
		w.last[0], w.last[1] = w.last[1], p[0]
	}
	return n, err
}

// Size is the number of message bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Commit ends the message, makes it durable and marks it complete.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("maildrop: commit after commit or abort")
	}
	if w.n < 2 || w.last != [2]byte{'\r', '\n'} {
		w.Abort()
		return errors.New("maildrop: message must end with CRLF")
	}
	if _, err := fmt.Fprintf(w.f, ".%d\n", w.n); err != nil {
		w.Abort()
		return err
	}
	if err := safeio.Sync(w.f); err != nil {
		w.Abort()
		return err
	}
	if err := w.f.Chmod(0o744); err != nil {
		w.Abort()
		return err
	}
	if err := safeio.Sync(w.f); err != nil {
		w.Abort()
		return err
	}
	w.done = true
	return w.f.Close()
}

// Abort removes the unfinished file.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.path)
}

// Drop is a complete drop file opened for reading.
type Drop struct {
	Envelope
	UID     int       // owner of the file: the submitting user
	ModTime time.Time // when it was completed
	Size    int64     // message length
	f       *os.File
	off     int64
}

// Message returns a reader for the message bytes.
func (d *Drop) Message() io.Reader { return io.NewSectionReader(d.f, d.off, d.Size) }

// Close releases the file.
func (d *Drop) Close() error { return d.f.Close() }

// ErrIncomplete marks a file whose writer has not finished (or died).
var ErrIncomplete = errors.New("drop file is not complete")

// ErrCorrupt wraps every format error.
var ErrCorrupt = errors.New("corrupt drop file")

// Open opens and checks one drop file. The file is hostile input: it must
// be a regular file with one link and the complete bit, and parse strictly.
func Open(path string) (*Drop, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: symbolic link", ErrCorrupt)
		}
		return nil, err
	}
	d, err := parse(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func parse(f *os.File) (*Drop, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok {
		return nil, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	if st.Nlink != 1 {
		return nil, fmt.Errorf("%w: %d links", ErrCorrupt, st.Nlink)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		return nil, ErrIncomplete
	}
	d := &Drop{UID: int(st.Uid), ModTime: fi.ModTime(), f: f}
	size := fi.Size()

	// Envelope: lines up to "D".
	br := bufio.NewReaderSize(io.LimitReader(f, MaxEnvelope), 64<<10)
	var off int64
	seen := map[byte]bool{}
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("%w: envelope ends early", ErrCorrupt)
		}
		off += int64(len(line))
		line = line[:len(line)-1]
		if n == 1 {
			if line != Version {
				return nil, fmt.Errorf("%w: version %q", ErrCorrupt, line)
			}
			continue
		}
		if line == "D" {
			break
		}
		if line == "" {
			return nil, fmt.Errorf("%w: line %d: empty", ErrCorrupt, n)
		}
		code, val := line[0], line[1:]
		if code != 'R' {
			if seen[code] {
				return nil, fmt.Errorf("%w: line %d: record %c repeated", ErrCorrupt, n, code)
			}
			seen[code] = true
		}
		if err := d.set(code, val); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, n, err)
		}
	}
	if !seen['T'] || len(d.Rcpts) == 0 {
		return nil, fmt.Errorf("%w: no time or no recipients", ErrCorrupt)
	}
	d.off = off

	// Trailer: the last line is ".<n>" with n = size - off - len(trailer).
	tail := make([]byte, min(int64(32), size-off))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	i := bytes.LastIndexByte(tail[:max(len(tail)-1, 0)], '\n')
	if len(tail) == 0 || tail[len(tail)-1] != '\n' || i < 0 || i+1 >= len(tail) || tail[i+1] != '.' {
		return nil, fmt.Errorf("%w: no trailer", ErrCorrupt)
	}
	t := tail[i+2 : len(tail)-1]
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || n < 2 || off+n+int64(len(t))+2 != size {
		return nil, fmt.Errorf("%w: trailer does not match the file", ErrCorrupt)
	}
	d.Size = n
	return d, nil
}

func (d *Drop) set(code byte, val string) error {
	var err error
	switch code {
	case 'T':
		var n int64
		n, err = strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad time %q", val)
		}
		d.Created = time.Unix(n, 0)
	case 'S':
		d.Sender, err = spool.Unescape(val)
		d.SenderSet = true
	case 'B':
		d.BodyType, err = spool.Unescape(val)
	case 'Z':
		d.EnvID, err = spool.Unescape(val)
	case 'E':
		d.Ret, err = spool.Unescape(val)
	case 'R':
		notify, addr, ok := strings.Cut(val, " ")
		if !ok {
			return errors.New("want notify and address")
		}
		var r Rcpt
		if r.Notify, err = spool.Unescape(notify); err != nil {
			return err
		}
		if r.Addr, err = spool.Unescape(addr); err != nil {
			return err
		}
		if r.Addr == "" {
			return errors.New("empty recipient")
		}
		d.Rcpts = append(d.Rcpts, r)
	default:
		return fmt.Errorf("unknown record %q", code)
	}
	return err
}

// Entry is a drop file as mailq lists it.
type Entry struct {
	*Drop
	Name string
}

// List opens every complete drop file in dir, sorted by name, for reading
// their envelopes; the caller must Close each. Incomplete files are skipped;
// corrupt ones are reported in errs.
func List(dir string) (entries []Entry, errs []error) {
	names, err := Names(dir)
	if err != nil {
		return nil, []error{err}
	}
	for _, n := range names {
		d, err := Open(filepath.Join(dir, n))
		switch {
		case err == nil:
			d.ID = n
			entries = append(entries, Entry{Drop: d, Name: n})
		case errors.Is(err, ErrIncomplete), errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return entries, errs
}

// Names lists the names in dir that look like drop files (queue IDs).
func Names(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if spool.ValidID(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
