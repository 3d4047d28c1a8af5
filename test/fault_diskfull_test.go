//go:build linux

package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// mountTmpfs mounts a tmpfs of the given size (a mount option such as
// "2m") on dir, unmounted when the test ends. It skips the test where
// mounting is not permitted (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs for queue_dir needs root")
	}
	must(t, os.MkdirAll(dir, 0o755))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v): this test needs a mount it can fill", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// freeBytes is what an unprivileged writer may still put on dir's file
// system (tmpfs reserves nothing for root).
func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	must(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// fill appends to path until its file system is full, then frees leave
// bytes again (truncating the filler), so that the next writer runs out
// of space after about that much.
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
		for {
			if _, err := f.Write(buf[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v", path, err)
				}
				break
			}
		}
	}
	if free := freeBytes(t, filepath.Dir(path)); free != 0 {
		t.Fatalf("%s is full, yet %d bytes are free", filepath.Dir(path), free)
	}
	if leave > 0 {
		fi, err := f.Stat()
		must(t, err)
		must(t, f.Truncate(fi.Size()-leave))
	}
}

// checkQueueFiles fails the test for any half-done message in queue_dir:
// a tf file, a qf without its df or a df without its qf, a qf set aside
// as corrupt, or anything else the queue does not make. Spare files
// (rf<N>, the queue's recycled files) may be there, holding anything.
// It returns the IDs of the messages queued.
func checkQueueFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	names := map[string]bool{}
	for _, d := range ents {
		names[d.Name()] = true
	}
	var ids []string
	for n := range names {
		switch {
		case strings.HasPrefix(n, "rf"):
		case strings.HasPrefix(n, "qf") && spool.ValidID(n[2:]):
			if !names["df"+n[2:]] {
				t.Errorf("queue_dir: %s without its df", n)
			}
			ids = append(ids, n[2:])
		case strings.HasPrefix(n, "df") && spool.ValidID(n[2:]):
			if !names["qf"+n[2:]] {
				t.Errorf("queue_dir: %s without its qf (a half-written message)", n)
			}
		default:
			t.Errorf("queue_dir: unexpected file %s", n)
		}
	}
	return ids
}

// checkDropFiles fails the test for an incomplete or set-aside file in
// maildrop_dir and returns the complete ones.
func checkDropFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, d := range ents {
		fi, err := d.Info()
		switch {
		case err != nil:
		case !fi.Mode().IsRegular() || !spool.ValidID(d.Name()):
			t.Errorf("maildrop_dir: unexpected file %s (%v)", d.Name(), fi.Mode())
		case fi.Mode()&0o100 == 0:
			t.Errorf("maildrop_dir: incomplete drop file %s (%d bytes) left behind", d.Name(), fi.Size())
		default:
			out = append(out, d.Name())
		}
	}
	return out
}

// TestFaultDiskFull runs the daemon with queue_dir and maildrop_dir each
// on its own 2 MiB tmpfs and fills them:
//   - full queue_dir: SMTP DATA gets "452 4.3.1 Insufficient system
//     storage" (and the session goes on);
//   - full maildrop_dir: `sendmail -t` fails with a one-line reason and
//     exit 73 (EX_CANTCREAT). Not 75: EX_TEMPFAIL would be the sendmail
//     8 answer, but PHP's mail() counts 75 as success, and nothing was
//     queued (docs/sendmail-compat.md, CONTRACT.md "Exit status");
//   - maildrop_dir with room but queue_dir full: `sendmail -t` succeeds
//     (the drop file is durable) and pickup leaves the file until the
//     queue has room again;
//   - after each failure no half-written file stays: no tf, no df without
//     qf or qf without df, no incomplete drop file (spares rf<N> may be);
//   - the fillers removed, without a restart, a new SMTP message gets 250
//     and reaches the sink, and drop files are picked up and delivered;
//   - the same with the space running out in the middle of a message (one
//     larger than the space left), for SMTP and for sendmail: 452 and exit
//     73 (not 74 "reading message": the drop file failed, not the input),
//     the failed message's bytes are given back at once (its spare file is
//     emptied) and a smaller message that fits is accepted.
func TestFaultDiskFull(t *testing.T) {
	e := newEnv(t)
	qfs, mfs := e.path("qfs"), e.path("mfs")
	mountTmpfs(t, qfs, "2m")
	mountTmpfs(t, mfs, "2m")
	qdir, mdir := filepath.Join(qfs, "mqueue"), filepath.Join(mfs, "mqueue-client")
	must(t, os.Mkdir(qdir, 0o700))
	must(t, os.Mkdir(mdir, 0o730))
	qfill, mfill := filepath.Join(qfs, "filler"), filepath.Join(mfs, "filler")
	cfg := readFile(e.cfg)
	for _, kv := range [][3]string{{"queue_dir", "spool/mqueue", qdir}, {"maildrop_dir", "spool/mqueue-client", mdir}} {
		old := fmt.Sprintf("%s = %q", kv[0], e.path(kv[1]))
		if !strings.Contains(cfg, old) {
			t.Fatalf("the test configuration lacks %s", old)
		}
		cfg = strings.Replace(cfg, old, fmt.Sprintf("%s = %q", kv[0], kv[2]), 1)
	}
	must(t, os.WriteFile(e.cfg, []byte(cfg), 0o644))
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)

	mx := &sinkMX{}
	port := startSink(t, "127.0.0.24", 0, mx)
	dsrv := dnstest.NewServer(t)
	dsrv.MX("dest.example", 10, "mx.dest.example")
	dsrv.A("mx.dest.example", "127.0.0.24")
	d := startDaemon(t, e, "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \""+dsrv.Addr()+"\"\nremote_port = "+strconv.Itoa(port)+
		"\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n[limits]\ngreet_pause = \"0s\"\n")
	alive := func() {
		t.Helper()
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("the daemon exited (%v):\n%s", err, readFile(e.path("smtpd.stderr")))
		default:
		}
	}
	// nothingStored: with both directories full, no file of a message is
	// left in either.
	nothingStored := func() {
		t.Helper()
		if ids := checkQueueFiles(t, qdir); len(ids) > 0 {
			t.Errorf("queued with the disk full: %v", ids)
		}
		if drops := checkDropFiles(t, mdir); len(drops) > 0 {
			t.Errorf("drop files left with maildrop_dir full: %v", drops)
		}
	}
	// queued counts the messages in either queue, complete or not.
	queued := func() int {
		q, _ := filepath.Glob(filepath.Join(qdir, "[qd]f*"))
		m, _ := filepath.Glob(filepath.Join(mdir, "*"))
		return len(q) + len(m)
	}
	received := func(subject string) bool {
		mx.mu.Lock()
		defer mx.mu.Unlock()
		for _, m := range mx.msgs {
			if strings.Contains(m.data, "\r\nSubject: "+subject+"\r\n") {
				return true
			}
		}
		return false
	}
	smtpMsg := func(cl *client, subject string, size int) (int, string) {
		t.Helper()
		cl.must("MAIL FROM:<sender@test.example>", 250)
		cl.must("RCPT TO:<someone@dest.example>", 250)
		cl.must("DATA", 354)
		var b strings.Builder
		fmt.Fprintf(&b, "From: <sender@test.example>\r\nTo: <someone@dest.example>\r\nSubject: %s\r\n\r\n", subject)
		for b.Len() < size {
			b.WriteString("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n")
		}
		cl.send(b.String() + ".\r\n")
		return cl.reply()
	}
	submit := func(subject string, size int) (string, int) {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "To: someone@dest.example\nSubject: %s\n\n", subject)
		for b.Len() < size {
			b.WriteString("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\n")
		}
		_, stderr, code := e.run([]byte(b.String()), "sendmail", "-t", "-i")
		return stderr, code
	}
	want452 := func(code int, text, what string) {
		t.Helper()
		if code != 452 || text != "4.3.1 Insufficient system storage" {
			t.Errorf("%s: reply %d %q, want 452 4.3.1 Insufficient system storage", what, code, text)
		}
	}
	wantCantCreat := func(stderr string, code int, what string) {
		t.Helper()
		line := strings.TrimSuffix(stderr, "\n")
		if code != 73 || line == "" || strings.Contains(line, "\n") {
			t.Errorf("%s: exit %d, stderr %q; want exit 73 (EX_CANTCREAT) and one line", what, code, stderr)
		}
		t.Logf("%s: exit %d: %s", what, code, line)
	}

	// 1. Both file systems full.
	fill(t, qfill, 0)
	fill(t, mfill, 0)
	cl := greet(t, localIP, d.addrs["MTA"])
	code, text := smtpMsg(cl, "while full", 2000)
	want452(code, text, "SMTP DATA with queue_dir full")
	code, text = smtpMsg(cl, "while full again", 2000)
	want452(code, text, "a second message in the same session")
	stderr, code := submit("dropped while full", 2000)
	wantCantCreat(stderr, code, "sendmail -t with maildrop_dir full")
	alive()
	nothingStored()
	if !strings.Contains(d.log(), "no space left on device") {
		t.Errorf("the log does not say why:\n%s", d.log())
	}

	// 2. maildrop_dir has room again, queue_dir does not: the submission
	// succeeds and waits in maildrop_dir.
	must(t, os.Remove(mfill))
	stderr, code = submit("waiting in the maildrop", 2000)
	if code != 0 {
		t.Fatalf("sendmail -t with room in maildrop_dir: exit %d %s", code, stderr)
	}
	time.Sleep(2500 * time.Millisecond) // two pickup passes at least
	alive()
	if drops := checkDropFiles(t, mdir); len(drops) != 1 {
		t.Errorf("with queue_dir full, maildrop_dir holds %v, want the one submission", drops)
	}
	if ids := checkQueueFiles(t, qdir); len(ids) > 0 {
		t.Errorf("queued with the disk full: %v", ids)
	}

	// 3. Space returns: service resumes without a restart.
	must(t, os.Remove(qfill))
	waitFor(t, "the waiting submission picked up and delivered", func() bool { return received("waiting in the maildrop") })
	code, text = smtpMsg(cl, "after the space returned", 2000)
	if code != 250 {
		t.Fatalf("SMTP after the space returned: %d %q", code, text)
	}
	stderr, code = submit("submitted after the space returned", 2000)
	if code != 0 {
		t.Fatalf("sendmail -t after the space returned: exit %d %s", code, stderr)
	}
	waitFor(t, "delivery of the SMTP message", func() bool { return received("after the space returned") })
	waitFor(t, "delivery of the submission", func() bool { return received("submitted after the space returned") })
	waitFor(t, "empty queues", func() bool { return queued() == 0 })
	checkQueueFiles(t, qdir)
	checkDropFiles(t, mdir)
	for _, s := range []string{"while full", "while full again", "dropped while full"} {
		if received(s) {
			t.Errorf("%q was refused, yet delivered", s)
		}
	}

	// 4. The space runs out in the middle of a message: 64 KiB left, a
	// 512 KiB message.
	const left, big = 64 << 10, 512 << 10
	fill(t, qfill, left)
	fill(t, mfill, left)
	code, text = smtpMsg(cl, "larger than the space left", big)
	want452(code, text, "SMTP DATA of a message larger than the space left")
	// What the failed message had written is given back at once (a
	// spare file over safeio.BigSpare is emptied), not kept until the
	// spare is reused: the next, smaller, message must find the room.
	if free := freeBytes(t, qdir); free < left-16<<10 {
		t.Errorf("after the failed message, %d bytes free in queue_dir, want the %d it found", free, left)
	}
	code, text = smtpMsg(cl, "small enough for the space left", 2000)
	if code != 250 {
		t.Errorf("SMTP of a message that fits the space left: %d %q", code, text)
	}
	stderr, code = submit("submitted larger than the space left", big)
	wantCantCreat(stderr, code, "sendmail -t of a message larger than the space left")
	alive()
	// The message that fitted is queued until it is delivered; once it
	// is gone, nothing of the refused ones may be left.
	waitFor(t, "delivery of the message that fitted", func() bool { return received("small enough for the space left") })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if q, _ := filepath.Glob(filepath.Join(qdir, "qf*")); len(q) == 0 {
			break
		}
	}
	nothingStored()
	must(t, os.Remove(qfill))
	must(t, os.Remove(mfill))
	code, text = smtpMsg(cl, "after the second fill", big)
	if code != 250 {
		t.Fatalf("SMTP after the second fill: %d %q", code, text)
	}
	stderr, code = submit("submitted after the second fill", big)
	if code != 0 {
		t.Fatalf("sendmail -t after the second fill: exit %d %s", code, stderr)
	}
	waitFor(t, "delivery after the second fill", func() bool {
		return received("small enough for the space left") && received("after the second fill") && received("submitted after the second fill")
	})
	waitFor(t, "empty queues", func() bool { return queued() == 0 })
	checkQueueFiles(t, qdir)
	checkDropFiles(t, mdir)
	for _, s := range []string{"larger than the space left", "submitted larger than the space left"} {
		if received(s) {
			t.Errorf("%q was refused, yet delivered", s)
		}
	}
	cl.must("QUIT", 221)
	alive()
}
