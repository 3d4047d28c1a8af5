package smtpd

import (
	"net/netip"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/route"
)

// Verdict is what a table says about a client, a sender or a recipient.
type Verdict int

// Verdicts, as sendmail's access map values.
const (
	None    Verdict = iota // no entry: the default rules apply
	OK                     // accept (skip further checks of this kind)
	Relay                  // accept and allow relaying
	Reject                 // refuse with the table's reply
	Discard                // accept and throw away
)

// Answer is a table's verdict with its reply for Reject.
type Answer struct {
	Verdict Verdict
	Err     *mailerr.Error // the reply for Reject (nil: the default text)
}

// Tables is what a session asks about clients and addresses: the
// /etc/mail maps, aliases and the passwd database, held by the daemon and
// reloaded under it. Every method is safe for concurrent use.
type Tables interface {
	// LocalDomain: local-host-names or the hostname.
	LocalDomain(domain string) bool
	// RelayDomain: relay-domains, or an access To: RELAY for the domain.
	RelayDomain(domain string) bool
	// Connect, From and To consult the access map; local says the
	// recipient's domain is local (its "user@" entries apply).
	Connect(ip netip.Addr) Answer
	From(addr string) Answer
	To(addr string, local bool) Answer
	// Virtual looks an address of a local domain up in virtusertable:
	// found reports an entry; err is set for error: entries.
	Virtual(addr string) (target string, found bool, err *mailerr.Error)
	// LocalUser reports whether a local name is an alias or an account.
	LocalUser(name string) bool
}

// relayDenied is sendmail's text, which fail2ban's sendmail-reject filter
// and operators know.
func relayDenied(addr string) *mailerr.Error {
	return mailerr.SMTP(550, "5.7.1", "<%s>... Relaying denied. Proper authentication required.", addr)
}

func userUnknown(addr string) *mailerr.Error {
	return mailerr.SMTP(550, "5.1.1", "<%s>... User unknown", addr)
}

// checkRcpt decides a recipient. relayOK says the client may relay
// (relay_from, AUTH, access Connect: RELAY). It returns nil to accept.
//
// The order: the access map's To: entry; then, for a local domain (or no
// domain at all, RFC 5321's bare "postmaster"), virtusertable and then the
// local part as an alias or account, with "+detail" stripped; then
// relaying: allowed to relay_from and authenticated clients, and to
// anyone for relay-domains; everything else is refused with sendmail's
// "Relaying denied". '%', '!' and quoted '@' are ordinary local-part
// characters here: they never route anywhere, so they never relay.
func checkRcpt(t Tables, addr string, relayOK bool) *mailerr.Error {
	local, domain := route.Split(addr)
	isLocal := domain == "" || (!strings.HasPrefix(domain, "[") && t.LocalDomain(domain))
	switch a := t.To(addr, isLocal); a.Verdict {
	case Reject:
		if a.Err != nil {
			return a.Err
		}
		return mailerr.SMTP(550, "5.7.1", "<%s>... Access denied", addr)
	case Relay:
		relayOK = true
	}
	if isLocal {
		if domain != "" {
			if _, found, err := t.Virtual(addr); err != nil {
				// sendmail's form: the address, then the table's text.
				return mailerr.SMTP(err.Code, err.Enhanced, "<%s>... %s", addr, err.Msg)
			} else if found {
				return nil
			}
		}
		name := strings.ToLower(route.Unquote(local))
		if t.LocalUser(name) {
			return nil
		}
		if base, _, ok := strings.Cut(name, "+"); ok && base != "" && t.LocalUser(base) {
			return nil
		}
		return userUnknown(addr)
	}
	if relayOK || t.RelayDomain(domain) {
		return nil
	}
	return relayDenied(addr)
}
