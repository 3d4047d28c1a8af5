package daemon

import (
	"net/netip"
	"os/user"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/maps"
	"github.com/gosendmail/gosendmail/pkg/smtpd"
)

// tables holds the /etc/mail maps the sessions consult, each reloaded by
// itself when its file changes (the daemon calls check every second).
type tables struct {
	hostname string
	local    *maps.Watched[maps.Class]
	relay    *maps.Watched[maps.Class]
	virtual  *maps.Watched[*maps.Virtusertable]
	access   *maps.Watched[*maps.Access]
	mailer   *maps.Watched[*maps.Mailertable]
	aliases  *maps.Watched[*aliases.Map]
}

var _ smtpd.Tables = (*tables)(nil)

func newTables(cfg *config.Config, log *maillog.Logger) *tables {
	opt := maps.WatchOptions{
		Interval: -1, // the daemon's loop calls check
		OnError:  func(err error) { log.Warnf("", "%v", err) },
		OnReload: func(path string) { log.Printf("", "reloaded %s", path) },
	}
	return &tables{
		hostname: strings.ToLower(cfg.Hostname),
		local:    maps.WatchClass(cfg.LocalHostNames, opt),
		relay:    maps.WatchClass(cfg.RelayDomains, opt),
		virtual:  maps.WatchVirtusertable(cfg.Virtusertable, opt),
		access:   maps.WatchAccess(cfg.Access, opt),
		mailer:   maps.WatchMailertable(cfg.Mailertable, opt),
		aliases:  aliases.Watch(cfg.Aliases, opt),
	}
}

func (t *tables) check() {
	t.local.Check()
	t.relay.Check()
	t.virtual.Check()
	t.access.Check()
	t.mailer.Check()
	t.aliases.Check()
}

func (t *tables) LocalDomain(domain string) bool {
	return domain == t.hostname || domain == "localhost" || maps.DomainIn(t.local.Get(), domain, false)
}

func (t *tables) RelayDomain(domain string) bool {
	return maps.DomainIn(t.relay.Get(), domain, true) || t.access.Get().RelayTo(domain)
}

func answer(a maps.Action, ok bool) smtpd.Answer {
	if !ok {
		return smtpd.Answer{}
	}
	switch a.Kind {
	case maps.ActionOK:
		return smtpd.Answer{Verdict: smtpd.OK}
	case maps.ActionRelay:
		return smtpd.Answer{Verdict: smtpd.Relay}
	case maps.ActionDiscard:
		return smtpd.Answer{Verdict: smtpd.Discard}
	case maps.ActionReject, maps.ActionError:
		return smtpd.Answer{Verdict: smtpd.Reject, Err: mailerr.SMTP(a.Code, a.Enhanced, "%s", a.Text)}
	}
	return smtpd.Answer{}
}

func (t *tables) Connect(ip netip.Addr) smtpd.Answer {
	acc := t.access.Get()
	if acc.RelayClient(ip, "") {
		return smtpd.Answer{Verdict: smtpd.Relay}
	}
	return answer(acc.Connect(ip, ""))
}

func (t *tables) From(addr string) smtpd.Answer {
	a := answer(t.access.Get().From(addr))
	if a.Verdict == smtpd.Relay {
		// A sender address is the client's to choose: it never grants
		// relaying here (sendmail's From: RELAY would).
		a.Verdict = smtpd.OK
	}
	return a
}

func (t *tables) To(addr string, local bool) smtpd.Answer {
	if local {
		return answer(t.access.Get().ToLocal(addr))
	}
	return answer(t.access.Get().To(addr))
}

func (t *tables) Virtual(addr string) (string, bool, *mailerr.Error) {
	r, ok := t.virtual.Get().Lookup(addr)
	if !ok {
		return "", false, nil
	}
	if r.Error != nil {
		return "", true, mailerr.SMTP(r.Error.Code, r.Error.Enhanced, "%s", r.Error.Text)
	}
	return r.Target, true, nil
}

// LocalUser: an alias, or an account in the passwd database.
func (t *tables) LocalUser(name string) bool {
	if _, ok := t.aliases.Get().Lookup(name); ok {
		return true
	}
	_, err := user.Lookup(name)
	return err == nil
}
