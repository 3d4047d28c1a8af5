// Package dns finds where mail for a domain goes, and says clearly when it
// cannot: "this domain does not exist" (bounce now) is a different answer
// from "the name server did not answer" (try again later), and mail is lost
// when the two are confused.
//
// # Seams
//
// [Resolver] is the small interface the rest of gosendmail depends on; the
// standard library's *net.Resolver satisfies it, and so does [Client], our own
// stub resolver. Client exists because *net.Resolver cannot tell NXDOMAIN from
// NODATA, folds SERVFAIL into a generic error on some platforms, and cannot be
// pointed at a test server on a loopback port without a custom dialer. Client
// asks one server (the [delivery] dns_server key, else the first nameserver in
// /etc/resolv.conf) over UDP with EDNS0 (RFC 6891, a 1232-byte buffer, the
// size DNS Flag Day 2020 settled on to avoid IP fragmentation), retries once
// on silence, and repeats a truncated answer over TCP (RFC 7766 section 5).
// Names are always asked as fully qualified names: mail domains are FQDNs
// (RFC 5321 section 2.3.5), so no search list is ever applied.
//
// # Errors
//
// Lookups fail with an [*Error] whose [Kind] says what happened:
//
//   - NXDomain: the name does not exist (RCODE 3, RFC 1035 section 4.1.1).
//   - NoData: the name exists but has no records of the type asked
//     (NOERROR with an empty answer, RFC 2308 section 2.2).
//   - Temporary: SERVFAIL, REFUSED, any other RCODE, a timeout, a network
//     error, a malformed or mismatched reply, a CNAME chain too long. Retrying
//     later may succeed, so the queue keeps the message.
//   - NullMX and MXLoop: only from [Route], see below.
//
// [IsNotFound] is true for NXDomain and NoData, [IsTemporary] for Temporary;
// both also understand *net.DNSError so they work with any Resolver. Every
// *Error also answers errors.As for a *mailerr.Error, so mailerr.IsTemporary,
// mailerr.SMTPCode and mailerr.ExitCode give the right SMTP and sysexits
// meaning without the caller knowing this package's kinds.
//
// CNAME chains are followed (RFC 1034 section 3.6.2, and RFC 5321 section 5.1:
// "the resulting name is processed as if it were the initial name") up to
// eight links, both inside one answer and by asking again for the target when
// the server did not chase it.
//
// # Routing: the MX walk of RFC 5321 section 5.1
//
// [Route] turns a recipient domain into the ordered list of hosts to try:
//
//   - MX records are sorted by preference, lowest first; records of equal
//     preference are shuffled so load spreads across them, as section 5.1
//     requires ("randomize them to spread the load").
//   - A domain with no MX records (NODATA) gets the implicit MX: the domain
//     itself with preference 0, provided it has an A or AAAA record. The
//     address family is not filtered here: which family to connect over
//     ([delivery] client_family) is the transport's choice, per host.
//   - NXDOMAIN is permanent: 550 5.1.2 "Host unknown (Name server: DOMAIN:
//     host not found)", sendmail's text. A domain with no MX and no address
//     says the same.
//   - A null MX (RFC 7505 section 3: a single MX whose exchange is ".") means
//     the domain accepts no mail: 556 5.1.10 "Domain does not accept mail"
//     (RFC 7504 section 3, RFC 7505 section 4.1), permanent, and no fallback
//     to the address records. We accept the lone "." at any preference, since
//     the meaning is unambiguous; a "." mixed with real MX records is a broken
//     zone, and we drop the "." and use the others.
//   - SERVFAIL, timeouts and other trouble are temporary: 451 4.4.3.
//   - If the caller says which names are this host, MX records with a
//     preference equal to or higher than our own best are dropped (section 5.1:
//     "it MUST discard ... any with equal or higher preference"), since those
//     hosts would send the mail back to us. If we are the best MX, or the
//     implicit MX is us, nothing is left to try and the mail would loop: that
//     is a configuration error, reported as MXLoop with sendmail's text
//     "config error: mail loops back to me (MX problem?)" and Postfix's code
//     554 5.4.6 (RFC 3463: routing loop detected). It is permanent, as in
//     Postfix: the message bounces and tells the sender why, rather than
//     sitting in the queue for days.
//
// Host names come back fully qualified with the trailing dot and in lower
// case (e.g. "mx.example.com."), as sendmail's relay= log field shows them.
package dns
