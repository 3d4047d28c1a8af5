package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Kind says what a Target writes to.
type Kind int

const (
	Mbox    Kind = iota // the user's mailbox, mail_spool_dir/USER
	Maildir             // a Maildir: Target.Path, or HOME/Maildir
	File                // append to the file Target.Path (from the aliases)
	Pipe                // run Target.Command (from the aliases)
)

func (k Kind) String() string {
	switch k {
	case Mbox:
		return "mbox"
	case Maildir:
		return "maildir"
	case File:
		return "file"
	case Pipe:
		return "pipe"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Target is where a message goes.
type Target struct {
	Kind Kind
	// Path is the Maildir directory ("" means HOME/Maildir) or, for File,
	// the absolute path of the file.
	Path string
	// Command is the command line of a Pipe, without the leading '|'. It
	// must come from the alias file or configuration, never from an
	// address.
	Command string
}

// Account is a local user as delivery needs it.
type Account struct {
	UID, GID int
	Home     string // "" if unknown
	Shell    string // informational; commands always run with /bin/sh
}

// Request is one recipient of one message.
type Request struct {
	QueueID   string // for log lines
	Sender    string // the envelope sender; "" is the null sender <>
	Recipient string // the address being delivered, after aliasing
	// OriginalRecipient is the address before aliasing or the DSN ORCPT;
	// optional, exported to commands as ORIGINAL_RECIPIENT.
	OriginalRecipient string

	// User is the local account name: the mailbox owner for Mbox and
	// Maildir (the mbox file is named after it), the account a File or Pipe
	// delivery runs as (the alias file's owner or a configured default).
	User string
	// Account holds User's ids and home; nil means look them up with
	// Agent.Lookup.
	Account *Account

	Target Target

	// Body is the queued message, headers and body with CRLF line ends
	// (the df file); Size is its length. Each delivery reads it from the
	// start, so one open df file serves every recipient.
	Body io.ReaderAt
	Size int64
}

// Agent delivers local mail. Its fields are configuration, read but never
// changed by Deliver, so one Agent may serve any number of goroutines. Use
// it by pointer: it must not be copied after first use.
type Agent struct {
	// SpoolDir is mail_spool_dir, the directory of mbox files. Required
	// for Mbox targets.
	SpoolDir string
	// Hostname goes into Maildir file names; "" means os.Hostname.
	Hostname string
	// MailGroup is the group of mailboxes created by root; "" means
	// "mail". If the group does not exist the user's own group is used.
	MailGroup string
	// AllowRoot lets Pipe and File deliveries run as uid 0. Off by
	// default: a command or file named in a root-owned alias file would
	// otherwise run with full privileges.
	AllowRoot bool
	// LockTimeout bounds the wait for a mailbox's locks (30 s if zero);
	// StaleLock is the age after which a dot-lock is broken (5 min);
	// PipeTimeout bounds a command's run (5 min).
	LockTimeout time.Duration
	StaleLock   time.Duration
	PipeTimeout time.Duration
	// Log receives warnings (dot-locking impossible, stale lock broken,
	// partial write not undone); nil means slog.Default().
	Log *slog.Logger
	// Now is the clock for From_ lines and Maildir names; nil means
	// time.Now.
	Now func() time.Time
	// Lookup resolves Request.User when Request.Account is nil; nil means
	// LookupAccount.
	Lookup func(name string) (*Account, error)

	warnedDotLock atomic.Bool
	turns         turns // deliveries of this Agent to one file, in order
	noDotLock     bool  // tests: exercise fcntl-only locking as root
}

const (
	defaultLockTimeout = 30 * time.Second
	defaultStaleLock   = 5 * time.Minute
	defaultPipeTimeout = 5 * time.Minute
)

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Deliver writes the message of req to its target. It returns nil once the
// message is durably stored (or the command exited 0), else a
// *mailerr.Error that says whether a later attempt may succeed.
func (a *Agent) Deliver(ctx context.Context, req Request) error {
	if err := ctx.Err(); err != nil {
		return interrupted(err)
	}
	if req.Body == nil {
		return configError("no message given to local delivery")
	}
	if req.Target.Kind == File && req.Target.Path == "/dev/null" {
		// sendmail's special case: aliases like "devnull: /dev/null"
		// discard mail without the file checks below.
		return nil
	}
	if err := checkUserName(req.User); err != nil {
		return err
	}
	acct := req.Account
	if acct == nil {
		lookup := a.Lookup
		if lookup == nil {
			lookup = LookupAccount
		}
		var err error
		if acct, err = lookup(req.User); err != nil {
			return err
		}
	}
	switch req.Target.Kind {
	case Mbox:
		return a.deliverMbox(ctx, req, acct)
	case Maildir:
		return a.deliverMaildir(req, acct)
	case File:
		return a.deliverFile(ctx, req, acct)
	case Pipe:
		return a.deliverPipe(ctx, req, acct)
	}
	return configError("unknown local target kind %v", req.Target.Kind)
}

// checkUserName refuses names that cannot be a login name and would be
// dangerous as a file name in the spool directory.
func checkUserName(name string) error {
	bad := name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/')
	for i := 0; i < len(name) && !bad; i++ {
		bad = name[i] < 0x20 || name[i] == 0x7f
	}
	if bad {
		return mailerr.SMTP(550, "5.1.3", "Bad local user name %q", name)
	}
	return nil
}

// LookupAccount finds a local user in the system's user database. An
// unknown user is a permanent 550 5.1.1 "User unknown"; a failing
// database (NSS, LDAP down) is temporary.
func LookupAccount(name string) (*Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			e := mailerr.SMTP(550, "5.1.1", "User unknown")
			e.Exit = mailerr.ExNoUser
			return nil, e
		}
		e := mailerr.SMTP(451, "4.3.0", "Cannot look up user %s", name)
		e.Err = err
		return nil, e
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, configError("user %s has a non-numeric uid or gid", name)
	}
	return &Account{UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// isRoot reports whether we act with root's file privileges.
func isRoot() bool { return os.Geteuid() == 0 }
