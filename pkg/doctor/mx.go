package doctor

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/maps"
)

// localDomains lists the domains this host receives mail for, as the
// router sees them: local_host_names and the virtusertable's domains.
// localhost, names without a dot and address literals are left out: no
// one else looks them up. hostname is local too, but it is not listed
// unless a table names it: a host that only sends need not be an MX.
func (d *run) localDomains() []string {
	var out []string
	class, err := maps.ReadClass(d.cfg.LocalHostNames)
	if err != nil {
		d.add("domains", d.cfg.LocalHostNames, Fail, "cannot read local_host_names: "+err.Error(),
			"run doctor as root or as the daemon's user, or fix the file's permissions")
	}
	var names []string
	for w := range class {
		names = append(names, w)
	}
	slices.Sort(names)
	out = append(out, names...)

	vt, err := maps.LoadVirtusertable(d.cfg.Virtusertable)
	for _, e := range maps.Problems(err) {
		var le *maps.LineError
		if !errors.As(e, &le) {
			d.add("domains", d.cfg.Virtusertable, Fail, "cannot read the virtusertable: "+e.Error(),
				"run doctor as root or as the daemon's user, or fix the file's permissions")
		}
	}
	out = append(out, vt.Domains()...)
	return unique(out)
}

// checkMX: mail for a local domain must reach this host, so the domain's
// MX records (or, without any, its own address: the implicit MX of RFC
// 5321 section 5.1) must lead to one of this host's addresses. It returns
// the MX host names that are this host, for the SPF check.
func (d *run) checkMX(domains []string) []string {
	var ours []string
	if len(domains) == 0 {
		d.add("mx", "(local domains)", OK, "local_host_names and the virtusertable name no domain: this host receives mail for no domain but its own name", "")
		return nil
	}
	for _, dom := range domains {
		ours = append(ours, d.checkMXOne(dom)...)
	}
	return unique(ours)
}

func (d *run) checkMXOne(dom string) []string {
	notUs := "point the MX at " + d.host + ", or take " + dom + " out of local_host_names/virtusertable if another host receives its mail (this host would otherwise deliver it locally where no one reads it)"
	mxs, err := d.r.MX(d.ctx, dom)
	if err != nil {
		switch kindOf(err) {
		case dns.NXDomain:
			d.add("mx", dom, Fail, "the domain does not exist in DNS", "register it, or take it out of local_host_names/virtusertable")
			return nil
		case dns.NoData:
			return d.implicitMX(dom, notUs)
		default:
			d.add("mx", dom, Fail, "DNS did not answer for its MX: "+dnsProblem(err),
				"check the domain's name servers: senders cannot reach it while they fail")
			return nil
		}
	}
	var real []dns.MX
	for _, mx := range mxs {
		if mx.Host != "." {
			real = append(real, mx)
		}
	}
	if len(real) == 0 {
		d.add("mx", dom, Fail, "null MX (RFC 7505): the domain says it accepts no mail, yet it is local here",
			"publish MX 10 "+d.host+" instead of the null MX, or take "+dom+" out of local_host_names/virtusertable")
		return nil
	}
	slices.SortStableFunc(real, func(a, b dns.MX) int { return cmp.Compare(a.Pref, b.Pref) })

	var parts, ours []string
	bestOurs := false
	for i, mx := range real {
		name := canon(mx.Host)
		ips, err := d.r.IP(d.ctx, name, "any")
		desc := fmt.Sprintf("%d %s", mx.Pref, name)
		switch {
		case err != nil:
			desc += " (" + addrNote(err) + ")"
		case d.anyOurs(ips):
			desc += " (this host)"
			ours = append(ours, name)
			if i == 0 || mx.Pref == real[0].Pref {
				bestOurs = true
			}
		default:
			desc += " (" + joinAddrs(ips) + ")"
		}
		parts = append(parts, desc)
	}
	detail := "MX " + strings.Join(parts, ", ")
	switch {
	case len(ours) == 0:
		d.add("mx", dom, Fail, detail+": none of them is this host ("+joinAddrs(d.addrs)+")", notUs)
	case !bestOurs:
		d.add("mx", dom, Warn, detail+": this host is only a backup MX, yet the domain is local here",
			"give "+d.host+" the lowest MX preference, or take "+dom+" out of local_host_names/virtusertable")
	default:
		d.add("mx", dom, OK, detail, "")
	}
	return ours
}

// implicitMX: a domain without MX records gets its mail at its own
// address, which is fine when that address is ours.
func (d *run) implicitMX(dom, notUs string) []string {
	ips, err := d.r.IP(d.ctx, dom, "any")
	if err != nil {
		d.add("mx", dom, Fail, "no MX record and no address ("+addrNote(err)+"): mail for it cannot be delivered",
			"publish MX 10 "+d.host)
		return nil
	}
	if !d.anyOurs(ips) {
		d.add("mx", dom, Fail, "no MX record, and its own address ("+joinAddrs(ips)+") is not this host", notUs)
		return nil
	}
	d.add("mx", dom, OK, "no MX record; mail goes to the domain's own address, which is this host", "")
	return []string{dom}
}

func (d *run) anyOurs(ips []netip.Addr) bool {
	for _, ip := range ips {
		if d.isOurs(ip) {
			return true
		}
	}
	return false
}
