package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

const (
	host = "mail.example.org"
	ip4  = "192.0.2.10"
	ip6  = "2001:db8::10"
)

// zone is the DNS data of one test, changed by the case before it is
// served. Keys are names (or, for ptr, addresses); A and AAAA are told
// apart by the address's form.
type zone struct {
	addr map[string][]string
	ptr  map[string][]string
	mx   map[string][]string // "PREF HOST"; "." for a null MX
	txt  map[string][]string
	fail []string // names answered with SERVFAIL
}

// goodZone is everything as it should be for mail.example.org, the local
// domain example.org and the signing-only domain example.net. keys holds
// the published DKIM records by DNS name.
func goodZone(keys map[string]string) *zone {
	z := &zone{
		addr: map[string][]string{
			host: {ip4, ip6},
		},
		ptr: map[string][]string{
			ip4: {host},
			ip6: {host},
		},
		mx: map[string][]string{
			"example.org": {"10 " + host},
		},
		txt: map[string][]string{
			"example.org":        {"v=spf1 mx -all", "google-site-verification=abc"},
			host:                 {"v=spf1 a -all"},
			"example.net":        {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all"},
			"_dmarc.example.org": {"v=DMARC1; p=reject; rua=mailto:postmaster@example.org"},
			"_dmarc.example.net": {"v=DMARC1; p=quarantine"},
		},
	}
	for name, rec := range keys {
		z.txt[name] = []string{rec}
	}
	return z
}

func (z *zone) serve(t *testing.T) *dnstest.Server {
	t.Helper()
	srv := dnstest.NewServer(t)
	for name, ips := range z.addr {
		for _, ip := range ips {
			if strings.Contains(ip, ":") {
				srv.AAAA(name, ip)
			} else {
				srv.A(name, ip)
			}
		}
	}
	for ip, names := range z.ptr {
		for _, n := range names {
			srv.PTR(ip, n)
		}
	}
	for dom, mxs := range z.mx {
		for _, mx := range mxs {
			var pref uint16
			var target string
			if mx == "." {
				srv.NullMX(dom)
				continue
			}
			p, h, _ := strings.Cut(mx, " ")
			for _, c := range p {
				pref = pref*10 + uint16(c-'0')
			}
			target = h
			srv.MX(dom, pref, target)
		}
	}
	for name, txts := range z.txt {
		for _, txt := range txts {
			srv.TXT(name, txt)
		}
	}
	for _, name := range z.fail {
		srv.ServFail(name)
	}
	return srv
}

// fixture is a configuration with its files: local-host-names with
// example.org, and DKIM keys for example.org (selector sel) and
// example.net (selector s2).
type fixture struct {
	dir  string
	cfg  *config.Config
	keys map[string]string // DNS name -> the record to publish
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, keys: map[string]string{}}
	keyDir := filepath.Join(dir, "keys")
	var kt, st strings.Builder
	for _, k := range []struct{ domain, selector string }{{"example.org", "sel"}, {"example.net", "s2"}} {
		keyFile, _, plain, err := dkim.Keygen(k.domain, k.selector, 0, true, filepath.Join(keyDir, k.domain))
		if err != nil {
			t.Fatal(err)
		}
		name := k.selector + "._domainkey." + k.domain
		f.keys[name] = plain
		kt.WriteString(name + " " + k.domain + ":" + k.selector + ":" + keyFile + "\n")
		st.WriteString(k.domain + " " + name + "\n")
	}
	write(t, filepath.Join(dir, "KeyTable"), kt.String())
	write(t, filepath.Join(dir, "SigningTable"), st.String())
	write(t, filepath.Join(dir, "local-host-names"), "# local\nlocalhost\nexample.org\n[192.0.2.10]\n")
	cfg := config.Defaults()
	cfg.Hostname = host
	cfg.LocalHostNames = filepath.Join(dir, "local-host-names")
	cfg.Virtusertable = filepath.Join(dir, "virtusertable") // missing: empty
	cfg.DKIM.KeyTable = filepath.Join(dir, "KeyTable")
	cfg.DKIM.SigningTable = filepath.Join(dir, "SigningTable")
	cfg.Listen = config.DefaultListeners()
	f.cfg = cfg
	return f
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func addrs(list ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func runAgainst(t *testing.T, cfg *config.Config, srv *dnstest.Server, opt Options) *Report {
	t.Helper()
	cfg.Delivery.DNSServer = srv.Addr()
	opt.Timeout = 2 * time.Second
	if opt.InterfaceAddrs == nil {
		opt.InterfaceAddrs = func() ([]net.Addr, error) { t.Error("interfaces asked although --addr was given"); return nil, nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Run(ctx, cfg, opt)
}

// key is how a result is named in the cases: "check subject".
func key(r Result) string { return r.Check + " " + r.Subject }

// allChecks are the results a full run over the good zone gives.
var allChecks = []string{
	"addr this host",
	"host " + host,
	"ptr " + ip4, "ptr " + ip6,
	"ehlo " + ip4, "ehlo " + ip6,
	"ipv6 client_family = any",
	"mx example.org",
	"listen mta",
	"spf " + host, "spf example.org", "spf example.net",
	"dkim sel._domainkey.example.org", "dkim s2._domainkey.example.net",
	"dmarc " + host, "dmarc example.org", "dmarc example.net",
}

func TestGoodZone(t *testing.T) {
	f := newFixture(t)
	srv := goodZone(f.keys).serve(t)
	rep := runAgainst(t, f.cfg, srv, Options{Addrs: addrs(ip4, ip6)})
	var got []string
	for _, r := range rep.Results {
		got = append(got, key(r))
		if r.Status != OK {
			t.Errorf("%s: %s: %s — %s", key(r), r.Status, r.Detail, r.Advice)
		}
		if r.Advice != "" && r.Status == OK {
			t.Errorf("%s: advice on an ok result: %q", key(r), r.Advice)
		}
	}
	if !slices.Equal(got, allChecks) {
		t.Errorf("results\n got %q\nwant %q", got, allChecks)
	}
	if c := rep.ExitCode(); c != 0 {
		t.Errorf("exit code %d, want 0", c)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{
		"OK    ptr    192.0.2.10: mail.example.org, which resolves back to it\n",
		"OK    mx     example.org: MX 10 mail.example.org (this host)\n",
		"doctor: 17 ok, 0 warning(s), 0 failed\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBrokenZones changes one thing in the good zone (or configuration)
// per case and checks that exactly the results named change status: every
// other result must stay ok.
func TestBrokenZones(t *testing.T) {
	otherKey := func(t *testing.T) string {
		_, _, plain, err := dkim.Keygen("example.org", "sel", 0, true, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	cases := []struct {
		name   string
		change func(t *testing.T, z *zone, cfg *config.Config)
		want   map[string]Status // results that are not ok; others must be
		absent []string          // results that must not be there
		text   []string          // in the detail or advice of the first want... anywhere in the text output
	}{
		{
			name:   "no PTR",
			change: func(t *testing.T, z *zone, cfg *config.Config) { delete(z.ptr, ip4) },
			want:   map[string]Status{"ptr " + ip4: Fail},
			absent: []string{"ehlo " + ip4},
			text:   []string{"FAIL  ptr    192.0.2.10: no PTR record — have whoever runs the address"},
		},
		{
			name: "two PTRs",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.ptr[ip4] = append(z.ptr[ip4], "www.example.org")
				z.addr["www.example.org"] = []string{ip4}
			},
			want: map[string]Status{"ptr " + ip4: Warn},
			text: []string{"2 PTR records (mail.example.org, www.example.org)", "keep exactly one PTR, naming mail.example.org"},
		},
		{
			name: "PTR names another host",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.ptr[ip4] = []string{"static-10.provider.example"}
				z.addr["static-10.provider.example"] = []string{ip4}
			},
			want: map[string]Status{"ehlo " + ip4: Warn},
			text: []string{"EHLO says mail.example.org but the PTR says static-10.provider.example", `set hostname = "static-10.provider.example"`},
		},
		{
			name: "PTR not forward-confirmed",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.ptr[ip4] = []string{"dangling.provider.example"}
			},
			want: map[string]Status{"ptr " + ip4: Fail, "ehlo " + ip4: Warn},
			text: []string{"PTR dangling.provider.example does not resolve back to 192.0.2.10"},
		},
		{
			name: "MX points elsewhere",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.mx["example.org"] = []string{"10 mx.elsewhere.example"}
				z.addr["mx.elsewhere.example"] = []string{"198.51.100.7"}
			},
			// "v=spf1 mx" follows the MX too.
			want: map[string]Status{"mx example.org": Fail, "spf example.org": Fail},
			text: []string{"MX 10 mx.elsewhere.example (198.51.100.7): none of them is this host", "point the MX at mail.example.org"},
		},
		{
			name: "backup MX only",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.mx["example.org"] = []string{"10 mx.elsewhere.example", "20 " + host}
				z.addr["mx.elsewhere.example"] = []string{"198.51.100.7"}
				z.txt["example.org"] = []string{"v=spf1 a:mail.example.org -all"}
			},
			want: map[string]Status{"mx example.org": Warn},
		},
		{
			name:   "null MX",
			change: func(t *testing.T, z *zone, cfg *config.Config) { z.mx["example.org"] = []string{"."} },
			want:   map[string]Status{"mx example.org": Fail, "spf example.org": Fail},
			text:   []string{"null MX"},
		},
		{
			name: "implicit MX",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				delete(z.mx, "example.org")
				z.addr["example.org"] = []string{ip4}
			},
			// "v=spf1 mx" has no MX to follow now.
			want: map[string]Status{"spf example.org": Fail},
			text: []string{"OK    mx     example.org: no MX record; mail goes to the domain's own address, which is this host"},
		},
		{
			name: "SPF missing",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"google-site-verification=abc"}
			},
			want: map[string]Status{"spf example.org": Fail},
			text: []string{`no SPF record — publish TXT "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all" at example.org`},
		},
		{
			name:   "SPF missing for the host name",
			change: func(t *testing.T, z *zone, cfg *config.Config) { delete(z.txt, host) },
			want:   map[string]Status{"spf " + host: Fail},
		},
		{
			name: "two SPF records",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = append(z.txt["example.org"], "v=spf1 ip4:192.0.2.10 -all")
			},
			want: map[string]Status{"spf example.org": Fail},
			text: []string{"2 SPF records", "merge them into one"},
		},
		{
			name: "SPF does not authorize the address",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"v=spf1 ip4:198.51.100.0/24 -all"}
			},
			want: map[string]Status{"spf example.org": Fail},
			text: []string{"192.0.2.10 fail, 2001:db8::10 fail", "add ip4:192.0.2.10 ip6:2001:db8::10 to the record at example.org"},
		},
		{
			name: "SPF softfail for IPv6",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"v=spf1 ip4:192.0.2.10 ~all"}
			},
			want: map[string]Status{"spf example.org": Warn},
			text: []string{"192.0.2.10 pass, 2001:db8::10 softfail", "add ip6:2001:db8::10"},
		},
		{
			name: "SPF syntax error after the match",
			// Evaluation stops at mx; the typo is found all the same.
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"v=spf1 mx inlude:_spf.example.com -all"}
			},
			want: map[string]Status{"spf example.org": Fail},
			text: []string{`does not parse: unknown mechanism "inlude:_spf.example.com"`},
		},
		{
			name: "SPF bad address",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"v=spf1 ip4:192.0.2.300 -all"}
			},
			want: map[string]Status{"spf example.org": Fail},
		},
		{
			name: "SPF include of a missing record",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["example.org"] = []string{"v=spf1 include:_spf.nowhere.example -all"}
			},
			want: map[string]Status{"spf example.org": Fail},
			text: []string{"permerror"},
		},
		{
			name:   "DNS SERVFAIL for a domain",
			change: func(t *testing.T, z *zone, cfg *config.Config) { z.fail = append(z.fail, "example.org") },
			want:   map[string]Status{"mx example.org": Fail, "spf example.org": Fail},
			text:   []string{"SERVFAIL"},
		},
		{
			name:   "DMARC missing",
			change: func(t *testing.T, z *zone, cfg *config.Config) { delete(z.txt, "_dmarc.example.org") },
			// mail.example.org inherits example.org's.
			want: map[string]Status{"dmarc example.org": Fail, "dmarc " + host: Fail},
			text: []string{`FAIL  dmarc  example.org: no DMARC record at _dmarc.example.org — publish TXT "v=DMARC1; p=none;`},
		},
		{
			name: "DMARC p=none",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["_dmarc.example.org"] = []string{"v=DMARC1; p=none; rua=mailto:postmaster@example.org"}
			},
			want: map[string]Status{"dmarc example.org": Warn, "dmarc " + host: Warn},
			text: []string{"WARN  dmarc  mail.example.org: _dmarc.example.org: p=none (inherited from the organizational domain)"},
		},
		{
			name: "DMARC sp= for the host name",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["_dmarc.example.org"] = []string{"v=DMARC1; p=reject; sp=none"}
			},
			want: map[string]Status{"dmarc " + host: Warn},
		},
		{
			name: "DMARC broken",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["_dmarc.example.org"] = []string{"v=DMARC1; p=maybe"}
			},
			want: map[string]Status{"dmarc example.org": Fail, "dmarc " + host: Fail},
			text: []string{"does not parse: invalid policy"},
		},
		{
			name: "DMARC version misspelt",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["_dmarc.example.net"] = []string{"v=dmarc1; p=reject"}
			},
			want: map[string]Status{"dmarc example.net": Fail},
			text: []string{"exactly v=DMARC1"},
		},
		{
			name: "two DMARC records",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["_dmarc.example.net"] = append(z.txt["_dmarc.example.net"], "v=DMARC1; p=none")
			},
			want: map[string]Status{"dmarc example.net": Fail},
		},
		{
			name:   "DKIM selector missing",
			change: func(t *testing.T, z *zone, cfg *config.Config) { delete(z.txt, "sel._domainkey.example.org") },
			want:   map[string]Status{"dkim sel._domainkey.example.org": Fail},
			text:   []string{"publish the TXT record from the key's .txt file"},
		},
		{
			name: "DKIM key mismatch",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.txt["sel._domainkey.example.org"] = []string{otherKey(t)}
			},
			want: map[string]Status{"dkim sel._domainkey.example.org": Fail},
			text: []string{"different"},
		},
		{
			name: "DKIM not configured",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				cfg.DKIM.KeyTable, cfg.DKIM.SigningTable = "", ""
			},
			want:   map[string]Status{"dkim [dkim]": Warn},
			absent: []string{"spf example.net", "dmarc example.net", "dkim sel._domainkey.example.org"},
		},
		{
			name:   "IPv6 without PTR",
			change: func(t *testing.T, z *zone, cfg *config.Config) { delete(z.ptr, ip6) },
			want:   map[string]Status{"ptr " + ip6: Fail, "ipv6 client_family = any": Warn},
			absent: []string{"ehlo " + ip6},
			text:   []string{"2001:db8::10 has no PTR", `set [delivery] client_family = "inet"`, "Gmail refuses"},
		},
		{
			name: "IPv6 without PTR but outbound IPv4 only",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				delete(z.ptr, ip6)
				cfg.Delivery.ClientFamily = "inet"
			},
			absent: []string{"ptr " + ip6, "ehlo " + ip6, "ipv6 client_family = any"},
			text:   []string{"OK    ipv6   client_family = inet: mail leaves over IPv4 only (2001:db8::10 not used for sending)"},
		},
		{
			name: "IPv6 PTR names another host",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.ptr[ip6] = []string{"v6.provider.example"}
				z.addr["v6.provider.example"] = []string{ip6}
			},
			want: map[string]Status{"ehlo " + ip6: Warn, "ipv6 client_family = any": Warn},
			text: []string{"2001:db8::10's PTR names v6.provider.example, not mail.example.org"},
		},
		{
			name: "host name without address",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				delete(z.addr, host)
				z.txt["example.org"] = []string{"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"}
				z.txt[host] = []string{"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"}
			},
			want: map[string]Status{
				"host " + host: Fail, "ptr " + ip4: Fail, "ptr " + ip6: Fail,
				"ipv6 client_family = any": Warn,
				// example.org's MX has no address now.
				"mx example.org": Fail,
			},
			text: []string{"publish an A record"},
		},
		{
			name: "host name points elsewhere",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				z.addr[host] = []string{"198.51.100.7"}
				z.txt["example.org"] = []string{"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"}
				z.txt[host] = []string{"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"}
			},
			want: map[string]Status{
				"host " + host: Warn, "ptr " + ip4: Fail, "ptr " + ip6: Fail,
				"ipv6 client_family = any": Warn, "mx example.org": Fail,
			},
		},
		{
			name: "local domain that does not exist",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				write(t, cfg.LocalHostNames, "example.org\ngone.example\n")
			},
			want: map[string]Status{"mx gone.example": Fail, "spf gone.example": Fail, "dmarc gone.example": Fail},
			text: []string{"the domain does not exist in DNS"},
		},
		{
			name: "virtusertable domain",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				write(t, cfg.Virtusertable, "info@virtual.example  ann\n")
			},
			want: map[string]Status{"mx virtual.example": Fail, "spf virtual.example": Fail, "dmarc virtual.example": Fail},
		},
		{
			name: "no MTA listener",
			change: func(t *testing.T, z *zone, cfg *config.Config) {
				cfg.Listen = []config.Listen{{Name: "submission", Address: ":587", Mode: "submission", Auth: "required"}}
			},
			want: map[string]Status{"listen mta": Fail},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			z := goodZone(f.keys)
			if tc.change != nil {
				tc.change(t, z, f.cfg)
			}
			srv := z.serve(t)
			rep := runAgainst(t, f.cfg, srv, Options{Addrs: addrs(ip4, ip6)})
			seen := map[string]bool{}
			failed := false
			for _, r := range rep.Results {
				k := key(r)
				seen[k] = true
				want, ok := tc.want[k]
				if !ok {
					want = OK
				}
				if r.Status != want {
					t.Errorf("%s: %s, want %s: %s — %s", k, r.Status, want, r.Detail, r.Advice)
				}
				if r.Status != OK && r.Advice == "" {
					t.Errorf("%s: %s without advice", k, r.Status)
				}
				failed = failed || r.Status == Fail
			}
			for k := range tc.want {
				if !seen[k] {
					t.Errorf("no result %q", k)
				}
			}
			for _, k := range tc.absent {
				if seen[k] {
					t.Errorf("unexpected result %q", k)
				}
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			for _, s := range tc.text {
				if !strings.Contains(text.String(), s) {
					t.Errorf("text output lacks %q", s)
				}
			}
			wantCode := 0
			if failed {
				wantCode = ExitFailed
			}
			if c := rep.ExitCode(); c != wantCode {
				t.Errorf("exit code %d, want %d", c, wantCode)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("output:\n%s", text.String())
			}
		})
	}
}

func TestJSONShape(t *testing.T) {
	f := newFixture(t)
	z := goodZone(f.keys)
	delete(z.ptr, ip6)
	z.txt["_dmarc.example.org"] = []string{"v=DMARC1; p=none"}
	srv := z.serve(t)
	rep := runAgainst(t, f.cfg, srv, Options{Addrs: addrs(ip4, ip6)})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, buf.String())
	}
	if len(objs) != len(rep.Results) {
		t.Fatalf("%d objects for %d results", len(objs), len(rep.Results))
	}
	statuses := map[string]int{}
	for i, o := range objs {
		var keys []string
		for k, v := range o {
			keys = append(keys, k)
			if _, ok := v.(string); !ok {
				t.Errorf("object %d: %s is %T, want a string", i, k, v)
			}
		}
		slices.Sort(keys)
		if want := []string{"advice", "check", "detail", "status", "subject"}; !slices.Equal(keys, want) {
			t.Errorf("object %d has keys %q, want %q", i, keys, want)
		}
		st, _ := o["status"].(string)
		statuses[st]++
		if st != "ok" && st != "warn" && st != "fail" {
			t.Errorf("object %d: status %q", i, st)
		}
	}
	if statuses["ok"] == 0 || statuses["warn"] == 0 || statuses["fail"] == 0 {
		t.Errorf("want all three statuses in this run, got %v\n%s", statuses, buf.String())
	}
	if !strings.Contains(buf.String(), `"check": "ptr",
    "subject": "2001:db8::10",
    "status": "fail",
    "detail": "no PTR record",`) {
		t.Errorf("JSON lacks the ptr failure:\n%s", buf.String())
	}

	// No results at all is still an array.
	buf.Reset()
	(&Report{}).WriteJSON(&buf)
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("empty report: %q, want []", buf.String())
	}
}

func TestUnreachable(t *testing.T) {
	// A loopback port nobody listens on: the client gets "connection
	// refused" at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()

	f := newFixture(t)
	f.cfg.Delivery.DNSServer = addr
	start := time.Now()
	rep := Run(context.Background(), f.cfg, Options{Addrs: addrs(ip4), Timeout: 500 * time.Millisecond})
	if !rep.Unreachable || len(rep.Results) != 1 {
		t.Fatalf("want only the dns result, got %+v", rep.Results)
	}
	r := rep.Results[0]
	if r.Check != "dns" || r.Subject != addr || r.Status != Fail || !strings.Contains(r.Advice, "dns_server") {
		t.Errorf("dns result %+v", r)
	}
	if c := rep.ExitCode(); c != mailerr.ExUnavailable {
		t.Errorf("exit code %d, want %d", c, mailerr.ExUnavailable)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the other checks must not be tried", d)
	}
}

func TestSilentServerIsUnreachable(t *testing.T) {
	f := newFixture(t)
	srv := dnstest.NewServer(t)
	srv.Timeout(host)
	f.cfg.Delivery.DNSServer = srv.Addr()
	rep := Run(context.Background(), f.cfg, Options{Addrs: addrs(ip4), Timeout: 200 * time.Millisecond})
	if !rep.Unreachable || rep.ExitCode() != mailerr.ExUnavailable {
		t.Errorf("want unreachable, got %+v", rep.Results)
	}
}

func TestAddressesFromInterfaces(t *testing.T) {
	f := newFixture(t)
	srv := goodZone(f.keys).serve(t)
	cidr := func(s string) net.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	ifs := []net.Addr{
		cidr("127.0.0.1/8"), cidr("::1/128"), cidr("10.0.0.5/8"), cidr("fe80::1/64"),
		cidr("fd00::5/64"), cidr("100.64.0.9/10"), cidr(ip4 + "/24"), cidr(ip6 + "/64"),
	}
	rep := runAgainst(t, f.cfg, srv, Options{InterfaceAddrs: func() ([]net.Addr, error) { return ifs, nil }})
	if r := rep.Results[0]; r.Check != "addr" || r.Status != OK || r.Detail != "192.0.2.10, 2001:db8::10 (the public addresses of the interfaces)" {
		t.Errorf("addr result %+v", r)
	}
	for _, r := range rep.Results {
		if r.Status != OK {
			t.Errorf("%s: %s: %s", key(r), r.Status, r.Detail)
		}
	}

	// Behind NAT: only private addresses, so hostname's records stand
	// for the host.
	rep = runAgainst(t, f.cfg, srv, Options{InterfaceAddrs: func() ([]net.Addr, error) { return ifs[:6], nil }})
	if r := rep.Results[0]; r.Check != "addr" || r.Status != OK || !strings.HasPrefix(r.Detail, "192.0.2.10, 2001:db8::10 (the A/AAAA records of mail.example.org") {
		t.Errorf("addr result %+v", r)
	}

	// A lab without public addresses or DNS for the host name: the
	// private addresses, with a warning.
	z := goodZone(f.keys)
	delete(z.addr, host)
	srv2 := z.serve(t)
	rep = runAgainst(t, f.cfg, srv2, Options{InterfaceAddrs: func() ([]net.Addr, error) { return ifs[:6], nil }})
	if r := rep.Results[0]; r.Check != "addr" || r.Status != Warn || !strings.HasPrefix(r.Detail, "10.0.0.5, fd00::5, 100.64.0.9: only private addresses") {
		t.Errorf("addr result %+v", r)
	}
}

func TestSmartHost(t *testing.T) {
	f := newFixture(t)
	z := goodZone(f.keys)
	z.addr["relay.isp.example"] = []string{"203.0.113.5"}
	z.txt["example.org"] = []string{"v=spf1 mx ip4:203.0.113.0/24 -all"}
	z.txt[host] = []string{"v=spf1 a -all"}
	delete(z.ptr, ip6) // would fail, but receivers never see this host
	srv := z.serve(t)
	f.cfg.Delivery.SmartHost = "[relay.isp.example]:587"
	rep := runAgainst(t, f.cfg, srv, Options{Addrs: addrs(ip4, ip6)})
	want := map[string]Status{
		"relay [relay.isp.example]:587": OK,
		"spf example.org":               OK,
		"spf " + host:                   Warn, // does not name the relay
		"spf example.net":               Warn,
	}
	for _, r := range rep.Results {
		if r.Check == "ptr" || r.Check == "ehlo" || r.Check == "ipv6" {
			t.Errorf("%s reported with a smart host", key(r))
		}
		if w, ok := want[key(r)]; ok && r.Status != w {
			t.Errorf("%s: %s, want %s: %s", key(r), r.Status, w, r.Detail)
		}
	}
	if rep.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0 (warnings only)", rep.ExitCode())
	}
}

func TestSPFSyntax(t *testing.T) {
	good := []string{
		"v=spf1", "v=spf1 -all", "v=spf1 mx a ~all", "v=spf1 a/24 mx//64 a:mail.example.org/28//96 -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.google.com ?all",
		"v=spf1 exists:%{i}._spf.example.org redirect=_spf.example.org", "v=spf1 ptr -all",
		"v=spf1 mx exp=explain._spf.%{d} -all", "v=spf1 mx unknown-mod=x -all", "V=SPF1 MX -ALL",
	}
	for _, rec := range good {
		if err := spfSyntax(rec); err != nil {
			t.Errorf("%q: %v", rec, err)
		}
	}
	bad := []string{
		"v=spf1 mx inlude:x.example -all", "v=spf1 all:x", "v=spf1 ip4:2001:db8::1", "v=spf1 ip6:192.0.2.1",
		"v=spf1 ip4:192.0.2.0/33", "v=spf1 include: -all", "v=spf1 redirect=a.example redirect=b.example",
		"v=spf1 a: -all", "v=spf1 +-all", "v=spf1 ip4",
	}
	for _, rec := range bad {
		if err := spfSyntax(rec); err == nil {
			t.Errorf("%q: no error", rec)
		}
	}
}
