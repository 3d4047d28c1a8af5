package maps

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often Get looks at the file when WatchOptions
// leaves Interval zero.
const DefaultInterval = time.Second

// settle is how old a file's mtime must be before a change is taken at
// first sight. A younger file may still be being written (an editor that
// truncates and rewrites in place); it is taken when a later check finds
// it unchanged.
const settle = time.Second

// WatchOptions configure a Watched file.
type WatchOptions struct {
	// Interval is the least time between two looks at the file from Get;
	// 0 means DefaultInterval, a negative value means Get never looks
	// (the owner calls Check).
	Interval time.Duration
	// OnError receives each problem as a complete line for the log: every
	// *LineError of a version with errors, then one line saying which
	// version is in force; or the error that kept the file from being
	// read. Called from whichever goroutine checks; may be nil.
	OnError func(error)
	// OnReload is called with the path after a changed file has been
	// taken into use. May be nil.
	OnReload func(path string)
}

// Watched holds the parsed form of one map file and keeps it current: the
// file is looked at (stat) at most once per Interval when Get is called,
// or whenever Check is, and parsed again when its size, mtime, ctime or
// inode changed. Readers never wait for a parse: the version in force is
// behind an atomic pointer.
//
// A version with errors never replaces the one in force (CONTRACT.md: a
// bad line keeps the last good version and is logged with file and line).
// At the first load there is no good version to keep, so the lines that
// parsed are put in force, as makemap leaves a database without the lines
// it complained about, and the errors are reported the same way; fixing
// the file brings in the whole of it. A missing file is an empty map at
// any time; a file that cannot be read is an empty map at the first load
// and leaves the version in force alone later.
type Watched[T any] struct {
	path     string
	parse    func(name string, r io.Reader) (T, error)
	interval time.Duration
	onError  func(error)
	onReload func(string)
	now      func() time.Time // the clock; tests replace it

	cur  atomic.Pointer[version[T]]
	next atomic.Int64 // UnixNano before which Get does not look

	mu      sync.Mutex // one check at a time; guards the fields below
	pending *fileSig   // a change seen once, still settling
	failed  *fileSig   // a change that could not be used; not retried
}

type version[T any] struct {
	val    T
	sig    fileSig
	loaded time.Time
}

// NewWatched loads path now and returns its holder. parse reads the file's
// text; it must return a usable value even with an error.
func NewWatched[T any](path string, parse func(name string, r io.Reader) (T, error), opt WatchOptions) *Watched[T] {
	w := &Watched[T]{path: path, parse: parse, interval: opt.Interval,
		onError: opt.OnError, onReload: opt.OnReload, now: time.Now}
	if w.interval == 0 {
		w.interval = DefaultInterval
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.read()
	if v == nil {
		// Unreadable: start empty, and look again when it changes.
		var zero T
		sig := statSig(path)
		w.failed = &sig
		v = &version[T]{val: w.emptyOr(zero), sig: sig, loaded: w.now()}
		w.report(err, fmt.Errorf("%s: using an empty map until the file can be read", path))
	} else {
		w.report(err, fmt.Errorf("%s: the lines above are left out; the rest is in force", path))
	}
	w.cur.Store(v)
	w.next.Store(w.now().Add(w.interval).UnixNano())
	return w
}

// WatchVirtusertable watches a virtusertable file.
func WatchVirtusertable(path string, opt WatchOptions) *Watched[*Virtusertable] {
	return NewWatched(path, ParseVirtusertable, opt)
}

// WatchAccess watches an access file.
func WatchAccess(path string, opt WatchOptions) *Watched[*Access] {
	return NewWatched(path, ParseAccess, opt)
}

// WatchMailertable watches a mailertable file.
func WatchMailertable(path string, opt WatchOptions) *Watched[*Mailertable] {
	return NewWatched(path, ParseMailertable, opt)
}

// WatchClass watches a class file (local-host-names, relay-domains,
// trusted-users).
func WatchClass(path string, opt WatchOptions) *Watched[Class] {
	return NewWatched(path, ParseClass, opt)
}

// Path is the file being watched.
func (w *Watched[T]) Path() string { return w.path }

// Get returns the version in force, first looking at the file if Interval
// has passed since the last look. Only one caller looks; the others get
// the version in force without waiting.
func (w *Watched[T]) Get() T {
	if w.interval > 0 {
		now := w.now().UnixNano()
		if n := w.next.Load(); now >= n && w.next.CompareAndSwap(n, now+int64(w.interval)) {
			w.Check()
		}
	}
	return w.cur.Load().val
}

// Check looks at the file now and takes a changed version into use if it
// is good; problems go to OnError. The daemon may call it on a timer.
func (w *Watched[T]) Check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	sig := statSig(w.path)
	cur := w.cur.Load()
	switch {
	case sig == cur.sig:
		w.pending = nil
		return
	case w.failed != nil && sig == *w.failed:
		return // already reported
	case sig.err != "":
		// Cannot even stat it (a directory's permissions): that says
		// nothing about the map, so keep it.
		w.failed = &sig
		w.report(errors.New(sig.err), fmt.Errorf("%s: the version read at %s stays in force", w.path, cur.loaded.Format(time.DateTime)))
		return
	case sig.exists && w.now().UnixNano()-sig.mtime >= int64(settle):
		// Written a while ago: complete.
	case w.pending == nil || sig != *w.pending:
		w.pending = &sig
		return
	}
	w.pending = nil
	if err := w.load(); err != nil {
		w.report(err, fmt.Errorf("%s: not reloaded; the version read at %s stays in force", w.path, cur.loaded.Format(time.DateTime)))
	}
}

// Reload reads and parses the file now, whatever its stat says (SIGHUP,
// the control socket's reload). On errors the version in force stays and
// the problems are returned, joined, rather than given to OnError, so the
// caller can answer with them; warnings of a good file still go to
// OnError.
func (w *Watched[T]) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = nil
	return w.load()
}

// load reads the file and puts it in force unless it has errors; the
// caller holds mu.
func (w *Watched[T]) load() error {
	v, err := w.read()
	if v == nil || fatal(err) {
		sig := statSig(w.path)
		if v != nil {
			sig = v.sig
		}
		w.failed = &sig
		return err
	}
	w.failed = nil
	w.cur.Store(v)
	w.report(err, nil) // warnings only
	if w.onReload != nil {
		w.onReload(w.path)
	}
	return nil
}

// read opens, stats and parses the file. The stat is of the open file, so
// that it describes the text parsed even if the file is replaced while it
// is read (the next check then sees the new one). v is nil when the file
// cannot be read at all.
func (w *Watched[T]) read() (v *version[T], err error) {
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		val, perr := w.parse(w.path, strings.NewReader(""))
		return &version[T]{val: val, loaded: w.now()}, perr
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", w.path)
	}
	val, err := w.parse(w.path, f)
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return &version[T]{val: val, sig: sigOf(fi), loaded: w.now()}, err
}

// emptyOr returns what the parser makes of an empty file, so that an
// unreadable file starts as an empty map rather than a nil one.
func (w *Watched[T]) emptyOr(zero T) T {
	if val, err := w.parse(w.path, strings.NewReader("")); err == nil {
		return val
	}
	return zero
}

// report gives each problem of err to OnError, then the summary if any
// problem was more than a warning.
func (w *Watched[T]) report(err, summary error) {
	if w.onError == nil || err == nil {
		return
	}
	for _, p := range Problems(err) {
		w.onError(p)
	}
	if fatal(err) {
		w.onError(summary)
	}
}

// fileSig is what tells one version of a file from another without
// reading it. The zero fileSig is a missing file.
type fileSig struct {
	exists bool
	size   int64
	mtime  int64  // UnixNano
	sys    sysSig // inode, device and ctime where the system has them
	err    string // why stat failed, other than the file being missing
}

func statSig(path string) fileSig {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileSig{}
	}
	if err != nil {
		return fileSig{err: err.Error()}
	}
	return sigOf(fi)
}

func sigOf(fi fs.FileInfo) fileSig {
	return fileSig{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano(), sys: sysSigOf(fi)}
}
