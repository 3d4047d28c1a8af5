package doctor

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/dns"
)

// cgnat is RFC 6598's shared address space: not private in Go's sense,
// but no more reachable from the Internet than 10/8.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// public says whether ip can be seen from the Internet: global unicast,
// not RFC 1918 or RFC 4193 (ULA) private, not carrier-grade NAT.
func public(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}

// findAddrs decides which addresses are this host's, in this order:
//
//  1. the --addr flags (Options.Addrs), taken as given;
//  2. the public addresses of the machine's interfaces (not loopback,
//     link-local, RFC 1918 / ULA private or CGNAT): every one of them may be
//     the source of a connection, so each needs its PTR;
//  3. with no public address on an interface, the host is taken to be
//     behind NAT and the A/AAAA records of hostname stand for it;
//  4. failing that, the private addresses of the interfaces, so that a lab
//     with its own DNS can still be checked (a WARN says so).
//
// d.out is then the addresses mail leaves from: those of the family
// [delivery] client_family allows.
func (d *run) findAddrs(hostIPs []netip.Addr, hostErr error) {
	var private []netip.Addr
	switch {
	case len(d.opt.Addrs) > 0:
		for _, ip := range d.opt.Addrs {
			d.addrs = appendNew(d.addrs, ip.Unmap())
		}
		d.source = "given with --addr"
	default:
		ifaddrs, err := d.opt.InterfaceAddrs()
		if err != nil {
			d.add("addr", "this host", Warn, "cannot list the interfaces' addresses: "+err.Error(),
				"give this host's public addresses with --addr")
		}
		for _, a := range ifaddrs {
			var ip netip.Addr
			switch a := a.(type) {
			case *net.IPNet:
				ip, _ = netip.AddrFromSlice(a.IP)
			case *net.IPAddr:
				ip, _ = netip.AddrFromSlice(a.IP)
			default:
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					ip = p.Addr()
				}
			}
			ip = ip.Unmap().WithZone("")
			switch {
			case public(ip):
				d.addrs = appendNew(d.addrs, ip)
			case ip.IsGlobalUnicast():
				private = appendNew(private, ip)
			}
		}
		d.source = "the public addresses of the interfaces"
		if len(d.addrs) == 0 && hostErr == nil && len(hostIPs) > 0 {
			hostIPs = slices.Clone(hostIPs)
			slices.SortStableFunc(hostIPs, func(a, b netip.Addr) int { return a.BitLen() - b.BitLen() })
			for _, ip := range hostIPs {
				d.addrs = appendNew(d.addrs, ip.Unmap())
			}
			d.source = fmt.Sprintf("the A/AAAA records of %s: no interface has a public address, so this host is taken to be behind NAT", d.host)
		}
	}

	switch {
	case len(d.addrs) > 0:
		d.add("addr", "this host", OK, joinAddrs(d.addrs)+" ("+d.source+")", "")
	case len(private) > 0:
		d.addrs = private
		d.source = "private addresses of the interfaces"
		d.add("addr", "this host", Warn, joinAddrs(d.addrs)+": only private addresses, so the PTR and SPF checks are about addresses the Internet does not see",
			"give the public address that mail leaves from with --addr")
	default:
		d.add("addr", "this host", Fail, "no address to check: no public interface address and "+d.host+" has no A/AAAA record",
			"give this host's public addresses with --addr, and publish them as A/AAAA records of "+d.host)
	}

	for _, ip := range d.addrs {
		if fits(ip, d.cfg.Delivery.ClientFamily) {
			d.out = append(d.out, ip)
		}
	}
}

func appendNew(list []netip.Addr, ip netip.Addr) []netip.Addr {
	if !ip.IsValid() || slices.Contains(list, ip) {
		return list
	}
	return append(list, ip)
}

// fits says whether client_family lets mail leave from ip.
func fits(ip netip.Addr, family string) bool {
	switch family {
	case "inet":
		return ip.Is4()
	case "inet6":
		return ip.Is6()
	}
	return true
}

func familyName(ip netip.Addr) string {
	if ip.Is4() {
		return "A"
	}
	return "AAAA"
}

// checkHost: hostname is the EHLO name, so it must be a fully qualified
// name with A/AAAA records (receivers check that the EHLO name resolves),
// preferably pointing at this host.
func (d *run) checkHost(ips []netip.Addr, err error) {
	if !strings.Contains(d.host, ".") {
		d.add("host", d.host, Fail, "hostname is not a fully qualified domain name, and it is the EHLO name",
			`set hostname = "mail.example.org" (the name this host's PTR gives) in the configuration`)
		return
	}
	if err != nil {
		switch kindOf(err) {
		case dns.NXDomain, dns.NoData:
			d.add("host", d.host, Fail, addrNote(err),
				"publish an A record (and an AAAA record if mail may leave over IPv6) for "+d.host+" with this host's addresses")
		default:
			d.add("host", d.host, Fail, "DNS did not answer for its addresses: "+dnsProblem(err),
				"check the name servers of "+d.host+"'s zone: receivers ask them too")
		}
		return
	}
	var parts []string
	ours := false
	ips = slices.Clone(ips)
	slices.SortStableFunc(ips, func(a, b netip.Addr) int { return a.BitLen() - b.BitLen() }) // A first
	for _, ip := range ips {
		parts = append(parts, familyName(ip)+" "+ip.String())
		ours = ours || d.isOurs(ip)
	}
	detail := strings.Join(parts, ", ")
	if !ours && len(d.addrs) > 0 {
		d.add("host", d.host, Warn, detail+", none of them this host's ("+joinAddrs(d.addrs)+")",
			"point "+d.host+"'s A/AAAA records at this host, or set hostname to the name that does")
		return
	}
	d.add("host", d.host, OK, detail, "")
}

// checkListen: mail for local domains arrives over an MTA listener on
// port 25; without one, MX records pointing here lead nowhere. wanted says
// whether some local domain's MX points here.
func (d *run) checkListen(wanted bool) {
	var mta []string
	on25 := false
	for _, l := range d.cfg.Listen {
		if l.Mode != "mta" {
			continue
		}
		mta = append(mta, l.Address)
		if _, port, err := net.SplitHostPort(l.Address); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n == 25 || port == "smtp" {
				on25 = true
			}
		}
	}
	switch {
	case on25:
		d.add("listen", "mta", OK, "MTA listener on "+strings.Join(mta, ", "), "")
	case !wanted:
		d.add("listen", "mta", OK, "no MTA listener on port 25, and no local domain's MX points here: this host only sends", "")
	case len(mta) > 0:
		d.add("listen", "mta", Warn, "MTA listener on "+strings.Join(mta, ", ")+", none on port 25, where other hosts deliver",
			`add a [[listen]] with mode = "mta" on ":25", unless a port forward leads there`)
	default:
		d.add("listen", "mta", Fail, "the MX records point here but no [[listen]] is in mode mta: mail from other hosts cannot arrive",
			`add a [[listen]] with address = ":25" and mode = "mta"`)
	}
}

// addrNote says why a name has no address, for the detail column.
func addrNote(err error) string {
	switch kindOf(err) {
	case dns.NXDomain:
		return "no such name (NXDOMAIN)"
	case dns.NoData:
		return "no A or AAAA record"
	}
	return dnsProblem(err)
}
