package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/route"
)

// ptrInfo is what reverse DNS says about one address.
type ptrInfo struct {
	names     []string // the PTR names, canonical
	confirmed []string // those whose A/AAAA records include the address
	err       error    // the PTR lookup's error
}

// good says whether the address has a forward-confirmed PTR naming host.
func (p *ptrInfo) good(host string) bool {
	return p.err == nil && slices.Contains(p.confirmed, host)
}

// ptr looks up ip's PTR names and confirms each with a forward lookup
// (FCrDNS, what receivers such as Gmail require), once per address.
func (d *run) ptr(ip netip.Addr) *ptrInfo {
	if p := d.ptrs[ip]; p != nil {
		return p
	}
	p := &ptrInfo{}
	d.ptrs[ip] = p
	names, err := d.r.PTR(d.ctx, ip)
	if err != nil {
		p.err = err
		return p
	}
	family := "inet"
	if ip.Is6() {
		family = "inet6"
	}
	for _, n := range names {
		n = canon(n)
		if slices.Contains(p.names, n) {
			continue
		}
		p.names = append(p.names, n)
		ips, err := d.r.IP(d.ctx, n, family)
		if err == nil && slices.Contains(ips, ip) {
			p.confirmed = append(p.confirmed, n)
		}
	}
	return p
}

// checkOutbound checks what receivers see of a connection from this host:
// each outbound address's PTR, whether the EHLO name matches it, and
// whether IPv6 is used without reverse DNS. With a smart host, receivers
// see the smart host instead, and only its addresses are gathered (for
// the SPF check).
func (d *run) checkOutbound() {
	if sh := d.cfg.Delivery.SmartHost; sh != "" {
		d.smartHost(sh)
		return
	}
	for _, ip := range d.out {
		d.checkPTR(ip)
	}
	for _, ip := range d.out {
		d.checkEHLO(ip)
	}
	d.checkIPv6()
}

func (d *run) checkPTR(ip netip.Addr) {
	subj := ip.String()
	p := d.ptr(ip)
	v6 := ""
	if ip.Is6() {
		v6 = "; Gmail refuses mail over IPv6 from an address without one"
	}
	if p.err != nil {
		switch kindOf(p.err) {
		case dns.NXDomain, dns.NoData:
			d.add("ptr", subj, Fail, "no PTR record",
				"have whoever runs the address (the hosting provider's panel, or the ISP) set its PTR to "+d.host+v6)
		default:
			d.add("ptr", subj, Fail, "DNS did not answer for the PTR: "+dnsProblem(p.err),
				"the reverse zone's name servers do not answer; receivers see the same, so have the address's provider fix them")
		}
		return
	}
	switch {
	case len(p.confirmed) == 0:
		advice := fmt.Sprintf("publish %s %s for %s", familyName(ip), subj, p.names[0])
		if p.names[0] != d.host {
			advice += ", or have the PTR changed to " + d.host
		}
		d.add("ptr", subj, Fail, fmt.Sprintf("PTR %s does not resolve back to %s (no forward-confirmed reverse DNS)", strings.Join(p.names, ", "), subj), advice)
	case len(p.names) > 1:
		d.add("ptr", subj, Warn, fmt.Sprintf("%d PTR records (%s): receivers pick one at random", len(p.names), strings.Join(p.names, ", ")),
			"keep exactly one PTR, naming "+d.host)
	default:
		d.add("ptr", subj, OK, p.names[0]+", which resolves back to it", "")
	}
}

// checkEHLO: the EHLO name is hostname; receivers compare it with the
// PTR of the connecting address.
func (d *run) checkEHLO(ip netip.Addr) {
	p := d.ptr(ip)
	if p.err != nil || len(p.names) == 0 {
		return // the ptr check already failed
	}
	subj := ip.String()
	if slices.Contains(p.names, d.host) {
		d.add("ehlo", subj, OK, "EHLO "+d.host+" matches the PTR", "")
		return
	}
	d.add("ehlo", subj, Warn, fmt.Sprintf("EHLO says %s but the PTR says %s", d.host, strings.Join(p.names, ", ")),
		fmt.Sprintf(`set hostname = "%s" in the configuration, or have the PTR changed to %s`, p.names[0], d.host))
}

// checkIPv6: with client_family any (the default) mail leaves over IPv6
// whenever the receiver has an AAAA, and receivers are stricter there:
// an IPv6 address without a matching PTR loses mail to Gmail.
func (d *run) checkIPv6() {
	fam := d.cfg.Delivery.ClientFamily
	var v6, all6 []netip.Addr
	for _, ip := range d.addrs {
		if ip.Is6() {
			all6 = append(all6, ip)
		}
	}
	for _, ip := range d.out {
		if ip.Is6() {
			v6 = append(v6, ip)
		}
	}
	subj := "client_family = " + fam
	switch {
	case fam == "inet":
		detail := "mail leaves over IPv4 only"
		if len(all6) > 0 {
			detail += " (" + joinAddrs(all6) + " not used for sending)"
		}
		d.add("ipv6", subj, OK, detail, "")
		return
	case len(v6) == 0 && fam == "inet6":
		d.add("ipv6", subj, Fail, "mail must leave over IPv6 but this host has no public IPv6 address",
			`set [delivery] client_family = "any" (or "inet")`)
		return
	case len(v6) == 0:
		d.add("ipv6", subj, OK, "no public IPv6 address: mail leaves over IPv4", "")
		return
	}
	var bad []string
	for _, ip := range v6 {
		p := d.ptr(ip)
		switch {
		case p.good(d.host):
		case p.err != nil && dns.IsNotFound(p.err):
			bad = append(bad, ip.String()+" has no PTR")
		case p.err != nil:
			bad = append(bad, ip.String()+"'s PTR cannot be looked up")
		case len(p.confirmed) == 0:
			bad = append(bad, ip.String()+"'s PTR "+strings.Join(p.names, ", ")+" does not resolve back to it")
		default:
			bad = append(bad, ip.String()+"'s PTR names "+strings.Join(p.names, ", ")+", not "+d.host)
		}
	}
	if len(bad) == 0 {
		d.add("ipv6", subj, OK, "outbound IPv6 is on and "+joinAddrs(v6)+" has a PTR naming "+d.host, "")
		return
	}
	advice := "publish a PTR naming " + d.host + " for each IPv6 address (and an AAAA for " + d.host + ")"
	if fam != "inet6" {
		advice += `, or set [delivery] client_family = "inet" until then: Gmail refuses IPv6 mail from an address without a matching PTR`
	}
	d.add("ipv6", subj, Warn, "outbound IPv6 is on but "+strings.Join(bad, "; "), advice)
}

// smartHost: mail leaves through a relay, so receivers see the relay's
// addresses and name, not ours. Its addresses become the ones SPF must
// authorize.
func (d *run) smartHost(sh string) {
	host, _, noMX, err := route.ParseHost(sh)
	if err != nil {
		d.add("relay", sh, Fail, "smart_host cannot be read: "+err.Error(), `write [delivery] smart_host as "host", "[host]" or "host:port"`)
		return
	}
	d.smart = host
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		names := []string{host}
		if !noMX {
			if mxs, err := d.r.MX(d.ctx, host); err == nil {
				names = names[:0]
				for _, mx := range mxs {
					if mx.Host != "." {
						names = append(names, mx.Host)
					}
				}
			}
		}
		var lastErr error
		for _, n := range names {
			got, err := d.r.IP(d.ctx, n, d.cfg.Delivery.ClientFamily)
			if err != nil {
				lastErr = err
			}
			for _, ip := range got {
				ips = appendNew(ips, ip.Unmap())
			}
		}
		if len(ips) == 0 {
			detail := "the smart host has no address"
			if lastErr != nil {
				detail += ": " + dnsProblem(lastErr)
			}
			d.add("relay", sh, Fail, detail, "fix [delivery] smart_host, or the smart host's DNS records")
			d.out = nil
			return
		}
	}
	d.out = ips
	d.add("relay", sh, OK, "mail leaves through the smart host ("+joinAddrs(ips)+"), so receivers see its PTR and EHLO, not this host's; those checks are skipped", "")
}
