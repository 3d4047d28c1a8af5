package mailq

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func TestListArgsWire(t *testing.T) {
	for _, a := range []ListArgs{
		{},
		{Verbose: true},
		{JSON: true, Only: "c"},
		{Verbose: true, JSON: true, Only: "m", Filters: []string{"Ralice", "!Sbob@example.org", "Q", "!Q", "I6AQ"}},
	} {
		args := a.Encode()
		got, err := ParseListArgs(args)
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("%+v: encoded %q, parsed %+v, %v", a, args, got, err)
		}
	}
	if got := (ListArgs{Verbose: true, JSON: true, Only: "m", Filters: []string{"!Rx"}}).Encode(); !reflect.DeepEqual(got, []string{"-v", "--json", "-Am", "-q!Rx"}) {
		t.Errorf("encoded %q", got)
	}
	for _, bad := range [][]string{{"-Ax"}, {"-A"}, {"--config", "/etc/passwd"}, {"-qXfoo"}, {"-q"}, {"-q!"}, {"remove"}, {"-v", "extra"}} {
		if a, err := ParseListArgs(bad); err == nil {
			t.Errorf("%q accepted as %+v", bad, a)
		}
	}
}

// daemonConfig is the daemon's configuration for the fixture, with extra
// keys appended.
func (f *fixture) daemonConfig(extra string) *config.Config {
	f.t.Helper()
	data, err := os.ReadFile(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg, err := config.Parse(f.cfg, append(data, extra...))
	if err != nil {
		f.t.Fatal(err)
	}
	return cfg
}

// The daemon's listing: root and the daemon's user see everything; another
// user their own messages, counted as shown; every message with
// mailq_all_users; nothing under restrictmailq.
func TestServeList(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	const daemonUID, www = 4242, 33 // the fixture's first MTA message is uid 33's
	// mine is the MSP section as uid 33 sees it.
	var mine string
	if os.Getuid() == 0 {
		// The drop files are root's; give one to uid 33.
		if err := os.Chown(filepath.Join(f.msp, "6AQ3mNAA011700"), www, -1); err != nil {
			t.Fatal(err)
		}
		owner := strconv.Itoa(www)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		mine = `\t\t{MSP} (1 request)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3mNAA011700        3 Thu Nov 26 03:48 ` + owner + `
\t\t\t\t\t b@example.com
\t\tTotal requests: 1
`
	} else {
		mine = "{MSP} is empty\n\\t\\tTotal requests: 0\n"
	}
	everything, _, code := f.run()
	if code != 0 {
		t.Fatal(code)
	}
	cfg := f.daemonConfig("")
	serve := func(cfg *config.Config, uid int, args ...string) control.Response {
		t.Helper()
		resp, warns := ServeList(cfg, uid, daemonUID, args)
		if len(warns) != 0 {
			t.Errorf("warnings: %v", warns)
		}
		return resp
	}
	for _, uid := range []int{0, daemonUID} {
		if r := serve(cfg, uid); !r.OK || r.Output != everything {
			t.Errorf("uid %d: %+v\nwant:\n%s", uid, r, everything)
		}
	}
	own := f.expand("MSP Queue status...\n" + mine + `MTA Queue status...
\t\t{MTA} (1 request)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3n0LQ012206        5 Thu Nov 26 03:49 www-data@example.org
                 (Deferred: Connection refused by mx.example.net.)
\t\t\t\t\t x@example.net
`)
	r := serve(cfg, www)
	total := 1
	if os.Getuid() == 0 {
		total = 2
	}
	own += "\t\tTotal requests: " + strconv.Itoa(total) + "\n"
	if !r.OK || r.Output != own {
		t.Errorf("uid %d: got:\n%s\nwant:\n%s", www, r.Output, own)
	}
	if n := checkMailqCount(r.Output); n != total {
		t.Errorf("check_mailq reads %d, want %d", n, total)
	}
	// A user with nothing in the queue sees empty queues.
	if r := serve(cfg, 1234); !r.OK || checkMailqCount(r.Output) != 0 || strings.Contains(r.Output, "6AQ") {
		t.Errorf("uid 1234: %+v", r)
	}
	// The options apply to what the user may see: JSON, filters, -Am.
	r = serve(cfg, www, "--json", "-Am")
	if !r.OK || strings.Count(r.Output, "\n") != 1 || !strings.Contains(r.Output, `"queue_id":"6AQ3n0LQ012206"`) {
		t.Errorf("--json -Am: %+v", r)
	}
	r = serve(cfg, www, "-v", "-Am", "-q!Sroot")
	if !r.OK || !strings.HasPrefix(r.Output, "\t\t"+f.mta+" (1 request)\n"+headerVerbose) || !strings.HasSuffix(r.Output, "\t\tTotal requests: 1\n") {
		t.Errorf("-v -Am -q!Sroot:\n%s", r.Output)
	}
	if r := serve(cfg, www, "-Am", "-qSroot"); !r.OK || r.Output != f.mta+" is empty\n\t\tTotal requests: 0\n" {
		t.Errorf("-qSroot: another user's message leaks:\n%s", r.Output)
	}
	if r := serve(cfg, www, "-qZ"); r.OK || r.Status != mailerr.ExUsage {
		t.Errorf("bad filter: %+v", r)
	}

	all := f.daemonConfig("mailq_all_users = true\n")
	if r := serve(all, www); !r.OK || r.Output != everything {
		t.Errorf("mailq_all_users: %+v", r)
	}

	for _, extra := range []string{`privacy = ["goaway", "restrictmailq"]` + "\n", "mailq_all_users = true\nprivacy = [\"restrictmailq\"]\n"} {
		restricted := f.daemonConfig(extra)
		if r := serve(restricted, www); r.OK || r.Error != "You are not permitted to see the queue" || r.Status != 77 || r.Output != "" {
			t.Errorf("%s: %+v", extra, r)
		}
		for _, uid := range []int{0, daemonUID} {
			if r := serve(restricted, uid); !r.OK || r.Output != everything {
				t.Errorf("%s: uid %d: %+v", extra, uid, r)
			}
		}
	}

	os.RemoveAll(f.mta)
	if r := serve(cfg, www); r.OK || r.Status != mailerr.ExUnavailable || !strings.Contains(r.Error, f.mta) {
		t.Errorf("missing queue_dir: %+v", r)
	}
	if r := serve(cfg, www, "-Ac"); !r.OK {
		t.Errorf("-Ac without queue_dir: %+v", r)
	}
}

// The daemon logs unreadable files instead of telling the caller.
func TestServeListWarnings(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(filepath.Join(f.msp, "6AQ3n0LQ088888"), []byte("VD1\nnonsense\n"), 0o744)
	resp, warns := ServeList(f.daemonConfig(""), 1234, 4242, nil)
	if !resp.OK || strings.Contains(resp.Output, "6AQ3n0LQ088888") || len(warns) != 1 || !strings.Contains(warns[0].Error(), "6AQ3n0LQ088888") {
		t.Errorf("%+v %v", resp, warns)
	}
}

func TestAskDaemon(t *testing.T) {
	defer func(g func() int) { geteuid = g }(geteuid)
	denied := &DirError{Dir: "/q", Err: &os.PathError{Op: "open", Path: "/q", Err: syscall.EACCES}}
	eperm := &DirError{Dir: "/q", Err: &os.PathError{Op: "open", Path: "/q", Err: syscall.EPERM}}
	missing := &DirError{Dir: "/q", Err: &os.PathError{Op: "open", Path: "/q", Err: syscall.ENOENT}}
	geteuid = func() int { return 1000 }
	if !askDaemon(denied) || !askDaemon(eperm) || askDaemon(missing) {
		t.Error("user: ask the daemon when refused a queue directory, and only then")
	}
	geteuid = func() int { return 0 }
	if askDaemon(denied) {
		t.Error("root never asks the daemon")
	}
}

// fakeDaemon answers the control socket of f with answer, recording the
// requests it gets.
type fakeDaemon struct {
	mu     sync.Mutex
	got    []control.Request
	peers  []control.Peer
	answer control.Response
}

func (d *fakeDaemon) set(r control.Response) {
	d.mu.Lock()
	d.answer = r
	d.mu.Unlock()
}

func (d *fakeDaemon) last() (control.Request, control.Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.got) == 0 {
		return control.Request{}, control.Peer{}
	}
	return d.got[len(d.got)-1], d.peers[len(d.peers)-1]
}

func startFake(t *testing.T, sock string) *fakeDaemon {
	d := &fakeDaemon{}
	ln, err := control.Listen(sock, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go control.Serve(ln, func(p control.Peer, req control.Request) control.Response {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.got = append(d.got, req)
		d.peers = append(d.peers, p)
		return d.answer
	})
	return d
}

// listRemote sends the options, prints the daemon's answer as it is and
// turns refusals into one line and the daemon's status.
func TestListRemote(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control")
	a := ListArgs{Verbose: true, Only: "m", Filters: []string{"!Rbob"}}
	list := func() (string, string, int) {
		var out, errs bytes.Buffer
		err := listRemote(sock, a, &out)
		if err != nil {
			errs.WriteString(oneLine(err.Error()))
		}
		return out.String(), errs.String(), mailerr.ExitCode(err)
	}

	out, errs, code := list()
	if code != 69 || out != "" || errs != "the daemon is not running ("+sock+"); only root can list the queue without it" {
		t.Errorf("no daemon: exit %d, %q %q", code, out, errs)
	}

	d := startFake(t, sock)
	listing := "\t\t/var/spool/mqueue (1 request)\n" + headerVerbose + "x\n\t\tTotal requests: 1\n"
	d.set(control.Response{OK: true, Output: listing})
	out, errs, code = list()
	req, peer := d.last()
	if code != 0 || out != listing || errs != "" {
		t.Errorf("ok: exit %d, %q %q", code, out, errs)
	}
	if req.Cmd != "list" || !reflect.DeepEqual(req.Args, []string{"-v", "-Am", "-q!Rbob"}) || peer.UID != os.Getuid() {
		t.Errorf("request %+v from %+v", req, peer)
	}

	d.set(control.Response{Error: NotPermitted, Status: 77})
	if out, errs, code = list(); code != 77 || out != "" || errs != "You are not permitted to see the queue" {
		t.Errorf("restrictmailq: exit %d, %q %q", code, out, errs)
	}
	d.set(control.Response{Error: "cannot read queue directory /q: no such file or directory", Status: 69})
	if _, errs, code = list(); code != 69 || errs != "cannot read queue directory /q: no such file or directory" {
		t.Errorf("daemon's error: exit %d, %q", code, errs)
	}
	// A daemon that does not know "list".
	d.set(control.Response{Error: `unknown command "list"`})
	if _, errs, code = list(); code != 69 || errs != `the daemon cannot list the queue (it says: unknown command "list")` {
		t.Errorf("old daemon: exit %d, %q", code, errs)
	}
}

// A user refused a queue directory gets the daemon's listing, and a one-
// line error with exit 69 when no daemon runs. (Root reads any directory,
// so this part needs an ordinary user; the black-box tests in test/ run
// the real thing as uid 65534.)
func TestListAsksDaemon(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads every directory")
	}
	f := newFixture(t)
	sock := filepath.Join(filepath.Dir(f.cfg), "control")
	os.Chmod(f.mta, 0o300)
	defer os.Chmod(f.mta, 0o755)
	_, errs, code := f.run("-Am")
	if code != 69 || errs != "mailq: the daemon is not running ("+sock+"); only root can list the queue without it\n" {
		t.Errorf("no daemon: exit %d, %q", code, errs)
	}
	d := startFake(t, sock)
	d.set(control.Response{OK: true, Output: "the daemon's listing\n"})
	out, errs, code := f.run("--json", "-qIabc")
	req, _ := d.last()
	if code != 0 || out != "the daemon's listing\n" || errs != "" || !reflect.DeepEqual(req.Args, []string{"--json", "-qIabc"}) {
		t.Errorf("exit %d, %q %q, request %+v", code, out, errs, req)
	}
}
