// Package local is the local delivery agent: the queue runner hands it one
// recipient of one queued message and it writes the message into a Unix
// mailbox (mbox), a Maildir, a file named in the aliases, or pipes it to a
// command named in the aliases. It plays the part of sendmail's mail.local
// and prog mailers and of Postfix's local(8).
//
// # What the caller decides
//
// The caller (the queue runner, after routing and aliasing) says which
// Target to write, as which local account, and supplies the message. The
// agent never reads a path or a command out of address text: paths and
// commands come only from Target, which the caller fills from the
// root-owned alias file or from configuration.
//
// # mbox
//
// A mailbox is mail_spool_dir/USER. Each message is appended as
//
//	From SENDER Sun Nov 29 07:45:00 2026     (MAILER-DAEMON for <>; asctime, local time)
//	Return-Path: <SENDER>
//	...the message, CRLF turned into LF, mboxrd-quoted...
//	                                          (one blank line ends it)
//
// Quoting follows mboxrd: every line that starts with zero or more '>' and
// then "From " gets one more '>' at its start, so "From " becomes ">From "
// and ">From " becomes ">>From ". Unlike mboxo this is reversible (a reader
// strips one '>' from each such line), and mutt, mailx, procmail and
// Dovecot's mbox reader all accept it: to them a quoted line is just text
// that does not start with "From ". If the mailbox does not end
// in a newline (damage from another program) one is added first, so our
// From_ line always starts a line.
//
// Locking is what mutt, mailx and procmail respect, both kinds at once:
//
//  1. a dot-lock, USER.lock in the same directory, created with O_EXCL;
//     a lock file older than StaleLock (5 minutes) is taken to be left by
//     a dead process and removed, as procmail and mutt do. Where the
//     directory is not writable for us (Debian's /var/mail is 2775
//     root:mail and an unprivileged daemon outside group mail cannot
//     create files there) dot-locking is skipped and fcntl alone is used,
//     with a log line once per Agent;
//  2. an fcntl write lock on the whole mailbox. On Linux it is taken as an
//     open-file-description lock (F_OFD_SETLK): it conflicts with the
//     classic F_SETLK/F_SETLKW locks of other programs exactly as a classic
//     lock would, and it also excludes other goroutines of this process,
//     which classic per-process locks do not.
//
// Both locks are tried without blocking and retried with a growing,
// jittered pause until LockTimeout (30 s): a blocking F_SETLKW could be
// cancelled neither by the context nor by a timeout, and programs take the
// two locks in different orders (procmail dot-lock first, mutt fcntl
// first), so a bounded wait is what turns a would-be deadlock into a retry
// later. A lock not obtained in time is a temporary failure (450 4.2.0).
// Before polling, deliveries of one Agent to the same file queue up in
// arrival order, so only one of them polls at a time: many pollers of one
// mailbox starve each other.
//
// The mailbox is opened with O_NOFOLLOW and O_NONBLOCK (a FIFO planted in
// the spool cannot hang the delivery) and refused, as a temporary failure
// with the reason in the text, when it is a symbolic link, not a regular
// file, has more than one hard link, or is owned by someone other than the
// recipient: those are the classic /var/mail attacks (a user pre-creating
// or linking another user's mailbox). After the fcntl lock is held the
// name is checked to still point at the file we opened; if a reader
// removed or replaced the mailbox meanwhile, we open it again.
//
// A missing mailbox is created when we run as root for the user, group
// mail (MailGroup; the user's own group if there is no such group), mode
// 0660, as mail.local does; when we are not root it is created 0600 and
// belongs to us. It is made under a temporary name (.USER.PID.N.new),
// given its owner and mode, and renamed into place with RENAME_NOREPLACE,
// so that no concurrent delivery ever sees a root-owned mailbox (it would
// refuse it) and an existing mailbox is never replaced. Maildir
// directories are created the same way. On file systems without
// RENAME_NOREPLACE (and off Linux) the entry is created in place with
// O_EXCL, and a delivery racing with the creation may fail temporarily.
//
// The new message is written, then the mailbox fsync'd; if anything fails
// the file is truncated back to its size before the delivery, so a
// half-written message never stays, and the error is temporary.
//
// # Maildir
//
// Maildir/{tmp,new,cur} (HOME/Maildir unless the Target names a directory)
// is created when missing, mode 0700, given to the user when we are root.
// A message is written to tmp/ under a unique name TIME.PID_SEQ.HOST
// (created with O_EXCL; '/' and ':' in HOST are written as \057 and \072
// as the Maildir specification asks), fsync'd, renamed into new/, and new/
// is fsync'd. The content is the Return-Path header and the message with
// LF line ends: no From_ line and no quoting, which Maildir readers do not
// expect. The Maildir and its subdirectories are opened relative to their
// parent with O_NOFOLLOW (only the directory holding the Maildir, normally
// HOME, is reached by path), so a user who owns the Maildir cannot
// redirect a root-run delivery with a symbolic link.
//
// # Files
//
// A /path/file target is appended to in the mbox format above with the same
// locking (dot-lock path.lock next to it). The last path component must not
// be a symbolic link; the file must be regular, single-linked, owned by the
// account the delivery runs as and writable by it. A missing file is created
// 0600 for that account. /dev/null is accepted and the message discarded,
// as sendmail does.
//
// # Pipes
//
// A |command target runs /bin/sh -c COMMAND (always /bin/sh, whatever the
// user's login shell: nobody's is nologin), as sendmail's prog mailer
// does. The command text comes from the alias file; no address is ever put
// into it. The program gets:
//
//   - on stdin, the Return-Path header and the message with LF line ends
//     (no From_ line: programs that want one, like procmail, write their
//     own from the environment or the header);
//   - a fresh environment of exactly these variables, values with control
//     characters replaced by '_' (a program gets nothing from the daemon's
//     own environment):
//     PATH=/usr/bin:/bin, HOME, USER and LOGNAME (the account the command
//     runs as), SHELL=/bin/sh, SENDER (empty for <>), RECIPIENT, LOCAL and
//     DOMAIN (RECIPIENT split at the last '@'), EXTENSION (the part of
//     LOCAL after the first '+', only when there is one), and
//     ORIGINAL_RECIPIENT (only when the caller knows it). These are
//     Postfix local(8)'s names, so existing scripts keep working; their
//     names are fixed, so a shell cannot import functions from them;
//   - the account's uid, its gid and no other group (setgroups to just the
//     gid, as Postfix does), and HOME as working directory (/ when HOME
//     cannot be entered);
//   - no file descriptor but 0, 1 and 2: Go opens everything close-on-exec,
//     and before each command the agent also marks every other descriptor
//     of the process close-on-exec, in case some library opened one without
//     (sendmail CVE-2014-3956 leaked descriptors to programs);
//   - its own process group, so that on timeout (PipeTimeout, 5 minutes)
//     the whole group is killed, children included.
//
// A command never runs as uid 0 unless Agent.AllowRoot is set; neither
// does a file delivery. The first KiB of the program's stdout and stderr is
// kept for the bounce (see CommandError). The exit status is read as
// sendmail reads it (sysexits.h, with sendmail's reply codes and texts):
// 0 delivered; 75 EX_TEMPFAIL, 71 EX_OSERR and 74 EX_IOERR temporary; the
// other codes 64-78 permanent (67 "User unknown", 69 "Service
// unavailable", 73 "Can't create output", 77 "Insufficient permission",
// ...); death by a signal or a timeout temporary; any other status
// permanent, "unknown mailer error N".
//
// # Errors
//
// Every failure is a *mailerr.Error whose Msg the runner logs as stat=:
//
//	550 5.1.1  User unknown (no such account)                    permanent
//	452 4.2.2  Mailbox full (ENOSPC, EDQUOT, EFBIG)               temporary
//	450 4.2.0  Mailbox busy (lock not obtained in time)          temporary
//	450 4.2.0  Unsafe mailbox (symlink, links, owner, type)      temporary
//	451 4.3.0  I/O and other local errors                        temporary
//	451 4.3.5  configuration errors (root command, no spool dir) temporary
//	(pipes)    the sysexits mapping above
//
// Local trouble is temporary on purpose: mail stays in the queue, visible
// to mailq with its reason, until an administrator fixes the cause, and is
// only bounced when it expires.
//
// # Privileges
//
// The agent works the same in a daemon running as root and in one running
// as an ordinary user; the caller decides. When it runs as root, files are
// opened and created by root with the checks above standing in for the
// kernel's: an existing mailbox or file must belong to the account (and be
// writable by it), a new one is created with O_EXCL and then fchown'd to
// it, and a new file target or Maildir may only be created in a directory
// the account could write to by its mode bits. A pipe runs as the account
// through SysProcAttr.Credential. When it does not run as root, the kernel
// checks everything, a command may only run as the daemon's own uid, and
// ownership checks also accept files owned by the daemon's uid (it created
// them).
//
// A daemon that drops its privileges (user other than root) does not use
// the agent itself: its privileged child (package privlocal, smtpd
// local-agent) runs it as root, after checking each request against its
// own reading of the configuration and alias file. A later step is to run
// each file delivery in a short-lived child that has switched to the
// account (setgroups, setgid, setuid) before it opens anything, so that
// the kernel enforces permissions, ACLs and quotas for mbox, Maildir and
// file targets too; only the code that opens files would move, the
// Request and error contracts stay.
package local
