package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procUID is the real uid of a process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	must(t, err)
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	uid, _ := strconv.Atoi(string(m[1]))
	return uid
}

// The daemon started as root runs as an unprivileged user; local mail is
// written by the privileged local delivery part: a mailbox owned by its
// user (group mail, 0660), an alias program run as the alias file's
// default user. When that part dies, the daemon stops (the service
// manager starts both again) and the mail stays queued.
func TestLocalDeliveryThroughPrivilegedAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the daemon drops privileges only when started as root")
	}
	e := newEnv(t)
	cfg := strings.Replace(readFile(e.cfg), "user = \"root\"\n", "user = \"nobody\"\ndrop_group = \"nogroup\"\n", 1)
	must(t, os.WriteFile(e.cfg, []byte(cfg), 0o644))
	out := e.path("out")
	must(t, os.Mkdir(out, 0o777))
	must(t, os.Chmod(out, 0o777))
	must(t, os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644))
	must(t, os.WriteFile(e.path("etc/aliases"), []byte("postmaster: root\nwebapp: www-data\n"+
		"prog: \"|cat > "+out+"/prog.txt\"\n"), 0o644))
	d := startDaemon(t, e, "relay_from = [\"127.0.0.1/32\"]\n[limits]\ngreet_pause = \"0s\"\n"+
		"[delivery]\ndns_server = \"127.0.0.1:9\"\ndefault_user = \"nobody\"\n")

	if uid := procUID(t, d.cmd.Process.Pid); uid != 65534 {
		t.Fatalf("the daemon runs as uid %d, want nobody (65534)", uid)
	}
	m := regexp.MustCompile(`local delivery agent started \(pid (\d+)\)`).FindStringSubmatch(d.log())
	if m == nil {
		t.Fatalf("no local delivery agent in the log:\n%s", d.log())
	}
	agentPid, _ := strconv.Atoi(m[1])
	if uid := procUID(t, agentPid); uid != 0 {
		t.Fatalf("the local delivery agent runs as uid %d, want root", uid)
	}

	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<sender@test.example>", 250)
	cl.must("RCPT TO:<webapp@test.example>", 250)
	cl.must("RCPT TO:<prog@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: through the agent\r\n\r\nhello\r\n.\r\n")
	cl.expect(250)
	cl.must("QUIT", 221)

	mbox := e.path("spool/mail/www-data")
	waitFor(t, "the mailbox", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "through the agent") })
	fi, err := os.Stat(mbox)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 33 || st.Gid != 8 || fi.Mode().Perm() != 0o660 {
		t.Errorf("mailbox owner %d:%d mode %v, want www-data:mail (33:8) 0660", st.Uid, st.Gid, fi.Mode().Perm())
	}
	prog := filepath.Join(out, "prog.txt")
	waitFor(t, "the alias program", func() bool { b, _ := os.ReadFile(prog); return strings.Contains(string(b), "through the agent") })
	fi, err = os.Stat(prog)
	must(t, err)
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
		t.Errorf("the alias program ran as uid %d, want nobody (65534)", uid)
	}
	waitFor(t, "empty queue", func() bool { return e.qfCount() == 0 })

	// The agent dies: the daemon stops by itself, saying why.
	must(t, syscall.Kill(agentPid, syscall.SIGKILL))
	select {
	case err := <-d.done:
		if err == nil {
			t.Fatal("the daemon exited 0 after losing its local delivery agent")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon kept running without its local delivery agent")
	}
	if !strings.Contains(d.log(), "the local delivery agent exited") || !strings.Contains(d.log(), "stopping the daemon so that it is started again") {
		t.Errorf("log:\n%s", d.log())
	}
}
