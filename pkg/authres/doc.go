// Package authres checks mail that arrives from foreign clients: SPF
// (RFC 7208) of the MAIL FROM and of the HELO name, every DKIM signature
// (RFC 6376) and DMARC (RFC 7489), and records the outcome in one
// Authentication-Results header field (RFC 8601) for the spam filter and
// the recipient's mail client to read.
//
// The checks are done by well-kept libraries: blitiri.com.ar/go/spf for
// SPF, go-msgauth's dkim for DKIM and its dmarc for the policy record;
// golang.org/x/net/publicsuffix finds organizational domains. This package
// only wires them to our resolver and decides alignment and the header.
//
// # What is checked
//
//   - spf: the MAIL FROM domain, or postmaster@HELO for the null sender
//     (RFC 7208 section 2.4). smtp.mailfrom records the identity checked.
//   - spf (HELO): the HELO name on its own (RFC 7208 section 2.3); an
//     address literal has no SPF and gives none. smtp.helo records it.
//   - dkim: every DKIM-Signature (at most MaxSignatures), including expired
//     and broken ones, one result each, with header.d, header.s and the
//     first 8 characters of header.b so two signatures of one domain can be
//     told apart (RFC 6008).
//   - dmarc: the domain of the single From: address. Its policy is
//     _dmarc.<from-domain>, or, if it has none, _dmarc.<organizational
//     domain>, whose sp= (if any) then applies. DMARC passes when an SPF
//     pass or a DKIM pass is aligned with the From: domain: the same
//     domain under strict alignment (aspf=s, adkim=s), the same
//     organizational domain under relaxed (the default).
//
// # Results in the header
//
// Results are RFC 8601's words: pass, fail, softfail, neutral, none,
// temperror, permerror. DNS failures that may go away (SERVFAIL, timeout)
// are temperror; a missing DKIM key is permerror (RFC 6376 section 6.1.2);
// an expired signature is permerror (section 3.5, x=) with a reason. A
// message without a From: field gives dmarc=none; several From: fields or
// addresses give dmarc=permerror (RFC 7489 section 6.6.1), because the
// author cannot be told. The DMARC policy found is written as a comment,
// "(p=reject)", as the big receivers do, so a filter sees it.
//
// Failures never reject mail here: Check reports and the spam filter
// decides. Result.Reject says that DMARC failed under p=reject (at pct=100);
// the SMTP session may refuse such mail when configured to.
//
// # Stale results
//
// Anyone can write an Authentication-Results field claiming to be us, so
// fields whose authserv-id is our Hostname are removed before ours is
// added (RFC 8601 section 5); fields of other authserv-ids are kept.
// Rewrite does both while streaming the message; StripOurs works on a
// header already in memory.
package authres
