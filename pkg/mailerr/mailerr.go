// Package mailerr is the error type shared by every part of gosendmail.
//
// An *Error knows how the outside world must hear about it: the SMTP reply
// code and enhanced status code a client gets, the sysexits(3) code a local
// caller gets, and whether trying again later may succeed. Errors are built
// with the constructors here, wrapped with %w, and inspected with errors.As
// (or the helpers SMTPCode, ExitCode and IsTemporary).
package mailerr

import (
	"errors"
	"fmt"
)

// Exit codes from <sysexits.h>, as sendmail and its callers use them.
const (
	ExOK          = 0
	ExUsage       = 64
	ExDataErr     = 65
	ExNoInput     = 66
	ExNoUser      = 67
	ExNoHost      = 68
	ExUnavailable = 69
	ExSoftware    = 70
	ExOSErr       = 71
	ExOSFile      = 72
	ExCantCreat   = 73
	ExIOErr       = 74
	ExTempFail    = 75
	ExProtocol    = 76
	ExNoPerm      = 77
	ExConfig      = 78
)

// Error is a failure with its SMTP and sysexits meaning attached.
type Error struct {
	Code      int    // SMTP reply code, e.g. 550; 0 if it has none
	Enhanced  string // RFC 3463 enhanced status code, e.g. "5.7.1"
	Exit      int    // sysexits code for a local caller
	Temporary bool   // trying again later may succeed
	Msg       string // one line, safe to show to the client or caller
	Err       error  // the cause, for the log; may be nil
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a permanent error with a sysexits code and no SMTP meaning.
func New(exit int, format string, args ...any) *Error {
	return &Error{Exit: exit, Temporary: exit == ExTempFail, Msg: fmt.Sprintf(format, args...)}
}

// Wrap attaches a sysexits code and message to a cause.
func Wrap(exit int, err error, format string, args ...any) *Error {
	return &Error{Exit: exit, Temporary: exit == ExTempFail, Msg: fmt.Sprintf(format, args...), Err: err}
}

// SMTP returns an error with an SMTP reply; temporary follows the code's class.
func SMTP(code int, enhanced string, format string, args ...any) *Error {
	e := &Error{Code: code, Enhanced: enhanced, Msg: fmt.Sprintf(format, args...)}
	e.Temporary = code >= 400 && code < 500
	if e.Temporary {
		e.Exit = ExTempFail
	} else {
		e.Exit = ExUnavailable
	}
	return e
}

// ExitCode is the sysexits code for err: 0 for nil, the attached code for an
// *Error, ExTempFail for anything else that is unknown (it may be transient,
// and saying so never loses mail).
func ExitCode(err error) int {
	if err == nil {
		return ExOK
	}
	var e *Error
	if errors.As(err, &e) && e.Exit != 0 {
		return e.Exit
	}
	return ExTempFail
}

// IsTemporary reports whether err is worth retrying; unknown errors are.
func IsTemporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return err != nil
}

// SMTPCode returns the reply code and enhanced code for err; unknown errors
// are 451 4.3.0 (a local problem, try again).
func SMTPCode(err error) (int, string) {
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code, e.Enhanced
	}
	return 451, "4.3.0"
}
