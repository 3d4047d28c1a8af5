// Package maillog writes the mail log in sendmail's syslog shape, so that
// fail2ban's stock sendmail filters, pflogsumm-like tools and operators'
// habits keep working. Each event has one method; the line formats are
// fixed here and nowhere else:
//
//	<ID>: from=<a@b>, size=N, class=0, nrcpts=N, msgid=<m>, proto=ESMTP, daemon=D, relay=host [ip]
//	<ID>: to=<c@d>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=N, relay=mx. [ip], dsn=2.0.0, stat=Sent (ok)
//	<ID>: ruleset=check_rcpt, arg1=<c@d>, relay=host [ip], reject=550 5.7.1 <c@d>... Relaying denied...
//	<ID>: <x@y>... User unknown
//
// Lines go to syslog (facility mail, tag "sm-mta" for the daemon, "sendmail"
// for the command), to stderr, or appended to a file, as the log key says.
// Without a syslog socket (a container), syslog lines are dropped by the
// command and written to stderr by the daemon.
package maillog

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"time"
)

// Logger writes mail log lines.
type Logger struct {
	mu   sync.Mutex
	tag  string
	host string
	sys  *syslog.Writer
	w    io.Writer // stderr or file; nil when syslog
	pid  int
}

// Open makes a logger for dest ("syslog", "stderr" or a file path). isDaemon
// chooses the fallback when syslog is unavailable.
func Open(dest, tag string, isDaemon bool) *Logger {
	l := &Logger{tag: tag, pid: os.Getpid()}
	l.host, _ = os.Hostname()
	switch dest {
	case "stderr":
		l.w = os.Stderr
	case "syslog", "":
		s, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, tag)
		if err == nil {
			l.sys = s
		} else if isDaemon {
			l.w = os.Stderr
		} else {
			l.w = io.Discard
		}
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: cannot open log %s: %v\n", tag, dest, err)
			l.w = io.Discard
			if isDaemon {
				l.w = os.Stderr
			}
		} else {
			l.w = f
		}
	}
	return l
}

// New returns a logger writing to w (tests).
func New(w io.Writer, tag string) *Logger {
	h, _ := os.Hostname()
	return &Logger{tag: tag, w: w, pid: os.Getpid(), host: h}
}

// Discard returns a logger that writes nothing.
func Discard() *Logger { return New(io.Discard, "") }

// clean keeps a log line on one line whatever a client sent.
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Printf writes one line. id may be empty.
func (l *Logger) Printf(id, format string, args ...any) {
	msg := clean(fmt.Sprintf(format, args...))
	if id != "" {
		msg = id + ": " + msg
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		l.sys.Info(msg)
		return
	}
	fmt.Fprintf(l.w, "%s %s %s[%d]: %s\n", time.Now().Format(time.Stamp), l.host, l.tag, l.pid, msg)
}

// Warnf writes one line at warning level.
func (l *Logger) Warnf(id, format string, args ...any) {
	if l.sys != nil {
		msg := clean(fmt.Sprintf(format, args...))
		if id != "" {
			msg = id + ": " + msg
		}
		l.mu.Lock()
		l.sys.Warning(msg)
		l.mu.Unlock()
		return
	}
	l.Printf(id, format, args...)
}

// Received logs an accepted message ("from=" line).
func (l *Logger) Received(id, from string, size int64, nrcpts int, msgid, proto, daemon, relay string) {
	var b strings.Builder
	fmt.Fprintf(&b, "from=%s, size=%d, class=0, nrcpts=%d", angle(from), size, nrcpts)
	if msgid != "" {
		fmt.Fprintf(&b, ", msgid=%s", msgid)
	}
	if proto != "" {
		fmt.Fprintf(&b, ", proto=%s", proto)
	}
	if daemon != "" {
		fmt.Fprintf(&b, ", daemon=%s", daemon)
	}
	fmt.Fprintf(&b, ", relay=%s", relay)
	l.Printf(id, "%s", b.String())
}

// Delivery describes one delivery attempt for the "to=" line.
type Delivery struct {
	To       string
	Ctladdr  string
	Delay    time.Duration // since arrival
	Xdelay   time.Duration // this attempt
	Mailer   string
	Priority int64
	Relay    string
	DSN      string
	Stat     string // "Sent (ok)", "Deferred: ...", "User unknown"
}

// Delivered logs a delivery attempt's outcome.
func (l *Logger) Delivered(id string, d Delivery) {
	var b strings.Builder
	fmt.Fprintf(&b, "to=%s", d.To)
	if d.Ctladdr != "" {
		fmt.Fprintf(&b, ", ctladdr=%s", d.Ctladdr)
	}
	fmt.Fprintf(&b, ", delay=%s, xdelay=%s, mailer=%s, pri=%d", hms(d.Delay), hms(d.Xdelay), d.Mailer, d.Priority)
	if d.Relay != "" {
		fmt.Fprintf(&b, ", relay=%s", d.Relay)
	}
	if d.DSN != "" {
		fmt.Fprintf(&b, ", dsn=%s", d.DSN)
	}
	fmt.Fprintf(&b, ", stat=%s", d.Stat)
	l.Printf(id, "%s", b.String())
}

// Rejected logs a refused command in check_* shape.
func (l *Logger) Rejected(id, ruleset, arg1, relay, reply string) {
	l.Printf(id, "ruleset=%s, arg1=%s, relay=%s, reject=%s", ruleset, arg1, relay, reply)
}

func angle(a string) string {
	if strings.HasPrefix(a, "<") {
		return a
	}
	return "<" + a + ">"
}

// hms formats a duration as sendmail does: [days+]HH:MM:SS.
func hms(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days := s / 86400
	s %= 86400
	out := fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	if days > 0 {
		out = fmt.Sprintf("%d+%s", days, out)
	}
	return out
}
