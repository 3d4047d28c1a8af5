package local

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// withCause attaches the underlying error (for the log) to e.
func withCause(e *mailerr.Error, err error) *mailerr.Error {
	e.Err = err
	return e
}

// configError is a local configuration problem: temporary, so the mail
// waits in the queue for an administrator instead of bouncing.
func configError(format string, args ...any) *mailerr.Error {
	e := mailerr.SMTP(451, "4.3.5", format, args...)
	e.Exit = mailerr.ExTempFail
	return e
}

// unsafeTarget is a mailbox or file that looks like an attack or a
// mistake (symlink, hard link, wrong owner). Temporary: the administrator
// should look, and the mail must not be lost meanwhile.
func unsafeTarget(what, path, reason string) *mailerr.Error {
	return mailerr.SMTP(450, "4.2.0", "Unsafe %s %s: %s; not delivering", what, path, reason)
}

// lockBusy is a lock not obtained in time.
func lockBusy(what, path, how string) *mailerr.Error {
	return mailerr.SMTP(450, "4.2.0", "%s %s busy: %s", capitalize(what), path, how)
}

// interrupted is a delivery stopped by the caller's context (shutdown).
func interrupted(err error) *mailerr.Error {
	return withCause(mailerr.SMTP(451, "4.3.0", "Local delivery interrupted"), err)
}

// ioError classifies an error from writing a mailbox, file or Maildir.
// Every one is temporary: a full disk or quota is the user's or admin's to
// fix, and anything else local is worth another try.
func ioError(what, path string, err error) *mailerr.Error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return withCause(mailerr.SMTP(452, "4.2.2", "Mailbox full"), err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return interrupted(err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return withCause(mailerr.SMTP(451, "4.3.0", "Cannot write %s %s: permission denied", what, path), err)
	}
	return withCause(mailerr.SMTP(451, "4.3.0", "I/O error on %s %s", what, path), err)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// pathErr names the operation and path of a raw syscall error.
func pathErr(op, path string, err error) error {
	return fmt.Errorf("%s %s: %w", op, path, err)
}
