package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Status is the verdict of one check.
type Status string

const (
	OK   Status = "ok"   // as receivers want it
	Warn Status = "warn" // works, but some receivers may take it badly
	Fail Status = "fail" // receivers will refuse or junk mail over it
)

// Result is one finding: which check, about what (an address, a domain, a
// DNS name), the verdict, what was found, and one line of advice (empty
// when there is nothing to do).
type Result struct {
	Check   string `json:"check"`
	Subject string `json:"subject"`
	Status  Status `json:"status"`
	Detail  string `json:"detail"`
	Advice  string `json:"advice"`
}

// Report is what Run found.
type Report struct {
	Results []Result
	// Unreachable is set when the DNS server gave no answer at all; then
	// Results holds only the "dns" result that says so.
	Unreachable bool
}

// ExitFailed is the exit status when a check failed. It is not one of the
// sysexits codes on purpose: those say that doctor itself could not do
// its job (78 for the configuration, 69 for DNS), while 1 says that it did
// and found something to fix.
const ExitFailed = 1

// ExitCode is the status the doctor command exits with: 0 when nothing
// failed (warnings allowed), ExitFailed when a check failed, and
// mailerr.ExUnavailable (69) when DNS could not be reached at all.
func (r *Report) ExitCode() int {
	if r.Unreachable {
		return mailerr.ExUnavailable
	}
	for _, res := range r.Results {
		if res.Status == Fail {
			return ExitFailed
		}
	}
	return 0
}

// Count returns how many results have each status.
func (r *Report) Count() (ok, warn, fail int) {
	for _, res := range r.Results {
		switch res.Status {
		case OK:
			ok++
		case Warn:
			warn++
		case Fail:
			fail++
		}
	}
	return ok, warn, fail
}

// WriteText prints one line per result,
//
//	OK    ptr    192.0.2.10: mail.example.org, which resolves back to it
//	FAIL  spf    example.org: no SPF record — publish TXT "v=spf1 mx -all" at example.org
//
// and a last line that counts them.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-5s %-6s %s: %s", strings.ToUpper(string(res.Status)), res.Check, res.Subject, res.Detail)
		if res.Advice != "" {
			b.WriteString(" — " + res.Advice)
		}
		b.WriteByte('\n')
	}
	ok, warn, fail := r.Count()
	fmt.Fprintf(&b, "doctor: %d ok, %d warning(s), %d failed\n", ok, warn, fail)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the results as one JSON array of objects with the keys
// check, subject, status ("ok", "warn" or "fail"), detail and advice.
func (r *Report) WriteJSON(w io.Writer) error {
	res := r.Results
	if res == nil {
		res = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}

// Options adjusts Run; the zero value checks this machine as the daemon
// would run on it.
type Options struct {
	// Addrs, when set, are the addresses checked as this host's, and the
	// interfaces are not looked at: for reproducible tests, for a host
	// behind NAT, or to check a server from another machine.
	Addrs []netip.Addr
	// Resolver answers the questions; nil means a dns.Client asking the
	// configuration's dns_server (else the system's resolver).
	Resolver Resolver
	// Timeout bounds each DNS attempt when Resolver is nil; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// InterfaceAddrs lists the machine's addresses; nil means
	// net.InterfaceAddrs.
	InterfaceAddrs func() ([]net.Addr, error)
}

// DefaultTimeout bounds each DNS attempt, as the daemon's lookups are
// bounded.
const DefaultTimeout = 5 * time.Second

// Run checks what the configuration's hostname and domains publish in DNS.
// See the package documentation for the checks.
func Run(ctx context.Context, cfg *config.Config, opt Options) *Report {
	if ctx == nil {
		ctx = context.Background()
	}
	res := opt.Resolver
	server := ""
	if res == nil {
		timeout := opt.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		c := dns.New(cfg.Delivery.DNSServer, timeout)
		res, server = c, c.Server()
	}
	if opt.InterfaceAddrs == nil {
		opt.InterfaceAddrs = net.InterfaceAddrs
	}
	d := &run{
		ctx:  ctx,
		cfg:  cfg,
		opt:  opt,
		r:    newCache(res),
		host: canon(cfg.Hostname),
		ptrs: make(map[netip.Addr]*ptrInfo),
	}

	// The host name's addresses are the first question: if it gets no
	// answer at all, neither will anything else, and asking a dead server
	// dozens of times would only make the admin wait.
	hostIPs, hostErr := d.r.IP(ctx, d.host, "any")
	if unreachable(hostErr) {
		where := server
		if where == "" {
			where = "the DNS server"
		}
		return &Report{Unreachable: true, Results: []Result{{
			Check: "dns", Subject: where, Status: Fail,
			Detail: "no answer: " + dnsProblem(hostErr),
			Advice: "check [delivery] dns_server (or /etc/resolv.conf when it is unset): the daemon asks the same server",
		}}}
	}
	d.findAddrs(hostIPs, hostErr)
	d.checkHost(hostIPs, hostErr)
	d.checkOutbound()
	local := d.localDomains()
	mxHosts := d.checkMX(local)
	d.checkListen(len(mxHosts) > 0)
	dkimResults, signing := d.checkDKIM()

	domains := unique(append(append([]string{d.host}, local...), signing...))
	d.checkSPF(domains, mxHosts)
	d.results = append(d.results, dkimResults...)
	d.checkDMARC(domains)
	return &Report{Results: d.results}
}

// run is the state of one Run.
type run struct {
	ctx     context.Context
	cfg     *config.Config
	opt     Options
	r       *cache
	host    string       // the configured hostname: the EHLO name
	addrs   []netip.Addr // this host's addresses, all families
	out     []netip.Addr // the addresses mail leaves from (client_family; the smart host's)
	source  string       // where addrs came from, for the addr result
	smart   string       // the smart host, when mail leaves through one
	ptrs    map[netip.Addr]*ptrInfo
	results []Result
}

func (d *run) add(check, subject string, st Status, detail, advice string) {
	if st == OK {
		advice = ""
	}
	d.results = append(d.results, Result{Check: check, Subject: subject, Status: st, Detail: detail, Advice: advice})
}

// isOurs says whether ip is one of this host's addresses.
func (d *run) isOurs(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, a := range d.addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// checkable says whether a domain from a table is worth asking DNS about:
// a name with a dot, not localhost, not an address literal.
func checkable(name string) bool {
	n := canon(name)
	if n == "" || !strings.Contains(n, ".") || strings.ContainsAny(n, "[]:/@ ") {
		return false
	}
	if n == "localhost" || strings.HasPrefix(n, "localhost.") {
		return false
	}
	if _, err := netip.ParseAddr(n); err == nil {
		return false
	}
	return true
}

func unique(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0:0]
	for _, n := range names {
		n = canon(n)
		if n == "" || seen[n] || !checkable(n) {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

func joinAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
