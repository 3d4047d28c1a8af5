package mailq

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

func TestMain(m *testing.M) {
	// mailq prints local time; the golden output is written in UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// t0 is 2026-11-26 03:49:00 UTC, the time of CONTRACT.md's example.
var t0 = time.Unix(1795664940, 0)

// fixture is a configuration with both queues in a temporary directory.
type fixture struct {
	t                  *testing.T
	mta, msp, cfg, log string
	q                  *spool.Queue
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		t:   t,
		mta: filepath.Join(root, "spool/mqueue"),
		msp: filepath.Join(root, "spool/mqueue-client"),
		cfg: filepath.Join(root, "gosendmail.toml"),
		log: filepath.Join(root, "maillog"),
	}
	for _, d := range []string{f.mta, f.msp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := "queue_dir = " + strconv.Quote(f.mta) + "\nmaildrop_dir = " + strconv.Quote(f.msp) +
		"\nlog = " + strconv.Quote(f.log) + "\ncontrol_socket = " + strconv.Quote(filepath.Join(root, "control")) + "\n"
	if err := os.WriteFile(f.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.q = spool.Open(f.mta)
	return f
}

// add queues a message in the MTA queue under env.ID.
func (f *fixture) add(env *spool.Envelope, body string) {
	f.t.Helper()
	want := env.ID
	if err := f.q.Create(env, strings.NewReader(body)); err != nil {
		f.t.Fatal(err)
	}
	if want != "" && env.ID != want {
		f.t.Fatalf("queued as %s, want %s", env.ID, want)
	}
}

// drop leaves a drop file in the MSP queue, renamed to id so that the
// output is predictable.
func (f *fixture) drop(id string, env *maildrop.Envelope, msg string) {
	f.t.Helper()
	w, err := maildrop.Create(f.msp, env)
	if err != nil {
		f.t.Fatal(err)
	}
	io.WriteString(w, msg)
	if err := w.Commit(); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.msp, w.ID), filepath.Join(f.msp, id)); err != nil {
		f.t.Fatal(err)
	}
}

// run runs Main with the fixture's configuration.
func (f *fixture) run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = Main(append([]string{"--config", f.cfg}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// expand fills in the fixture's directories and makes \t readable in
// golden text.
func (f *fixture) expand(golden string) string {
	return strings.NewReplacer("{MTA}", f.mta, "{MSP}", f.msp, `\t`, "\t", "{OWNER}", currentUser(f.t)).Replace(golden)
}

func currentUser(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// standard fills both queues with the messages the golden tests show and
// returns a function that releases the lock held on the third.
func (f *fixture) standard() (unlock func()) {
	f.t.Helper()
	f.drop("6AQ3mMWM011603", &maildrop.Envelope{Created: t0.Add(-38 * time.Second), Sender: "php@example.org", SenderSet: true,
		Rcpts: []maildrop.Rcpt{{Addr: "a@example.com"}}}, "Subject: hi\r\n\r\nhello\r\n")
	f.drop("6AQ3mNAA011700", &maildrop.Envelope{Created: t0.Add(-37 * time.Second),
		Rcpts: []maildrop.Rcpt{{Addr: "b@example.com"}}}, "x\r\n")
	f.add(&spool.Envelope{ID: "6AQ3n0LQ012206", Created: t0, Sender: "www-data@example.org", UID: 33, User: "www-data",
		Attempts: 1, Priority: 120066, Status: "Deferred: Connection refused by mx.example.net.",
		Rcpts: []spool.Recipient{{Addr: "x@example.net", State: spool.Pending, Reason: "Connection refused by mx.example.net."},
			{Addr: "sent@example.net", State: spool.Sent}}}, "abc\r\n")
	f.add(&spool.Envelope{ID: "6AQ3n0xR012208", Created: t0.Add(30 * time.Second), Sender: "", UID: -1, Client: "mx [192.0.2.1]",
		Priority: 30912, Hold: "spam run",
		Rcpts: []spool.Recipient{{Addr: "Y Two <Y2@example.net>", State: spool.Pending}}}, strings.Repeat("z", 910)+"\r\n")
	f.add(&spool.Envelope{ID: "6AQ3o5aa012300", Created: t0.Add(65 * time.Second), Sender: "root@test.example", UID: 0, User: "root",
		Priority: 60040, Rcpts: []spool.Recipient{{Addr: "c@example.com", State: spool.Pending},
			{Addr: "failed@example.com", State: spool.Failed, Reason: "550 5.1.1 no"},
			{Addr: "d@example.com", State: spool.Pending}}},
		"Subject: locked\r\n\r\n0123456789012345678\r\n")
	unlock, err := f.q.Lock("6AQ3o5aa012300")
	if err != nil {
		f.t.Fatal(err)
	}
	return unlock
}

const goldenBoth = `MSP Queue status...
\t\t{MSP} (2 requests)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3mMWM011603       22 Thu Nov 26 03:48 php@example.org
\t\t\t\t\t a@example.com
6AQ3mNAA011700        3 Thu Nov 26 03:48 {OWNER}
\t\t\t\t\t b@example.com
\t\tTotal requests: 2
MTA Queue status...
\t\t{MTA} (3 requests)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3n0LQ012206        5 Thu Nov 26 03:49 www-data@example.org
                 (Deferred: Connection refused by mx.example.net.)
\t\t\t\t\t x@example.net
6AQ3n0xR012208X     912 Thu Nov 26 03:49 <>
                 (QUARANTINE: spam run)
\t\t\t\t\t Y Two <Y2@example.net>
6AQ3o5aa012300*      40 Thu Nov 26 03:50 root@test.example
\t\t\t\t\t c@example.com
\t\t\t\t\t d@example.com
\t\tTotal requests: 5
`

func TestListGolden(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	out, errs, code := f.run()
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if want := f.expand(goldenBoth); out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if n := checkMailqCount(out); n != 5 {
		t.Errorf("check_mailq reads %d requests, want 5", n)
	}
}

func TestListVerbose(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	out, _, code := f.run("-v", "-Am")
	want := f.expand(`\t\t{MTA} (3 requests)
-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------
6AQ3n0LQ012206        5     120066 Nov 26 03:49 www-data@example.org
                 (Deferred: Connection refused by mx.example.net.)
\t\t\t\t\t\tx@example.net
6AQ3n0xR012208X     912      30912 Nov 26 03:49 <>
                 (QUARANTINE: spam run)
\t\t\t\t\t\tY Two <Y2@example.net>
6AQ3o5aa012300*      40      60040 Nov 26 03:50 root@test.example
\t\t\t\t\t\tc@example.com
\t\t\t\t\t\td@example.com
\t\tTotal requests: 3
`)
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestListOneQueue(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	want := f.expand(`\t\t{MSP} (2 requests)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3mMWM011603       22 Thu Nov 26 03:48 php@example.org
\t\t\t\t\t a@example.com
6AQ3mNAA011700        3 Thu Nov 26 03:48 {OWNER}
\t\t\t\t\t b@example.com
\t\tTotal requests: 2
`)
	for _, args := range [][]string{{"-Ac"}, {"-A", "c"}, {"--queue=c"}} {
		out, errs, code := f.run(args...)
		if code != 0 || out != want {
			t.Errorf("%q: exit %d %s, got:\n%s\nwant:\n%s", args, code, errs, out, want)
		}
	}
	if _, errs, code := f.run("-Ax"); code != 64 || !strings.Contains(errs, "-Ax") {
		t.Errorf("-Ax: exit %d, %q", code, errs)
	}
}

func TestListEmpty(t *testing.T) {
	f := newFixture(t)
	out, _, code := f.run()
	want := f.expand(`MSP Queue status...
{MSP} is empty
\t\tTotal requests: 0
MTA Queue status...
{MTA} is empty
\t\tTotal requests: 0
`)
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
	if out, _, _ := f.run("--json"); out != "" {
		t.Errorf("--json of empty queues: %q", out)
	}
}

// TestGrandTotal: mail stuck in the maildrop while the MTA queue is empty
// (the daemon is down) must still reach check_mailq's count, and one
// message gets the singular "request".
func TestGrandTotal(t *testing.T) {
	f := newFixture(t)
	f.drop("6AQ3mMWM011603", &maildrop.Envelope{Created: t0, Sender: "", SenderSet: true,
		Rcpts: []maildrop.Rcpt{{Addr: "a@example.com"}}}, "x\r\n")
	out, _, _ := f.run()
	want := f.expand(`MSP Queue status...
\t\t{MSP} (1 request)
-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
6AQ3mMWM011603        3 Thu Nov 26 03:49 <>
\t\t\t\t\t a@example.com
\t\tTotal requests: 1
MTA Queue status...
{MTA} is empty
\t\tTotal requests: 1
`)
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if n := checkMailqCount(out); n != 1 {
		t.Errorf("check_mailq reads %d, want 1", n)
	}
}

// checkMailqCount applies monitoring-plugins check_mailq's sendmail rules:
// a count from "(N request" on a line mentioning mqueue, overridden by
// every "Total requests: N" line; the last one wins.
func checkMailqCount(out string) int {
	count := -1
	section := regexp.MustCompile(` \((\d+) request`)
	total := regexp.MustCompile(`(?i)^\s+Total\sRequests:\s(\d+)$`)
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if m := section.FindStringSubmatch(line); m != nil && strings.Contains(line, "mqueue") {
			count, _ = strconv.Atoi(m[1])
		}
		if m := total.FindStringSubmatch(line); m != nil {
			count, _ = strconv.Atoi(m[1])
		}
	}
	return count
}

func TestCheckMailqRules(t *testing.T) {
	mk := func(n int, id byte) []Item {
		var items []Item
		for i := 0; i < n; i++ {
			items = append(items, Item{ID: "6AQ3n0LQ01220" + string(id+byte(i)), Arrival: t0, Rcpts: []Rcpt{{Addr: "a@b"}}})
		}
		return items
	}
	for _, c := range []struct{ msp, mta int }{{0, 0}, {3, 0}, {0, 4}, {2, 5}, {1, 1}} {
		var b bytes.Buffer
		msp := &Section{Dir: "/var/spool/mqueue-client", Items: mk(c.msp, '0')}
		mta := &Section{Dir: "/var/spool/mqueue", Items: mk(c.mta, '5')}
		if err := Print(&b, msp, mta, Options{Headings: true}); err != nil {
			t.Fatal(err)
		}
		if got := checkMailqCount(b.String()); got != c.msp+c.mta {
			t.Errorf("msp %d mta %d: check_mailq reads %d\n%s", c.msp, c.mta, got, b.String())
		}
	}
}

func TestJSON(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	out, errs, code := f.run("--json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	want := []string{
		`{"queue_name":"maildrop","queue_id":"6AQ3mMWM011603","arrival_time":1795664902,"message_size":22,"forced_expire":false,"sender":"php@example.org","recipients":[{"address":"a@example.com"}]}`,
		`{"queue_name":"deferred","queue_id":"6AQ3n0LQ012206","arrival_time":1795664940,"message_size":5,"forced_expire":false,"sender":"www-data@example.org","recipients":[{"address":"x@example.net","delay_reason":"Connection refused by mx.example.net."}]}`,
		`{"queue_name":"hold","queue_id":"6AQ3n0xR012208","arrival_time":1795664970,"message_size":912,"forced_expire":false,"sender":"","recipients":[{"address":"Y Two <Y2@example.net>"}]}`,
		`{"queue_name":"active","queue_id":"6AQ3o5aa012300","arrival_time":1795665005,"message_size":40,"forced_expire":false,"sender":"root@test.example","recipients":[{"address":"c@example.com"},{"address":"d@example.com"}]}`,
	}
	for i, w := range []int{0, 2, 3, 4} {
		if lines[w] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", w, lines[w], want[i])
		}
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("not JSON: %s: %v", l, err)
		}
	}
	// Filters and -Ac apply to JSON too.
	out, _, _ = f.run("--json", "-Ac", "-qSphp")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `"6AQ3mMWM011603"`) {
		t.Errorf("--json -Ac -qSphp:\n%s", out)
	}
}

func TestFilterCLI(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	ids := func(out string) string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 15 && spool.ValidID(l[:14]) {
				got = append(got, l[:14])
			}
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-qRy2@EXAMPLE"}, "6AQ3n0xR012208"},
		{[]string{"-qR", "y2@example"}, "6AQ3n0xR012208"},
		{[]string{"-qR", "sent@example.net"}, ""}, // delivered recipients do not count
		{[]string{"-qI012206", "-qI012208"}, "6AQ3n0LQ012206 6AQ3n0xR012208"},
		{[]string{"-q!I0122"}, "6AQ3mMWM011603 6AQ3mNAA011700 6AQ3o5aa012300"},
		{[]string{"-qS<>"}, "6AQ3n0xR012208"},
		{[]string{"-qSexample.org", "-q!Rx@"}, "6AQ3mMWM011603"},
		{[]string{"-qQ"}, "6AQ3n0xR012208"},
		{[]string{"-qQ", "-v"}, "6AQ3n0xR012208"},
		{[]string{"-qQspam"}, "6AQ3n0xR012208"},
		{[]string{"-qQham"}, ""},
		{[]string{"-q!Q"}, "6AQ3mMWM011603 6AQ3mNAA011700 6AQ3n0LQ012206 6AQ3o5aa012300"},
	} {
		out, errs, code := f.run(c.args...)
		if code != 0 {
			t.Errorf("%q: exit %d %s", c.args, code, errs)
		}
		if got := ids(out); got != c.want {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
		if want := len(strings.Fields(c.want)); checkMailqCount(out) != want {
			t.Errorf("%q: total %d, want %d:\n%s", c.args, checkMailqCount(out), want, out)
		}
	}
	for _, bad := range [][]string{{"-qX"}, {"-q!"}, {"-q"}} {
		if _, errs, code := f.run(bad...); code != 64 || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q", bad, code, errs)
		}
	}
}

func TestParseFilter(t *testing.T) {
	it := &Item{ID: "6AQ3n0LQ012206", Sender: "Www-Data@Example.org", Rcpts: []Rcpt{{Addr: "a@x.example"}, {Addr: "B@Y.example"}}}
	for _, c := range []struct {
		specs []string
		want  bool
	}{
		{nil, true},
		{[]string{"Ib"}, false},
		{[]string{"I6AQ"}, true},
		{[]string{"i6AQ"}, false}, // unknown letter: checked below
		{[]string{"Rb@y"}, true},
		{[]string{"!Rb@y"}, false},
		{[]string{"Rzzz", "Ra@"}, true},            // same letter: OR
		{[]string{"Ra@", "Szzz"}, false},           // different letters: AND
		{[]string{"Swww-data@example"}, true},      // sender ignores case
		{[]string{"Q"}, false},                     // not held
		{[]string{"!Rzzz", "!Ra@x"}, true},         // one of the negations holds
		{[]string{"I6aq"}, false},                  // IDs are case-sensitive
		{[]string{"S<>"}, false},                   // not the null sender
		{[]string{"R"}, true},                      // empty substring
		{[]string{"!R"}, false},                    // ...negated
		{[]string{"Ra@x.example", "!Rb@"}, true},   // OR within R
		{[]string{"!Ra@x.example", "!Rb@"}, false}, // both negations fail
	} {
		f, err := ParseFilter(c.specs)
		if c.specs != nil && c.specs[0] == "i6AQ" {
			if err == nil {
				t.Errorf("%q: no error", c.specs)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.specs, err)
			continue
		}
		if got := f.Match(it); got != c.want {
			t.Errorf("%q: %v, want %v", c.specs, got, c.want)
		}
	}
}

func TestJoinFilterArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"-qR foo", "-qRfoo"},
		{"-q!S foo -v", "-q!Sfoo -v"},
		{"-qQ -v", "-qQ -v"},
		{"-qQ", "-qQ"},
		{"-qIabc x", "-qIabc x"},
		{"-- -qR foo", "-- -qR foo"},
	} {
		if got := strings.Join(joinFilterArgs(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestCorruptFiles: bad files are warnings, the rest is listed, exit 0.
func TestCorruptFiles(t *testing.T) {
	f := newFixture(t)
	f.add(&spool.Envelope{ID: "6AQ3n0LQ012206", Created: t0, Sender: "a@example.org", UID: -1,
		Rcpts: []spool.Recipient{{Addr: "x@example.net", State: spool.Pending}}}, "abc\r\n")
	bad := "6AQ3n0LQ099999"
	os.WriteFile(filepath.Join(f.mta, "df"+bad), []byte("x\r\n"), 0o600)
	os.WriteFile(filepath.Join(f.mta, "qf"+bad), []byte("V1\ngarbage\n"), 0o600)
	os.WriteFile(filepath.Join(f.msp, "6AQ3n0LQ088888"), []byte("VD1\nnonsense\n"), 0o744)
	out, errs, code := f.run()
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "6AQ3n0LQ012206 ") || checkMailqCount(out) != 1 {
		t.Errorf("listing:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "mailq: warning: 6AQ3n0LQ088888: ") ||
		!strings.HasPrefix(lines[1], "mailq: warning: 6AQ3n0LQ099999: ") || !strings.Contains(lines[1], "set aside") {
		t.Errorf("stderr:\n%s", errs)
	}
	if _, err := os.Stat(filepath.Join(f.mta, "Qf"+bad)); err != nil {
		t.Errorf("corrupt qf not set aside: %v", err)
	}
}

func TestUnreadableQueue(t *testing.T) {
	f := newFixture(t)
	os.Remove(f.mta)
	out, errs, code := f.run()
	if code != 69 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, f.mta) {
		t.Errorf("missing queue dir: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// (A user refused a queue directory asks the daemon: see
	// TestListAsksDaemon.)
	if c := exitFor(&DirError{Dir: "/x", Err: &os.PathError{Op: "open", Path: "/x", Err: os.ErrPermission}}); c != 77 {
		t.Errorf("permission denied: exit %d", c)
	}
}

func TestBadConfig(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.cfg, []byte("queue_dir = 5\nbogus = 1\n"), 0o644)
	for _, args := range [][]string{nil, {"remove", "6AQ3n0LQ012206"}} {
		_, errs, code := f.run(args...)
		if code != 78 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, f.cfg) {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestUsage(t *testing.T) {
	f := newFixture(t)
	for _, args := range [][]string{{"bogus"}, {"--bogus"}, {"show"}, {"hold"}, {"remove", "-qIx"}} {
		_, errs, code := f.run(args...)
		if code != 64 || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	out, _, code := f.run("--help")
	if code != 0 || !strings.Contains(out, "Exit status") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

// Control bytes from an envelope never reach the terminal.
func TestHostileEnvelope(t *testing.T) {
	f := newFixture(t)
	f.add(&spool.Envelope{ID: "6AQ3n0LQ012206", Created: t0, Sender: "a\x1b[2J@example.org", UID: -1, Status: "bad\r\nline",
		Rcpts: []spool.Recipient{{Addr: "x\t@example.net", State: spool.Pending}}}, "abc\r\n")
	out, _, _ := f.run("-Am")
	want := "6AQ3n0LQ012206        5 Thu Nov 26 03:49 a?[2J@example.org\n" +
		"                 (bad??line)\n" +
		"\t\t\t\t\t x?@example.net\n"
	if !strings.Contains(out, want) {
		t.Errorf("got:\n%q", out)
	}
}
