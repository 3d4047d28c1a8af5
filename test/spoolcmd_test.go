package test

import (
	"flag"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["mkqueue"] = cmdMkqueue
}

// cmdMkqueue puts a message into a queue of the script's configuration
// ($GOSENDMAIL_CONFIG), as the daemon or the sendmail command would have,
// so that mailq scripts need no running daemon:
//
//	mkqueue [-var NAME] [-at UNIX] [-status TEXT] [-hold REASON] [-locked] [-drop] SENDER RCPT...
//
// The message goes into the MTA queue, or with -drop into the maildrop as
// a drop file. SENDER "<>" is the null sender; with -drop, "-" means no -f
// was given. The new queue ID is put in $QID (or $NAME). -at sets the
// arrival time; -status sets the last status message and one attempt;
// -hold holds the message; -locked keeps the message locked, as if it
// were being delivered, until the script ends.
func cmdMkqueue(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkqueue")
	}
	fs := flag.NewFlagSet("mkqueue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("var", "QID", "")
	at := fs.Int64("at", 0, "")
	status := fs.String("status", "", "")
	hold := fs.String("hold", "", "")
	locked := fs.Bool("locked", false, "")
	drop := fs.Bool("drop", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() < 2 {
		ts.Fatalf("usage: mkqueue [-var NAME] [-at UNIX] [-status TEXT] [-hold REASON] [-locked] [-drop] SENDER RCPT...")
	}
	cfg, err := config.Load(ts.Getenv("GOSENDMAIL_CONFIG"), true)
	ts.Check(err)
	created := time.Now()
	if *at != 0 {
		created = time.Unix(*at, 0)
	}
	sender, rcpts := fs.Arg(0), fs.Args()[1:]
	if sender == "<>" {
		sender = ""
	}
	body := "Subject: test message\r\n\r\nHello.\r\n" // 33 bytes

	if *drop {
		env := &maildrop.Envelope{Created: created, Sender: sender, SenderSet: sender != "-"}
		for _, r := range rcpts {
			env.Rcpts = append(env.Rcpts, maildrop.Rcpt{Addr: r})
		}
		w, err := maildrop.Create(cfg.MaildropDir, env)
		ts.Check(err)
		_, err = io.WriteString(w, body)
		ts.Check(err)
		ts.Check(w.Commit())
		ts.Setenv(*name, env.ID)
		return
	}

	env := &spool.Envelope{Created: created, Sender: sender, UID: -1, Priority: 30000 + int64(len(body)),
		Status: *status, Hold: *hold}
	if *status != "" {
		env.Attempts = 1
		env.LastAttempt = created
	}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, spool.Recipient{Addr: r, State: spool.Pending})
	}
	q := spool.Open(cfg.QueueDir)
	ts.Check(q.Create(env, strings.NewReader(body)))
	if *locked {
		unlock, err := q.Lock(env.ID)
		ts.Check(err)
		ts.Defer(unlock)
	}
	ts.Setenv(*name, env.ID)
	ts.Logf("queued %s as %s (%s bytes)", env.ID, *name, strconv.Itoa(len(body)))
}
