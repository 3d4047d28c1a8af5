package test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["dropcat"] = cmdDropcat
	scriptCmds["dropcount"] = cmdDropcount
	scriptCmds["mkcrlf"] = cmdMkcrlf
	scriptCmds["cleardrops"] = cmdCleardrops
	scriptCmds["status"] = cmdStatus
	scriptCmds["waitfiles"] = cmdWaitfiles
	scriptCmds["waitdaemon"] = cmdWaitdaemon
	scriptCmds["waitlisten"] = cmdWaitlisten
}

// dropcat prints every complete drop file in $WORK/spool/mqueue-client:
// the envelope ("sender:", "rcpt:" lines) and the message with each line
// end made visible: "$" for CRLF, "^M" for a bare CR, "<LF>" for a bare LF.
func cmdDropcat(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! dropcat")
	}
	ents, errs := maildrop.List(filepath.Join(ts.Getenv("WORK"), "spool/mqueue-client"))
	for _, e := range errs {
		ts.Fatalf("corrupt drop file: %v", e)
	}
	out := ts.Stdout()
	for _, e := range ents {
		if e.SenderSet {
			fmt.Fprintf(out, "sender: %s\n", e.Sender)
		}
		for _, r := range e.Rcpts {
			fmt.Fprintf(out, "rcpt: %s", r.Addr)
			if r.Notify != "" {
				fmt.Fprintf(out, " notify=%s", r.Notify)
			}
			fmt.Fprintln(out)
		}
		for _, kv := range [][2]string{{"body", e.BodyType}, {"envid", e.EnvID}, {"ret", e.Ret}} {
			if kv[1] != "" {
				fmt.Fprintf(out, "%s: %s\n", kv[0], kv[1])
			}
		}
		fmt.Fprintln(out, "--")
		msg, err := io.ReadAll(e.Message())
		e.Close()
		if err != nil {
			ts.Fatalf("%v", err)
		}
		s := strings.ReplaceAll(string(msg), "\r\n", "$\x00")
		s = strings.ReplaceAll(s, "\r", "^M")
		s = strings.ReplaceAll(s, "\n", "<LF>")
		s = strings.ReplaceAll(s, "\x00", "\n")
		fmt.Fprint(out, s)
		fmt.Fprintln(out, "==")
	}
}

// dropcount N checks the number of complete drop files.
func cmdDropcount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: dropcount N")
	}
	ents, _ := maildrop.List(filepath.Join(ts.Getenv("WORK"), "spool/mqueue-client"))
	for _, e := range ents {
		e.Close()
	}
	got := fmt.Sprint(len(ents))
	if (got == args[0]) == neg {
		ts.Fatalf("drop files: %s, want %s%s", got, map[bool]string{true: "not ", false: ""}[neg], args[0])
	}
}

// mkcrlf IN OUT copies IN to OUT, turning each two-character "\r" into a
// carriage return and "\0" into NUL, so that scripts can hold CRLF input.
func cmdMkcrlf(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkcrlf IN OUT")
	}
	s := ts.ReadFile(args[0])
	s = strings.ReplaceAll(s, `\r`, "\r")
	s = strings.ReplaceAll(s, `\0`, "\x00")
	s = strings.TrimSuffix(s, "<NOEOL>\n")
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(s), 0o644))
}

// cleardrops removes every file from $WORK/spool/mqueue-client.
func cmdCleardrops(ts *testscript.TestScript, neg bool, args []string) {
	dir := filepath.Join(ts.Getenv("WORK"), "spool/mqueue-client")
	ents, err := os.ReadDir(dir)
	ts.Check(err)
	for _, e := range ents {
		ts.Check(os.Remove(filepath.Join(dir, e.Name())))
	}
}

// status N CMD ARGS... runs CMD like exec (stdin, stdout and stderr alike)
// and requires exit status N: sysexits codes are part of the contract.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N CMD [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// waitfiles DIR GLOB N waits up to 10 s until DIR holds exactly N files
// matching GLOB (for the daemon's asynchronous work, such as pickup).
func cmdWaitfiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitfiles DIR GLOB N")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got, _ = filepath.Glob(filepath.Join(ts.MkAbs(args[0]), args[1]))
		if len(got) == want {
			return
		}
	}
	ts.Fatalf("%s/%s: %d files after 10s, want %d: %v", args[0], args[1], len(got), want, got)
}

// waitdaemon waits up to 10 s until the daemon of the script's
// configuration answers a ping on its control socket.
func cmdWaitdaemon(ts *testscript.TestScript, neg bool, args []string) {
	cfg, err := config.Load(ts.Getenv("GOSENDMAIL_CONFIG"), true)
	ts.Check(err)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, err := control.Call(cfg.ControlSocket, control.Request{Cmd: "ping"}, time.Second); err == nil && r.OK {
			return
		}
	}
	ts.Fatalf("no daemon answered on %s within 10s", cfg.ControlSocket)
}

// waitlisten NAME waits up to 10 s for the daemon to log the address of
// its listener NAME, and sets $NAME_ADDR (e.g. $MTA_ADDR) to it.
func cmdWaitlisten(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitlisten NAME")
	}
	re := regexp.MustCompile(`listener ` + regexp.QuoteMeta(args[0]) + ` on (\S+) `)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(filepath.Join(ts.Getenv("WORK"), "maillog"))
		if m := re.FindAllSubmatch(data, -1); len(m) > 0 {
			ts.Setenv(args[0]+"_ADDR", string(m[len(m)-1][1]))
			return
		}
	}
	ts.Fatalf("listener %s not up within 10s", args[0])
}
