// Package queue is the queue runner: it decides when each queued message
// is tried, routes its recipients, hands them to the local and SMTP
// transports, persists every outcome, and sends bounces and delay
// notices.
//
// A recipient's life:
//
//	Pending ──(all its targets delivered)──────────► Sent
//	   │   ──(a target failed for good: bounce)────► Failed (once all are finished)
//	   │   ──(temporary failure: reason kept)──────► Pending, retried later
//	   └── older than queue_return ─(bounce)───────► Failed
//
// Routing may expand one recipient into several targets (aliases,
// virtusertable). Each finished target is written to the envelope
// (spool.Recipient.Done) before the runner moves on, through an atomic
// rewrite of the qf file, so after a crash nothing delivered is sent
// again and nothing pending is lost; only a target in flight at the crash
// can be delivered twice.
//
// Retries back off exponentially from retry_min, doubling per attempt, up
// to retry_max. After queue_warn the sender gets one delay notice (flag
// 'w'); after queue_return the pending recipients bounce. Bounces are
// RFC 3464 reports (package dsn) queued with the null sender; a message
// with the null sender never gets one: its failures go to the postmaster.
package queue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dsn"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/route"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/gosendmail/gosendmail/pkg/transport/smtp"
)

// Remote delivers to other hosts (transport/smtp's Client).
type Remote interface {
	Deliver(ctx context.Context, req *smtp.Request) []smtp.Result
}

// Local delivers to a mailbox, a program or a file.
type Local interface {
	Deliver(ctx context.Context, t route.Target, env *spool.Envelope, open func() (io.ReadCloser, error)) error
}

// Runner runs the queue.
type Runner struct {
	Config func() *config.Config
	Queue  *spool.Queue
	Route  func() *route.Tables
	Remote Remote
	Local  Local
	Log    *maillog.Logger
	// Workers bounds the messages delivered at once.
	Workers int
	// Rescan is how often the whole queue directory is read again.
	Rescan time.Duration
	// Sign returns the DKIM-Signature fields for a message leaving for
	// foreign hosts (nil: none applies) or an error when it must be signed
	// but cannot be; nil Sign = no signing.
	Sign func(msg io.Reader) ([]byte, error)
	// SignOnError is dkim.on_error: "tempfail" keeps such mail queued,
	// "unsigned" sends it anyway.
	SignOnError func() string
	// PerDestination bounds the transactions open at once to one
	// destination (domain or relay host), as Postfix's
	// default_destination_concurrency_limit does; 0 = 10.
	PerDestination int

	mu      sync.Mutex
	due     map[string]time.Time // next attempt per message
	running map[string]bool
	kick    chan struct{}
	force   map[string]bool // flushed: try now, whatever the schedule
	dest    map[string]chan struct{}
}

// destSlot waits for a free transaction slot to a destination.
func (r *Runner) destSlot(ctx context.Context, key string) (release func(), err error) {
	n := r.PerDestination
	if n <= 0 {
		n = 10
	}
	r.mu.Lock()
	if r.dest == nil {
		r.dest = map[string]chan struct{}{}
	}
	ch, ok := r.dest[key]
	if !ok {
		ch = make(chan struct{}, n)
		r.dest[key] = ch
	}
	r.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Runner) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.due == nil {
		r.due = map[string]time.Time{}
		r.running = map[string]bool{}
		r.force = map[string]bool{}
		r.kick = make(chan struct{}, 1)
	}
}

// Add tells the runner about a new message (after SMTP or pickup).
func (r *Runner) Add(id string) {
	r.init()
	r.mu.Lock()
	r.due[id] = time.Time{}
	r.mu.Unlock()
	r.wake()
}

// Flush makes the given messages (all if none) due now.
func (r *Runner) Flush(ids ...string) int {
	r.init()
	if len(ids) == 0 {
		r.scan()
		r.mu.Lock()
		for id := range r.due {
			ids = append(ids, id)
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	for _, id := range ids {
		r.due[id] = time.Time{}
		r.force[id] = true
	}
	r.mu.Unlock()
	r.wake()
	return len(ids)
}

func (r *Runner) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// scan reads every envelope and rebuilds the schedule.
func (r *Runner) scan() {
	// Only a message known before the directory is read is gone when the
	// read misses it: one added meanwhile (Add, from SMTP or pickup) was
	// committed after the listing and must stay scheduled.
	r.mu.Lock()
	before := make(map[string]bool, len(r.due))
	for id := range r.due {
		before[id] = true
	}
	r.mu.Unlock()
	envs, errs := r.Queue.Scan()
	for _, err := range errs {
		r.Log.Warnf("", "queue: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range envs {
		seen[e.ID] = true
		if e.Hold != "" {
			delete(r.due, e.ID)
			continue
		}
		if _, known := r.due[e.ID]; !known || r.due[e.ID].After(e.NextAttempt) {
			r.due[e.ID] = e.NextAttempt
		}
	}
	for id := range r.due {
		if before[id] && !seen[id] && !r.running[id] {
			delete(r.due, id)
		}
	}
}

// Run delivers until ctx ends, then waits for deliveries in progress.
func (r *Runner) Run(ctx context.Context) {
	r.init()
	workers := r.Workers
	if workers <= 0 {
		workers = 20
	}
	rescan := r.Rescan
	if rescan <= 0 {
		rescan = 5 * time.Minute
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	r.scan()
	lastScan := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if time.Since(lastScan) > rescan {
			r.scan()
			lastScan = time.Now()
		}
		for _, id := range r.dueNow() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				defer func() { <-sem }()
				r.process(ctx, id)
				r.mu.Lock()
				delete(r.running, id)
				r.mu.Unlock()
			}(id)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-tick.C:
		}
	}
}

// dueNow picks the messages to start, oldest schedule first, and marks
// them running.
func (r *Runner) dueNow() []string {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, t := range r.due {
		if !r.running[id] && !t.After(now) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return r.due[ids[i]].Before(r.due[ids[j]]) })
	for _, id := range ids {
		r.running[id] = true
	}
	return ids
}

func (r *Runner) schedule(id string, at time.Time) {
	r.mu.Lock()
	r.due[id] = at
	delete(r.force, id)
	r.mu.Unlock()
}

func (r *Runner) forget(id string) {
	r.mu.Lock()
	delete(r.due, id)
	delete(r.force, id)
	r.mu.Unlock()
}

// Backoff is the wait after the nth failed attempt.
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// failure is a recipient's target that failed for good, for the bounce.
type failure struct {
	rcpt  int
	addr  string
	err   error
	relay string
}

// process runs one delivery attempt of one message.
func (r *Runner) process(ctx context.Context, id string) {
	claim, err := r.Queue.Claim(id)
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			r.forget(id)
		}
		return
	}
	defer claim.Release()
	env, err := r.Queue.ReadClaimed(id)
	if err != nil {
		if !errors.Is(err, spool.ErrNotFound) {
			r.Log.Warnf(id, "queue: %v", err)
		}
		r.forget(id)
		return
	}
	if env.Hold != "" {
		r.forget(id)
		return
	}
	cfg := r.Config()
	tables := r.Route()
	start := time.Now()
	open := func() (io.ReadCloser, error) { return os.Open(r.Queue.DataPath(id)) }
	size := claim.Size

	var failures, successes []failure
	lastReason := ""
	// Routing: each pending recipient's unfinished targets.
	type pend struct {
		rcpt   int
		target route.Target
	}
	var local []pend
	remote := map[string][]pend{}
	var remoteOrder []string
	// Each pending recipient is routed once per attempt; the settling
	// below uses the same targets.
	routes := map[int][]route.Target{}
	for i := range env.Rcpts {
		rc := &env.Rcpts[i]
		if rc.State != spool.Pending {
			continue
		}
		routes[i] = tables.Resolve(rc.Addr)
		for _, t := range routes[i] {
			if rc.IsDone(t.Key()) {
				continue
			}
			switch t.Kind {
			case route.Error:
				if t.Err.Temporary {
					rc.Reason = t.Err.Msg
					lastReason = t.Err.Msg
					r.logTo(env, rc.Addr, "", t.Err, start, "local")
					continue
				}
				failures = append(failures, failure{rcpt: i, addr: rc.Addr, err: t.Err})
				rc.Done = append(rc.Done, t.Key())
				r.logTo(env, rc.Addr, "", t.Err, start, "local")
			case route.Discard:
				// sendmail's discard mailer: delivered, to nowhere.
				rc.Done = append(rc.Done, t.Key())
				r.logSent(env, rc.Addr, t, start, start, "discard", "", "")
			case route.Remote:
				k := strings.Join([]string{t.Domain, t.Host, strconv.Itoa(t.Port), boolStr(t.NoMX)}, "|")
				if _, ok := remote[k]; !ok {
					remoteOrder = append(remoteOrder, k)
				}
				remote[k] = append(remote[k], pend{i, t})
			default:
				local = append(local, pend{i, t})
			}
		}
	}
	save := func() {
		if err := r.Queue.Update(env); err != nil {
			r.Log.Warnf(id, "queue: cannot record delivery state: %v", err)
		}
	}
	// saveFinished persists the state when a target was finished since the
	// last write: that, not a deferral, is what a crash must not undo.
	//
	// The write after the last delivery of an attempt is left out when it
	// finished the message and nothing else is to be written for it (no
	// report to queue): the message is then removed at once, durably
	// (skippedSave), which keeps a crash from delivering it again at the
	// cost of a directory fsync instead of a qf rewrite.
	saved := doneCount(env)
	skippedSave := false
	saveFinished := func(last bool) {
		n := doneCount(env)
		if n == saved {
			return
		}
		if last && r.finished(env, routes, failures, successes, cfg) {
			skippedSave = true
			return
		}
		save()
		saved = n
	}
	saveFinished(len(local) == 0 && len(remoteOrder) == 0)

	for li, p := range local {
		rc := &env.Rcpts[p.rcpt]
		t0 := time.Now()
		err := r.Local.Deliver(ctx, p.target, env, open)
		mailer := p.target.Kind.String()
		switch {
		case err == nil:
			rc.Done = append(rc.Done, p.target.Key())
			r.logSent(env, rc.Addr, p.target, start, t0, mailer, "", "")
			successes = append(successes, failure{rcpt: p.rcpt, addr: rc.Addr, err: mailerr.SMTP(250, "2.0.0", "delivered to mailbox")})
		case mailerr.IsTemporary(err):
			rc.Reason = errText(err)
			lastReason = rc.Reason
			r.logTo(env, rc.Addr, "", err, start, mailer)
			continue
		default:
			rc.Done = append(rc.Done, p.target.Key())
			failures = append(failures, failure{rcpt: p.rcpt, addr: rc.Addr, err: err})
			r.logTo(env, rc.Addr, "", err, start, mailer)
		}
		saveFinished(li == len(local)-1 && len(remoteOrder) == 0)
	}

	// Mail leaving for other hosts is DKIM-signed once per attempt; the
	// signature goes in front of the queued message on the wire only.
	remoteOpen, remoteSize := open, size
	var signErr error
	if len(remoteOrder) > 0 && r.Sign != nil {
		if f, err := open(); err == nil {
			sig, err := r.Sign(f)
			f.Close()
			switch {
			case err != nil && (r.SignOnError == nil || r.SignOnError() != "unsigned"):
				signErr = err
			case err != nil:
				r.Log.Warnf(id, "DKIM: %v; sending unsigned (on_error = unsigned)", err)
			case sig != nil:
				remoteSize += int64(len(sig))
				remoteOpen = func() (io.ReadCloser, error) {
					f, err := open()
					if err != nil {
						return nil, err
					}
					return struct {
						io.Reader
						io.Closer
					}{io.MultiReader(bytes.NewReader(sig), f), f}, nil
				}
			}
		}
	}

	for ki, k := range remoteOrder {
		group := remote[k]
		if signErr != nil {
			// Never unsigned: the recipients wait, with the reason in mailq.
			for _, p := range group {
				rc := &env.Rcpts[p.rcpt]
				rc.Reason = "DKIM: " + errText(signErr)
				lastReason = rc.Reason
				r.logTo(env, rc.Addr, "", signErr, start, "esmtp")
			}
			continue
		}
		t := group[0].target
		req := &smtp.Request{Domain: t.Domain, Host: t.Host, Port: t.Port, NoMX: t.NoMX, Sender: env.Sender,
			Size: remoteSize, Body: remoteOpen, EightBit: env.BodyType == "8BITMIME"}
		for _, p := range group {
			req.Rcpts = append(req.Rcpts, p.target.Addr)
		}
		release, err := r.destSlot(ctx, k)
		if err != nil {
			break // stopping: the rest stays pending
		}
		t0 := time.Now()
		results := r.Remote.Deliver(ctx, req)
		release()
		for j, res := range results {
			p := group[j]
			rc := &env.Rcpts[p.rcpt]
			switch {
			case res.Err == nil:
				rc.Done = append(rc.Done, p.target.Key())
				r.logSent(env, rc.Addr, p.target, start, t0, "esmtp", res.Relay, res.Reply)
				successes = append(successes, failure{rcpt: p.rcpt, addr: p.target.Addr, err: mailerr.SMTP(250, "2.0.0", "%s", res.Reply), relay: res.Relay})
			case mailerr.IsTemporary(res.Err):
				rc.Reason = errText(res.Err)
				lastReason = rc.Reason
				r.logTo(env, rc.Addr, res.Relay, res.Err, start, "esmtp")
			default:
				rc.Done = append(rc.Done, p.target.Key())
				failures = append(failures, failure{rcpt: p.rcpt, addr: p.target.Addr, err: res.Err, relay: res.Relay})
				r.logTo(env, rc.Addr, res.Relay, res.Err, start, "esmtp")
			}
		}
		saveFinished(ki == len(remoteOrder)-1)
	}

	// Settle recipients whose targets are all finished.
	for i := range env.Rcpts {
		rc := &env.Rcpts[i]
		if rc.State != spool.Pending {
			continue
		}
		allDone := true
		for _, t := range routes[i] {
			if !rc.IsDone(t.Key()) {
				allDone = false
			}
		}
		if allDone {
			rc.State = spool.Sent
			for _, f := range failures {
				if f.rcpt == i {
					rc.State = spool.Failed
					rc.Reason = errText(f.err)
				}
			}
		}
	}

	now := time.Now()
	age := now.Sub(env.Created)
	pending := env.Pending()
	if len(pending) > 0 && age > cfg.Delivery.QueueReturn.D() {
		for i := range env.Rcpts {
			rc := &env.Rcpts[i]
			if rc.State == spool.Pending {
				reason := rc.Reason
				if reason == "" {
					reason = "Deferred"
				}
				e := mailerr.SMTP(554, "5.4.7", "Message could not be delivered for %s: %s", dsnAge(cfg.Delivery.QueueReturn.D()), reason)
				failures = append(failures, failure{rcpt: i, addr: rc.Addr, err: e})
				rc.State = spool.Failed
				rc.Reason = e.Msg
				r.logTo(env, rc.Addr, "", e, start, "local")
			}
		}
		pending = nil
	}
	if len(failures) > 0 {
		r.bounce(env, failures, dsn.Failure)
	}
	// Success notices only for NOTIFY=SUCCESS, and never with the privacy
	// option noreceipts (ShouldNotify checks NOTIFY).
	if len(successes) > 0 && !cfg.HasPrivacy("noreceipts") {
		r.bounce(env, successes, dsn.Success)
	}
	if len(pending) > 0 && age > cfg.Delivery.QueueWarn.D() && !env.HasFlag('w') {
		var delayed []failure
		for i, rc := range env.Rcpts {
			if rc.State == spool.Pending {
				delayed = append(delayed, failure{rcpt: i, addr: rc.Addr, err: mailerr.SMTP(451, "4.4.1", "%s", rc.Reason)})
			}
		}
		r.bounce(env, delayed, dsn.Delay)
		env.SetFlag('w')
	}

	if len(pending) == 0 {
		if err := r.Queue.RemoveClaimed(id, claim, skippedSave); err != nil {
			r.Log.Warnf(id, "queue: %v", err)
		}
		r.forget(id)
		return
	}
	env.Attempts++
	env.LastAttempt = now
	env.NextAttempt = now.Add(Backoff(env.Attempts, cfg.Delivery.RetryMin.D(), cfg.Delivery.RetryMax.D()))
	if lastReason != "" {
		env.Status = "Deferred: " + lastReason
	}
	save()
	r.schedule(id, env.NextAttempt)
}

// finished reports whether an attempt leaves nothing of the message to
// do or to report: every target of every pending recipient finished, none
// failed, and no success notice asked for.
func (r *Runner) finished(env *spool.Envelope, routes map[int][]route.Target, failures, successes []failure, cfg *config.Config) bool {
	if len(failures) > 0 {
		return false
	}
	for i := range env.Rcpts {
		rc := &env.Rcpts[i]
		if rc.State != spool.Pending {
			continue
		}
		for _, t := range routes[i] {
			if !rc.IsDone(t.Key()) {
				return false
			}
		}
	}
	if cfg.HasPrivacy("noreceipts") {
		return true
	}
	for _, s := range successes {
		if dsn.ShouldNotify(dsn.Success, env.Rcpts[s.rcpt].Notify) {
			return false
		}
	}
	return true
}

// doneCount is the number of finished targets in the envelope.
func doneCount(env *spool.Envelope) int {
	n := 0
	for _, r := range env.Rcpts {
		n += len(r.Done)
	}
	return n
}

// diagnostic is the reply as a report shows it: "550 5.1.1 text", the
// remote server's words when it gave them.
func diagnostic(err error) string {
	text := errText(err)
	if len(text) >= 3 && text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' {
		return text
	}
	code, enh := mailerr.SMTPCode(err)
	return strconv.Itoa(code) + " " + enh + " " + text
}

func errText(err error) string {
	var me *mailerr.Error
	if errors.As(err, &me) {
		return me.Msg
	}
	return err.Error()
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func dsnAge(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	return d.String()
}

// logSent writes the "to=" line of a delivery.
func (r *Runner) logSent(env *spool.Envelope, rcpt string, t route.Target, start, t0 time.Time, mailer, relay, reply string) {
	stat := "Sent"
	if reply != "" {
		stat = "Sent (" + reply + ")"
	}
	r.Log.Delivered(env.ID, maillog.Delivery{To: angle(rcpt), Delay: time.Since(env.Created), Xdelay: time.Since(t0),
		Mailer: mailer, Priority: env.Priority, Relay: relay, DSN: "2.0.0", Stat: stat})
}

// logTo writes the "to=" line of a failure or deferral.
func (r *Runner) logTo(env *spool.Envelope, rcpt, relay string, err error, start time.Time, mailer string) {
	_, enh := mailerr.SMTPCode(err)
	stat := errText(err)
	if mailerr.IsTemporary(err) {
		stat = "Deferred: " + stat
	}
	r.Log.Delivered(env.ID, maillog.Delivery{To: angle(rcpt), Delay: time.Since(env.Created), Xdelay: time.Since(start),
		Mailer: mailer, Priority: env.Priority, Relay: relay, DSN: enh, Stat: stat})
}

func angle(a string) string {
	if strings.HasPrefix(a, "<") {
		return a
	}
	return "<" + a + ">"
}

// bounce queues a report about failures (or delays) to the sender, or to
// the postmaster when the message is itself a bounce.
func (r *Runner) bounce(env *spool.Envelope, fs []failure, kind dsn.Kind) {
	cfg := r.Config()
	rep := dsn.Report{Kind: kind, Hostname: cfg.Hostname, ID: env.ID, Sender: env.Sender, Arrival: env.Created,
		Client: env.Client, EnvID: env.EnvID, Ret: env.Ret, NoBodyReturn: cfg.HasPrivacy("nobodyreturn"),
		WarnAfter: cfg.Delivery.QueueWarn.D(), ReturnAfter: cfg.Delivery.QueueReturn.D()}
	if rep.Client == "" && env.User != "" {
		rep.Client = env.User + "@localhost"
	}
	if dsn.IsBounce(env.Sender) {
		if kind != dsn.Failure {
			return
		}
		if env.HasFlag('b') {
			// A report of ours that failed: a double bounce. Reporting it
			// again could loop for ever; the log keeps it.
			r.Log.Printf(env.ID, "double bounce discarded: %s", errText(fs[0].err))
			return
		}
		rep.Kind = dsn.PostmasterNotify
	}
	for _, f := range fs {
		rc := env.Rcpts[f.rcpt]
		if !dsn.ShouldNotify(rep.Kind, rc.Notify) {
			continue
		}
		st := dsn.RcptStatus{Addr: f.addr, ORcpt: rc.ORcpt, Diagnostic: diagnostic(f.err), LastAttempt: time.Now()}
		if _, enh := mailerr.SMTPCode(f.err); enh != "" {
			st.Status = enh
		}
		if f.relay != "" {
			st.RemoteMTA = strings.Fields(f.relay)[0]
		}
		if kind == dsn.Delay {
			st.WillRetryUntil = env.Created.Add(cfg.Delivery.QueueReturn.D())
		}
		rep.Rcpts = append(rep.Rcpts, st)
	}
	if len(rep.Rcpts) == 0 {
		return
	}
	df, err := os.Open(r.Queue.DataPath(env.ID))
	if err == nil {
		defer df.Close()
		rep.Original = df
	}
	var b bytes.Buffer
	if err := dsn.Build(&b, rep); err != nil {
		r.Log.Warnf(env.ID, "cannot build the delivery status notification: %v", err)
		return
	}
	benv := &spool.Envelope{Created: time.Now(), UID: -1, Sender: "", Priority: 30000 + int64(b.Len()), Flags: "b",
		Rcpts: []spool.Recipient{{Addr: rep.Recipient(), State: spool.Pending}}}
	if env.BodyType == "8BITMIME" {
		benv.BodyType = "8BITMIME"
	}
	size, err := r.Queue.CreateSize(benv, &b)
	if err != nil {
		r.Log.Warnf(env.ID, "cannot queue the delivery status notification: %v", err)
		return
	}
	what := "DSN"
	switch kind {
	case dsn.Delay:
		what = "DSN: Warning"
	case dsn.Success:
		what = "DSN: Return receipt"
	}
	r.Log.Printf(env.ID, "%s: %s: %s", benv.ID, what, errText(fs[0].err))
	r.Log.Received(benv.ID, "<>", size, 1, "", "", "", "localhost")
	r.Add(benv.ID)
}
