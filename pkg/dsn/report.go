package dsn

import (
	"fmt"
	"strings"
	"time"
)

// Section titles of the explanation, as sendmail words them: people and
// scripts that read bounces look for these lines.
const (
	titleFailed    = "   ----- The following addresses had permanent fatal errors -----"
	titleDelayed   = "   ----- The following addresses had transient non-fatal errors -----"
	titleDelivered = "   ----- The following addresses had successful delivery notifications -----"
	titleTranscr   = "   ----- Transcript of session follows -----"
)

// explanation is the text of the first part, with LF line ends.
func (b *builder) explanation() string {
	var s strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&s, format, args...)
		s.WriteByte('\n')
	}
	r := b.r
	switch r.Kind {
	case Delay:
		line("This is a warning only: delivery of your message is still being")
		line("tried and you do not need to send it again.")
		line("")
	case PostmasterNotify:
		line("A message with the null sender <> (a notification or auto-reply)")
		line("could not be delivered. It cannot be returned to its sender, so it is")
		line("reported to the postmaster.")
		line("")
	}
	if !r.Arrival.IsZero() {
		line("The original message was received at %s", r.Arrival.Format(dateLayout))
		if c := textLine(r.Client); c != "" {
			line("from %s", c)
		}
		line("")
	}
	if r.Kind == PostmasterNotify && r.ID != "" {
		line("Its queue ID was %s.", textLine(r.ID))
		line("")
	}

	var failed, delayed, delivered []RcptStatus
	for _, rc := range b.rcpts {
		switch rc.Action {
		case Failed:
			failed = append(failed, rc)
		case Delayed:
			delayed = append(delayed, rc)
		default:
			delivered = append(delivered, rc)
		}
	}
	group := func(title string, list []RcptStatus, reason bool) {
		if len(list) == 0 {
			return
		}
		line("%s", title)
		for _, rc := range list {
			line("<%s>", textLine(rc.Addr))
			d := lines(rc.Diagnostic)
			switch {
			case len(d) == 0:
			case reason:
				line("    (reason: %s)", d[len(d)-1])
			default:
				line("    (%s)", d[len(d)-1])
			}
		}
		line("")
	}
	group(titleFailed, failed, true)
	group(titleDelayed, delayed, true)
	group(titleDelivered, delivered, false)

	// The transcript: what the remote servers said, failures first.
	var tr strings.Builder
	talking := ""
	for _, rc := range failed {
		d := lines(rc.Diagnostic)
		if len(d) == 0 {
			continue
		}
		host := textLine(rc.RemoteMTA)
		if host == "" {
			talking = ""
			fmt.Fprintf(&tr, "<%s>... %s\n", textLine(rc.Addr), strings.Join(d, " "))
			continue
		}
		if host != talking {
			fmt.Fprintf(&tr, "... while talking to %s:\n", host)
			talking = host
		}
		if c := textLine(rc.Command); c != "" {
			fmt.Fprintf(&tr, ">>> %s\n", c)
		}
		for _, l := range d {
			fmt.Fprintf(&tr, "<<< %s\n", l)
		}
	}
	for _, rc := range delayed {
		d := strings.Join(lines(rc.Diagnostic), " ")
		if d == "" {
			continue
		}
		if !strings.HasPrefix(d, "Deferred") {
			d = "Deferred: " + d
		}
		fmt.Fprintf(&tr, "<%s>... %s\n", textLine(rc.Addr), d)
	}
	if r.Kind == Delay {
		if w := b.warnedAfter(); w > 0 {
			fmt.Fprintf(&tr, "Warning: message still undelivered after %s\n", interval(w))
		}
		if ret := b.returnAfter(); ret > 0 {
			fmt.Fprintf(&tr, "Will keep trying until message is %s old\n", interval(ret))
		}
	}
	if tr.Len() > 0 {
		line("%s", titleTranscr)
		s.WriteString(tr.String())
		line("")
	}

	if o := b.orig; o != nil {
		if o.tooBig {
			line("The original message is larger than %d bytes, so only its headers", b.r.maxFull())
			line("are returned.")
		}
		if o.hdrCut {
			line("The header section of the original is longer than %d bytes, so only", MaxHeaderBytes)
			line("its beginning is returned.")
		}
	}
	// The boundary delimiter after the part starts with a line end of its
	// own, which already shows as an empty line.
	return strings.TrimRight(s.String(), "\n") + "\n"
}

func (b *builder) warnedAfter() time.Duration {
	if b.r.WarnAfter > 0 {
		return b.r.WarnAfter
	}
	if b.r.Arrival.IsZero() {
		return 0
	}
	return b.now.Sub(b.r.Arrival).Truncate(time.Minute)
}

func (b *builder) returnAfter() time.Duration {
	if b.r.ReturnAfter > 0 {
		return b.r.ReturnAfter
	}
	if b.r.Arrival.IsZero() {
		return 0
	}
	var until time.Time
	for _, rc := range b.rcpts {
		if rc.WillRetryUntil.After(until) {
			until = rc.WillRetryUntil
		}
	}
	if until.IsZero() {
		return 0
	}
	return until.Sub(b.r.Arrival).Truncate(time.Minute)
}

// deliveryStatus is the body of the message/delivery-status part (RFC 3464
// §2): the per-message fields, then one block per recipient, each block
// ended by an empty line. Values are kept to US-ASCII, as §2.1.2 asks.
func (b *builder) deliveryStatus() string {
	var s strings.Builder
	block := func(fields [][2]string) {
		if s.Len() > 0 {
			s.WriteString("\r\n") // blocks are separated by an empty line
		}
		for _, f := range fields {
			if f[1] != "" {
				s.WriteString(foldField(f[0], f[1]))
			}
		}
	}
	r := b.r
	msg := [][2]string{{"Reporting-MTA", "dns; " + dsText(r.Hostname)}}
	if r.EnvID != "" {
		msg = append(msg, [2]string{"Original-Envelope-Id", xtextNonASCII(r.EnvID)})
	}
	if !r.Arrival.IsZero() {
		msg = append(msg, [2]string{"Arrival-Date", r.Arrival.Format(dateLayout)})
	}
	block(msg)
	for _, rc := range b.rcpts {
		f := [][2]string{
			{"Original-Recipient", orcpt(rc.ORcpt)},
			{"Final-Recipient", "RFC822; " + xtextNonASCII(rc.Addr)},
			{"Action", string(rc.Action)},
			{"Status", rc.Status},
		}
		if h := dsText(rc.RemoteMTA); h != "" {
			f = append(f, [2]string{"Remote-MTA", "dns; " + h})
		}
		if d := dsText(strings.Join(lines(rc.Diagnostic), " ")); d != "" {
			f = append(f, [2]string{"Diagnostic-Code", diagType(d) + "; " + d})
		}
		if !rc.LastAttempt.IsZero() {
			f = append(f, [2]string{"Last-Attempt-Date", rc.LastAttempt.Format(dateLayout)})
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			f = append(f, [2]string{"Will-Retry-Until", rc.WillRetryUntil.Format(dateLayout)})
		}
		block(f)
	}
	return s.String()
}

// orcpt formats the queue's "type;address" ORCPT for Original-Recipient;
// a value without a type is taken as an RFC 822 address.
func orcpt(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		typ, addr = "rfc822", v
	}
	typ = dsText(typ)
	addr = xtextNonASCII(strings.TrimSpace(addr))
	if typ == "" || addr == "" {
		return ""
	}
	return typ + ";" + addr
}

// diagType names the kind of a diagnostic (RFC 3464 §2.3.6): "smtp" for a
// text shaped like an SMTP reply, our own X- type for anything else.
func diagType(d string) string {
	if smtpCode(d) != 0 {
		return "smtp"
	}
	return "X-Gosendmail"
}
