package dns

import (
	"errors"
	"net"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Kind says why a lookup or a route failed.
type Kind int

const (
	// NXDomain: the name does not exist (RCODE 3). Permanent.
	NXDomain Kind = iota + 1
	// NoData: the name exists but has no records of the type asked. Permanent
	// for that type; for MX it means "use the implicit MX".
	NoData
	// Temporary: no usable answer (SERVFAIL, REFUSED, timeout, network
	// error, malformed reply). Retrying later may succeed.
	Temporary
	// NullMX: the domain publishes a null MX (RFC 7505) and accepts no mail.
	NullMX
	// MXLoop: this host is the best MX for the domain, so the mail would come
	// straight back (RFC 5321 section 5.1). A configuration error.
	MXLoop
)

func (k Kind) String() string {
	switch k {
	case NXDomain:
		return "no such domain (NXDOMAIN)"
	case NoData:
		return "no records of that type (NODATA)"
	case Temporary:
		return "temporary failure"
	case NullMX:
		return "domain does not accept mail (null MX)"
	case MXLoop:
		return "MX points to this host"
	}
	return "unknown DNS error"
}

// Error is a failed lookup or route.
type Error struct {
	Name   string // the name asked about, without the trailing dot
	Type   string // the record type asked for ("MX", "A", "A/AAAA"...)
	Kind   Kind
	Server string // the server asked; "" when no query was sent
	Err    error  // the cause, for the log (a timeout, "SERVFAIL"...); may be nil
}

func (e *Error) Error() string {
	s := "dns: " + e.Name
	if e.Type != "" {
		s += " " + e.Type
	}
	s += ": " + e.Kind.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// As lets errors.As find a *mailerr.Error in any error of this package, so
// mailerr.IsTemporary, SMTPCode and ExitCode give the right answer for a bare
// lookup error too (mailerr treats errors it does not know as temporary,
// which would keep a message for a domain that does not exist in the queue
// for days).
func (e *Error) As(target any) bool {
	if p, ok := target.(**mailerr.Error); ok {
		*p = e.mailError()
		return true
	}
	return false
}

// mailError is e as the SMTP and sysexits world sees it. The texts are
// sendmail's, so bounces and log lines read as operators expect; the codes
// are RFC 3463's.
func (e *Error) mailError() *mailerr.Error {
	var m *mailerr.Error
	switch e.Kind {
	case NXDomain:
		m = mailerr.SMTP(550, "5.1.2", "Host unknown (Name server: %s: host not found)", e.Name)
		m.Exit = mailerr.ExNoHost
	case NoData:
		m = mailerr.SMTP(550, "5.1.2", "Host unknown (Name server: %s: no data known)", e.Name)
		m.Exit = mailerr.ExNoHost
	case NullMX:
		// RFC 7504 section 3 made 556 for exactly this; RFC 7505 section 4.1
		// pairs it with 5.1.10.
		m = mailerr.SMTP(556, "5.1.10", "Domain does not accept mail (Name server: %s: null MX)", e.Name)
	case MXLoop:
		// Postfix's code (5.4.6, routing loop) with sendmail's words.
		m = mailerr.SMTP(554, "5.4.6", "%s config error: mail loops back to me (MX problem?)", e.Name)
		m.Exit = mailerr.ExConfig
	default:
		m = mailerr.SMTP(451, "4.4.3", "Name server: %s: host name lookup failure", e.Name)
	}
	m.Err = e
	return m
}

// IsNotFound reports whether err says the name, or the records asked for,
// do not exist: NXDOMAIN or NODATA. It understands *net.DNSError too.
func IsNotFound(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind == NXDomain || e.Kind == NoData
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsNotFound
	}
	return false
}

// IsTemporary reports whether retrying the lookup later may succeed. Errors
// it does not recognise are temporary, as in mailerr: saying so never loses
// mail.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind == Temporary
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return !de.IsNotFound
	}
	return mailerr.IsTemporary(err)
}

// asError classifies an error from any Resolver as an *Error about name:
// ours pass through; the standard library's are mapped from their flags.
// *net.DNSError cannot tell NXDOMAIN from NODATA, so "not found" (and any
// other permanent failure) becomes NXDomain, which reads the same to the
// sender: "host not found".
func asError(err error, name, typ string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	k := Temporary
	if IsNotFound(err) || !IsTemporary(err) {
		k = NXDomain
	}
	return &Error{Name: name, Type: typ, Kind: k, Err: err}
}
