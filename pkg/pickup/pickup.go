// Package pickup moves mail that local programs left in maildrop_dir into
// the queue. It runs inside the daemon, which owns maildrop_dir.
//
// A drop file is hostile input: its writer was the setgid sendmail, driven
// by any local user. So the submitting user is the file's owner uid (from
// the kernel, not from the file), the file must be regular, single-linked
// and complete, and every address in it is checked again. A sender set
// with -f by a user who is neither root nor in trusted_users stands only
// with an X-Authentication-Warning header, which pickup adds if the file
// lacks it; with submission.from_policy = "refuse" it is replaced by the
// user's own address.
//
// A file is taken in three steps: the message is created in the queue
// under the file's own ID (fsync'd: the commit point), the drop file is
// removed, and maildrop_dir is fsync'd. A crash between the first two
// leaves both; the next pass finds qf<ID> already present and only
// removes the drop file, so nothing is queued twice.
package pickup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/milter"
	"github.com/gosendmail/gosendmail/pkg/privsep"
	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// StaleAfter is how old an incomplete drop file must be before pickup
// removes it: its writer died before finishing.
const StaleAfter = 24 * time.Hour

// Pickup takes drop files into the queue.
type Pickup struct {
	Cfg     *config.Config
	Queue   *spool.Queue
	Log     *maillog.Logger
	Trusted func(uid int, name string) bool
	// Queued, if set, is told the ID of each message queued.
	Queued func(id string)
	// Milters, if set, keeps filter connections between messages.
	Milters *milter.Pool
}

// Once takes every complete drop file now. It returns how many messages
// were queued and how many files were left (still being written, or
// failing): the caller should look again soon when any were.
func (p *Pickup) Once() (queued, left int) {
	names, err := maildrop.Names(p.Cfg.MaildropDir)
	if err != nil {
		p.Log.Warnf("", "pickup: %v", err)
		return 0, 0
	}
	n := 0
	for _, name := range names {
		ok, err := p.take(name)
		if err != nil {
			p.Log.Warnf(name, "pickup: %v", err)
		}
		if ok {
			n++
		} else if !p.milterWaiting(name) { // milter.go: in the filters, or waiting to go again
			left++
		}
	}
	if n > 0 {
		if err := safeio.SyncDir(p.Cfg.MaildropDir); err != nil {
			p.Log.Warnf("", "pickup: %v", err)
		}
	}
	return n, left
}

func (p *Pickup) take(name string) (bool, error) {
	if p.milterWaiting(name) { // milter.go
		return false, nil
	}
	path := filepath.Join(p.Cfg.MaildropDir, name)
	d, err := maildrop.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, maildrop.ErrIncomplete):
		if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > StaleAfter {
			os.Remove(path)
			p.Log.Warnf(name, "pickup: removed incomplete drop file (writer died)")
		}
		return false, nil
	case errors.Is(err, maildrop.ErrCorrupt):
		return false, p.setAside(path, name, err)
	case err != nil:
		return false, err
	}
	defer d.Close()

	if _, err := os.Lstat(filepath.Join(p.Queue.Dir, "qf"+name)); err == nil {
		// Queued by an earlier pass that died before removing the file.
		return false, os.Remove(path)
	}
	env, prefix, err := p.envelope(d)
	if err != nil {
		return false, p.setAside(path, name, err)
	}
	env.ID = name
	if chain := p.milterChain(); chain != nil { // milter.go: the filters decide, on a goroutine of their own
		return p.filter(chain, path, env, prefix), nil
	}
	body := spool.Mark8Bit(io.MultiReader(strings.NewReader(prefix), d.Message()), env)
	if err := p.Queue.Create(env, body); err != nil {
		return false, fmt.Errorf("cannot queue: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return true, err
	}
	p.Log.Received(env.ID, displaySender(env.Sender), p.Queue.Size(env.ID), len(env.Rcpts), "", "", "", env.User+"@localhost")
	if p.Queued != nil {
		p.Queued(env.ID)
	}
	return true, nil
}

// envelope builds the queue envelope of a drop file, checking every
// address again. It returns text to put before the message, if any.
func (p *Pickup) envelope(d *maildrop.Drop) (*spool.Envelope, string, error) {
	user := privsep.UserName(d.UID)
	env := &spool.Envelope{
		Created:  d.ModTime,
		UID:      d.UID,
		User:     user,
		Sender:   user + "@" + p.Cfg.EnvelopeDomain(user), // masquerade_envelope
		BodyType: d.BodyType,
		EnvID:    d.EnvID,
		Ret:      d.Ret,
	}
	prefix := ""
	if d.SenderSet {
		s, err := envelope.ParseSender(d.Sender)
		if err != nil {
			return nil, "", fmt.Errorf("sender: %v", err)
		}
		s = envelope.Qualify(s, p.Cfg.Hostname)
		trusted := d.UID == 0 || (p.Trusted != nil && p.Trusted(d.UID, user))
		switch {
		case trusted || p.Cfg.OwnAddress(user, s) || p.Cfg.Submission.FromPolicy == "allow" || !p.Cfg.HasPrivacy("authwarnings"):
			env.Sender = s
		case p.Cfg.Submission.FromPolicy == "refuse":
			p.Log.Warnf(d.ID, "pickup: %s may not set the sender to %s; using %s", user, displaySender(s), env.Sender)
		default:
			env.Sender = s
			if !hasAuthWarning(d.Message()) {
				prefix = fmt.Sprintf("X-Authentication-Warning: %s: %s set sender to %s using -f\r\n", p.Cfg.Hostname, user, displaySender(s))
			}
		}
	}
	for _, r := range d.Rcpts {
		a, err := envelope.CheckMailbox(r.Addr)
		if err != nil {
			return nil, "", fmt.Errorf("recipient: %v", err)
		}
		env.Rcpts = append(env.Rcpts, spool.Recipient{Addr: a, State: spool.Pending, Notify: r.Notify})
	}
	env.Priority = 30000 + d.Size
	return env, prefix, nil
}

// hasAuthWarning looks for the warning header among the first header
// lines, where the sendmail command writes it (after Received).
func hasAuthWarning(r io.Reader) bool {
	sc := bufio.NewScanner(io.LimitReader(r, 16<<10))
	for i := 0; i < 8 && sc.Scan(); i++ {
		line := sc.Text()
		if line == "\r" || line == "" {
			return false
		}
		if strings.HasPrefix(strings.ToLower(line), "x-authentication-warning:") {
			return true
		}
	}
	return false
}

// setAside renames a bad drop file out of the way (it keeps its content
// for the administrator) and logs why.
func (p *Pickup) setAside(path, name string, cause error) error {
	bad := filepath.Join(p.Cfg.MaildropDir, "bad."+name)
	if err := os.Rename(path, bad); err != nil {
		return fmt.Errorf("%v; cannot set aside: %v", cause, err)
	}
	return fmt.Errorf("%v; set aside as %s", cause, bad)
}

func displaySender(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}
