package dkim

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gosendmail/gosendmail/pkg/dns"
)

// Resolver is what Check needs from DNS; *dns.Client and *net.Resolver
// have it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

var _ Resolver = (*dns.Client)(nil)

// Status is the outcome of checking one selector.
type Status string

const (
	StatusOK         Status = "ok"         // published, parses, matches the private key
	StatusMissing    Status = "missing"    // no TXT record at SELECTOR._domainkey.DOMAIN
	StatusUnparsable Status = "unparsable" // a record is there but is not a usable DKIM key record
	StatusMismatch   Status = "mismatch"   // the published key is not our private key's, or is revoked
	StatusError      Status = "error"      // DNS did not answer, or our own key cannot be read
)

// CheckResult is what Check found for one key of one domain.
type CheckResult struct {
	Domain   string // the signing domain (d=)
	Selector string // s=
	Key      string // the KeyTable name
	Status   Status
	Detail   string // one line for a person: what was found, and what to do
	Err      error  // with StatusError, the cause: a DNS error or the key's problem
	// Temporary is set with StatusError when DNS failed in a way that
	// asking again later may cure (a timeout, SERVFAIL).
	Temporary bool
}

var errNoDomain = errors.New("dkim: no domain to check")

// checkParallel bounds the lookups Check runs at once: enough to finish
// quickly with many domains, few enough not to look like a flood.
const checkParallel = 8

// Check asks DNS for the key record of every KeyTable key (for a key whose
// domain is "%", of every domain the SigningTable names for it outright)
// and compares it with the private key. Results come in KeyTable order.
func Check(ctx context.Context, r Resolver, t *Tables) []CheckResult {
	type target struct {
		res    CheckResult
		signer crypto.Signer
		err    error // the private key's problem
	}
	var targets []*target
	seen := make(map[string]bool)
	for _, k := range t.keys {
		if k.domain == "" || k.domain != "%" && !isDomain(k.domain) || !isDomain(k.selector) {
			// A KeyTable line too broken to say what to look up.
			detail := "malformed KeyTable line"
			if k.err != nil {
				detail = k.err.Error()
			}
			targets = append(targets, &target{res: CheckResult{
				Domain: k.domain, Selector: k.selector, Key: k.name, Status: StatusError, Detail: detail, Err: k.err,
			}})
			continue
		}
		domains := []string{k.domain}
		if k.domain == "%" {
			domains = t.domainsFor(k)
			if len(domains) == 0 {
				targets = append(targets, &target{res: CheckResult{
					Domain: "%", Selector: k.selector, Key: k.name, Status: StatusError, Err: errNoDomain,
					Detail: "the KeyTable domain is % and no SigningTable line names a domain for this key, so there is nothing to look up",
				}})
				continue
			}
		}
		for _, d := range domains {
			id := d + "\x00" + k.selector + "\x00" + k.name
			if seen[id] {
				continue
			}
			seen[id] = true
			tg := &target{res: CheckResult{Domain: d, Selector: k.selector, Key: k.name}, signer: k.signer, err: k.err}
			if tg.err == nil && tg.signer == nil {
				tg.signer, tg.err = t.lazyKey(k, d)
			}
			targets = append(targets, tg)
		}
	}

	sem := make(chan struct{}, checkParallel)
	var wg sync.WaitGroup
	for _, tg := range targets {
		if tg.res.Status != "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			tg.res.Status, tg.res.Detail, tg.res.Err = checkOne(ctx, r, tg.res.Domain, tg.res.Selector, tg.signer, tg.err)
			tg.res.Temporary = tg.res.Err != nil && tg.res.Err != tg.err && dns.IsTemporary(tg.res.Err)
		})
	}
	wg.Wait()
	out := make([]CheckResult, len(targets))
	for i, tg := range targets {
		out[i] = tg.res
	}
	return out
}

// checkOne looks up one selector and compares what it finds with signer.
func checkOne(ctx context.Context, r Resolver, domain, selector string, signer crypto.Signer, keyErr error) (Status, string, error) {
	name := selector + "._domainkey." + domain
	txts, err := r.LookupTXT(ctx, name+".")
	if err != nil {
		if dns.IsNotFound(err) {
			return StatusMissing, fmt.Sprintf("no TXT record at %s: publish the record from the key's .txt file", name), nil
		}
		return StatusError, fmt.Sprintf("asking DNS for %s: %v", name, err), err
	}
	if keyErr != nil {
		return StatusError, fmt.Sprintf("the private key cannot be used, so it cannot be compared: %v", keyErr), keyErr
	}

	// Other TXT records may share the name (a stray SPF, a verification
	// token); only those that look like key records count.
	var recs []*keyRecord
	var problems []string
	for _, txt := range txts {
		rec, err := parseKeyRecord(txt)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		if len(problems) == 0 {
			return StatusMissing, fmt.Sprintf("%s has no TXT record", name), nil
		}
		return StatusUnparsable, fmt.Sprintf("%s: %s", name, strings.Join(problems, "; ")), nil
	}

	ours := signer.Public()
	var notes []string
	for _, rec := range recs {
		switch {
		case rec.revoked:
			return StatusMismatch, fmt.Sprintf("%s publishes an empty p= (the key is revoked)", name), nil
		case rec.keyType != keyTypeName(ours):
			return StatusMismatch, fmt.Sprintf("%s publishes a k=%s key but the private key is %s", name, rec.keyType, describe(ours)), nil
		case !samePublicKey(rec.pub, ours):
			return StatusMismatch, fmt.Sprintf("%s publishes a different %s key than the private key's: publish the record from the key's .txt file", name, describe(rec.pub)), nil
		}
		if why := rec.compatible(); why != "" {
			return StatusUnparsable, fmt.Sprintf("%s: %s", name, why), nil
		}
		if slices.Contains(rec.flags, "y") {
			notes = append(notes, "t=y: the domain says it is testing DKIM, so verifiers may ignore failures")
		}
	}
	if len(recs) > 1 {
		// RFC 6376 section 3.6.2.2 leaves several records at one name
		// undefined; all of these match, so whichever a verifier takes works.
		notes = append(notes, fmt.Sprintf("%d key records published, all matching", len(recs)))
	}
	detail := fmt.Sprintf("%s key published at %s and matches the private key", describe(ours), name)
	if len(notes) > 0 {
		detail += " (" + strings.Join(notes, "; ") + ")"
	}
	return StatusOK, detail, nil
}
