package doctor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns"
)

// checkDKIM runs pkg/dkim's Check (the same as `smtpd dkim check`) and
// returns its findings as results, and the signing domains (d=) it looked
// at, which the SPF and DMARC checks then cover too.
func (d *run) checkDKIM() ([]Result, []string) {
	k := d.cfg.DKIM
	if k.KeyTable == "" && k.SigningTable == "" {
		return []Result{{Check: "dkim", Subject: "[dkim]", Status: Warn,
			Detail: "no key_table or signing_table: mail leaves unsigned",
			Advice: `make a key with "smtpd dkim keygen" and set [dkim] key_table and signing_table: Gmail and Yahoo want DKIM (or aligned SPF) for DMARC`,
		}}, nil
	}
	var out []Result
	tables, errs := dkim.LoadTables(k.KeyTable, k.SigningTable)
	for _, err := range errs {
		subj := "[dkim]"
		var te *dkim.TableError
		if errors.As(err, &te) {
			subj = te.File
			if te.Line > 0 {
				subj = fmt.Sprintf("%s:%d", te.File, te.Line)
			}
		}
		detail := err.Error()
		if te != nil {
			detail = te.Msg
		}
		out = append(out, Result{Check: "dkim", Subject: subj, Status: Fail, Detail: detail,
			Advice: "fix the table line or key file; doctor must run as a user that can read the keys (root or the daemon's user)"})
	}
	var domains []string
	for _, c := range dkim.Check(d.ctx, d.r, tables) {
		subj := c.Selector + "._domainkey." + c.Domain
		if c.Domain == "" || c.Domain == "%" {
			subj = c.Key
		} else {
			domains = append(domains, c.Domain)
		}
		// Check's detail may end in its own advice; ours follows.
		detail := strings.TrimSuffix(c.Detail, ": publish the record from the key's .txt file")
		r := Result{Check: "dkim", Subject: subj, Status: Fail, Detail: detail}
		switch c.Status {
		case dkim.StatusOK:
			r.Status = OK
		case dkim.StatusMissing:
			r.Advice = "publish the TXT record from the key's .txt file (smtpd dkim keygen wrote it) at " + subj
		case dkim.StatusUnparsable:
			r.Advice = "replace the TXT record at " + subj + " with the one from the key's .txt file"
		case dkim.StatusMismatch:
			r.Advice = "publish the record made from this key (the .txt file beside it), or point the KeyTable at the key the record was made from"
		default:
			if c.Temporary {
				r.Advice = "the zone's name servers did not answer: check them, and ask again"
			} else {
				r.Advice = "fix the key named in the KeyTable; doctor must run as a user that can read it (root or the daemon's user)"
			}
		}
		out = append(out, r)
	}
	return out, unique(domains)
}

// checkSPF: for each domain mail may come from (the envelope sender's
// domain) and for each name this host calls itself (the EHLO name, checked
// for bounces; the MX host names), there must be exactly one SPF record,
// it must parse, and it must authorize every address mail leaves from.
func (d *run) checkSPF(domains, mxHosts []string) {
	for _, s := range unique(append(slices.Clone(domains), mxHosts...)) {
		d.checkSPFOne(s)
	}
}

// suggestedSPF is a record that authorizes exactly the outbound addresses.
func (d *run) suggestedSPF() string {
	if len(d.out) == 0 {
		return "v=spf1 a:" + d.host + " -all"
	}
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, ip := range d.out {
		if ip.Is4() {
			b.WriteString(" ip4:" + ip.String())
		} else {
			b.WriteString(" ip6:" + ip.String())
		}
	}
	b.WriteString(" -all")
	return b.String()
}

func isSPF(txt string) bool {
	t := strings.ToLower(txt)
	return t == "v=spf1" || strings.HasPrefix(t, "v=spf1 ")
}

func (d *run) checkSPFOne(s string) {
	txts, err := d.r.TXT(d.ctx, s)
	if err != nil && !dns.IsNotFound(err) {
		d.add("spf", s, Fail, "DNS did not answer for its TXT records: "+dnsProblem(err),
			"check the domain's name servers: receivers treat this as a temporary error and delay the mail")
		return
	}
	var recs []string
	for _, t := range txts {
		if isSPF(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		d.add("spf", s, Fail, "no SPF record",
			fmt.Sprintf(`publish TXT "%s" at %s`, d.suggestedSPF(), s))
		return
	case 1:
	default:
		d.add("spf", s, Fail, fmt.Sprintf("%d SPF records (%s): receivers take that as permerror", len(recs), quoteAll(recs)),
			"merge them into one TXT record starting with v=spf1")
		return
	}
	rec := recs[0]
	if err := spfSyntax(rec); err != nil {
		d.add("spf", s, Fail, fmt.Sprintf("%q does not parse: %v", rec, err),
			fmt.Sprintf(`fix the record, e.g. "%s"`, d.suggestedSPF()))
		return
	}
	if len(d.out) == 0 {
		d.add("spf", s, OK, fmt.Sprintf("%q parses (no outbound address to evaluate it for)", rec), "")
		return
	}

	worst := OK
	var verdicts, unauthorized []string
	var problem error
	for _, ip := range d.out {
		res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), d.host, "postmaster@"+s,
			spf.WithContext(d.ctx), spf.WithResolver(netResolver{d.r}))
		st := OK
		switch res {
		case spf.Pass:
		case spf.Neutral, spf.SoftFail:
			st = Warn
			unauthorized = append(unauthorized, ipMechanism(ip))
		case spf.PermError, spf.TempError:
			st = Fail
			if problem == nil {
				problem = err
			}
		default: // fail, none
			st = Fail
			unauthorized = append(unauthorized, ipMechanism(ip))
		}
		verdicts = append(verdicts, ip.String()+" "+string(res))
		worst = worse(worst, st)
	}
	if worst == OK {
		d.add("spf", s, OK, fmt.Sprintf("%q authorizes %s", rec, joinAddrs(d.out)), "")
		return
	}
	detail := fmt.Sprintf("%q gives %s", rec, strings.Join(verdicts, ", "))
	if problem != nil {
		detail += " (" + problem.Error() + ")"
	}
	advice := "add " + strings.Join(unauthorized, " ") + " to the record at " + s + ", before its all"
	if len(unauthorized) == 0 {
		advice = "fix the record, or the records it includes, until every address gives pass"
	}
	if d.smart != "" {
		// The smart host's own address is a guess at where it sends from.
		detail += "; these are the smart host's addresses, and it may send from others"
		advice += " (or include the smart host provider's SPF record)"
		if worst == Fail {
			worst = Warn
		}
	}
	d.add("spf", s, worst, detail, advice)
}

func ipMechanism(ip netip.Addr) string {
	if ip.Is4() {
		return "ip4:" + ip.String()
	}
	return "ip6:" + ip.String()
}

func worse(a, b Status) Status {
	rank := map[Status]int{OK: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// modifierName is RFC 7208 section 12's name = ALPHA *( ALPHA / DIGIT /
// "-" / "_" / "." ).
var modifierName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// spfSyntax checks every term of a record (RFC 7208 section 4.6: a syntax
// error anywhere is a permerror). The evaluation stops at the first
// matching mechanism and would not see a typo after it, which receivers
// whose evaluation gets further will trip on.
func spfSyntax(rec string) error {
	terms := strings.Fields(rec)[1:]
	redirects := 0
	for _, t := range terms {
		if name, value, ok := strings.Cut(t, "="); ok && modifierName.MatchString(name) {
			switch strings.ToLower(name) {
			case "redirect":
				redirects++
				if value == "" {
					return errors.New("redirect= without a domain")
				}
			case "exp":
				if value == "" {
					return errors.New("exp= without a domain")
				}
			}
			continue
		}
		m := t
		if strings.ContainsAny(m[:1], "+-~?") {
			m = m[1:]
		}
		name, arg, hasArg := strings.Cut(m, ":")
		if i := strings.IndexByte(name, '/'); i >= 0 && !hasArg {
			name = name[:i] // a/24, mx//64
		}
		switch strings.ToLower(name) {
		case "all":
			if hasArg || strings.ToLower(m) != "all" {
				return fmt.Errorf("%q: all takes no argument", t)
			}
		case "include", "exists":
			if arg == "" {
				return fmt.Errorf("%q: %s needs a domain", t, name)
			}
		case "a", "mx", "ptr":
			if hasArg && arg == "" {
				return fmt.Errorf("%q: empty domain", t)
			}
		case "ip4", "ip6":
			if !validIPArg(arg, strings.ToLower(name) == "ip4") {
				return fmt.Errorf("%q is not a valid %s address or network", t, name)
			}
		default:
			return fmt.Errorf("unknown mechanism %q", t)
		}
	}
	if redirects > 1 {
		return errors.New("more than one redirect=")
	}
	return nil
}

func validIPArg(arg string, v4 bool) bool {
	var ip netip.Addr
	if strings.Contains(arg, "/") {
		p, err := netip.ParsePrefix(arg)
		if err != nil {
			return false
		}
		ip = p.Addr()
	} else {
		a, err := netip.ParseAddr(arg)
		if err != nil {
			return false
		}
		ip = a
	}
	if v4 {
		return ip.Is4()
	}
	return ip.Is6()
}

// checkDMARC: each domain needs a DMARC record (RFC 7489) at _dmarc.DOMAIN
// or, failing that, at its organizational domain; it must parse, and
// p=none protects nothing.
func (d *run) checkDMARC(domains []string) {
	for _, dom := range domains {
		d.checkDMARCOne(dom)
	}
}

// dmarcRecords returns the DMARC records at _dmarc.dom: those whose first
// tag is v=DMARC1 (RFC 7489 section 6.6.3), and those that look like an
// attempt at one but spell the version wrong.
func (d *run) dmarcRecords(dom string) (recs, botched []string, err error) {
	txts, err := d.r.TXT(d.ctx, "_dmarc."+dom)
	if err != nil {
		if dns.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	for _, t := range txts {
		first, _, _ := strings.Cut(t, ";")
		k, v, _ := strings.Cut(first, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "v") {
			continue
		}
		switch v = strings.TrimSpace(v); {
		case v == "DMARC1":
			recs = append(recs, t)
		case strings.EqualFold(v, "DMARC1") || strings.HasPrefix(strings.ToUpper(v), "DMARC"):
			botched = append(botched, t)
		}
	}
	return recs, botched, nil
}

func (d *run) checkDMARCOne(dom string) {
	org, err := publicsuffix.EffectiveTLDPlusOne(dom)
	if err != nil {
		org = dom
	}
	covers := ""
	if org != dom {
		covers = " (it covers " + dom + " too)"
	}
	start := fmt.Sprintf(`publish TXT "v=DMARC1; p=none; rua=mailto:postmaster@%s" at _dmarc.%s%s to start, then move to p=quarantine or p=reject`, org, org, covers)
	recs, botched, err := d.dmarcRecords(dom)
	if err != nil {
		d.add("dmarc", dom, Fail, "DNS did not answer for _dmarc."+dom+": "+dnsProblem(err),
			"check the domain's name servers")
		return
	}
	where := "_dmarc." + dom
	inherited := false
	if len(recs) == 0 && len(botched) > 0 {
		d.add("dmarc", dom, Fail, fmt.Sprintf("%s: %s: the version must be written exactly v=DMARC1", where, quoteAll(botched)),
			"write the record as v=DMARC1; p=...")
		return
	}
	if len(recs) == 0 && org != dom {
		recs, botched, err = d.dmarcRecords(org)
		if err != nil {
			d.add("dmarc", dom, Fail, "no record at "+where+", and DNS did not answer for _dmarc."+org+": "+dnsProblem(err),
				"check the name servers of "+org)
			return
		}
		if len(recs) == 0 && len(botched) > 0 {
			d.add("dmarc", dom, Fail, fmt.Sprintf("_dmarc.%s: %s: the version must be written exactly v=DMARC1", org, quoteAll(botched)),
				"write the record as v=DMARC1; p=...")
			return
		}
		if len(recs) == 0 {
			where += " or _dmarc." + org
		} else {
			where, inherited = "_dmarc."+org, true
		}
	}
	switch len(recs) {
	case 0:
		d.add("dmarc", dom, Fail, "no DMARC record at "+where, start)
		return
	case 1:
	default:
		d.add("dmarc", dom, Fail, fmt.Sprintf("%d DMARC records at %s (%s): receivers ignore them all", len(recs), where, quoteAll(recs)),
			"keep exactly one")
		return
	}
	rec, err := dmarc.Parse(recs[0])
	if err != nil {
		d.add("dmarc", dom, Fail, fmt.Sprintf("%s: %q does not parse: %s", where, recs[0], strings.TrimPrefix(err.Error(), "dmarc: ")),
			"fix the record, e.g. \"v=DMARC1; p=quarantine; rua=mailto:postmaster@"+strings.TrimPrefix(where, "_dmarc.")+"\"")
		return
	}
	policy, tag := rec.Policy, "p"
	if inherited && rec.SubdomainPolicy != "" {
		policy, tag = rec.SubdomainPolicy, "sp"
	}
	detail := fmt.Sprintf("%s: %s=%s", where, tag, policy)
	if inherited {
		detail += " (inherited from the organizational domain)"
	}
	if rec.Percent != nil && *rec.Percent < 100 {
		detail += fmt.Sprintf(", pct=%d", *rec.Percent)
	}
	if policy == dmarc.PolicyNone {
		d.add("dmarc", dom, Warn, detail+": receivers are asked to do nothing with mail that fails, so it protects nothing",
			"once the aggregate reports show this host's mail passing, move to p=quarantine, then p=reject")
		return
	}
	d.add("dmarc", dom, OK, detail, "")
}
