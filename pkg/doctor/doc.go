// Package doctor checks what receiving mail servers will look up about this
// host and its domains in DNS, and says what to fix: it is `smtpd doctor`.
// Every question goes to the DNS server the daemon asks ([delivery]
// dns_server, else the system's resolver), over the wire, so the answers
// are the ones the world gets from the same zones.
//
// # Whose addresses
//
// "This host's addresses" are, in this order of preference:
//
//  1. the addresses given with --addr (Options.Addrs), as given: for
//     reproducible runs, for a host behind NAT, or to check a server from
//     another machine;
//  2. the public addresses of the machine's interfaces (net.InterfaceAddrs
//     without loopback, link-local, RFC 1918 and ULA private addresses and
//     carrier-grade NAT): the kernel may pick any of them as the source of
//     a connection, so each needs its PTR;
//  3. with no public address on an interface, the host is taken to be
//     behind NAT, and the A/AAAA records of hostname stand for it;
//  4. failing that, the interfaces' private addresses, with a warning.
//
// Mail leaves from those of them that [delivery] client_family allows
// ("inet" drops the IPv6 ones, "inet6" the IPv4 ones); with a smart_host,
// from the smart host's addresses instead.
//
// # Checks
//
// Each result has a check name, a subject, a status (ok, warn, fail), one
// line of detail and, unless ok, one line of advice. In order:
//
//   - dns: only when the server gave no answer at all to the first
//     question; nothing else is asked then.
//   - addr: which addresses were taken as this host's, and why.
//   - host (hostname): a fully qualified name with A/AAAA records (it is
//     the EHLO name); warn when none of them is this host's.
//   - ptr (each outbound address): exactly one PTR record that resolves back
//     to the address (forward-confirmed reverse DNS); fail without a PTR or
//     a confirming forward record, warn for several PTRs.
//   - ehlo (each outbound address with a PTR): the EHLO name (hostname)
//     equals the PTR; warn if not.
//   - ipv6 (client_family): warn when mail may leave over IPv6 from an
//     address whose PTR is missing or does not name hostname, which loses
//     mail to Gmail; fail when client_family = inet6 and there is no IPv6.
//   - relay (smart_host): replaces ptr, ehlo and ipv6 when mail leaves
//     through a smart host; fail when it does not resolve.
//   - mx (each local domain: local_host_names and the virtusertable's
//     domains, without localhost and address literals): its MX records
//     (or, without any, its own address) lead to this host; fail for MX
//     records pointing elsewhere, a null MX, a domain that does not exist;
//     warn when this host is only a backup MX.
//   - listen: an MTA listener on port 25 when an MX points here.
//   - spf (hostname, each local and signing domain, each MX host name that is
//     this host): exactly one v=spf1 record that parses and gives pass for
//     every outbound address (evaluated with blitiri.com.ar/go/spf, envelope
//     sender postmaster@SUBJECT, EHLO hostname); softfail or neutral warn.
//   - dkim (each KeyTable key and domain): what `smtpd dkim check` says
//     (pkg/dkim's Check): the selector's record is published, parses and
//     matches the private key; warn when no signing is configured.
//   - dmarc (hostname, each local and signing domain): one record at
//     _dmarc.DOMAIN, or else at its organizational domain, that parses
//     (go-msgauth's dmarc.Parse); fail when missing or broken, warn for
//     p=none.
//
// Signing domains are the d= domains of the KeyTable (and, for its "%"
// keys, the domains the SigningTable names).
//
// # Exit status
//
// 0 when nothing failed (warnings allowed), 1 (ExitFailed) when a check
// failed, 69 when the DNS server could not be reached at all; the command
// exits 78 for a configuration it cannot load and 64 for a bad flag.
package doctor
