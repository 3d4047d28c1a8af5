package local

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errLockTimeout is returned by the lock waits when the deadline passes.
var errLockTimeout = errors.New("lock not obtained in time")

// backoff paces the retries of a lock: short pauses first (most locks are
// held for milliseconds), growing to a fifth of a second, with jitter so that
// waiters do not retry in lockstep.
type backoff struct {
	ctx      context.Context
	deadline time.Time
	delay    time.Duration
}

// wait sleeps before the next try; it fails when the deadline has passed
// or the context is done.
func (b *backoff) wait() error {
	left := time.Until(b.deadline)
	if left <= 0 {
		return errLockTimeout
	}
	if b.delay == 0 {
		b.delay = 5 * time.Millisecond
	}
	d := b.delay/2 + rand.N(b.delay)
	b.delay = min(2*b.delay, 200*time.Millisecond)
	t := time.NewTimer(min(d, left))
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-t.C:
		return nil
	}
}

// dotLock takes the dot-lock name.lock in the directory dirfd (path dir),
// as mutt, mailx and procmail do. The returned function removes it. If the
// directory does not let us create files, it returns a no-op and dot-
// locking is skipped: fcntl locking still protects the mailbox.
func (a *Agent) dotLock(b *backoff, dirfd int, dir, name string) (release func(), err error) {
	lockName := name + ".lock"
	lockPath := filepath.Join(dir, lockName)
	if a.noDotLock {
		return func() {}, nil
	}
	stale := orDefault(a.StaleLock, defaultStaleLock)
	for {
		fd, err := unix.Openat(dirfd, lockName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
			return func() {
				if err := unix.Unlinkat(dirfd, lockName, 0); err != nil {
					a.log().Warn("local: cannot remove dot-lock", "lock", lockPath, "err", err)
				}
			}, nil
		}
		switch {
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
			if !a.warnedDotLock.Swap(true) {
				a.log().Warn("local: cannot create dot-locks, using fcntl locks only", "dir", dir, "err", err)
			}
			return func() {}, nil
		case !errors.Is(err, syscall.EEXIST):
			return nil, pathErr("create", lockPath, err)
		}
		// The lock exists. A lock left by a crashed program would block the
		// mailbox for ever; like procmail and mutt, take one that has not
		// been touched for a long time to be stale. Lstat: a symlink
		// planted as lock file is judged (and removed) as itself. Two
		// waiters may both judge the same lock stale and the second remove
		// the first one's new lock, as with procmail; the fcntl lock taken
		// next still keeps the writers apart.
		// The real clock, not Agent.Now: the age is measured against the
		// file system's times.
		if fi, err := os.Lstat(lockPath); err == nil && time.Since(fi.ModTime()) > stale {
			if err := unix.Unlinkat(dirfd, lockName, 0); err == nil {
				a.log().Warn("local: removed stale dot-lock", "lock", lockPath, "age", time.Since(fi.ModTime()).Round(time.Second))
			}
			continue
		}
		if err := b.wait(); err != nil {
			return nil, err
		}
	}
}

// lockFile takes the fcntl write lock on the whole of f, retrying until
// the backoff gives up. Call unlock, then close f.
func lockFile(b *backoff, f *os.File) (unlock func(), err error) {
	for {
		unlock, ok, err := tryLock(f)
		if err != nil || ok {
			return unlock, err
		}
		if err := b.wait(); err != nil {
			return nil, err
		}
	}
}

// turns lets the deliveries of this process to one file take turns in
// arrival order, so that only one of them at a time polls for the file
// locks: many pollers of one mailbox starve each other (the lock goes to
// whoever retries at the right moment), which under load ends in lock
// timeouts. Waiters blocked on a channel send are served first come,
// first served.
type turns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	ch      chan struct{} // holds a token while someone's turn is on
	waiting int           // holders and waiters; the entry goes at 0
}

// take waits for key's turn; release ends it.
func (q *turns) take(b *backoff, key string) (release func(), err error) {
	q.mu.Lock()
	if q.m == nil {
		q.m = map[string]*turn{}
	}
	t := q.m[key]
	if t == nil {
		t = &turn{ch: make(chan struct{}, 1)}
		q.m[key] = t
	}
	t.waiting++
	q.mu.Unlock()
	leave := func() {
		q.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			delete(q.m, key)
		}
		q.mu.Unlock()
	}
	timer := time.NewTimer(time.Until(b.deadline))
	defer timer.Stop()
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; leave() }, nil
	case <-b.ctx.Done():
		leave()
		return nil, b.ctx.Err()
	case <-timer.C:
		leave()
		return nil, errLockTimeout
	}
}
