package mailq

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// Manager changes the queues on an operator's behalf. Every change to an
// MTA queue message is made under the message's lock, so it never races
// the daemon's delivery of it; a message being delivered is refused with
// spool.ErrLocked's text.
//
// Each operation handles its messages one at a time: one line on Out per
// message done ("<ID>: removed"), one line on Err per failure, and a log
// line per change. It returns the exit status of the first failure (0 if
// none), carrying on with the other messages after a failure.
type Manager struct {
	MTA    *spool.Queue
	MSPDir string
	Log    *maillog.Logger
	By     string    // who asks, for the log: "<ID>: removed by root"
	Prog   string    // prefix of error lines, e.g. "mailq"
	Out    io.Writer // what was done
	Err    io.Writer // what failed
}

// errMalformed, errNotQueued and errLocked are the per-message failures,
// each with its exit status (see the package documentation).
func errMalformed(id string) error {
	return mailerr.New(mailerr.ExUsage, "%s: not a queue ID", printable(id))
}

func errNotQueued(id string) error {
	return mailerr.New(mailerr.ExUnavailable, "%s: not in the queue", id)
}

func errLocked(id string) error {
	return mailerr.Wrap(mailerr.ExTempFail, spool.ErrLocked, "%s", id)
}

// exitFor is the exit status of a file system failure: 77 for permission
// denied, 69 for a missing file or directory, 65 for a corrupt file, 75
// (try again) for anything else.
func exitFor(err error) int {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return mailerr.ExNoPerm
	case errors.Is(err, fs.ErrNotExist):
		return mailerr.ExUnavailable
	case errors.Is(err, spool.ErrCorrupt), errors.Is(err, maildrop.ErrCorrupt):
		return mailerr.ExDataErr
	}
	return mailerr.ExTempFail
}

// failure turns a file system error about message id into a one-line
// error with its exit status, naming the message once.
func failure(err error, id string) error {
	msg := oneLine(unwrapPath(err).Error())
	if !strings.HasPrefix(msg, id+":") {
		msg = id + ": " + msg
	}
	return mailerr.New(exitFor(err), "%s", msg)
}

// run applies op to each id and reports as Manager's doc says.
func (m *Manager) run(ids []string, op func(id string) (done string, err error)) int {
	code := 0
	for _, id := range ids {
		done, err := op(id)
		if err != nil {
			m.fail(err)
			if code == 0 {
				code = mailerr.ExitCode(err)
			}
			continue
		}
		if done != "" {
			fmt.Fprintf(m.Out, "%s: %s\n", id, done)
		}
	}
	return code
}

func (m *Manager) log() *maillog.Logger {
	if m.Log == nil {
		return maillog.Discard()
	}
	return m.Log
}

func (m *Manager) fail(err error) {
	fmt.Fprintf(m.Err, "%s: %s\n", m.Prog, oneLine(err.Error()))
}

// lockMTA takes the lock of a message in the MTA queue. what names the
// operation for the error about a message still in the maildrop.
func (m *Manager) lockMTA(id, what string) (unlock func(), err error) {
	if !spool.ValidID(id) {
		return nil, errMalformed(id)
	}
	unlock, err = m.MTA.Lock(id)
	switch {
	case err == nil:
		return unlock, nil
	case errors.Is(err, spool.ErrNotFound):
		if _, serr := os.Lstat(filepath.Join(m.MSPDir, id)); serr == nil {
			return nil, mailerr.New(mailerr.ExUnavailable,
				"%s: still in the maildrop, not yet picked up by the daemon; %s applies to the MTA queue only", id, what)
		}
		return nil, errNotQueued(id)
	case errors.Is(err, spool.ErrLocked):
		return nil, errLocked(id)
	}
	return nil, failure(err, id)
}

// Remove deletes the messages with these IDs from whichever queue holds
// them.
func (m *Manager) Remove(ids []string) int {
	return m.run(ids, func(id string) (string, error) {
		return m.removeOne(id, nil)
	})
}

// removeOne removes one message. With a non-nil match, an MTA message is
// removed only if it still matches once locked (it may have been delivered
// or changed since it was selected), and one that is gone is no error.
func (m *Manager) removeOne(id string, match func(*Item) bool) (string, error) {
	if !spool.ValidID(id) {
		return "", errMalformed(id)
	}
	unlock, err := m.MTA.Lock(id)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		return m.removeDrop(id, match != nil)
	case errors.Is(err, spool.ErrLocked):
		return "", errLocked(id)
	case err != nil:
		return "", failure(err, id)
	}
	defer unlock()
	if match != nil {
		env, err := m.MTA.Read(id)
		if errors.Is(err, spool.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", failure(err, id)
		}
		if it := FromEnvelope(env, 0, false); !match(&it) {
			return "", nil
		}
	}
	if err := m.MTA.Remove(id); err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			if match != nil {
				return "", nil
			}
			return "", errNotQueued(id)
		}
		return "", failure(err, id+": cannot remove")
	}
	m.log().Printf(id, "removed by %s", m.By)
	return "removed", nil
}

// removeDrop deletes a drop file. A corrupt one may be removed (that is
// usually why one asks); one still being written may not, since its
// writer would go on to report success for a message that is gone.
func (m *Manager) removeDrop(id string, quietIfGone bool) (string, error) {
	d, err := maildrop.Open(filepath.Join(m.MSPDir, id))
	switch {
	case err == nil:
		d.Close()
	case errors.Is(err, fs.ErrNotExist):
		if quietIfGone {
			return "", nil
		}
		return "", errNotQueued(id)
	case errors.Is(err, maildrop.ErrIncomplete):
		return "", mailerr.New(mailerr.ExTempFail, "%s: still being submitted; try again later", id)
	case errors.Is(err, maildrop.ErrCorrupt):
	default:
		return "", failure(err, id)
	}
	if err := safeio.Remove(m.MSPDir, id); err != nil {
		return "", failure(err, id+": cannot remove")
	}
	m.log().Printf(id, "removed by %s", m.By)
	return "removed", nil
}

// RemoveMatching removes every message of both queues for which match is
// true. Each is checked again under its lock, since it may have been
// delivered or changed since the queues were read. Messages that cannot be
// read are warned about and left alone.
func (m *Manager) RemoveMatching(match func(*Item) bool) int {
	var ids []string
	code := 0
	for _, load := range []struct {
		dir string
		f   func(string) ([]Item, []error, error)
	}{{m.MSPDir, LoadMSP}, {m.MTA.Dir, LoadMTA}} {
		items, warns, err := load.f(load.dir)
		for _, w := range warns {
			fmt.Fprintf(m.Err, "%s: warning: %s\n", m.Prog, oneLine(w.Error()))
		}
		if err != nil {
			err = mailerr.New(exitFor(err), "%s", err)
			m.fail(err)
			if code == 0 {
				code = mailerr.ExitCode(err)
			}
			continue
		}
		for i := range items {
			if match(&items[i]) {
				ids = append(ids, items[i].ID)
			}
		}
	}
	if len(ids) == 0 && code == 0 {
		fmt.Fprintf(m.Err, "%s: no message in the queues matches\n", m.Prog)
		return 0
	}
	if c := m.run(ids, func(id string) (string, error) { return m.removeOne(id, match) }); code == 0 {
		code = c
	}
	return code
}

// MatchSender selects messages by envelope sender for remove --sender:
// the whole address, ignoring case and angle brackets ("<>" is the null
// sender), or every address of a domain when pat starts with "@". A drop
// file without -f matches its owner's user name.
func MatchSender(pat string) func(*Item) bool {
	pat = bareAddr(pat)
	return func(it *Item) bool { return addrMatches(it.Sender, pat) }
}

// MatchRecipient selects messages with a pending recipient that matches
// pat, in MatchSender's terms. The whole message is selected, whatever its
// other recipients.
func MatchRecipient(pat string) func(*Item) bool {
	pat = bareAddr(pat)
	return func(it *Item) bool {
		for _, r := range it.Rcpts {
			if addrMatches(r.Addr, pat) {
				return true
			}
		}
		return false
	}
}

// bareAddr is the address inside the last <...> if there is one, trimmed
// and lower-cased: "Y Two <Y2@Example.NET>" -> "y2@example.net".
func bareAddr(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// addrMatches compares addr with a pattern already through bareAddr.
func addrMatches(addr, pat string) bool {
	a := bareAddr(addr)
	if strings.HasPrefix(pat, "@") {
		at := strings.LastIndexByte(a, '@')
		return at >= 0 && a[at:] == pat
	}
	return a == pat
}

// Hold marks MTA queue messages held: the queue runner leaves them alone
// until released. An empty reason keeps a held message's reason, else
// says who held it.
func (m *Manager) Hold(ids []string, reason string) int {
	return m.run(ids, func(id string) (string, error) {
		unlock, err := m.lockMTA(id, "hold")
		if err != nil {
			return "", err
		}
		defer unlock()
		env, err := m.readLocked(id)
		if err != nil {
			return "", err
		}
		switch {
		case reason != "":
			env.Hold = reason
		case env.Hold == "":
			env.Hold = "held by " + m.By
		}
		if err := m.MTA.Update(env); err != nil {
			return "", failure(err, id+": cannot hold")
		}
		m.log().Printf(id, "held by %s, reason=%s", m.By, env.Hold)
		return "held", nil
	})
}

// Release lets held MTA queue messages be delivered again. A message that
// is not held is said so, and is no error.
func (m *Manager) Release(ids []string) int {
	return m.run(ids, func(id string) (string, error) {
		unlock, err := m.lockMTA(id, "release")
		if err != nil {
			return "", err
		}
		defer unlock()
		env, err := m.readLocked(id)
		if err != nil {
			return "", err
		}
		if env.Hold == "" {
			return "not held", nil
		}
		env.Hold = ""
		if err := m.MTA.Update(env); err != nil {
			return "", failure(err, id+": cannot release")
		}
		m.log().Printf(id, "released by %s", m.By)
		return "released", nil
	})
}

func (m *Manager) readLocked(id string) (*spool.Envelope, error) {
	env, err := m.MTA.Read(id)
	if errors.Is(err, spool.ErrNotFound) {
		return nil, errNotQueued(id)
	}
	if err != nil {
		return nil, failure(err, id)
	}
	return env, nil
}

// maxShownHeader bounds the header block Show prints: the df is whatever
// a client sent.
const maxShownHeader = 1 << 20

// Show prints everything the queue knows about one message: its envelope,
// then its header block as stored in the df (up to the blank line).
func (m *Manager) Show(id string) int {
	return m.run([]string{id}, func(string) (string, error) {
		if !spool.ValidID(id) {
			return "", errMalformed(id)
		}
		env, err := m.MTA.Read(id)
		if err == nil {
			f, err := os.Open(m.MTA.DataPath(id))
			if err != nil {
				return "", failure(err, id)
			}
			defer f.Close()
			m.showEnvelope(env, m.MTA.Locked(id))
			return "", showHeader(m.Out, f)
		}
		if !errors.Is(err, spool.ErrNotFound) {
			return "", failure(err, id)
		}
		d, err := maildrop.Open(filepath.Join(m.MSPDir, id))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", errNotQueued(id)
		case errors.Is(err, maildrop.ErrIncomplete):
			return "", mailerr.New(mailerr.ExTempFail, "%s: still being submitted; try again later", id)
		case err != nil:
			return "", failure(err, id)
		}
		defer d.Close()
		d.ID = id
		m.showDrop(d)
		return "", showHeader(m.Out, d.Message())
	})
}

// showTime is the time format of Show: unambiguous, with the zone.
const showTime = "2006-01-02 15:04:05 -0700"

func (m *Manager) showEnvelope(env *spool.Envelope, locked bool) {
	it := FromEnvelope(env, m.MTA.Size(env.ID), locked)
	w := &fieldWriter{w: m.Out}
	w.field("Queue ID", env.ID)
	w.field("Queue", m.MTA.Dir+" ("+it.Queue+")")
	if locked {
		w.field("Locked", "yes, being delivered")
	}
	if env.Hold != "" {
		w.field("Held", env.Hold)
	}
	w.field("Sender", "<"+env.Sender+">")
	w.field("Arrival", env.Created.Local().Format(showTime))
	w.field("Size", fmt.Sprintf("%d bytes", it.Size))
	w.field("Priority", fmt.Sprint(env.Priority))
	w.field("Attempts", fmt.Sprint(env.Attempts))
	if !env.LastAttempt.IsZero() {
		w.field("Last attempt", env.LastAttempt.Local().Format(showTime))
	}
	if !env.NextAttempt.IsZero() {
		w.field("Next attempt", env.NextAttempt.Local().Format(showTime))
	}
	if env.Status != "" {
		w.field("Status", env.Status)
	}
	switch {
	case env.UID >= 0:
		w.field("Submitted by", fmt.Sprintf("%s (uid %d)", env.User, env.UID))
	case env.Client != "":
		w.field("Client", env.Client)
	}
	w.optional("Body type", env.BodyType)
	w.optional("DSN ENVID", env.EnvID)
	w.optional("DSN RET", env.Ret)
	w.field("Recipients", "")
	for _, r := range env.Rcpts {
		state := map[spool.State]string{spool.Pending: "pending", spool.Sent: "sent", spool.Failed: "failed"}[r.State]
		line := fmt.Sprintf("  %-8s %s", state, r.Addr)
		if r.Reason != "" {
			line += " (" + r.Reason + ")"
		}
		w.line(line)
	}
}

func (m *Manager) showDrop(d *maildrop.Drop) {
	var users owners
	it := FromDrop(d, users.Name(d.UID))
	w := &fieldWriter{w: m.Out}
	w.field("Queue ID", d.ID)
	w.field("Queue", m.MSPDir+" ("+QueueMaildrop+")")
	if d.SenderSet {
		w.field("Sender", "<"+d.Sender+">")
	} else {
		w.field("Sender", "(none given; the daemon will use the submitting user's address)")
	}
	w.field("Arrival", d.Created.Local().Format(showTime))
	w.field("Size", fmt.Sprintf("%d bytes", it.Size))
	w.field("Submitted by", fmt.Sprintf("%s (uid %d)", users.Name(d.UID), d.UID))
	w.optional("Body type", d.BodyType)
	w.optional("DSN ENVID", d.EnvID)
	w.optional("DSN RET", d.Ret)
	w.field("Recipients", "")
	for _, r := range d.Rcpts {
		w.line(fmt.Sprintf("  %-8s %s", "pending", r.Addr))
	}
}

// fieldWriter prints "Label:  value" lines in one column, cleaned of
// control bytes.
type fieldWriter struct {
	w   io.Writer
	buf []byte
}

func (f *fieldWriter) field(label, value string) {
	if value == "" {
		f.line(label + ":")
		return
	}
	f.line(fmt.Sprintf("%-14s%s", label+":", value))
}

func (f *fieldWriter) optional(label, value string) {
	if value != "" {
		f.field(label, value)
	}
}

func (f *fieldWriter) line(s string) {
	f.buf = append(appendClean(f.buf[:0], s), '\n')
	f.w.Write(f.buf)
}

// showHeader copies the message's header block to w, a blank line first,
// with LF line ends and control bytes other than TAB shown as '?'.
func showHeader(w io.Writer, msg io.Reader) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("\n")
	br := bufio.NewReader(io.LimitReader(msg, maxShownHeader))
	atStart := true // at the start of a line, not inside a long one
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) == 0 {
			break
		}
		complete := chunk[len(chunk)-1] == '\n'
		text := bytes.TrimRight(chunk, "\r\n")
		if atStart && complete && len(text) == 0 {
			break // the blank line that ends the header
		}
		for _, c := range text {
			if c != '\t' && (c < 0x20 || c == 0x7f) {
				c = '?'
			}
			bw.WriteByte(c)
		}
		atStart = complete
		if complete {
			bw.WriteByte('\n')
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	if !atStart {
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// Flush asks the daemon's queue runner, over its control socket, to try
// the given messages (all if none) now. mailq has no queue runner of its
// own: when no daemon answers or the daemon cannot flush, it says so and
// fails rather than pretend.
func Flush(socket string, ids []string, out io.Writer, timeout time.Duration) error {
	for _, id := range ids {
		if !spool.ValidID(id) {
			return errMalformed(id)
		}
	}
	resp, err := control.Call(socket, control.Request{Cmd: "flush", Args: ids}, timeout)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		return mailerr.New(mailerr.ExUnavailable, "cannot flush: no queue runner (%v)", err)
	case errors.Is(err, fs.ErrPermission):
		return mailerr.Wrap(mailerr.ExNoPerm, fs.ErrPermission, "cannot flush: control socket %s", socket)
	case err != nil:
		return mailerr.Wrap(mailerr.ExTempFail, err, "cannot flush")
	case !resp.OK:
		msg := resp.Error
		if msg == "" {
			msg = "refused without a reason"
		}
		if unsupported(msg) {
			return mailerr.New(mailerr.ExUnavailable, "cannot flush: no queue runner (the daemon says: %s)", oneLine(msg))
		}
		code := mailerr.ExUnavailable
		if resp.Status != 0 {
			code = resp.Status
		}
		return mailerr.New(code, "cannot flush: the daemon says: %s", oneLine(msg))
	}
	switch {
	case strings.TrimSpace(resp.Output) != "":
		fmt.Fprintln(out, strings.TrimRight(resp.Output, "\n"))
	case len(ids) == 0:
		fmt.Fprintln(out, "queue run started")
	default:
		for _, id := range ids {
			fmt.Fprintf(out, "%s: flush requested\n", id)
		}
	}
	return nil
}

// unsupported recognises a daemon's refusal of a command it does not
// know, however it words it.
func unsupported(msg string) bool {
	m := strings.ToLower(msg)
	for _, w := range []string{"unknown", "not supported", "unsupported", "not implemented", "no queue runner"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.ReplaceAll(s, "\n", "; ")
}

// printable shows a user-supplied argument safely in an error line.
func printable(s string) string {
	return string(appendClean(nil, s))
}
