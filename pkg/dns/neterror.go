package dns

import (
	"context"
	"errors"
	"net"
)

// NetError is err as a *net.DNSError, for libraries that tell "not found"
// from "try again" only by asserting that type (blitiri's spf and
// go-msgauth): a *Error from this package would read to them as a
// permanent failure of unknown kind, so a SERVFAIL would become permerror
// and an NXDOMAIN would not count as a void lookup. The server's address
// is left out on purpose: error texts end up in headers as reasons.
func NetError(err error, name string) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de
	}
	out := &net.DNSError{Err: "lookup failed", Name: name}
	switch {
	case IsNotFound(err):
		out.Err = "no such record"
		out.IsNotFound = true
	case errors.Is(err, context.DeadlineExceeded):
		out.Err = "timeout"
		out.IsTimeout = true
		out.IsTemporary = true
	default:
		// IsTemporary is true for errors it does not know, which is what
		// the callers want: temperror never loses mail, permerror might.
		out.IsTemporary = IsTemporary(err)
		var e *Error
		if errors.As(err, &e) {
			out.Err = e.Kind.String()
		}
	}
	return out
}
