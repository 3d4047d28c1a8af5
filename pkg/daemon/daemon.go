// Package daemon is the smtpd process: it binds the SMTP listeners,
// prepares the spool, starts the privileged local delivery part
// (privlocal) and drops privileges, then runs the SMTP servers, the pickup
// of submitted mail, the queue runner and the control socket.
//
// Life cycle: load the configuration (an error is exit 78); bind every
// listener; started as root, look up `user` (missing: exit 78), create the
// spool directories with their owners and modes, start the local delivery
// part and drop to that user; serve. Pick up drop files at start, whenever
// maildrop_dir changes and every 30 s. On SIGHUP reload the configuration,
// the DKIM keys, the SMTP transport and the alias file, keeping the old
// ones if the new ones are bad (the maps reload by themselves when they
// change). On SIGTERM or SIGINT finish the SMTP transactions in flight and
// the deliveries in progress, and exit 0. If the local delivery part dies,
// stop the same way and exit 71, so that the service manager starts both
// again.
package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/authres"
	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/mailq"
	"github.com/gosendmail/gosendmail/pkg/maps"
	"github.com/gosendmail/gosendmail/pkg/milter"
	"github.com/gosendmail/gosendmail/pkg/pickup"
	"github.com/gosendmail/gosendmail/pkg/privlocal"
	"github.com/gosendmail/gosendmail/pkg/queue"
	"github.com/gosendmail/gosendmail/pkg/smtpd"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
	"github.com/gosendmail/gosendmail/pkg/version"
)

// queueSpares is how many files of removed messages the daemon keeps for
// reuse (safeio.Pool): at a few thousand messages a second, what one
// second of removals leaves while the spares rest (safeio.Rest).
const queueSpares = 4096

// ShutdownGrace bounds how long a stop waits for messages being received.
const ShutdownGrace = 2 * time.Minute

// Daemon is one running smtpd.
type Daemon struct {
	cfgPath string
	named   bool

	mu     sync.Mutex
	cfg    *config.Config
	log    *maillog.Logger
	queue  *spool.Queue
	tables *tables
	uid    int // the uid the daemon runs as after start

	nudge  chan struct{}
	runner *queue.Runner
	priv   *privlocal.Client // the privileged local delivery part; nil when not needed
	remote *remoteSwitch
	dkim   *dkim.Tables    // nil: no signing
	signOK map[string]bool // domains whose key signed since the last reload
	// milters keeps filter connections between sessions, for the SMTP
	// listeners and pickup alike.
	milters *milter.Pool

	progUser struct { // programUser's cache
		sync.Mutex
		key, name string
		at        time.Time
	}
}

// Run starts the daemon and blocks until ctx ends or a stop signal
// arrives. It returns a sysexits code.
func Run(ctx context.Context, cfgPath string, named bool, stderr io.Writer) int {
	cfg, err := config.Load(cfgPath, named)
	if err != nil {
		fmt.Fprintf(stderr, "smtpd: %v\n", err)
		return mailerr.ExConfig
	}
	d := &Daemon{cfgPath: cfgPath, named: named, cfg: cfg, nudge: make(chan struct{}, 1), milters: milter.NewPool()}
	defer d.milters.Close()
	d.log = maillog.Open(cfg.Log, "sm-mta", true)
	fail := func(err error) int {
		fmt.Fprintf(stderr, "smtpd: %v\n", err)
		d.log.Warnf("", "%v", err)
		return mailerr.ExitCode(err)
	}

	// Listeners are bound first: ports below 1024 need root, which
	// prepare gives up.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, l := range cfg.Listen {
		ln, err := smtpd.Bind(l)
		if err != nil {
			return fail(mailerr.Wrap(mailerr.ExOSErr, err, "cannot listen"))
		}
		lns = append(lns, ln)
	}
	tlsConfig, err := loadTLS(cfg)
	if err != nil {
		return fail(err)
	}
	if err := d.prepare(); err != nil {
		return fail(err)
	}
	if d.priv != nil {
		// Last out: the runner, stopped by a later defer, may still be
		// delivering through it.
		defer d.priv.Close()
	}
	d.queue = spool.Open(cfg.QueueDir)
	// The daemon owns queue_dir: removed messages' files are reused for
	// new ones instead of allocating inodes (spool.Queue.Recycle).
	if err := d.queue.Recycle(queueSpares); err != nil {
		d.log.Warnf("", "queue %s: not recycling queue files: %v", cfg.QueueDir, err)
	}
	if n := d.queue.CleanTemp(time.Hour); n > 0 {
		d.log.Printf("", "removed %d unfinished queue files", n)
	}
	tables := newTables(cfg, d.log)
	d.tables = tables
	d.remote = &remoteSwitch{}
	d.remote.use(cfg)

	ln, err := control.Listen(cfg.ControlSocket, 0o666)
	if err != nil {
		fmt.Fprintf(stderr, "smtpd: control socket: %v\n", err)
		return mailerr.ExOSErr
	}
	defer os.Remove(cfg.ControlSocket)

	var auth smtpd.Authenticator
	if cfg.Auth.UsersFile != "" {
		auth = &smtpd.UsersFile{Path: cfg.Auth.UsersFile, Warn: func(err error) { d.log.Warnf("", "%v", err) }}
	}
	d.loadDKIM(cfg)
	d.runner = &queue.Runner{
		Sign: func(msg io.Reader) ([]byte, error) {
			d.mu.Lock()
			t := d.dkim
			d.mu.Unlock()
			return t.SignMessage(msg)
		},
		SignOnError: func() string { return d.config().DKIM.OnError },
		Config:      d.config,
		Queue:       d.queue,
		Route:       d.routeTables(tables),
		Remote:      d.remote,
		Local: &localAgent{
			agent:  &local.Agent{SpoolDir: cfg.MailSpoolDir, Hostname: cfg.Hostname},
			priv:   d.priv,
			format: func() string { return d.config().Delivery.LocalFormat },
		},
		Log: d.log,
	}
	runCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() {
		d.runner.Run(runCtx)
		close(runnerDone)
	}()
	defer func() {
		stopRunner()
		<-runnerDone
	}()
	// Served once everything its handlers use exists.
	go control.Serve(ln, d.handle)

	var servers []*smtpd.Server
	for i, l := range cfg.Listen {
		b := &smtpd.Backend{Config: d.config, Tables: tables, Queue: d.queue, Log: d.log, Listener: l, Auth: auth, Queued: d.runner.Add,
			Milters:   d.milters,
			SignCheck: d.signCheck, Inbound: inbound(cfg), Rewrite: func(w io.Writer, msg io.Reader, h string) error {
				return authres.Rewrite(w, msg, d.config().Hostname, h)
			}}
		srv, err := smtpd.New(lns[i], cfg, smtpd.Options{Backend: b, TLS: tlsConfig, GreetPause: cfg.Limits.GreetPause.D()})
		if err != nil {
			return fail(mailerr.Wrap(mailerr.ExConfig, err, "%s", displayPath(d.cfgPath, d.named)))
		}
		servers = append(servers, srv)
		d.log.Printf("", "listener %s on %s (mode %s, auth %s)", l.Name, lns[i].Addr(), l.Mode, l.Auth)
		go func() {
			if err := srv.Serve(); err != nil {
				d.log.Warnf("", "listener %s: %v", l.Name, err)
			}
		}()
	}
	lns = nil // the servers own them now

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// stopAll ends the listeners (finishing the transactions in flight)
	// and the runner.
	stopAll := func(code int) int {
		ln.Close()
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				d.log.Warnf("", "listener %s: %v", srv.Listen.Name, err)
			}
		}
		cancel()
		stopRunner()
		<-runnerDone
		d.log.Printf("", "daemon stopped")
		return code
	}
	var privDone <-chan struct{} // nil: never ready
	if d.priv != nil {
		privDone = d.priv.Done()
	}

	d.log.Printf("", "starting daemon (gosendmail %s)", version.Version)
	var lastMod, lastScan, lastTrim time.Time
	again := false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		// Scan when maildrop_dir changed, when the last pass left files
		// behind, and every 30 s in any case.
		if fi, err := os.Stat(d.config().MaildropDir); err == nil && (!fi.ModTime().Equal(lastMod) || again || time.Since(lastScan) > 30*time.Second) {
			lastMod, lastScan = fi.ModTime(), time.Now()
			again = d.pickupOnce()
		}
		select {
		case <-ctx.Done():
			d.log.Printf("", "stopping daemon: finishing the transactions in flight")
			return stopAll(mailerr.ExOK)
		case <-privDone:
			// Unprivileged, the daemon cannot start it again; stopping
			// lets the service manager start both afresh, and the
			// queue keeps the mail meanwhile.
			d.log.Warnf("", "%v: stopping the daemon so that it is started again", d.priv.Err())
			return stopAll(mailerr.ExOSErr)
		case <-hup:
			d.reload()
		case <-d.nudge:
			again = d.pickupOnce()
		case <-tick.C:
			tables.check()
			d.remote.sweep()
			if time.Since(lastTrim) > time.Minute {
				// Removed messages' bytes do not outstay a minute
				// in spare files.
				lastTrim = time.Now()
				d.queue.Trim()
			}
		}
	}
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// pickupOnce runs a pickup pass; it reports whether files were left
// (a drop file still being written is completed without the directory
// changing, so the caller looks again at the next tick).
func (d *Daemon) pickupOnce() bool {
	cfg := d.config()
	trusted, _ := maps.ReadClass(cfg.TrustedUsers)
	p := &pickup.Pickup{Cfg: cfg, Queue: d.queue, Log: d.log, Queued: d.runner.Add, Milters: d.milters,
		Trusted: func(_ int, name string) bool { return trusted.Has(name) }}
	_, left := p.Once()
	return left > 0
}

// loadDKIM reads the signing tables and keys, reporting every problem
// with its file and line; a domain whose key is broken then fails to sign
// (and its mail waits) rather than going out unsigned.
func (d *Daemon) loadDKIM(cfg *config.Config) {
	if cfg.DKIM.KeyTable == "" && cfg.DKIM.SigningTable == "" {
		d.mu.Lock()
		d.dkim = nil
		d.mu.Unlock()
		return
	}
	t, errs := dkim.LoadTables(cfg.DKIM.KeyTable, cfg.DKIM.SigningTable)
	for _, err := range errs {
		d.log.Warnf("", "DKIM: %v", err)
	}
	d.mu.Lock()
	d.dkim = t
	d.signOK = map[string]bool{}
	d.mu.Unlock()
}

// inbound runs the SPF, DKIM and DMARC checks of mail from foreign clients.
func inbound(cfg *config.Config) func(ctx context.Context, ip netip.Addr, helo, from string, msg io.Reader) (string, bool, error) {
	c := &authres.Checker{Hostname: cfg.Hostname, Resolver: dns.New(cfg.Delivery.DNSServer, 5*time.Second)}
	return func(ctx context.Context, ip netip.Addr, helo, from string, msg io.Reader) (string, bool, error) {
		res, err := c.Check(ctx, authres.Input{ClientIP: ip, Helo: helo, MailFrom: from, Message: msg})
		if err != nil {
			return "", false, err
		}
		return res.Header, res.Reject, nil
	}
}

// signCheck tells whether mail from this From: could be signed now
// (nil when no key applies or signing works).
func (d *Daemon) signCheck(from string) error {
	d.mu.Lock()
	t := d.dkim
	d.mu.Unlock()
	if t == nil || d.config().DKIM.OnError == "unsigned" {
		return nil
	}
	author, err := dkim.AuthorOf([]byte("From: " + from + "\r\n\r\n"))
	if err != nil {
		return nil
	}
	// Sign a minimal message: it fails exactly when real mail would. A
	// success is remembered per domain until the next reload, so the
	// check does not cost a second signature per message.
	_, domain, _ := strings.Cut(strings.ToLower(author), "@")
	d.mu.Lock()
	ok := d.signOK[domain]
	d.mu.Unlock()
	if ok {
		return nil
	}
	if _, err = t.Sign(strings.NewReader("From: "+from+"\r\n\r\n"), author); err != nil {
		return err
	}
	d.mu.Lock()
	if d.dkim == t {
		d.signOK[domain] = true
	}
	d.mu.Unlock()
	return nil
}

// reload re-reads the configuration and the maps. A bad file keeps what
// is in force and is logged with its file and line.
func (d *Daemon) reload() error {
	cfg, err := config.Load(d.cfgPath, d.named)
	if err != nil {
		d.log.Warnf("", "reload: %v; keeping the configuration in force", err)
		return err
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.loadDKIM(cfg)
	d.remote.use(cfg)
	if d.priv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := d.priv.Reload(ctx)
		cancel()
		if err != nil {
			d.log.Warnf("", "reload: local delivery agent: %v", err)
		}
	}
	if err := d.tables.aliases.Reload(); err != nil {
		d.log.Warnf("", "reload: %v; keeping the aliases in force", err)
		return err
	}
	d.log.Printf("", "reloaded %s", displayPath(d.cfgPath, d.named))
	return nil
}

func displayPath(p string, named bool) string {
	if _, err := os.Stat(p); err != nil && !named {
		return "built-in configuration"
	}
	return p
}

// handle answers the control socket. Anyone may ping and ask for a
// pickup pass; a reload by anyone but root and the daemon's own user is
// answered without effect (changed files are re-read anyway). A listing
// shows other users only their own messages (see list). "status" answers
// root and the daemon's own user with the daemon's resource use, a
// control.Status as JSON in Output (goroutines, open file descriptors,
// RSS and its peak, heap in use, GC count); others are refused with
// status 77. It stops the world for a moment (runtime.ReadMemStats):
// for load tests and monitoring, not for every second.
func (d *Daemon) handle(peer control.Peer, req control.Request) control.Response {
	switch req.Cmd {
	case "ping":
		return control.Response{OK: true, Output: "gosendmail " + version.Version}
	case "pickup":
		select {
		case d.nudge <- struct{}{}:
		default:
		}
		return control.Response{OK: true}
	case "reload":
		if peer.UID != 0 && peer.UID != d.uid {
			// Only root makes the daemon re-read everything; the alias
			// file and the maps are re-read by themselves when they change.
			return control.Response{OK: true, Output: "the daemon re-reads changed files by itself"}
		}
		if err := d.reload(); err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{OK: true, Output: "reloaded"}
	case "flush":
		if peer.UID != 0 && peer.UID != d.uid && d.config().HasPrivacy("restrictqrun") {
			return control.Response{Error: "You do not have permission to process the queue", Status: mailerr.ExNoPerm}
		}
		ids, err := d.selectMessages(req.Args)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		if len(req.Args) > 0 && len(ids) == 0 {
			return control.Response{OK: true, Output: "no message matches"}
		}
		n := d.runner.Flush(ids...)
		return control.Response{OK: true, Output: fmt.Sprintf("%d messages scheduled for delivery", n)}
	case mailq.CmdList:
		return d.list(peer, req.Args)
	case "status":
		if peer.UID != 0 && peer.UID != d.uid {
			return control.Response{Error: "You are not permitted to see the daemon's status", Status: mailerr.ExNoPerm}
		}
		b, err := json.Marshal(processStatus())
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{OK: true, Output: string(b)}
	}
	return control.Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
}

// processStatus measures this process for "status". Figures that cannot
// be read (no /proc) are left 0.
func processStatus() control.Status {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := control.Status{Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse, NumGC: ms.NumGC}
	if f, err := os.Open("/proc/self/fd"); err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		// Not counting the descriptor that read the directory.
		st.FDs = max(len(names)-1, 0)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			key, val, ok := strings.Cut(line, ":")
			if !ok || (key != "VmRSS" && key != "VmHWM") {
				continue
			}
			f := strings.Fields(val) // "12345 kB"
			if len(f) != 2 || f[1] != "kB" {
				continue
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			if key == "VmRSS" {
				st.RSS = kb << 10
			} else {
				st.HWM = kb << 10
			}
		}
	}
	return st
}

// list is mailq for a user who cannot read the spool: the daemon reads
// the queues asked for itself and answers with the listing that user may see
// (mailq.ServeList: root and the daemon's user everything, others their
// own messages unless mailq_all_users, nothing under restrictmailq).
// Files that could not be read are logged, not shown.
func (d *Daemon) list(peer control.Peer, args []string) control.Response {
	resp, warns := mailq.ServeList(d.config(), peer.UID, d.uid, args)
	for _, w := range warns {
		d.log.Warnf("", "mailq listing for uid %d: %v", peer.UID, w)
	}
	return resp
}

// selectMessages turns flush arguments into queue IDs: IDs stand for
// themselves, "-qIsub", "-q!Rsub", "-qSsub" select as mailq does.
func (d *Daemon) selectMessages(args []string) ([]string, error) {
	var ids, specs []string
	for _, a := range args {
		if spec, ok := strings.CutPrefix(a, "-q"); ok {
			specs = append(specs, spec)
		} else if spool.ValidID(a) {
			ids = append(ids, a)
		} else {
			return nil, fmt.Errorf("%q is not a queue ID", a)
		}
	}
	if len(specs) == 0 {
		return ids, nil
	}
	f, err := mailq.ParseFilter(specs)
	if err != nil {
		return nil, err
	}
	envs, _ := d.queue.Scan()
	for _, e := range envs {
		it := mailq.FromEnvelope(e, d.queue.Size(e.ID), false)
		if f.Match(&it) {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

// prepare creates the spool directories with the owners and modes they
// need (as `postfix set-permissions` would) and, started as root, drops to
// the configured user.
func (d *Daemon) prepare() error {
	cfg := d.cfg
	d.uid = os.Getuid()
	if d.uid != 0 {
		for _, dir := range []string{cfg.QueueDir, cfg.MaildropDir, filepath.Dir(cfg.ControlSocket)} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return mailerr.Wrap(mailerr.ExCantCreat, err, "cannot create %s", dir)
			}
		}
		return nil
	}
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return mailerr.New(mailerr.ExConfig, "%s: key \"user\": account %q does not exist (create it, or set user)", displayPath(d.cfgPath, d.named), cfg.User)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dropGID := gid
	if g, err := user.LookupGroup(cfg.DropGroup); err == nil {
		dropGID, _ = strconv.Atoi(g.Gid)
	} else if uid != 0 {
		return mailerr.New(mailerr.ExConfig, "%s: key \"drop_group\": group %q does not exist", displayPath(d.cfgPath, d.named), cfg.DropGroup)
	}
	dirs := []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{cfg.QueueDir, uid, gid, 0o700},
		{cfg.MaildropDir, uid, dropGID, 0o730},
		{filepath.Dir(cfg.ControlSocket), uid, gid, 0o755},
	}
	for _, x := range dirs {
		if err := os.MkdirAll(x.path, x.mode); err != nil {
			return mailerr.Wrap(mailerr.ExCantCreat, err, "cannot create %s", x.path)
		}
		if err := os.Chown(x.path, x.uid, x.gid); err != nil {
			return mailerr.Wrap(mailerr.ExOSErr, err, "cannot set the owner of %s", x.path)
		}
		if err := os.Chmod(x.path, x.mode); err != nil {
			return mailerr.Wrap(mailerr.ExOSErr, err, "cannot set the mode of %s", x.path)
		}
	}
	if uid == 0 {
		d.log.Warnf("", "user is root: the daemon keeps all privileges")
		return nil
	}
	// Local delivery needs root (mailboxes owned by their users, alias
	// programs run as their owner): a child keeps it, the daemon does not.
	if err := d.startLocalAgent(); err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return mailerr.Wrap(mailerr.ExOSErr, err, "setgroups")
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return mailerr.Wrap(mailerr.ExOSErr, err, "setresgid")
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return mailerr.Wrap(mailerr.ExOSErr, err, "setresuid")
	}
	d.uid = uid
	return nil
}

// startLocalAgent starts the privileged local delivery part (privlocal)
// as a child of the daemon, still root: smtpd local-agent, reading the
// same configuration.
func (d *Daemon) startLocalAgent() error {
	args := []string{"local-agent"}
	if d.named {
		args = append(args, "--config", d.cfgPath)
	}
	// The running binary, whatever has become of its path since.
	c, err := privlocal.Start("/proc/self/exe", args, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"})
	if err != nil {
		return mailerr.Wrap(mailerr.ExOSErr, err, "cannot start the local delivery agent")
	}
	d.priv = c
	d.log.Printf("", "local delivery agent started (pid %d)", c.Pid())
	return nil
}

// loadTLS reads the [tls] certificate; nil when none is configured.
func loadTLS(cfg *config.Config) (*tls.Config, error) {
	if cfg.TLS.CertFile == "" && cfg.TLS.KeyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, mailerr.Wrap(mailerr.ExConfig, err, "[tls] cert_file %s, key_file %s", cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
