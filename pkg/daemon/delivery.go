package daemon

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maps"
	"github.com/gosendmail/gosendmail/pkg/privlocal"
	"github.com/gosendmail/gosendmail/pkg/route"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
	"github.com/gosendmail/gosendmail/pkg/transport/smtp"
)

// routeTables builds the router's view of the daemon's current maps.
func (d *Daemon) routeTables(t *tables) func() *route.Tables {
	return func() *route.Tables {
		cfg := d.config()
		return &route.Tables{
			Hostname:    cfg.Hostname,
			LocalDomain: t.LocalDomain,
			Virtual:     func(a string) (maps.Result, bool) { return t.virtual.Get().Lookup(a) },
			Aliases:     t.aliases.Get,
			Include:     route.ReadInclude,
			UserExists:  route.UserExists,
			ProgramUser: d.programUser(cfg),
			Mailertable: func(dom string) (maps.Route, bool) { return t.mailer.Get().Lookup(dom) },
			SmartHost:   cfg.Delivery.SmartHost,
		}
	}
}

// programUser is route.ProgramUser, looked up at most once a second: it
// stats the aliases file and may read the passwd database, and the router
// asks for it once per message.
func (d *Daemon) programUser(cfg *config.Config) string {
	d.progUser.Lock()
	defer d.progUser.Unlock()
	key := cfg.Aliases + "\x00" + cfg.Delivery.DefaultUser
	if key != d.progUser.key || time.Since(d.progUser.at) > time.Second {
		d.progUser.key, d.progUser.at = key, time.Now()
		d.progUser.name = route.ProgramUser(cfg.Aliases, cfg.Delivery.DefaultUser)
	}
	return d.progUser.name
}

// remoteSwitch is the runner's SMTP transport, replaced on reload (the
// DNS server, remote port, client family and hostname are read when a
// transport is built).
type remoteSwitch struct{ cur atomic.Pointer[smtp.Client] }

func (r *remoteSwitch) Deliver(ctx context.Context, req *smtp.Request) []smtp.Result {
	return r.cur.Load().Deliver(ctx, req)
}

// sweep closes the transport's sessions kept past their idle time.
func (r *remoteSwitch) sweep() { r.cur.Load().Sweep() }

// use puts a transport built for cfg in force; the old one's kept
// sessions are closed.
func (r *remoteSwitch) use(cfg *config.Config) {
	if old := r.cur.Swap(remoteClient(cfg)); old != nil {
		old.CloseIdle()
	}
}

// remoteClient is the SMTP transport for the configuration.
func remoteClient(cfg *config.Config) *smtp.Client {
	r := dns.New(cfg.Delivery.DNSServer, 5*time.Second)
	return &smtp.Client{
		Hostname: cfg.Hostname,
		Port:     cfg.Delivery.RemotePort,
		Family:   cfg.Delivery.ClientFamily,
		DNS:      r,
		IP:       r.IP,
		Self:     dns.MatchNames(cfg.Hostname),
	}
}

// localAgent adapts transport/local to the runner.
type localAgent struct {
	agent  *local.Agent
	priv   *privlocal.Client // when set, deliveries go through it
	format func() string     // mbox or maildir
}

func (l *localAgent) Deliver(ctx context.Context, t route.Target, env *spool.Envelope, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return mailerr.SMTP(451, "4.3.0", "cannot read queued message: %v", err)
	}
	defer rc.Close()
	f, ok := rc.(*os.File)
	if !ok {
		return mailerr.SMTP(451, "4.3.0", "queued message is not a file")
	}
	fi, err := f.Stat()
	if err != nil {
		return mailerr.SMTP(451, "4.3.0", "cannot read queued message: %v", err)
	}
	req := local.Request{QueueID: env.ID, Sender: env.Sender, Recipient: t.Addr, User: t.User, Body: f, Size: fi.Size()}
	switch t.Kind {
	case route.Pipe:
		req.Target = local.Target{Kind: local.Pipe, Command: t.Command}
	case route.File:
		req.Target = local.Target{Kind: local.File, Path: t.Path}
	default:
		if l.format() == "maildir" {
			req.Target = local.Target{Kind: local.Maildir}
		} else {
			req.Target = local.Target{Kind: local.Mbox}
		}
	}
	if l.priv != nil {
		return l.priv.Deliver(ctx, req, f)
	}
	return l.agent.Deliver(ctx, req)
}
