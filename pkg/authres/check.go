package authres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/gosendmail/gosendmail/pkg/dns"
)

const (
	// DefaultTimeout bounds a whole Check when Checker.Timeout is 0: SPF
	// may take ten lookups (RFC 7208 section 4.6.4), and a client waits
	// for our answer to DATA meanwhile.
	DefaultTimeout = 30 * time.Second

	// MaxSignatures is how many DKIM signatures are verified; more are
	// ignored. Each costs a DNS lookup and a public key operation, and a
	// message with dozens is an attack, not mail.
	MaxSignatures = 8
)

// Checker checks inbound mail. The zero value is not usable: Hostname and
// Resolver are required. It is safe for concurrent use.
type Checker struct {
	// Hostname is our authserv-id: the name in the header, and the name
	// whose stale results are removed.
	Hostname string
	// Resolver answers the lookups; a *dns.Client tells NXDOMAIN from
	// SERVFAIL best, *net.Resolver works too.
	Resolver dns.Resolver
	// Timeout bounds one Check; 0 means DefaultTimeout. A check cut short
	// reports temperror for what it could not finish.
	Timeout time.Duration
}

// Input is what the SMTP session knows about one message.
type Input struct {
	ClientIP netip.Addr
	Helo     string
	MailFrom string    // the envelope sender, "" for the null sender
	Message  io.Reader // the message as received, CRLF line ends
}

// DKIMResult is the outcome for one DKIM-Signature, in header order.
type DKIMResult struct {
	Result   string // pass, fail, neutral, temperror, permerror
	Domain   string // d=
	Selector string // s=
	B        string // the first 8 characters of b=
	Reason   string // why it did not pass; "" when it did
}

// Result is the outcome of all checks.
type Result struct {
	SPF     string // of the MAIL FROM (or postmaster@HELO)
	SPFHelo string // of the HELO name
	DKIM    []DKIMResult
	// DMARC is pass, fail, none, temperror or permerror; DMARCPolicy the
	// policy that applies to the From: domain (none, quarantine, reject),
	// "" when none was found.
	DMARC       string
	DMARCPolicy string
	FromDomain  string // the From: domain DMARC evaluated; "" if none
	// Header is the Authentication-Results field, folded, ending in CRLF.
	Header string
	// Reject says DMARC failed and the domain asks for rejection
	// (p=reject, or sp=reject for a subdomain, at pct=100).
	Reject bool
}

// Check runs SPF, DKIM and DMARC for in and reads in.Message to its end.
// Failed checks are results, not
// errors; the error is for a message that cannot be read.
func (c *Checker) Check(ctx context.Context, in Input) (*Result, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := netResolver{c.Resolver}

	br := bufio.NewReader(in.Message)
	head, err := readHeader(br)
	if err != nil {
		return nil, err
	}

	// SPF runs beside DKIM: both wait on DNS, and DKIM also on the body.
	res := &Result{}
	sender := in.MailFrom
	if sender == "" {
		// RFC 7208 section 2.4: the null sender is checked as
		// postmaster@HELO.
		sender = "postmaster@" + in.Helo
	}
	var wg sync.WaitGroup
	var spfReason, heloReason string
	wg.Go(func() { res.SPF, spfReason = checkSPF(ctx, r, in.ClientIP, in.Helo, sender) })
	wg.Go(func() {
		if isHeloDomain(in.Helo) {
			res.SPFHelo, heloReason = checkSPF(ctx, r, in.ClientIP, in.Helo, "postmaster@"+in.Helo)
		} else {
			res.SPFHelo = "none"
		}
	})
	res.DKIM, err = checkDKIM(ctx, r, head, br)
	wg.Wait()
	if err != nil {
		return nil, err
	}

	spfDomain := ""
	if res.SPF == "pass" {
		spfDomain = domainOf(sender)
	}
	dm := c.checkDMARC(ctx, r, head, spfDomain, res.DKIM)
	res.DMARC, res.DMARCPolicy, res.FromDomain, res.Reject = dm.result, dm.policy, dm.from, dm.reject

	infos := []resinfo{
		{method: "spf", result: res.SPF, reason: spfReason, props: [][2]string{{"smtp.mailfrom", sender}}},
	}
	if in.Helo != "" {
		infos = append(infos, resinfo{method: "spf", result: res.SPFHelo, reason: heloReason,
			props: [][2]string{{"smtp.helo", in.Helo}}})
	}
	if len(res.DKIM) == 0 {
		infos = append(infos, resinfo{method: "dkim", result: "none"})
	}
	for _, d := range res.DKIM {
		infos = append(infos, resinfo{method: "dkim", result: d.Result, reason: d.Reason,
			props: [][2]string{{"header.d", d.Domain}, {"header.s", d.Selector}, {"header.b", d.B}}})
	}
	dinfo := resinfo{method: "dmarc", result: res.DMARC, reason: dm.reason,
		props: [][2]string{{"header.from", res.FromDomain}}}
	if res.DMARCPolicy != "" {
		dinfo.comment = "p=" + res.DMARCPolicy
	}
	infos = append(infos, dinfo)
	res.Header = format(c.Hostname, infos)
	return res, nil
}

// checkSPF returns the SPF result of sender (its domain, or helo's when it
// has none) for ip, and a reason when it is an error.
func checkSPF(ctx context.Context, r netResolver, ip netip.Addr, helo, sender string) (string, string) {
	if !ip.IsValid() {
		return "none", "no client address"
	}
	if domainOf(sender) == "" {
		return "none", "no domain to check"
	}
	res, err := spf.CheckHostWithSender(net.IP(ip.Unmap().AsSlice()), helo, sender,
		spf.WithContext(ctx), spf.WithResolver(r))
	reason := ""
	if (res == spf.TempError || res == spf.PermError) && err != nil {
		reason = err.Error()
	}
	return string(res), reason
}

// isHeloDomain says whether helo is a name SPF can look up: not empty and
// not an address literal ("[192.0.2.1]"), which has no SPF record.
func isHeloDomain(helo string) bool {
	return helo != "" && !strings.HasPrefix(helo, "[") && !isIP(helo)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// domainOf is the domain of an address, lower case, without a trailing
// dot; "" when there is none.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(addr[at+1:], "<> \t"), "."))
}

// checkDKIM verifies every signature in head, reading the body from body.
func checkDKIM(ctx context.Context, r netResolver, head []byte, body io.Reader) ([]DKIMResult, error) {
	var sigs []map[string]string
	for _, f := range fields(head) {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			sigs = append(sigs, tags(f.value))
		}
	}
	if len(sigs) == 0 {
		// Drain the body anyway: the caller's reader ends where it would
		// with signatures, whatever the message.
		_, err := io.Copy(io.Discard, body)
		return nil, err
	}
	// A message of header fields only (RFC 5322 allows it) has no blank
	// line; go-msgauth wants one, so give it the end of the header.
	msg := io.MultiReader(bytes.NewReader(head), body)
	if !bytes.HasSuffix(head, []byte("\n")) {
		msg = io.MultiReader(bytes.NewReader(head), strings.NewReader("\r\n\r\n"), body)
	} else if !headerEnded(head) {
		msg = io.MultiReader(bytes.NewReader(head), strings.NewReader("\r\n"), body)
	}
	verifs, err := dkim.VerifyWithOptions(msg,
		&dkim.VerifyOptions{LookupTXT: r.txtFunc(ctx), MaxVerifications: MaxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, err
	}
	// go-msgauth may stop reading early (a signature that fails before
	// its body hash); read on, so Check always consumes the message.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, err
	}
	out := make([]DKIMResult, 0, len(verifs))
	for i, v := range verifs {
		// go-msgauth verifies the signatures in header order, as we
		// collected their tags.
		var t map[string]string
		if i < len(sigs) {
			t = sigs[i]
		}
		d := DKIMResult{Domain: strings.ToLower(v.Domain), Selector: t["s"], B: t["b"]}
		if d.Domain == "" {
			d.Domain = strings.ToLower(t["d"])
		}
		if len(d.B) > 8 {
			d.B = d.B[:8]
		}
		switch {
		case v.Err == nil:
			d.Result = "pass"
		case dkim.IsTempFail(v.Err):
			d.Result = "temperror"
		case dkim.IsPermFail(v.Err):
			d.Result = "permerror"
		default:
			// A signature or body hash that does not verify.
			d.Result = "fail"
		}
		if v.Err != nil {
			d.Reason = strings.TrimPrefix(v.Err.Error(), "dkim: ")
		}
		out = append(out, d)
	}
	return out, nil
}

// tags parses a DKIM tag list (RFC 6376 section 3.2) leniently: only to
// name a signature in the header, never to judge it, so a malformed tag
// is skipped. Folding white space is removed from values, as b= is folded.
func tags(v string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := out[k]; dup {
			continue
		}
		out[k] = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, val)
	}
	return out
}

type dmarcOutcome struct {
	result, policy, from, reason string
	reject                       bool
}

// checkDMARC evaluates RFC 7489 for the From: domain of head. spfDomain is
// the domain SPF passed for ("" if it did not).
func (c *Checker) checkDMARC(ctx context.Context, r netResolver, head []byte, spfDomain string, sigs []DKIMResult) dmarcOutcome {
	var froms []string
	for _, f := range fields(head) {
		if strings.EqualFold(f.name, "From") {
			froms = append(froms, f.value)
		}
	}
	switch len(froms) {
	case 0:
		return dmarcOutcome{result: "none", reason: "no From field"}
	case 1:
	default:
		return dmarcOutcome{result: "permerror", reason: "several From fields"}
	}
	addrs, err := mail.ParseAddressList(froms[0])
	if err != nil || len(addrs) != 1 {
		return dmarcOutcome{result: "permerror", reason: "From field does not hold exactly one address"}
	}
	from := domainOf(addrs[0].Address)
	if from == "" {
		return dmarcOutcome{result: "permerror", reason: "From address has no domain"}
	}
	out := dmarcOutcome{from: from}
	org := orgDomain(from)

	opts := &dmarc.LookupOptions{LookupTXT: r.txtFunc(ctx)}
	rec, err := dmarc.LookupWithOptions(from, opts)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		// RFC 7489 section 6.6.3: ask the organizational domain, whose
		// policy for subdomains is sp=.
		rec, err = dmarc.LookupWithOptions(org, opts)
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		out.result = "none"
		return out
	case dmarc.IsTempFail(err):
		out.result, out.reason = "temperror", "policy lookup failed"
		return out
	case err != nil:
		out.result, out.reason = "permerror", strings.TrimPrefix(err.Error(), "dmarc: ")
		return out
	}
	out.policy = string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		out.policy = string(rec.SubdomainPolicy)
	}

	if spfDomain != "" && aligned(spfDomain, from, rec.SPFAlignment) {
		out.result = "pass"
		return out
	}
	for _, s := range sigs {
		if s.Result == "pass" && aligned(s.Domain, from, rec.DKIMAlignment) {
			out.result = "pass"
			return out
		}
	}
	out.result = "fail"
	// pct below 100 asks for the policy on a sample only (RFC 7489
	// section 6.6.4); we would rather deliver than guess the sample.
	out.reject = out.policy == string(dmarc.PolicyReject) && (rec.Percent == nil || *rec.Percent >= 100)
	return out
}

// aligned applies RFC 7489 section 3.1: strict wants the same domain,
// relaxed (the default) the same organizational domain.
func aligned(domain, from string, mode dmarc.AlignmentMode) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == from {
		return true
	}
	if mode == dmarc.AlignmentStrict {
		return false
	}
	return orgDomain(domain) == orgDomain(from)
}

// orgDomain is the organizational domain (RFC 7489 section 3.2): one label
// below the public suffix. A name that is itself a public suffix (or
// cannot be parsed) is its own.
func orgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// headerEnded says whether head, as readHeader returns it, ends with the
// blank line that ends a header.
func headerEnded(head []byte) bool {
	return bytes.Equal(head, []byte("\r\n")) || bytes.Equal(head, []byte("\n")) ||
		bytes.HasSuffix(head, []byte("\n\r\n")) || bytes.HasSuffix(head, []byte("\n\n"))
}
