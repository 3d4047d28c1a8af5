package test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a running smtpd built for the tests.
type daemon struct {
	t     *testing.T
	e     *env
	cmd   *exec.Cmd
	addrs map[string]string // listener name -> host:port
	done  chan error
}

// startDaemon writes extra configuration after the env's and starts smtpd
// in the foreground, waiting until every listener has logged its address.
func startDaemon(t *testing.T, e *env, extra string) *daemon {
	t.Helper()
	if extra != "" || !strings.Contains(readFile(e.cfg), "[delivery]") {
		f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		fmt.Fprintln(f, extra)
		if !strings.Contains(readFile(e.cfg)+extra, "[delivery]") {
			// No test asks the real DNS: nothing answers on port 9, so
			// remote mail is deferred at once.
			fmt.Fprintln(f, "[delivery]\ndns_server = \"127.0.0.1:9\"")
		}
		f.Close()
	}
	d, ok := launchDaemon(t, e, binDir, e.path("smtpd.stderr"))
	if !ok {
		out, _ := os.ReadFile(e.path("smtpd.stderr"))
		t.Fatalf("smtpd exited: %s\n%s", out, d.log())
	}
	return d
}

// launchDaemon starts dir/smtpd with the env's configuration as it is and
// the extra environment variables, its output in stderrPath, and waits
// until every listener has logged its address and it logs "starting
// daemon". It reports false, leaving the verdict to the caller, when the
// daemon exited before that (then d.done has been received from).
func launchDaemon(t *testing.T, e *env, dir, stderrPath string, environ ...string) (*daemon, bool) {
	t.Helper()
	d := &daemon{t: t, e: e, addrs: map[string]string{}, done: make(chan error, 1)}
	// A restart appends to the same log: look only at what follows.
	before, _ := os.ReadFile(e.path("maillog"))
	d.cmd = exec.Command(filepath.Join(dir, "smtpd"), "--config", e.cfg)
	d.cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, environ...)
	stderr, err := os.Create(stderrPath)
	must(t, err)
	d.cmd.Stdout, d.cmd.Stderr = stderr, stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, d.cmd.Start())
	go func() { d.done <- d.cmd.Wait(); stderr.Close() }()
	t.Cleanup(d.stop)
	re := regexp.MustCompile(`listener (\S+) on (\S+) `)
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(e.path("maillog"))
		if len(data) >= len(before) {
			data = data[len(before):]
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			d.addrs[string(m[1])] = string(m[2])
		}
		if strings.Contains(string(data), "starting daemon") {
			return d, true
		}
		select {
		case <-d.done:
			return d, false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtpd did not start:\n%s", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops the daemon with SIGKILL, as a crash would.
func (d *daemon) kill() {
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// stop sends SIGTERM and waits; the whole process group is killed if the
// daemon does not stop in time.
func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
		d.t.Errorf("smtpd did not stop on SIGTERM")
	}
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.e.path("maillog"))
	return string(b)
}

// client is a raw SMTP client, so tests can send exactly the bytes they
// mean, from a chosen local address.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

const (
	localIP   = "127.0.0.1" // in relay_from
	foreignIP = "127.0.0.2" // not in relay_from
)

func dialFrom(t *testing.T, from, addr string) *client {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// greet dials and reads the banner and answers EHLO.
func greet(t *testing.T, from, addr string) *client {
	t.Helper()
	cl := dialFrom(t, from, addr)
	cl.expect(220)
	cl.cmd("EHLO client.example")
	return cl
}

// reply reads one (possibly multi-line) reply.
func (cl *client) reply() (int, string) {
	cl.t.Helper()
	code, text, err := readReply(cl.r)
	if err != nil {
		return 0, strings.Join(append(text, "<"+err.Error()+">"), "\n")
	}
	return code, strings.Join(text, "\n")
}

// readReply reads one SMTP reply, every line of it: its code and the text
// of its lines. A line too short to be a reply comes back whole, code 0.
func readReply(r *bufio.Reader) (int, []string, error) {
	var text []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, text, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			return 0, []string{line}, nil
		}
		code, _ := strconv.Atoi(line[:3])
		text = append(text, line[4:])
		if line[3] == ' ' {
			return code, text, nil
		}
	}
}

func (cl *client) send(raw string) {
	cl.t.Helper()
	if _, err := cl.c.Write([]byte(raw)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// cmd sends a command line and returns the reply.
func (cl *client) cmd(line string) (int, string) {
	cl.t.Helper()
	cl.send(line + "\r\n")
	return cl.reply()
}

func (cl *client) expect(code int) string {
	cl.t.Helper()
	got, text := cl.reply()
	if got != code {
		cl.t.Fatalf("reply %d %q, want %d", got, text, code)
	}
	return text
}

func (cl *client) must(line string, code int) string {
	cl.t.Helper()
	got, text := cl.cmd(line)
	if got != code {
		cl.t.Fatalf("%q: reply %d %q, want %d", line, got, text, code)
	}
	return text
}

// closed reports whether the server closes the connection within 3 s
// (after any last reply).
func (cl *client) closed() bool {
	cl.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err := cl.r.ReadByte(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// qfCount is the number of committed messages in the queue.
func (e *env) qfCount() int {
	m, _ := filepath.Glob(e.path("spool/mqueue/qf*"))
	return len(m)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

var sighup = syscall.SIGHUP
