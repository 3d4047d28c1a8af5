package sendmail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/privsep"
)

const fuzzMaxSize = 64 << 10

// FuzzExtractRecipients submits any message with sendmail -t (and -i or
// not), the way a local program does, into a real maildrop directory,
// and checks what was left there:
//
//   - a refusal is a *mailerr.Error (an exit code for the caller) and
//     leaves no file behind;
//   - an accepted message is one drop file that maildrop.Open takes, with
//     the recipients Submit reported, each a valid mailbox found in the
//     input, none twice (case aside);
//   - the stored message has CRLF line ends only, no Bcc: or Resent-Bcc:
//     field left in its header, and the fields Submit promises to add.
func FuzzExtractRecipients(f *testing.F) {
	f.Add("To: a@x.org\nBcc: b@x.org\nSubject: s\n\nbody\n", false)
	dir := f.TempDir()
	cfg, err := config.Parse("fuzz.toml", []byte(fmt.Sprintf(
		"hostname = \"host.example\"\nmaildrop_dir = %q\nmax_message_size = %d\n", dir, fuzzMaxSize)))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg string, ignoreDots bool) {
		clearDir(t, dir)
		s := &Submission{
			Cfg:    cfg,
			Opts:   &Options{Mode: "m", ExtractRcpts: true, IgnoreDots: ignoreDots},
			Caller: privsep.Caller{UID: os.Getuid(), Name: "fuzzer"},
			Now:    now,
			Log:    maillog.New(io.Discard, "sendmail"),
		}
		res, err := s.Submit(strings.NewReader(msg))
		names, _ := os.ReadDir(dir)
		if err != nil {
			var me *mailerr.Error
			if !errors.As(err, &me) || me.Exit == 0 {
				t.Fatalf("Submit: %v (%T) is not a mailerr with an exit code", err, err)
			}
			if len(names) != 0 {
				t.Fatalf("refused submission (%v) left %d files", err, len(names))
			}
			return
		}
		if len(names) != 1 || names[0].Name() != res.ID {
			t.Fatalf("accepted %s, drop directory holds %v", res.ID, names)
		}
		checkRecipients(t, msg, res.Rcpts)
		d, err := maildrop.Open(filepath.Join(dir, res.ID))
		if err != nil {
			t.Fatalf("maildrop.Open: %v", err)
		}
		defer d.Close()
		if len(d.Rcpts) != len(res.Rcpts) {
			t.Fatalf("drop file has %d recipients, Submit said %q", len(d.Rcpts), res.Rcpts)
		}
		for i, r := range d.Rcpts {
			if r.Addr != res.Rcpts[i] {
				t.Fatalf("drop file recipient %d is %q, Submit said %q", i, r.Addr, res.Rcpts[i])
			}
		}
		if d.SenderSet || res.Sender != "fuzzer@host.example" {
			t.Fatalf("sender %q (set %v)", res.Sender, d.SenderSet)
		}
		body, err := io.ReadAll(d.Message())
		if err != nil || int64(len(body)) != res.Size || res.Size != d.Size {
			t.Fatalf("message: %v; read %d bytes, Submit said %d, drop file %d", err, len(body), res.Size, d.Size)
		}
		checkStored(t, string(body))
	})
}

func clearDir(t *testing.T, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// checkRecipients: -t takes only valid mailboxes out of the header, once
// each, and no address that is not in the input (white space aside: the
// value of a folded field is its lines joined).
func checkRecipients(t *testing.T, msg string, rcpts []string) {
	t.Helper()
	if len(rcpts) == 0 {
		t.Fatal("accepted with no recipient")
	}
	flat := squeeze(msg)
	seen := map[string]bool{}
	for _, r := range rcpts {
		if a, err := envelope.CheckMailbox(r); err != nil || a != r {
			t.Fatalf("recipient %q: %v", r, err)
		}
		key := strings.ToLower(r)
		if seen[key] {
			t.Fatalf("recipient %q twice in %q", r, rcpts)
		}
		seen[key] = true
		if !strings.Contains(flat, squeeze(r)) {
			t.Fatalf("recipient %q is not in the input %q", r, msg)
		}
	}
}

func squeeze(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b = append(b, c)
		}
	}
	return string(b)
}

// checkStored checks the message as the drop file holds it.
func checkStored(t *testing.T, m string) {
	t.Helper()
	if !strings.HasSuffix(m, "\r\n") {
		t.Fatalf("stored message does not end in CRLF: %q", m)
	}
	if strings.Count(m, "\n") != strings.Count(m, "\r\n") {
		t.Fatalf("bare LF in the stored message %q", m)
	}
	head, _, ok := strings.Cut(m, "\r\n\r\n")
	if !ok {
		t.Fatalf("stored message has no end of header: %q", m)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(head, "\r\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		name, _, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("header line %q is not a field in %q", l, m)
		}
		name = strings.ToLower(strings.TrimRight(name, " \t"))
		if name == "bcc" || name == "resent-bcc" {
			t.Fatalf("%s: field left in %q", name, m)
		}
		have[name] = true
	}
	if !strings.HasPrefix(head, "Received: (from fuzzer@localhost)\r\n") {
		t.Fatalf("stored message does not start with our Received: field: %q", m)
	}
	for _, n := range []string{"from", "date", "message-id"} {
		if !have[n] {
			t.Fatalf("no %s: field in %q", n, m)
		}
	}
}
