package mailq

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/sendmailq"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"golang.org/x/sys/unix"
)

// sendmailFixtures are the hand-written sendmail queues of pkg/sendmailq.
const sendmailFixtures = "../sendmailq/testdata"

// copyQueue copies a fixture queue (a directory of sendmailFixtures) to
// dst, which it creates.
func copyQueue(t *testing.T, name, dst string) {
	t.Helper()
	src := filepath.Join(sendmailFixtures, name)
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// files lists the regular files under dir, relative, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func (f *fixture) envelopes() map[string]*spool.Envelope {
	f.t.Helper()
	envs, errs := f.q.Scan()
	if len(errs) > 0 {
		f.t.Fatalf("queue: %v", errs)
	}
	m := map[string]*spool.Envelope{}
	for _, e := range envs {
		m[e.ID] = e
	}
	return m
}

// wantMessage is the df gosendmail should hold for a sendmail message.
func wantMessage(t *testing.T, qfPath, dfPath string) string {
	t.Helper()
	data, err := os.ReadFile(qfPath)
	if err != nil {
		t.Fatal(err)
	}
	qf, err := sendmailq.Parse(filepath.Base(qfPath)[2:], data)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(dfPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(qf.HeaderBlock(sendmailq.SMTPMailerFlags)) + "\r\n" + strings.ReplaceAll(string(body), "\n", "\r\n")
}

func TestImportFlat(t *testing.T) {
	f := newFixture(t)
	src := filepath.Join(t.TempDir(), "mqueue")
	copyQueue(t, "flat", src)

	out, errs, code := f.run("import", src)
	want := "6AP9xR4a010117 -> 6AP9xR4a010117 (4 recipients)\n" +
		"6AQ3n0LQ012206 -> 6AQ3n0LQ012206 (1 recipient)\n" +
		"6AQ3p1Hq012410 -> 6AQ3p1Hq012410 (1 recipient)\n" +
		"6AQ3q0Rs012501 -> 6AQ3q0Rs012501 (1 recipient)\n" +
		"6AQ3r0Lo012601 -> 6AQ3r0Lo012601 (1 recipient)\n"
	if code != 0 || errs != "" || out != want {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	envs := f.envelopes()
	if len(envs) != 5 {
		t.Fatalf("%d messages queued", len(envs))
	}
	// The newsletter: every envelope field that carries over.
	e := envs["6AP9xR4a010117"]
	wantEnv := &spool.Envelope{
		ID:          "6AP9xR4a010117",
		Created:     time.Date(2026, 11, 25, 9, 59, 27, 0, time.UTC),
		LastAttempt: time.Date(2026, 11, 26, 3, 50, 12, 0, time.UTC),
		Attempts:    14,
		Priority:    1290532,
		Sender:      "bounces+news=example.net@lists.example.com",
		UID:         -1,
		Client:      "mx1.lists.example.com [198.51.100.25]",
		BodyType:    "8BITMIME",
		EnvID:       "list-mail.20261125",
		Ret:         "FULL",
		Status:      "Deferred: 452 4.2.2 Mailbox full",
		Flags:       "w",
		Rcpts: []spool.Recipient{
			{Addr: "alice@example.net", State: spool.Pending, Notify: "FAILURE,DELAY", ORcpt: "RFC822;alice@example.net"},
			{Addr: "bob+lists@example.net", State: spool.Pending, Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob+lists@example.net"},
			{Addr: "carol@example.net", State: spool.Pending, Notify: "NEVER"},
			{Addr: "dave@mail.example.org", State: spool.Pending},
		},
	}
	if !e.Created.Equal(wantEnv.Created) || !e.LastAttempt.Equal(wantEnv.LastAttempt) {
		t.Errorf("times %v, %v", e.Created, e.LastAttempt)
	}
	e.Created, e.LastAttempt = wantEnv.Created, wantEnv.LastAttempt
	if !reflect.DeepEqual(e, wantEnv) {
		t.Errorf("envelope:\n%+v\nwant:\n%+v", e, wantEnv)
	}
	// The quarantined one is held; sendmail's DSN has the null sender.
	if e := envs["6AQ3p1Hq012410"]; e.Hold != "Suspicious attachment (milter clamav: Eicar-Test-Signature)" || e.Attempts != 0 || !e.LastAttempt.IsZero() {
		t.Errorf("quarantined: %+v", e)
	}
	if e := envs["6AQ3q0Rs012501"]; e.Sender != "" || !e.HasFlag('b') || e.Rcpts[0].Addr != "someone@gone.example" {
		t.Errorf("DSN: %+v", e)
	}
	if e := envs["6AQ3n0LQ012206"]; e.BodyType != "" || e.Client != "localhost [127.0.0.1]" || e.Rcpts[0].Notify != "" {
		t.Errorf("simple: %+v", e)
	}

	// The messages: the header as sendmail sends it by SMTP, a blank
	// line, the body with CRLF.
	for _, id := range []string{"6AP9xR4a010117", "6AQ3n0LQ012206", "6AQ3q0Rs012501"} {
		got, err := os.ReadFile(f.q.DataPath(id))
		if err != nil {
			t.Fatal(err)
		}
		want := wantMessage(t, filepath.Join(sendmailFixtures, "flat", "qf"+id), filepath.Join(sendmailFixtures, "flat", "df"+id))
		if string(got) != want {
			t.Errorf("%s: df\n%q\nwant\n%q", id, got, want)
		}
	}
	df, _ := os.ReadFile(f.q.DataPath("6AQ3n0LQ012206"))
	if !bytes.HasPrefix(df, []byte("Received: from localhost (localhost [127.0.0.1])\r\n\tby mail.example.org")) ||
		bytes.Contains(df, []byte("Return-Path")) || bytes.Contains(df, []byte("Full-Name")) ||
		!bytes.HasSuffix(df, []byte("\r\n\r\nPHP Warning:  Undefined variable $total in /var/www/cron.php on line 12\r\ndone: 0 orders exported\r\n")) {
		t.Errorf("df:\n%s", df)
	}

	// sendmail's files are set aside in place, the transcript-less rest
	// untouched.
	wantFiles := []string{
		"imported.Qf6AQ3r0Lo012601", "imported.df6AP9xR4a010117", "imported.df6AQ3n0LQ012206",
		"imported.df6AQ3p1Hq012410", "imported.df6AQ3q0Rs012501", "imported.df6AQ3r0Lo012601",
		"imported.hf6AQ3p1Hq012410", "imported.qf6AP9xR4a010117", "imported.qf6AQ3n0LQ012206",
		"imported.qf6AQ3q0Rs012501",
	}
	if got := files(t, src); !reflect.DeepEqual(got, wantFiles) {
		t.Errorf("files left:\n%s", strings.Join(got, "\n"))
	}
	log := f.logText()
	if !strings.Contains(log, "6AQ3p1Hq012410: imported by "+currentUser(t)+" from sendmail queue file "+src+"/hf6AQ3p1Hq012410 (sendmail ID 6AQ3p1Hq012410): from=<offers@spam.example>, size=") ||
		!strings.Contains(log, "6AQ3q0Rs012501: imported by ") || !strings.Contains(log, "from=<>, size=1221, nrcpts=1\n") {
		t.Errorf("log:\n%s", log)
	}

	// Twice: nothing more.
	out, errs, code = f.run("import", src)
	if code != 0 || out != "" || errs != "mailq: import: no sendmail queue files in "+src+"\n" {
		t.Errorf("second import: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := len(f.envelopes()); n != 5 {
		t.Errorf("%d messages after the second import", n)
	}
	// The listing shows them as sendmail did.
	out, _, code = f.run("-Am", "-qI6AQ3p1Hq012410")
	if code != 0 || !strings.Contains(out, "6AQ3p1Hq012410X     386 ") || !strings.Contains(out, "(QUARANTINE: Suspicious attachment") {
		t.Errorf("listing:\n%s", out)
	}
}

func TestImportBroken(t *testing.T) {
	f := newFixture(t)
	src := filepath.Join(t.TempDir(), "mqueue")
	copyQueue(t, "broken", src)
	before := files(t, src)

	out, errs, code := f.run("import", src)
	want := "mailq: " + src + "/qf6AQ3o2Gb012302: not a readable sendmail queue file: line 1: no version record first (sendmail before 8.10?); left in place\n" +
		"mailq: " + src + "/qf6AQ3o2Md012301: no data file df6AQ3o2Md012301 in " + src + "; left in place\n" +
		"mailq: " + src + "/qf6AQ3o2Pg012303: recipient \"|/usr/bin/procmail\": a program, a file or a mailbox that sendmail's aliases or a .forward made; deliver it with sendmail (sendmail -qI6AQ3o2Pg012303) before switching; left in place\n" +
		"mailq: " + src + "/qf6AQ3o2Tr012300: not a readable sendmail queue file: no '.' line at the end: truncated (sendmail may still be writing it); left in place\n" +
		"mailq: " + src + "/qf6AQ3o2V9012305: not a readable sendmail queue file: line 1: version \"9\" not supported (V4 to V8 are); left in place\n" +
		"mailq: " + src + "/qf6AQ3o2Xd012304: not a readable sendmail queue file: line 13: data after the '.' line; left in place\n"
	if code != 65 || out != "" || errs != want {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant:\n%s", code, out, errs, want)
	}
	if got := files(t, src); !reflect.DeepEqual(got, before) {
		t.Errorf("files changed:\n%q\nwant\n%q", got, before)
	}
	if n := len(f.envelopes()); n != 0 {
		t.Errorf("%d messages queued", n)
	}
	if log := f.logText(); !strings.Contains(log, " 6AQ3o2Gb012302: import of sendmail queue file: "+src+"/qf6AQ3o2Gb012302: not a readable sendmail queue file: ") {
		t.Errorf("log:\n%s", log)
	}

	// Good and bad together: the good ones go, the status is 65.
	good := filepath.Join(t.TempDir(), "good")
	copyQueue(t, "split", good)
	out, _, code = f.run("import", good, src)
	if code != 65 || out != "6AQ4a2Bc013001 -> 6AQ4a2Bc013001 (1 recipient)\n" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

func TestImportSameDir(t *testing.T) {
	// The usual case: queue_dir is sendmail's /var/spool/mqueue.
	f := newFixture(t)
	f.add(&spool.Envelope{ID: "6AQ3mMWM011603", Sender: "a@example.org", UID: -1, Rcpts: []spool.Recipient{{Addr: "b@example.net", State: spool.Pending}}}, "Subject: mine\r\n\r\nhi\r\n")
	copyQueue(t, "flat", f.mta)

	out, errs, code := f.run("import", f.mta)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("stdout:\n%s", out)
	}
	envs := f.envelopes()
	if len(envs) != 6 {
		t.Fatalf("%d messages", len(envs))
	}
	for _, l := range lines {
		var from, to string
		if _, err := fmtSscanf(l, &from, &to); err != nil || from == to || envs[to] == nil || envs[from] != nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
	if e := envs["6AQ3mMWM011603"]; e == nil || e.Rcpts[0].Addr != "b@example.net" {
		t.Errorf("gosendmail's own message: %+v", e)
	}
	out, errs, code = f.run("import", f.mta)
	if code != 0 || out != "" || errs != "mailq: import: no sendmail queue files in "+f.mta+"\n" {
		t.Errorf("second import: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code = f.run("-Am")
	if code != 0 || errs != "" || !strings.Contains(out, "(6 requests)") {
		t.Errorf("listing: exit %d\n%s\n%s", code, out, errs)
	}
}

// fmtSscanf reads "FROM -> TO (...)".
func fmtSscanf(line string, from, to *string) (int, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "->" {
		return 0, io.ErrUnexpectedEOF
	}
	*from, *to = f[0], f[2]
	return 2, nil
}

func TestImportLayouts(t *testing.T) {
	f := newFixture(t)
	tmp := t.TempDir()
	for _, c := range []struct {
		name, out string
		left      []string
	}{
		{"split", "6AQ4a2Bc013001 -> 6AQ4a2Bc013001 (1 recipient)\n",
			[]string{"df/imported.df6AQ4a2Bc013001", "qf/imported.qf6AQ4a2Bc013001", "xf/xf6AQ4a2Bc013001"}},
		{"groups", "6AQ5b3Cd014001 -> 6AQ5b3Cd014001 (1 recipient)\n6AQ5b3Ce014002 -> 6AQ5b3Ce014002 (1 recipient)\n6AQ5b3Cf014003 -> 6AQ5b3Cf014003 (1 recipient)\n",
			[]string{".hoststat/mx.example.com", "q1/imported.df6AQ5b3Cd014001", "q1/imported.df6AQ5b3Ce014002", "q1/imported.qf6AQ5b3Cd014001",
				"q2/df/imported.df6AQ5b3Cf014003", "q2/qf/imported.qf6AQ5b3Ce014002", "q2/qf/imported.qf6AQ5b3Cf014003"}},
		{"msp", "6AQ3nGAo012478 -> 6AQ3nGAo012478 (3 recipients)\n",
			[]string{"imported.df6AQ3nGAo012478", "imported.qf6AQ3nGAo012478"}},
	} {
		src := filepath.Join(tmp, c.name)
		copyQueue(t, c.name, src)
		out, errs, code := f.run("import", src)
		if code != 0 || errs != "" || out != c.out {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", c.name, code, out, errs)
		}
		if got := files(t, src); !reflect.DeepEqual(got, c.left) {
			t.Errorf("%s: files:\n%s", c.name, strings.Join(got, "\n"))
		}
	}
	envs := f.envelopes()
	if e := envs["6AQ4a2Bc013001"]; e == nil || e.Ret != "HDRS" || e.EnvID != "ABC123@client" || e.Rcpts[0].Notify != "SUCCESS,FAILURE,DELAY" {
		t.Errorf("split: %+v", e)
	}
	df, _ := os.ReadFile(f.q.DataPath("6AQ5b3Ce014002"))
	if !bytes.HasSuffix(df, []byte("\r\n\r\ndata left in q1\r\n")) {
		t.Errorf("d record: df %q", df)
	}
	// MSP mail: qualified sender, the unqualified recipient kept, Bcc:
	// gone (F flag b), the recipient of Bcc: kept.
	e := envs["6AQ3nGAo012478"]
	var rcpts []string
	for _, r := range e.Rcpts {
		rcpts = append(rcpts, r.Addr)
	}
	if e.Sender != "nobody@"+f.hostname() || !reflect.DeepEqual(rcpts, []string{"root", "y2@example.net", "secret@example.net"}) {
		t.Errorf("msp: %+v", e)
	}
	df, _ = os.ReadFile(f.q.DataPath("6AQ3nGAo012478"))
	if bytes.Contains(df, []byte("Bcc")) || !bytes.Contains(df, []byte("\r\nTo: root, Y Two <y2@example.net>\r\n")) {
		t.Errorf("msp df:\n%s", df)
	}
}

// hostname is what the fixture's configuration makes of the host name.
func (f *fixture) hostname() string {
	f.t.Helper()
	c := &cli{}
	c.configPath = f.cfg
	if err := c.loadConfig(nil, nil); err != nil {
		f.t.Fatal(err)
	}
	return c.cfg.Hostname
}

func TestImportLocked(t *testing.T) {
	f := newFixture(t)
	src := filepath.Join(t.TempDir(), "mqueue")
	copyQueue(t, "flat", src)
	// A sendmail delivering 6AQ3n0LQ012206 holds its qf's flock.
	lk, err := os.Open(filepath.Join(src, "qf6AQ3n0LQ012206"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out, errs, code := f.run("import", src)
	if code != 75 || strings.Contains(out, "6AQ3n0LQ012206") || strings.Count(out, "\n") != 4 ||
		errs != "mailq: "+src+"/qf6AQ3n0LQ012206: locked by a running sendmail (stop it first), try again later; left in place\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(src, "qf6AQ3n0LQ012206")); err != nil {
		t.Error(err)
	}
	// Busy and broken: 65 wins.
	if err := os.WriteFile(filepath.Join(src, "qf6AQ3o2Gb012302"), []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := f.run("import", src); code != 65 {
		t.Errorf("busy and broken: exit %d", code)
	}
	os.Remove(filepath.Join(src, "qf6AQ3o2Gb012302"))
	lk.Close()
	out, errs, code = f.run("import", src)
	if code != 0 || errs != "" || out != "6AQ3n0LQ012206 -> 6AQ3n0LQ012206 (1 recipient)\n" {
		t.Errorf("after unlock: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestImportDryRun(t *testing.T) {
	f := newFixture(t)
	tmp := t.TempDir()
	copyQueue(t, "split", filepath.Join(tmp, "split"))
	copyQueue(t, "broken", filepath.Join(tmp, "broken"))
	before := files(t, tmp)
	out, errs, code := f.run("import", "--dry-run", filepath.Join(tmp, "split"), filepath.Join(tmp, "broken"))
	if code != 65 || out != "6AQ4a2Bc013001 -> (dry run) (1 recipient)\n" || strings.Count(errs, "left in place\n") != 6 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if got := files(t, tmp); !reflect.DeepEqual(got, before) {
		t.Errorf("files changed: %q", got)
	}
	if n := len(f.envelopes()); n != 0 || f.logText() != "" {
		t.Errorf("%d messages queued, log %q", n, f.logText())
	}
}

func TestImportResume(t *testing.T) {
	// An import that stopped between queueing a message and setting
	// sendmail's files aside: the next run finds the message queued under
	// the same ID and only sets the files aside.
	f := newFixture(t)
	src := filepath.Join(t.TempDir(), "mqueue")
	copyQueue(t, "flat", src)
	if _, _, code := f.run("import", src); code != 0 {
		t.Fatal(code)
	}
	copyQueue(t, "flat", src)
	out, errs, code := f.run("import", src)
	if code != 0 || errs != "" || !strings.Contains(out, "6AP9xR4a010117 -> 6AP9xR4a010117 (4 recipients, already queued)\n") || strings.Count(out, "already queued") != 5 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if n := len(f.envelopes()); n != 5 {
		t.Errorf("%d messages", n)
	}
	// A different message under a taken ID is no resumption: it gets an
	// ID of its own.
	data, _ := os.ReadFile(filepath.Join(sendmailFixtures, "flat/qf6AQ3n0LQ012206"))
	data = bytes.Replace(data, []byte("<x@example.net>"), []byte("<other@example.net>"), 1)
	os.WriteFile(filepath.Join(src, "qf6AQ3n0LQ012206"), data, 0o600)
	os.WriteFile(filepath.Join(src, "df6AQ3n0LQ012206"), []byte("other\n"), 0o600)
	out, _, code = f.run("import", src)
	if code != 0 || !strings.HasPrefix(out, "6AQ3n0LQ012206 -> ") || strings.HasPrefix(out, "6AQ3n0LQ012206 -> 6AQ3n0LQ012206") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if n := len(f.envelopes()); n != 6 {
		t.Errorf("%d messages", n)
	}
}

func TestImportEightBitAndOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by another user")
	}
	f := newFixture(t)
	// The daemon runs as another user: queue_dir is theirs, and so must
	// be the imported files.
	if err := os.Chown(f.mta, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(f.mta); d != "/" && d != "."; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		os.Chmod(d, 0o755) // t.TempDir's are 0700: the user could not reach queue_dir
	}
	src := filepath.Join(t.TempDir(), "mqueue-client")
	os.MkdirAll(src, 0o770)
	qf := "V8\nT1795664940\nK0\nN0\nP30100\nSwww-data\nRPFD:root\nH??Subject: Gr\xc3\xbc\xc3\x9fe\n.\n"
	os.WriteFile(filepath.Join(src, "qf6AQ3n0LQ012206"), []byte(qf), 0o660)
	os.WriteFile(filepath.Join(src, "df6AQ3n0LQ012206"), []byte("body\n"), 0o660)
	// An MSP queue file belongs to the user who submitted it.
	os.Chown(filepath.Join(src, "qf6AQ3n0LQ012206"), 33, 0)
	out, errs, code := f.run("import", src)
	if code != 0 || errs != "" || out != "6AQ3n0LQ012206 -> 6AQ3n0LQ012206 (1 recipient)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, p := range []string{f.q.EnvelopePath("6AQ3n0LQ012206"), f.q.DataPath("6AQ3n0LQ012206")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("%s: owner %d:%d", p, st.Uid, st.Gid)
		}
	}
	e := f.envelopes()["6AQ3n0LQ012206"]
	if e.BodyType != "8BITMIME" || e.UID != 33 || e.Sender != "www-data@"+f.hostname() {
		t.Errorf("envelope %+v", e)
	}
	// The identity is back to root's.
	if u, _ := unix.SetfsuidRetUid(-1); u != 0 {
		t.Errorf("fsuid %d", u)
	}
}

func TestImportUsage(t *testing.T) {
	f := newFixture(t)
	if _, errs, code := f.run("import"); code != 64 || !strings.Contains(errs, "requires at least 1 arg") {
		t.Errorf("no DIR: exit %d, %q", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "none")
	if _, errs, code := f.run("import", missing); code != 69 || !strings.Contains(errs, "mailq: import: stat "+missing+": no such file or directory\n") {
		t.Errorf("missing DIR: exit %d, %q", code, errs)
	}
	empty := t.TempDir()
	if out, errs, code := f.run("import", empty); code != 0 || out != "" || errs != "mailq: import: no sendmail queue files in "+empty+"\n" {
		t.Errorf("empty DIR: exit %d, %q, %q", code, out, errs)
	}
	out, _, code := f.run("import", "--help")
	if code != 0 || !strings.Contains(out, "Exit status:") || !strings.Contains(out, "--dry-run") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}
