package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	arrival = time.Date(2026, 11, 26, 3, 49, 16, 0, time.UTC)
	now     = arrival.Add(4*time.Hour + 7*time.Minute)
)

// fixedRand makes the boundary and Message-ID the same on every run.
func fixedRand() io.Reader { return bytes.NewReader([]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}) }

const simpleOriginal = "Received: from client.example.org (client.example.org [192.0.2.10])\r\n" +
	"\tby gsm.example (gosendmail) with ESMTP id 6AQ3nGAo012478;\r\n" +
	"\tThu, 26 Nov 2026 03:49:16 +0000\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.net>, carol@example.com\r\n" +
	"Subject: lunch?\r\n" +
	"Message-ID: <m1@example.org>\r\n" +
	"\r\n" +
	"Noon at the usual place?\r\n"

func failureReport() Report {
	return Report{
		Kind:     Failure,
		Hostname: "gsm.example",
		ID:       "6AQ3nGAo012478",
		Sender:   "alice@example.org",
		Arrival:  arrival,
		Client:   "client.example.org [192.0.2.10]",
		EnvID:    "QQ314159",
		Rcpts: []RcptStatus{{
			Addr:        "bob@example.net",
			ORcpt:       "rfc822;Bob@Example.NET",
			Diagnostic:  "550-5.1.1 The account you tried to reach does not exist.\r\n550 5.1.1 Please check the address.",
			Command:     "RCPT To:<bob@example.net>",
			RemoteMTA:   "mx.example.net",
			LastAttempt: now,
		}, {
			Addr:        "carol@example.com",
			Status:      "4.4.7",
			Diagnostic:  "Connection refused by mx.example.com.",
			LastAttempt: now,
		}},
		Original: strings.NewReader(simpleOriginal),
		Now:      now,
		rand:     fixedRand(),
	}
}

func delayReport() Report {
	return Report{
		Kind:        Delay,
		Hostname:    "gsm.example",
		ID:          "6AQ3nGAo012478",
		Sender:      "alice@example.org",
		Arrival:     arrival,
		Client:      "client.example.org [192.0.2.10]",
		WarnAfter:   4 * time.Hour,
		ReturnAfter: 5 * 24 * time.Hour,
		Rcpts: []RcptStatus{{
			Addr:           "bob@example.net",
			Diagnostic:     "Connection refused by mx.example.net.",
			RemoteMTA:      "mx.example.net",
			LastAttempt:    now,
			WillRetryUntil: arrival.Add(5 * 24 * time.Hour),
		}},
		Ret:      "FULL", // ignored: a warning returns headers only
		Original: strings.NewReader(simpleOriginal),
		Now:      now,
		rand:     fixedRand(),
	}
}

const bounceOriginal = "From: Mail Delivery Subsystem <MAILER-DAEMON@other.example>\r\n" +
	"To: <forged@example.net>\r\n" +
	"Subject: Returned mail: see transcript for details\r\n" +
	"Auto-Submitted: auto-generated (failure)\r\n" +
	"\r\n" +
	"The original message could not be delivered.\r\n"

func postmasterReport() Report {
	return Report{
		Kind:     PostmasterNotify,
		Hostname: "gsm.example",
		ID:       "6AQ3nGAq012480",
		Sender:   "",
		Arrival:  arrival,
		Client:   "other.example [198.51.100.7]",
		Rcpts: []RcptStatus{{
			Addr:        "forged@example.net",
			Diagnostic:  "550 5.1.1 <forged@example.net>... User unknown",
			Command:     "RCPT To:<forged@example.net>",
			RemoteMTA:   "mx.example.net",
			LastAttempt: now,
		}},
		Original: strings.NewReader(bounceOriginal),
		Now:      now,
		rand:     fixedRand(),
	}
}

func build(t testing.TB, r Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, r); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for name, r := range map[string]Report{
		"failure":    failureReport(),
		"delay":      delayReport(),
		"postmaster": postmasterReport(),
	} {
		t.Run(name, func(t *testing.T) {
			got := build(t, r)
			checkWellFormed(t, got)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s", path, got)
			}
		})
	}
}

// parsed is a report taken apart by go-message.
type parsed struct {
	header  mail.Header
	parts   []part
	msgDS   textproto.Header   // per-message delivery-status fields
	rcptDS  []textproto.Header // per-recipient blocks
	rawText string
}

type part struct {
	ctype  string
	params map[string]string
	header message.Header
	body   []byte
}

// checkWellFormed checks what every report must be, whatever its input:
// CRLF only, no NUL, no line over 998 octets, and a multipart/report that
// go-message reads to its closing boundary, with the parts in order.
func checkWellFormed(t testing.TB, out []byte) *parsed {
	t.Helper()
	for i, c := range out {
		switch {
		case c == '\n' && (i == 0 || out[i-1] != '\r'):
			t.Fatalf("bare LF at offset %d: %q", i, context(out, i))
		case c == '\r' && (i+1 == len(out) || out[i+1] != '\n'):
			t.Fatalf("bare CR at offset %d: %q", i, context(out, i))
		case c == 0:
			t.Fatalf("NUL at offset %d", i)
		}
	}
	for n, l := range bytes.Split(out, []byte("\r\n")) {
		if len(l) > maxLine {
			t.Fatalf("line %d is %d octets long", n+1, len(l))
		}
	}
	if !bytes.HasSuffix(out, []byte("--\r\n")) {
		t.Fatalf("report does not end with the closing boundary: %q", context(out, len(out)-1))
	}

	e, err := message.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("message.Read: %v", err)
	}
	p := &parsed{header: mail.Header{Header: e.Header}}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q %v (%v), want multipart/report; report-type=delivery-status", mt, params, err)
	}
	if e.Header.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version %q", e.Header.Get("MIME-Version"))
	}
	mr := e.MultipartReader()
	for {
		pe, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(p.parts)+1, err)
		}
		ct, cp, err := pe.Header.ContentType()
		if err != nil {
			t.Fatalf("part %d Content-Type: %v", len(p.parts)+1, err)
		}
		body, err := io.ReadAll(pe.Body)
		if err != nil {
			t.Fatalf("part %d body: %v", len(p.parts)+1, err)
		}
		p.parts = append(p.parts, part{ctype: ct, params: cp, header: pe.Header, body: body})
	}
	if len(p.parts) < 2 || len(p.parts) > 3 {
		t.Fatalf("%d parts, want 2 or 3", len(p.parts))
	}
	if p.parts[0].ctype != "text/plain" || p.parts[1].ctype != "message/delivery-status" {
		t.Fatalf("parts are %s, %s", p.parts[0].ctype, p.parts[1].ctype)
	}
	if len(p.parts) == 3 && p.parts[2].ctype != "message/rfc822" && p.parts[2].ctype != "text/rfc822-headers" {
		t.Fatalf("third part is %s", p.parts[2].ctype)
	}
	p.rawText = string(p.parts[0].body)

	br := bufio.NewReader(bytes.NewReader(p.parts[1].body))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("delivery-status block %d: %v", len(p.rcptDS)+1, err)
		}
		if p.msgDS.Len() == 0 && len(p.rcptDS) == 0 {
			p.msgDS = h
		} else {
			p.rcptDS = append(p.rcptDS, h)
		}
	}
	if p.msgDS.Get("Reporting-MTA") == "" {
		t.Fatalf("no Reporting-MTA in %q", p.parts[1].body)
	}
	if len(p.rcptDS) == 0 {
		t.Fatalf("no per-recipient block in %q", p.parts[1].body)
	}
	for i, b := range p.rcptDS {
		for _, f := range []string{"Final-Recipient", "Action", "Status"} {
			if b.Get(f) == "" {
				t.Fatalf("recipient block %d has no %s", i+1, f)
			}
		}
	}
	return p
}

func context(b []byte, i int) []byte {
	return b[max(i-40, 0):min(i+40, len(b))]
}

func TestFailureStructure(t *testing.T) {
	p := checkWellFormed(t, build(t, failureReport()))
	h := p.header
	for k, want := range map[string]string{
		"From":           "Mail Delivery Subsystem <MAILER-DAEMON@gsm.example>",
		"To":             "<alice@example.org>",
		"Subject":        "Returned mail: see transcript for details",
		"Auto-Submitted": "auto-generated (failure)",
		"Date":           "Thu, 26 Nov 2026 07:56:16 +0000",
		"Message-ID":     "<6AQ3nGAo012478.1795679776.deadbeef01020304@gsm.example>",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if len(p.parts) != 3 || p.parts[2].ctype != "message/rfc822" {
		t.Fatalf("want the whole original by default, got %d parts", len(p.parts))
	}
	if string(p.parts[2].body) != simpleOriginal {
		t.Errorf("original changed:\n%q\nwant\n%q", p.parts[2].body, simpleOriginal)
	}
	for k, want := range map[string]string{
		"Reporting-MTA":        "dns; gsm.example",
		"Original-Envelope-Id": "QQ314159",
		"Arrival-Date":         "Thu, 26 Nov 2026 03:49:16 +0000",
	} {
		if got := p.msgDS.Get(k); got != want {
			t.Errorf("per-message %s: %q, want %q", k, got, want)
		}
	}
	if len(p.rcptDS) != 2 {
		t.Fatalf("%d recipient blocks, want 2", len(p.rcptDS))
	}
	bob, carol := p.rcptDS[0], p.rcptDS[1]
	for _, c := range []struct {
		h       textproto.Header
		k, want string
	}{
		{bob, "Original-Recipient", "rfc822;Bob@Example.NET"},
		{bob, "Final-Recipient", "RFC822; bob@example.net"},
		{bob, "Action", "failed"},
		{bob, "Status", "5.1.1"},
		{bob, "Remote-MTA", "dns; mx.example.net"},
		{bob, "Diagnostic-Code", "smtp; 550-5.1.1 The account you tried to reach does not exist. 550 5.1.1 Please check the address."},
		{bob, "Last-Attempt-Date", "Thu, 26 Nov 2026 07:56:16 +0000"},
		{bob, "Will-Retry-Until", ""},
		{carol, "Original-Recipient", ""},
		{carol, "Final-Recipient", "RFC822; carol@example.com"},
		{carol, "Action", "failed"},
		{carol, "Status", "4.4.7"},
		{carol, "Remote-MTA", ""},
		{carol, "Diagnostic-Code", "X-Gosendmail; Connection refused by mx.example.com."},
	} {
		// Folded values come back with the CRLF removed and the space kept.
		got := strings.ReplaceAll(c.h.Get(c.k), "\r\n", "")
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.k, got, c.want)
		}
	}
	for _, want := range []string{
		"The original message was received at Thu, 26 Nov 2026 03:49:16 +0000\r\nfrom client.example.org [192.0.2.10]\r\n",
		titleFailed + "\r\n<bob@example.net>\r\n    (reason: 550 5.1.1 Please check the address.)\r\n",
		titleTranscr + "\r\n... while talking to mx.example.net:\r\n>>> RCPT To:<bob@example.net>\r\n" +
			"<<< 550-5.1.1 The account you tried to reach does not exist.\r\n<<< 550 5.1.1 Please check the address.\r\n",
		"<carol@example.com>... Connection refused by mx.example.com.\r\n",
	} {
		if !strings.Contains(p.rawText, want) {
			t.Errorf("text part lacks %q:\n%s", want, p.rawText)
		}
	}
}

func TestDelayStructure(t *testing.T) {
	p := checkWellFormed(t, build(t, delayReport()))
	if got := p.header.Get("Subject"); got != "Warning: could not send message for past 4 hours" {
		t.Errorf("Subject %q", got)
	}
	if got := p.header.Get("Auto-Submitted"); got != "auto-generated (warning-timeout)" {
		t.Errorf("Auto-Submitted %q", got)
	}
	if p.parts[2].ctype != "text/rfc822-headers" {
		t.Errorf("a warning returns %s, want headers only", p.parts[2].ctype)
	}
	hdr, _, _ := strings.Cut(simpleOriginal, "\r\n\r\n")
	if string(p.parts[2].body) != hdr+"\r\n" {
		t.Errorf("returned headers %q, want %q", p.parts[2].body, hdr+"\r\n")
	}
	b := p.rcptDS[0]
	if b.Get("Action") != "delayed" || b.Get("Status") != "4.0.0" ||
		b.Get("Will-Retry-Until") != "Tue, 01 Dec 2026 03:49:16 +0000" {
		t.Errorf("recipient block: %v", b.Map())
	}
	for _, want := range []string{
		"<bob@example.net>... Deferred: Connection refused by mx.example.net.\r\n" +
			"Warning: message still undelivered after 4 hours\r\n" +
			"Will keep trying until message is 5 days old\r\n",
		titleDelayed,
	} {
		if !strings.Contains(p.rawText, want) {
			t.Errorf("text part lacks %q:\n%s", want, p.rawText)
		}
	}
}

func TestDelayDurations(t *testing.T) {
	// Without WarnAfter and ReturnAfter the message's age and the
	// recipients' retry limit give the durations.
	r := delayReport()
	r.WarnAfter, r.ReturnAfter = 0, 0
	r.Now = arrival.Add(26*time.Hour + 30*time.Minute + 10*time.Second)
	p := checkWellFormed(t, build(t, r))
	if got := p.header.Get("Subject"); got != "Warning: could not send message for past 1 day, 2 hours, 30 minutes" {
		t.Errorf("Subject %q", got)
	}
	if !strings.Contains(p.rawText, "Will keep trying until message is 5 days old") {
		t.Errorf("text:\n%s", p.rawText)
	}
}

func TestPostmasterStructure(t *testing.T) {
	r := postmasterReport()
	if got := r.Recipient(); got != "postmaster@gsm.example" {
		t.Errorf("Recipient %q", got)
	}
	p := checkWellFormed(t, build(t, r))
	for k, want := range map[string]string{
		"To":             "Postmaster <postmaster@gsm.example>",
		"Subject":        "Postmaster notify: see transcript for details",
		"Auto-Submitted": "auto-generated (postmaster-notification)",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if p.parts[2].ctype != "message/rfc822" || string(p.parts[2].body) != bounceOriginal {
		t.Errorf("third part %s %q", p.parts[2].ctype, p.parts[2].body)
	}
	r = postmasterReport()
	r.Postmaster = "root@gsm.example"
	if got := r.Recipient(); got != "root@gsm.example" {
		t.Errorf("Recipient %q", got)
	}
	if p := checkWellFormed(t, build(t, r)); p.header.Get("To") != "<root@gsm.example>" {
		t.Errorf("To %q", p.header.Get("To"))
	}
}

func TestSuccess(t *testing.T) {
	r := failureReport()
	r.Kind = Success
	r.Rcpts = []RcptStatus{{Addr: "bob@example.net", Diagnostic: "250 2.0.0 Ok: queued as 4XyZ", RemoteMTA: "mx.example.net"}}
	p := checkWellFormed(t, build(t, r))
	if p.header.Get("Subject") != "Return receipt" || p.header.Get("Auto-Submitted") != "auto-generated (return-receipt)" {
		t.Errorf("header: %v", p.header.Map())
	}
	if b := p.rcptDS[0]; b.Get("Action") != "delivered" || b.Get("Status") != "2.0.0" {
		t.Errorf("block: %v", b.Map())
	}
	if p.parts[2].ctype != "text/rfc822-headers" {
		t.Errorf("success returns %s", p.parts[2].ctype)
	}
	if !strings.Contains(p.rawText, titleDelivered+"\r\n<bob@example.net>\r\n    (250 2.0.0 Ok: queued as 4XyZ)\r\n") {
		t.Errorf("text:\n%s", p.rawText)
	}
}

func TestWhatIsReturned(t *testing.T) {
	big := simpleOriginal + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 5000)
	for _, c := range []struct {
		name   string
		mod    func(*Report)
		orig   string
		ctype  string
		notice string
	}{
		{"default is full", func(*Report) {}, simpleOriginal, "message/rfc822", ""},
		{"RET=FULL", func(r *Report) { r.Ret = "FULL" }, simpleOriginal, "message/rfc822", ""},
		{"RET=HDRS", func(r *Report) { r.Ret = "HDRS" }, simpleOriginal, "text/rfc822-headers", ""},
		{"ret=hdrs", func(r *Report) { r.Ret = "hdrs" }, simpleOriginal, "text/rfc822-headers", ""},
		{"nobodyreturn", func(r *Report) { r.Ret = "FULL"; r.NoBodyReturn = true }, simpleOriginal, "text/rfc822-headers", ""},
		{"too big", func(*Report) {}, big, "text/rfc822-headers", "larger than 262144 bytes"},
		{"MaxFull", func(r *Report) { r.MaxFull = 100 }, simpleOriginal, "text/rfc822-headers", "larger than 100 bytes"},
		{"MaxFull fits", func(r *Report) { r.MaxFull = int64(len(big)) }, big, "message/rfc822", ""},
		{"no original", func(r *Report) { r.Original = nil }, "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := failureReport()
			r.Original = strings.NewReader(c.orig)
			c.mod(&r)
			p := checkWellFormed(t, build(t, r))
			if c.ctype == "" {
				if len(p.parts) != 2 {
					t.Fatalf("%d parts, want 2", len(p.parts))
				}
				return
			}
			if got := p.parts[2].ctype; got != c.ctype {
				t.Fatalf("third part %s, want %s", got, c.ctype)
			}
			want := c.orig
			if c.ctype == "text/rfc822-headers" {
				hdr, _, _ := strings.Cut(c.orig, "\r\n\r\n")
				want = hdr + "\r\n"
			}
			if string(p.parts[2].body) != want {
				t.Errorf("third part %.200q..., want %.200q...", p.parts[2].body, want)
			}
			if c.notice != "" && !strings.Contains(p.rawText, c.notice) {
				t.Errorf("text does not say %q:\n%s", c.notice, p.rawText)
			}
		})
	}
}

func TestMalformedOriginals(t *testing.T) {
	longLine := "X-Long: " + strings.Repeat("a", 1<<20) + "\r\n"
	for _, c := range []struct {
		name string
		orig string
		// check looks at the third part; nil = well-formed is enough
		check func(t *testing.T, p *parsed, ctype string, body []byte)
	}{
		{"empty", "", nil},
		{"no separator", "From: a@example.org\r\nSubject: x\r\nthis is the body\r\nmore\r\n", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if ctype != "message/rfc822" {
				t.Errorf("ctype %s", ctype)
			}
		}},
		{"headers only, no final newline", "From: a@example.org\r\nSubject: x", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if string(body) != "From: a@example.org\r\nSubject: x\r\n" {
				t.Errorf("body %q", body)
			}
		}},
		{"NUL bytes", "From: a\x00@example.org\r\nSubject: x\x00y\r\n\r\nbo\x00dy\r\n", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if string(body) != "From: a@example.org\r\nSubject: xy\r\n\r\nbody\r\n" {
				t.Errorf("body %q", body)
			}
		}},
		{"1 MB header line", "From: a@example.org\r\n" + longLine + "\r\nbody\r\n", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if ctype != "text/rfc822-headers" {
				t.Errorf("ctype %s, want headers only (too big)", ctype)
			}
			if len(body) > MaxHeaderBytes {
				t.Errorf("%d bytes of headers returned", len(body))
			}
			if !strings.Contains(p.rawText, "only\r\nits beginning is returned") || strings.Contains(p.rawText, "larger than") {
				t.Errorf("text does not explain the cut:\n%s", p.rawText)
			}
			if !bytes.HasPrefix(body, []byte("From: a@example.org\r\nX-Long: aaa")) {
				t.Errorf("body starts %.80q", body)
			}
		}},
		{"1 MB body line", simpleOriginal + strings.Repeat("b", 1<<20) + "\r\n", nil},
		{"bare LF and CR", "From: a@example.org\nSubject: x\r\rbody\rline\n", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if string(body) != "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\nline\r\n" {
				t.Errorf("body %q", body)
			}
		}},
		{"broken MIME", "From: a@example.org\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--yy--\r\n--", nil},
		{"our own boundary's prefix", "From: a@example.org\r\n\r\n--6AQ3nGAo012478.1795679776/gsm.example/\r\n" +
			"--6AQ3nGAo012478.1795679776/gsm.example/--\r\n", nil},
		{"8-bit", "From: J\xc3\xbcrgen <j@example.org>\r\nSubject: \xff\xfe caf\xe9\r\n\r\nK\xc3\xa4se\r\n", func(t *testing.T, p *parsed, ctype string, body []byte) {
			if !bytes.Contains(body, []byte("J\xc3\xbcrgen")) || !bytes.Contains(body, []byte("\xff\xfe caf\xe9")) {
				t.Errorf("8-bit bytes not kept: %q", body)
			}
		}},
		{"header starts with a blank", " folded\r\nFrom: a@example.org\r\n\r\nbody\r\n", nil},
		{"binary", string(bytes.Repeat([]byte{0, 1, 2, 0x7f, 0x80, 0xff, '\r', 0xc3}, 20000)), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, ret := range []string{"FULL", "HDRS"} {
				r := failureReport()
				r.Ret = ret
				r.Original = strings.NewReader(c.orig)
				out := build(t, r)
				p := checkWellFormed(t, out)
				if len(p.parts) != 3 {
					t.Fatalf("%d parts", len(p.parts))
				}
				pt := p.parts[2]
				if has8bit(string(pt.body)) != (pt.header.Get("Content-Transfer-Encoding") == "8bit") {
					t.Errorf("8-bit body labelled %q", pt.header.Get("Content-Transfer-Encoding"))
				}
				if c.check != nil && ret == "FULL" {
					c.check(t, p, pt.ctype, pt.body)
				}
			}
		})
	}
}

func TestHostileFields(t *testing.T) {
	// Text from the remote server and the envelope must not break a field,
	// a line, or the US-ASCII of the delivery-status part.
	r := failureReport()
	r.EnvID = "id\r\nBcc: x@example.org"
	r.Client = "evil\r\n\r\n--x"
	r.Rcpts = []RcptStatus{{
		Addr:       "j\xc3\xbcrgen@example.org",
		ORcpt:      "utf-8;j\xc3\xbcrgen@example.org\x00",
		Status:     "9.9.9",
		Diagnostic: "554 5.7.1 \x1b[31mno\x00 way\xff " + strings.Repeat("x", 3000) + "\r\n\r\n",
		RemoteMTA:  "mx.example.net\r\nInjected: yes",
		Command:    "RCPT To:<a>\r\nDATA",
	}}
	p := checkWellFormed(t, build(t, r))
	if p.header.Get("Bcc") != "" || p.msgDS.Get("Bcc") != "" || p.rcptDS[0].Get("Injected") != "" {
		t.Errorf("a field was injected")
	}
	if has8bit(string(p.parts[1].body)) {
		t.Errorf("delivery-status part is not US-ASCII: %q", p.parts[1].body)
	}
	b := p.rcptDS[0]
	if got := b.Get("Final-Recipient"); got != "RFC822; j+C3+BCrgen@example.org" {
		t.Errorf("Final-Recipient %q", got)
	}
	if got := b.Get("Original-Recipient"); got != "utf-8;j+C3+BCrgen@example.org" {
		t.Errorf("Original-Recipient %q", got)
	}
	if got := b.Get("Status"); got != "5.7.1" {
		t.Errorf("Status %q, want it taken from the reply", got)
	}
	if got := b.Get("Diagnostic-Code"); !strings.HasPrefix(got, "smtp; 554 5.7.1 [31mno way? xxx") {
		t.Errorf("Diagnostic-Code %.60q", got)
	}
	if !strings.Contains(p.rawText, "<j\xc3\xbcrgen@example.org>") {
		t.Errorf("text should keep the UTF-8 address:\n%s", p.rawText)
	}
	if p.parts[0].params["charset"] != "utf-8" {
		t.Errorf("text part charset %q", p.parts[0].params["charset"])
	}
}

func TestStatusFrom(t *testing.T) {
	for _, c := range []struct {
		diag   string
		action Action
		want   string
	}{
		{"550 5.1.1 User unknown", Failed, "5.1.1"},
		{"550-first\r\n550 5.2.2 mailbox full", Failed, "5.2.2"},
		{"452 4.2.2 over quota", Delayed, "4.2.2"},
		{"550 4.2.2 class mismatch", Failed, "5.0.0"},
		{"421 try later", Delayed, "4.0.0"},
		{"Connection refused", Delayed, "4.0.0"},
		{"", Failed, "5.0.0"},
		{"", Delivered, "2.0.0"},
		{"354 go ahead", Failed, "5.0.0"},
		{"5501 nonsense", Failed, "5.0.0"},
	} {
		if got := statusFrom(c.diag, c.action); got != c.want {
			t.Errorf("statusFrom(%q, %s) = %q, want %q", c.diag, c.action, got, c.want)
		}
	}
}

func TestShouldNotify(t *testing.T) {
	for _, c := range []struct {
		notify                   string
		fail, delay, succ, pmNot bool
	}{
		{"", true, true, false, true},
		{"NEVER", false, false, false, false},
		{"never", false, false, false, false},
		{"SUCCESS", false, false, true, true},
		{"FAILURE", true, false, false, true},
		{"DELAY", false, true, false, true},
		{"SUCCESS,FAILURE,DELAY", true, true, true, true},
		{" success , delay ", false, true, true, true},
	} {
		for kind, want := range map[Kind]bool{Failure: c.fail, Delay: c.delay, Success: c.succ, PostmasterNotify: c.pmNot} {
			if got := ShouldNotify(kind, c.notify); got != want {
				t.Errorf("ShouldNotify(%s, %q) = %v, want %v", kind, c.notify, got, want)
			}
		}
	}
	if ShouldNotify(Kind(0), "") {
		t.Error("ShouldNotify of an invalid kind")
	}
}

func TestIsBounce(t *testing.T) {
	for s, want := range map[string]bool{"": true, "<>": true, " ": true, "a@example.org": false, "MAILER-DAEMON@example.org": false} {
		if got := IsBounce(s); got != want {
			t.Errorf("IsBounce(%q) = %v", s, got)
		}
	}
}

func TestInterval(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4 * time.Hour:                  "4 hours",
		time.Hour:                      "1 hour",
		5 * 24 * time.Hour:             "5 days",
		7 * 24 * time.Hour:             "1 week",
		36*time.Hour + 90*time.Second:  "1 day, 12 hours, 1 minute, 30 seconds",
		0:                              "0 seconds",
		1500 * time.Millisecond:        "1 second",
		-time.Hour:                     "0 seconds",
		9*24*time.Hour + 2*time.Minute: "1 week, 2 days, 2 minutes",
	} {
		if got := interval(d); got != want {
			t.Errorf("interval(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBadReports(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*Report)
	}{
		{"no kind", func(r *Report) { r.Kind = 0 }},
		{"unknown kind", func(r *Report) { r.Kind = 99 }},
		{"no hostname", func(r *Report) { r.Hostname = " " }},
		{"no recipients", func(r *Report) { r.Rcpts = nil }},
		{"empty address", func(r *Report) { r.Rcpts[0].Addr = "" }},
		{"null sender", func(r *Report) { r.Sender = "" }},
		{"no randomness", func(r *Report) { r.rand = strings.NewReader("") }},
		{"unknown action", func(r *Report) { r.Rcpts[0].Action = "failed\r\nX: y" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := failureReport()
			c.mod(&r)
			var b bytes.Buffer
			if err := Build(&b, r); err == nil {
				t.Fatal("Build succeeded")
			}
			if b.Len() != 0 {
				t.Errorf("%d bytes written on error", b.Len())
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := failureReport()
	r.Original = io.MultiReader(strings.NewReader("From: a@example.org\r\n"), iotest.ErrReader(boom))
	var b bytes.Buffer
	if err := Build(&b, r); !errors.Is(err, boom) {
		t.Fatalf("Build: %v, want %v", err, boom)
	}
	if b.Len() != 0 {
		t.Errorf("%d bytes written on error", b.Len())
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	full := len(build(t, failureReport()))
	for _, n := range []int{0, 100, full / 2, full - 1} {
		if err := Build(&failWriter{n: n}, failureReport()); err == nil {
			t.Errorf("Build into a writer that fails after %d bytes succeeded", n)
		}
	}
}

func TestDoesNotReadEverything(t *testing.T) {
	// A headers-only report stops reading at the end of the header section.
	r := delayReport()
	cr := &countingReader{r: io.MultiReader(strings.NewReader(simpleOriginal), zeros{})}
	r.Original = cr
	checkWellFormed(t, build(t, r))
	if cr.n > 1<<20 {
		t.Errorf("read %d bytes of an endless original", cr.n)
	}
	// So does a full one, past MaxFull.
	r = failureReport()
	cr = &countingReader{r: io.MultiReader(strings.NewReader(simpleOriginal), zeros{})}
	r.Original = cr
	p := checkWellFormed(t, build(t, r))
	if cr.n > 1<<20 || p.parts[2].ctype != "text/rfc822-headers" {
		t.Errorf("read %d bytes of an endless original, returned %s", cr.n, p.parts[2].ctype)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
		if i%100 == 99 {
			p[i] = '\n'
		}
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("a", maxLine)
	utf := strings.Repeat("a", maxLine-1) + "\xc3\xa4" + "b" // ä straddles the limit
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\r\nb\nc\rd\r", []string{"a", "b", "c", "d"}},
		{"\r\n\r\n", []string{"", ""}},
		{"\n\r", []string{"", ""}},
		{long + "\r\n", []string{long}},
		{long + "xy\r\n", []string{long, " xy"}},
		{utf, []string{strings.Repeat("a", maxLine-1), " \xc3\xa4b"}},
		{"a\x00b\r\n", []string{"ab"}},
	} {
		lr := newLineReader(strings.NewReader(c.in))
		var got []string
		for {
			l, err := lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(l))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("lines of %.40q = %.80q, want %.80q", c.in, got, c.want)
		}
	}
}

func TestFoldField(t *testing.T) {
	for _, v := range []string{
		"short",
		strings.Repeat("word ", 100),
		strings.Repeat("x", 5000),
		"a " + strings.Repeat("\xc3\xa4", 1000),
	} {
		f := foldField("Diagnostic-Code", v)
		if !strings.HasSuffix(f, "\r\n") {
			t.Errorf("%.40q: no CRLF at the end", f)
		}
		for _, l := range strings.Split(strings.TrimSuffix(f, "\r\n"), "\r\n") {
			if len(l) > maxLine {
				t.Errorf("line of %d octets", len(l))
			}
		}
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(f + "\r\n")))
		if err != nil {
			t.Fatalf("%.40q: %v", f, err)
		}
		got := strings.ReplaceAll(h.Get("Diagnostic-Code"), "\r\n", "")
		if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(v, " ", "") {
			t.Errorf("value changed: %.60q", got)
		}
	}
}
