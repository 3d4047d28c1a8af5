package sendmail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/privsep"
	"github.com/gosendmail/gosendmail/pkg/version"
)

// Submission is one message handed to sendmail by a local program.
type Submission struct {
	Cfg     *config.Config
	Opts    *Options
	Caller  privsep.Caller
	Trusted bool // the caller may set the sender without a warning
	Now     time.Time
	Log     *maillog.Logger
}

// Result says what was queued.
type Result struct {
	ID     string
	Sender string
	Rcpts  []string
	Size   int64
}

// Submit reads the message from r, completes its header, and leaves it in
// maildrop_dir. It returns only once the drop file is durable; on any
// error nothing is left behind.
func (s *Submission) Submit(r io.Reader) (*Result, error) {
	cfg, o := s.Cfg, s.Opts
	sender, err := s.sender()
	if err != nil {
		return nil, err
	}
	if s.authWarning(sender) && cfg.Submission.FromPolicy == "refuse" {
		return nil, mailerr.New(mailerr.ExNoPerm, "%s: not allowed to set the sender to %s", s.Caller.Name, displaySender(sender))
	}

	var rcpts []string
	seen := map[string]bool{}
	add := func(a string) {
		key := strings.ToLower(a)
		if !seen[key] {
			seen[key] = true
			rcpts = append(rcpts, a)
		}
	}
	for _, arg := range o.Rcpts {
		list := envelope.ParseList(arg)
		if len(list) == 0 {
			return nil, mailerr.New(mailerr.ExUsage, "bad recipient address %q", arg)
		}
		for _, m := range list {
			a, err := envelope.CheckMailbox(m.Addr)
			if err != nil {
				return nil, mailerr.New(mailerr.ExUsage, "bad recipient address %v", err)
			}
			add(a)
		}
	}
	if !o.ExtractRcpts && len(rcpts) == 0 {
		return nil, mailerr.New(mailerr.ExUsage, "Recipient names must be specified")
	}

	in := newInput(r, o.IgnoreDots, int64(cfg.MaxMessageSize))
	hdr, err := in.readHeader()
	if err != nil {
		return nil, inputErr(err, cfg)
	}
	if o.ExtractRcpts {
		names := []string{"To", "Cc", "Bcc"}
		if hdr.has("Resent-To") || hdr.has("Resent-Cc") || hdr.has("Resent-Bcc") {
			names = []string{"Resent-To", "Resent-Cc", "Resent-Bcc"}
		}
		for _, n := range names {
			for _, f := range hdr.get(n) {
				for _, m := range envelope.ParseList(f.value()) {
					a, err := envelope.CheckMailbox(m.Addr)
					if err != nil {
						return nil, dataErr("bad recipient address in %s: header: %v", f.name, err)
					}
					add(a)
				}
			}
		}
		if len(rcpts) == 0 {
			return nil, mailerr.New(mailerr.ExUsage, "No recipient addresses found in header")
		}
	}
	hdr.remove("Bcc", "Resent-Bcc")
	s.qualifyHeaders(hdr)

	env := &maildrop.Envelope{Created: s.Now, Sender: sender, SenderSet: o.SenderSet, BodyType: o.BodyType, EnvID: o.EnvID, Ret: o.Ret}
	for _, a := range rcpts {
		env.Rcpts = append(env.Rcpts, maildrop.Rcpt{Addr: a, Notify: o.Notify})
	}
	w, err := maildrop.Create(cfg.MaildropDir, env)
	if err != nil {
		return nil, spoolErr(err, cfg.MaildropDir)
	}
	msgid, err := s.writeMessage(w, hdr, in, sender, w.ID)
	if err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, spoolErr(err, cfg.MaildropDir)
	}
	res := &Result{ID: w.ID, Sender: sender, Rcpts: rcpts, Size: w.Size()}
	if s.authWarning(sender) {
		s.Log.Printf(w.ID, "Authentication-Warning: %s: %s set sender to %s using -f", cfg.Hostname, s.Caller.Name, displaySender(sender))
	}
	s.Log.Printf(w.ID, "from=%s, size=%d, class=0, nrcpts=%d, msgid=%s, relay=%s@localhost", displaySender(sender), res.Size, len(rcpts), msgid, s.Caller.Name)
	return res, nil
}

// writeMessage writes the completed header and streams the body. It
// returns the Message-ID.
func (s *Submission) writeMessage(w io.Writer, hdr *parsed, in *input, sender, id string) (string, error) {
	cfg, o := s.Cfg, s.Opts
	dw := &dropWriter{w: w}
	bw := bufio.NewWriterSize(dw, 64<<10)
	date := s.Now.Format(time.RFC1123Z)
	fmt.Fprintf(bw, "Received: (from %s@localhost)\r\n\tby %s (gosendmail %s/Submit) id %s;\r\n\t%s\r\n",
		s.Caller.Name, cfg.Hostname, version.Version, id, date)
	if s.authWarning(sender) {
		fmt.Fprintf(bw, "X-Authentication-Warning: %s: %s set sender to %s using -f\r\n", cfg.Hostname, s.Caller.Name, displaySender(sender))
	}
	hdr.write(bw)
	if !hdr.has("From") {
		from := sender
		if from == "" || strings.EqualFold(from, s.Caller.Name+"@"+cfg.Hostname) {
			// The caller's own address: masquerade_as applies to it.
			from = s.Caller.Name + "@" + cfg.HeaderDomain(s.Caller.Name)
		}
		name := s.Caller.FullName
		if o.FullNameSet {
			name = o.FullName
		}
		fmt.Fprintf(bw, "From: %s\r\n", formatAddress(name, from))
	}
	if !hdr.has("Date") {
		fmt.Fprintf(bw, "Date: %s\r\n", date)
	}
	msgid := ""
	if f := hdr.get("Message-ID"); len(f) > 0 {
		msgid = f[0].value()
	} else {
		msgid = fmt.Sprintf("<%s.%s@%s>", s.Now.UTC().Format("200601021504"), id, cfg.Hostname)
		fmt.Fprintf(bw, "Message-ID: %s\r\n", msgid)
	}
	bw.Write(crlf)
	if hdr.hasFirst {
		bw.WriteString(hdr.bodyFirst)
		if !hdr.partial {
			bw.Write(crlf)
		}
	}
	if !hdr.ended {
		if err := in.copyBody(bw, hdr.partial); err != nil {
			if dw.err != nil {
				// The drop file failed (a full disk), not the input.
				return "", spoolErr(dw.err, cfg.MaildropDir)
			}
			return "", inputErr(err, cfg)
		}
	} else if hdr.partial {
		bw.Write(crlf)
	}
	if err := bw.Flush(); err != nil {
		return "", spoolErr(err, cfg.MaildropDir)
	}
	return msgid, nil
}

// dropWriter remembers the first failure to write the drop file, so that
// one met while the body is copied is not reported as a failure to read
// the caller's message.
type dropWriter struct {
	w   io.Writer
	err error
}

func (d *dropWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err != nil && d.err == nil {
		d.err = err
	}
	return n, err
}

// formatAddress writes "Full Name <addr>", quoting or encoding the name as
// RFC 5322 and 2047 require.
func formatAddress(name, addr string) string {
	if name == "" {
		return addr
	}
	if isPhrase(name) {
		return name + " <" + addr + ">"
	}
	s := (&mail.Address{Name: name, Address: "x@x"}).String()
	return strings.TrimSuffix(s, "<x@x>") + "<" + addr + ">"
}

// isPhrase reports whether name can stand unquoted as a display name:
// RFC 5322 atext words separated by single spaces.
func isPhrase(name string) bool {
	for _, w := range strings.Split(name, " ") {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			c := w[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// sender returns the envelope sender: the -f value, qualified with the
// host name, or the caller's own address.
func (s *Submission) sender() (string, error) {
	if !s.Opts.SenderSet {
		return s.Caller.Name + "@" + s.Cfg.EnvelopeDomain(s.Caller.Name), nil
	}
	a, err := envelope.ParseSender(s.Opts.Sender)
	if err != nil {
		return "", mailerr.New(mailerr.ExUsage, "-f %v", err)
	}
	return envelope.Qualify(a, s.Cfg.Hostname), nil
}

// authWarning reports whether X-Authentication-Warning applies: a caller
// who is not trusted set a sender other than their own address.
func (s *Submission) authWarning(sender string) bool {
	if !s.Opts.SenderSet || s.Trusted || !s.Cfg.HasPrivacy("authwarnings") || s.Cfg.Submission.FromPolicy == "allow" {
		return false
	}
	return !s.Cfg.OwnAddress(s.Caller.Name, sender)
}

func displaySender(a string) string {
	if a == "" {
		return "<>"
	}
	return a
}

// qualifyHeaders appends @hostname to bare user names in the address
// fields, so that replies to "From: Logwatch" reach this host.
func (s *Submission) qualifyHeaders(p *parsed) {
	for _, f := range p.fields {
		switch strings.ToLower(f.name) {
		case "from", "sender", "reply-to", "to", "cc", "resent-from", "resent-to", "resent-cc", "resent-sender":
		default:
			continue
		}
		list := envelope.ParseList(f.value())
		changed := false
		for i, m := range list {
			if _, err := envelope.CheckMailbox(m.Addr); err == nil && envelope.Domain(m.Addr) == "" {
				list[i].Addr = envelope.Qualify(m.Addr, s.Cfg.Hostname)
				changed = true
			}
		}
		if !changed {
			continue
		}
		parts := make([]string, len(list))
		for i, m := range list {
			parts[i] = formatAddress(m.Name, m.Addr)
		}
		f.lines = []string{f.name + ": " + strings.Join(parts, ", ")}
	}
}

// inputErr maps a failure while reading the caller's message.
func inputErr(err error, cfg *config.Config) error {
	if errors.Is(err, errTooBig) {
		return mailerr.New(mailerr.ExDataErr, "message exceeds maximum fixed size (%d)", int64(cfg.MaxMessageSize))
	}
	var me *mailerr.Error
	if errors.As(err, &me) {
		return err
	}
	return mailerr.Wrap(mailerr.ExIOErr, err, "reading message")
}

// spoolErr maps a failure to write the drop file. It never uses
// EX_TEMPFAIL: PHP's mail() counts 75 as success, and nothing was queued.
func spoolErr(err error, dir string) error {
	var me *mailerr.Error
	if errors.As(err, &me) {
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return mailerr.Wrap(mailerr.ExCantCreat, err, "cannot queue message in %s", dir)
	case errors.Is(err, os.ErrPermission):
		return mailerr.Wrap(mailerr.ExNoPerm, err, "cannot queue message in %s", dir)
	case errors.Is(err, os.ErrNotExist):
		return mailerr.Wrap(mailerr.ExOSFile, err, "cannot queue message in %s", dir)
	}
	return mailerr.Wrap(mailerr.ExIOErr, err, "cannot queue message in %s", dir)
}
