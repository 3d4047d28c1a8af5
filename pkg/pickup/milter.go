package pickup

// The [[milter]] filters for mail submitted through the sendmail command
// (and sendmail -bs), as sendmail runs them on its MSP's SMTP hop to the
// MTA: connect from "localhost" [127.0.0.1] (macro _ names the
// submitting user: "user@localhost [127.0.0.1]", {daemon_name} is
// "pickup"), HELO with our hostname, MAIL with the envelope sender, RCPT
// for each recipient, then the message; the queue ID (macro i) is the
// drop file's.
//
// The filters run on a goroutine of their own, not in the daemon's loop,
// so a slow or hung filter holds up only the file it is filtering (at
// most maxFiltering files at once); meanwhile passes skip the file.
// Outcomes:
//
//   - accepted (possibly changed): queued as the filters left it, with
//     their envelope changes and quarantine, and the drop file removed;
//   - rejected (MAIL, DATA or end of message; or every recipient): the
//     submitter gets a bounce (a DSN from MAILER-DAEMON with the filter's
//     reply, as sendmail's MSP would return it) and the drop file is
//     removed; recipients rejected one by one are bounced and the rest
//     queued;
//   - tempfailed anywhere (or the filter is down with on_failure =
//     tempfail): the drop file stays in maildrop_dir, where mailq shows it,
//     and is tried again after delivery.retry_min, on a later pass;
//   - discarded: the drop file is removed and nothing is queued.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gosendmail/gosendmail/pkg/dsn"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/milter"
	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// maxFiltering bounds the drop files being filtered at once.
const maxFiltering = 4

// filtering tracks drop files (by path) in the filters, and those a
// filter deferred, until when.
var filtering = struct {
	sync.Mutex
	busy     map[string]bool
	deferred map[string]time.Time
}{busy: map[string]bool{}, deferred: map[string]time.Time{}}

// milterWaiting reports whether a drop file is being filtered, or waits
// after a tempfail: a pass leaves it alone and does not count it.
func (p *Pickup) milterWaiting(name string) bool {
	path := filepath.Join(p.Cfg.MaildropDir, name)
	filtering.Lock()
	defer filtering.Unlock()
	if filtering.busy[path] {
		return true
	}
	if t, ok := filtering.deferred[path]; ok {
		if time.Now().Before(t) {
			return true
		}
		delete(filtering.deferred, path)
	}
	return false
}

// milterChain is the configured filters; nil if none.
func (p *Pickup) milterChain() *milter.Chain {
	c := milter.NewChain(p.Cfg.Milter, p.Log)
	if c != nil {
		c.Pool = p.Milters
	}
	return c
}

// filter starts the filters on a drop file and returns; the file is dealt
// with when they are done. It returns false: the file is not queued yet.
func (p *Pickup) filter(chain *milter.Chain, path string, env *spool.Envelope, prefix string) bool {
	filtering.Lock()
	n := len(filtering.busy)
	if filtering.busy[path] || n >= maxFiltering {
		filtering.Unlock()
		return false
	}
	filtering.busy[path] = true
	filtering.Unlock()
	go func() {
		retry := p.runFilters(chain, path, env, prefix)
		filtering.Lock()
		delete(filtering.busy, path)
		if retry {
			now := time.Now()
			for k, t := range filtering.deferred {
				if now.Sub(t) > time.Hour {
					delete(filtering.deferred, k)
				}
			}
			filtering.deferred[path] = now.Add(p.Cfg.Delivery.RetryMin.D())
		}
		filtering.Unlock()
	}()
	return false
}

// runFilters filters one drop file and queues, bounces or drops it. It
// returns true when the file stays for a later try.
func (p *Pickup) runFilters(chain *milter.Chain, path string, env *spool.Envelope, prefix string) (retry bool) {
	name := env.ID
	d, err := maildrop.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.Log.Warnf(name, "pickup: %v", err)
			return true
		}
		return false
	}
	defer d.Close()
	if _, err := os.Lstat(p.Queue.EnvelopePath(name)); err == nil {
		return false // queued already; the next pass removes the file
	}
	src, ok := d.Message().(io.ReaderAt)
	if !ok {
		p.Log.Warnf(name, "pickup: cannot read the message for the filters")
		return true
	}
	original := func() io.Reader { return io.MultiReader(strings.NewReader(prefix), d.Message()) }
	m, err := milter.ReadMessage(src, d.Size)
	if errors.Is(err, milter.ErrHeaderTooLarge) {
		// As an SMTP server would refuse it: it cannot be filtered.
		v := milter.Verdict{Action: milter.Reject, Code: 552, Enhanced: "5.6.0", Text: fmt.Sprintf("Headers too large (%d max)", milter.MaxHeader)}
		var all []refusal
		for _, r := range env.Rcpts {
			all = append(all, refusal{r, v})
		}
		if p.bounce(env, all, original()) {
			p.remove(path, name)
			return false
		}
		return true
	}
	if err == nil {
		err = m.Prepend(prefix)
	}
	if err != nil {
		p.Log.Warnf(name, "pickup: %v", err)
		return true
	}
	defer m.Close()

	ms := chain.NewSession()
	defer ms.Close()
	ms.ID = name
	host := p.Cfg.Hostname
	ms.Local = func(dom string) bool { return strings.EqualFold(dom, host) || strings.EqualFold(dom, "localhost") }
	ms.SetMacros(map[string]string{
		"j":             host,
		"_":             env.User + "@localhost [127.0.0.1]",
		"{daemon_name}": "pickup",
		"{client_addr}": "127.0.0.1",
		"{client_name}": "localhost",
		"s":             host,
		"i":             name,
	})
	var args []string
	if env.BodyType != "" {
		args = append(args, "BODY="+env.BodyType)
	}
	if env.Ret != "" {
		args = append(args, "RET="+env.Ret)
	}
	if env.EnvID != "" {
		args = append(args, "ENVID="+env.EnvID)
	}
	v := ms.Connect("localhost", netip.MustParseAddrPort("127.0.0.1:0"))
	if !v.Refused() {
		v = ms.Helo(host)
	}
	if !v.Refused() && v.Action != milter.Discard {
		v = ms.Mail(env.Sender, args)
	}
	// kept are the recipients the filters took, refused those they
	// refused one by one (with their reply).
	kept := env.Rcpts
	var refused []refusal
	if v.Action == milter.Continue {
		kept = nil
		for _, r := range env.Rcpts {
			var rargs []string
			if r.Notify != "" {
				rargs = append(rargs, "NOTIFY="+r.Notify)
			}
			rv := ms.Rcpt(r.Addr, rargs)
			if rv.Action == milter.Reject {
				refused = append(refused, refusal{r, rv})
				continue
			}
			kept = append(kept, r)
			if rv.Action == milter.Tempfail {
				v = rv
				break
			}
		}
		if len(kept) == 0 && len(refused) > 0 {
			v = refused[0].v
		}
	}
	if v.Action == milter.Continue && !ms.Discarding() {
		v = ms.Data()
	}
	var ch *milter.Changes
	if v.Action == milter.Continue && !ms.Discarding() {
		v, ch = ms.EndOfMessage(m)
	}
	if ms.Discarding() {
		v = milter.Verdict{Action: milter.Discard}
	}
	switch v.Action {
	case milter.Tempfail:
		p.Log.Printf(name, "pickup: deferred by the filters (%s)", v.Reply())
		return true
	case milter.Reject:
		for _, r := range kept {
			refused = append(refused, refusal{r, v})
		}
		if p.bounce(env, refused, original()) {
			p.remove(path, name)
			return false
		}
		return true
	case milter.Discard:
		p.Log.Printf(name, "discarded")
		p.remove(path, name)
		return false
	}
	if len(refused) > 0 && !p.bounce(env, refused, original()) {
		return true
	}
	env.Rcpts = kept
	ch.Apply(env)
	if len(env.Rcpts) == 0 {
		p.Log.Printf(name, "Milter: all recipients removed: discarded")
		p.remove(path, name)
		return false
	}
	if err := p.Queue.Create(env, spool.Mark8Bit(m.Reader(), env)); err != nil {
		p.Log.Warnf(name, "pickup: cannot queue: %v", err)
		return true
	}
	p.remove(path, name)
	p.Log.Received(env.ID, displaySender(env.Sender), p.Queue.Size(env.ID), len(env.Rcpts), m.Header("Message-Id"), "", "", env.User+"@localhost")
	if p.Queued != nil {
		p.Queued(env.ID)
	}
	return false
}

// remove deletes a drop file that was dealt with, durably.
func (p *Pickup) remove(path, name string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.Log.Warnf(name, "pickup: %v", err)
		return
	}
	if err := safeio.SyncDir(p.Cfg.MaildropDir); err != nil {
		p.Log.Warnf("", "pickup: %v", err)
	}
}

// refusal is a recipient the filters refused, and their reply.
type refusal struct {
	r spool.Recipient
	v milter.Verdict
}

// bounce returns a refused submission to its sender (to the postmaster if
// it has none). It reports whether the report was queued (or was not
// wanted).
func (p *Pickup) bounce(env *spool.Envelope, rcpts []refusal, original io.Reader) bool {
	rep := dsn.Report{Kind: dsn.Failure, Hostname: p.Cfg.Hostname, ID: env.ID, Sender: env.Sender, Arrival: env.Created,
		Client: env.User + "@localhost", EnvID: env.EnvID, Ret: env.Ret, NoBodyReturn: p.Cfg.HasPrivacy("nobodyreturn"),
		Original: original}
	if dsn.IsBounce(env.Sender) {
		rep.Kind = dsn.PostmasterNotify
	}
	now := time.Now()
	for _, x := range rcpts {
		if !dsn.ShouldNotify(rep.Kind, x.r.Notify) {
			continue
		}
		rep.Rcpts = append(rep.Rcpts, dsn.RcptStatus{Addr: x.r.Addr, ORcpt: x.r.ORcpt, Status: x.v.Enhanced, Diagnostic: x.v.Reply(), LastAttempt: now})
	}
	if len(rep.Rcpts) == 0 {
		p.Log.Printf(env.ID, "rejected by the filters (%s); no report wanted", rcpts[0].v.Reply())
		return true
	}
	var b bytes.Buffer
	if err := dsn.Build(&b, rep); err != nil {
		p.Log.Warnf(env.ID, "cannot build the delivery status notification: %v", err)
		return false
	}
	benv := &spool.Envelope{Created: now, UID: -1, Priority: 30000 + int64(b.Len()), Flags: "b",
		Rcpts: []spool.Recipient{{Addr: rep.Recipient(), State: spool.Pending}}}
	if env.BodyType == "8BITMIME" {
		benv.BodyType = "8BITMIME"
	}
	if err := p.Queue.Create(benv, &b); err != nil {
		p.Log.Warnf(env.ID, "cannot queue the delivery status notification: %v", err)
		return false
	}
	p.Log.Printf(env.ID, "%s: DSN: %s", benv.ID, rcpts[0].v.Reply())
	p.Log.Received(benv.ID, "<>", p.Queue.Size(benv.ID), 1, "", "", "", "localhost")
	if p.Queued != nil {
		p.Queued(benv.ID)
	}
	return true
}
