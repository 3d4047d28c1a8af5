package sendmailq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func readFixture(t *testing.T, path string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(filepath.Base(path)[2:], data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestParseSimple(t *testing.T) {
	f := readFixture(t, "flat/qf6AQ3n0LQ012206")
	want := &File{
		ID:          "6AQ3n0LQ012206",
		Version:     8,
		Created:     utc(2026, 11, 26, 3, 49, 0),
		LastAttempt: utc(2026, 11, 26, 4, 49, 5),
		Attempts:    4,
		Priority:    210066,
		Inode:       "254/0/754672",
		Status:      "Deferred: Connection refused by mx.example.net.",
		Macros:      map[string]string{"_": "localhost [127.0.0.1]", "r": "ESMTP", "s": "localhost", "daemon_flags": "", "if_addr": "127.0.0.1"},
		Sender:      "<www-data@example.org>",
		Rcpts:       []Recipient{{Addr: "<x@example.net>", Flags: "PFD"}},
		Headers: []Header{
			{Cond: "P", Name: "Return-Path", Value: "<\x81g>"},
			{Name: "Received", Value: "from localhost (localhost [127.0.0.1])\n\tby mail.example.org (8.17.1.9/8.17.1.9/Debian-2) with ESMTP id 6AQ3n0LQ012206\n\tfor <x@example.net>; Thu, 26 Nov 2026 03:49:00 GMT"},
			{Name: "Received", Value: "(from www-data@localhost)\n\tby mail.example.org (8.17.1.9/8.17.1.9/Submit) id 6AQ3n0kP012205\n\tfor x@example.net; Thu, 26 Nov 2026 03:49:00 GMT"},
			{Cond: "D", Name: "Date", Value: "Thu, 26 Nov 2026 03:49:00 GMT"},
			{Cond: "F", Name: "From", Value: "www-data <www-data@example.org>"},
			{Cond: "x", Name: "Full-Name", Value: "www-data"},
			{Cond: "M", Name: "Message-Id", Value: "<202611260349.6AQ3n0kP012205@mail.example.org>"},
			{Name: "To", Value: "x@example.net"},
			{Name: "Subject", Value: "Cron <www-data@mail> php /var/www/cron.php"},
		},
	}
	// Compare times as instants.
	if !f.Created.Equal(want.Created) || !f.LastAttempt.Equal(want.LastAttempt) {
		t.Errorf("times %v %v, want %v %v", f.Created, f.LastAttempt, want.Created, want.LastAttempt)
	}
	f.Created, f.LastAttempt = want.Created, want.LastAttempt
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
	if f.Ret() != "" || f.IsResponse() || f.WarningSent() {
		t.Errorf("flags: ret %q response %v warning %v", f.Ret(), f.IsResponse(), f.WarningSent())
	}
}

func TestParseDSN(t *testing.T) {
	f := readFixture(t, "flat/qf6AP9xR4a010117")
	if f.BodyType != "8BITMIME" || !f.WarningSent() || f.Ret() != "FULL" || f.EnvID != "list+2Dmail+2E20261125" || f.Auth != "<>" {
		t.Errorf("body %q warning %v ret %q envid %q auth %q", f.BodyType, f.WarningSent(), f.Ret(), f.EnvID, f.Auth)
	}
	want := []struct{ addr, notify, orcpt, final string }{
		{"<alice@example.net>", "FAILURE,DELAY", "RFC822;alice@example.net", ""},
		{"<bob+lists@example.net>", "SUCCESS,FAILURE", "rfc822;bob+2Blists@example.net", ""},
		{"<carol@example.net>", "NEVER", "", ""},
		{"<dave@mail.example.org>", "", "", "rfc822; dave@example.org"},
	}
	if len(f.Rcpts) != len(want) {
		t.Fatalf("%d recipients, want %d", len(f.Rcpts), len(want))
	}
	for i, w := range want {
		r := &f.Rcpts[i]
		if r.Addr != w.addr || r.Notify() != w.notify || r.ORcpt != w.orcpt || r.Final != w.final {
			t.Errorf("rcpt %d: %q notify %q orcpt %q final %q, want %+v", i, r.Addr, r.Notify(), r.ORcpt, r.Final, w)
		}
	}
	if v := f.Macros["client_addr"]; v != "198.51.100.25" {
		t.Errorf("client_addr %q", v)
	}
}

func TestNotify(t *testing.T) {
	for _, c := range []struct{ flags, want string }{
		{"PFD", ""},
		{"PNFD", "FAILURE,DELAY"},
		{"PNSFD", "SUCCESS,FAILURE,DELAY"},
		{"PN", "NEVER"},
		{"PNS", "SUCCESS"},
		{"P", "NEVER"}, // sendmail always sets F and D by default
		{"PF", "FAILURE"},
		{"PSFD", "SUCCESS,FAILURE,DELAY"},
	} {
		r := Recipient{Flags: c.flags}
		if got := r.Notify(); got != c.want {
			t.Errorf("%s: %q, want %q", c.flags, got, c.want)
		}
	}
}

// minimal is a valid qf; tests change one thing.
const minimal = "V8\nT1795664940\nK0\nN0\nP30100\nS<a@example.org>\nRPFD:<b@example.net>\nH??Subject: hi\n.\n"

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, data, want string
	}{
		{"empty", "", "empty file"},
		{"no version", strings.TrimPrefix(minimal, "V8\n"), "no version record first"},
		{"old version", strings.Replace(minimal, "V8", "V3", 1), `version "3" not supported`},
		{"new version", strings.Replace(minimal, "V8", "V9", 1), `version "9" not supported`},
		{"bad version", strings.Replace(minimal, "V8", "Vx", 1), `version "x" not supported`},
		{"truncated", strings.TrimSuffix(minimal, ".\n"), "no '.' line"},
		{"truncated mid-line", minimal[:len(minimal)-10], "no '.' line"},
		{"after dot", minimal + "RPFD:<evil@example.com>\n", "line 10: data after the '.' line"},
		{"blank after dot", minimal + "\n", "data after the '.' line"},
		{"unknown record", strings.Replace(minimal, "K0\n", "K0\nX1\n", 1), `line 4: unknown record 'X'`},
		{"empty line", strings.Replace(minimal, "K0\n", "K0\n\n", 1), "line 4: empty line"},
		{"repeated S", strings.Replace(minimal, "S<a@example.org>\n", "S<a@example.org>\nS<c@example.org>\n", 1), "record 'S' repeated"},
		{"no sender", strings.Replace(minimal, "S<a@example.org>\n", "", 1), "no sender"},
		{"no time", strings.Replace(minimal, "T1795664940\n", "", 1), "no creation time"},
		{"no recipient", strings.Replace(minimal, "RPFD:<b@example.net>\n", "", 1), "no recipients left"},
		{"R without colon", strings.Replace(minimal, "RPFD:", "RPFD", 1), "without ':'"},
		{"R empty address", strings.Replace(minimal, "RPFD:<b@example.net>", "RPFD: ", 1), "empty address"},
		{"R bad flag", strings.Replace(minimal, "RPFD:", "Rp:", 1), "bad flag"},
		{"bad number", strings.Replace(minimal, "N0", "N1x", 1), `bad number "1x"`},
		{"negative time", strings.Replace(minimal, "T1795664940", "T-5", 1), `bad number "-5"`},
		{"bad body type", strings.Replace(minimal, "K0\n", "K0\nBQUANTUM\n", 1), "unknown body type"},
		{"From line", strings.Replace(minimal, "K0\n", "K0\nFrom root  Thu Nov 26 03:49:00 2026\n", 1), `"From " line`},
		{"continued S", strings.Replace(minimal, "S<a@example.org>\n", "S<a@example.org>\n\tmore\n", 1), "continued on the next line"},
		{"continuation first", " V8\n" + minimal, "continuation line first"},
		{"header without colon", strings.Replace(minimal, "H??Subject: hi", "H??Subject hi", 1), "no ':'"},
		{"header open condition", strings.Replace(minimal, "H??Subject: hi", "H?PSubject: hi", 1), "closing '?'"},
		{"header bad name", strings.Replace(minimal, "H??Subject: hi", "H??Sub ject: hi", 1), "bad field name"},
		{"header bad macro", strings.Replace(minimal, "H??Subject: hi", "H?$ab?Subject: hi", 1), "bad macro condition"},
		{"bad macro", strings.Replace(minimal, "K0\n", "K0\n${unclosed\n", 1), "bad macro name"},
		{"NUL", strings.Replace(minimal, "<a@example.org>", "<a@exa\x00mple.org>", 1), "NUL or CR"},
		{"CR", strings.Replace(minimal, "S<a@example.org>\n", "S<a@example.org>\r\n", 1), "NUL or CR"},
		{"Q without R", strings.Replace(minimal, "H??Subject: hi\n", "H??Subject: hi\nQrfc822;x@example.org\n", 1), "without its R"},
		{"G in V8", strings.Replace(minimal, "K0\n", "K0\nG1\n", 1), "not of version 8"},
		{"second version", strings.Replace(minimal, "K0\n", "K0\nV8\n", 1), "second version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("6AQ3n0LQ012206", []byte(c.data))
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want one containing %q", err, c.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, c := range []struct {
		name, data string
		check      func(*File) error
	}{
		{"minimal", minimal, nil},
		{"no final newline", strings.TrimSuffix(minimal, "\n"), nil},
		{"V4", strings.Replace(minimal, "V8", "V4", 1), nil},
		{"V7 queue delay records", strings.Replace(minimal, "V8\n", "V7\nG0\nY0\n", 1), nil},
		{"obsolete records", strings.Replace(minimal, "K0\n", "K0\nDdf6AQ3n0LQ012206\nEerrors@example.org\nL120\n", 1), nil},
		{"header without condition", strings.Replace(minimal, "H??Subject", "HSubject", 1), func(f *File) error {
			if h := f.Headers[0]; h.Name != "Subject" || h.Value != "hi" || h.Cond != "" {
				return fmt.Errorf("%+v", h)
			}
			return nil
		}},
		{"macro conditions", strings.Replace(minimal, "H??Subject: hi\n", "H?${auth_type}?X-A: 1\nH?$j?X-B: 2\nH?\x81j?X-C: 3\n", 1), func(f *File) error {
			if f.Headers[0].Macro != "auth_type" || f.Headers[1].Macro != "j" || f.Headers[2].Macro != "j" {
				return fmt.Errorf("%+v", f.Headers)
			}
			return nil
		}},
		{"empty value, space before colon", strings.Replace(minimal, "H??Subject: hi", "H??X-Empty :", 1), func(f *File) error {
			if h := f.Headers[0]; h.Name != "X-Empty" || h.Value != "" {
				return fmt.Errorf("%+v", h)
			}
			return nil
		}},
		{"negative priority", strings.Replace(minimal, "P30100", "P-1800", 1), func(f *File) error {
			if f.Priority != -1800 {
				return fmt.Errorf("priority %d", f.Priority)
			}
			return nil
		}},
		{"controlling user", strings.Replace(minimal, "RPFD:<b@example.net>\n", "Calice:1000:1000:alice\nRPFDA:alice@example.org\nC\nRPFD:<b@example.net>\n", 1), func(f *File) error {
			if f.Rcpts[0].CtlAddr != "alice:1000:1000:alice" || f.Rcpts[1].CtlAddr != "" || !f.Rcpts[0].HasFlag('A') {
				return fmt.Errorf("%+v", f.Rcpts)
			}
			return nil
		}},
		{"RET=HDRS", strings.Replace(minimal, "K0\n", "K0\nFdn\n", 1), func(f *File) error {
			if f.Ret() != "HDRS" {
				return fmt.Errorf("ret %q", f.Ret())
			}
			return nil
		}},
		{"a dot in a continuation", strings.Replace(minimal, "H??Subject: hi", "H??Subject: hi\n\t.", 1), func(f *File) error {
			if f.Headers[0].Value != "hi\n\t." {
				return fmt.Errorf("%q", f.Headers[0].Value)
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse("6AQ3n0LQ012206", []byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				if err := c.check(f); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestFixtures(t *testing.T) {
	// Every control file outside broken/ parses; every one in broken/
	// but the one without its df does not.
	err := filepath.Walk("testdata", func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.Contains(path, "fuzz") {
			return err
		}
		name := fi.Name()
		if k := Kind(name[:min(2, len(name))]); k != Queued && k != Quarantined && k != Lost {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, perr := Parse(name[2:], data)
		broken := strings.Contains(path, "broken") && name != "qf6AQ3o2Md012301" && name != "qf6AQ3o2Pg012303"
		if broken != (perr != nil) {
			t.Errorf("%s: error %v", path, perr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestExpand(t *testing.T) {
	macros := map[string]string{"g": "a@example.org", "x": "Full Name", "j": "mail.example.org"}
	m := func(n string) string { return macros[n] }
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"<\x81g>", "<a@example.org>"},
		{"\x82g", "a@example.org"},
		{"\x81u", ""},
		{"\x9ax\x81x <\x81g>\x9b\x81g\x9c", "Full Name <a@example.org>"},
		{"\x9au\x81u <\x81g>\x9b\x81g\x9c", "a@example.org"},
		{"\x9aj(\x9au inner\x9b none\x9c)\x9c", "( none)"},
		{"by \x81j id 1", "by mail.example.org id 1"},
		{"\x81", "\x81"},
		// Raw UTF-8: 0x81 and 0x9f after a lead byte are text.
		{"Ёлки Grüße", "Ёлки Grüße"},
		{"Ё \x81g", "Ё a@example.org"},
		{"Ё\x81g", "Ёg"}, // ambiguous: taken as a quoted 0x81
		// METAQUOTE before a byte from 0x80 to 0x9f.
		{"\xd0\x81\x81", "\xd0\x81"},
		{"a\x81\x9fb", "a\x9fb"},
		{"\x81\xa0", ""}, // $ and a long macro name: not known
	} {
		if got := Expand(c.in, m); got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Without macros (a field of the message): only quoted bytes.
	for _, c := range []struct{ in, want string }{
		{"<\x81g>", "<\x81g>"},
		{"Du\x9aan \x82x\x9c", "Du\x9aan \x82x\x9c"}, // windows-1252
		{"a\x81\x9fb", "a\x9fb"},
		{"Ёлки", "Ёлки"},
	} {
		if got := Expand(c.in, nil); got != c.want {
			t.Errorf("Expand(%q, nil) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHeaderBlock(t *testing.T) {
	for _, c := range []struct {
		path, want string
	}{
		{"flat/qf6AQ3n0LQ012206", "Received: from localhost (localhost [127.0.0.1])\r\n" +
			"\tby mail.example.org (8.17.1.9/8.17.1.9/Debian-2) with ESMTP id 6AQ3n0LQ012206\r\n" +
			"\tfor <x@example.net>; Thu, 26 Nov 2026 03:49:00 GMT\r\n" +
			"Received: (from www-data@localhost)\r\n" +
			"\tby mail.example.org (8.17.1.9/8.17.1.9/Submit) id 6AQ3n0kP012205\r\n" +
			"\tfor x@example.net; Thu, 26 Nov 2026 03:49:00 GMT\r\n" +
			"Date: Thu, 26 Nov 2026 03:49:00 GMT\r\n" +
			"From: www-data <www-data@example.org>\r\n" +
			"Message-Id: <202611260349.6AQ3n0kP012205@mail.example.org>\r\n" +
			"To: x@example.net\r\n" +
			"Subject: Cron <www-data@mail> php /var/www/cron.php\r\n"},
		{"msp/qf6AQ3nGAo012478", "Received: (from nobody@localhost)\r\n" +
			"\tby vm.localdomain (8.17.1.9/8.17.1.9/Submit) id 6AQ3nGAo012478;\r\n" +
			"\tThu, 26 Nov 2026 03:49:16 GMT\r\n" +
			"Date: Thu, 26 Nov 2026 03:49:16 GMT\r\n" +
			"From: nobody <nobody@vm.localdomain>\r\n" +
			"Message-Id: <202611260349.6AQ3nGAo012478@vm.localdomain>\r\n" +
			"To: root, Y Two <y2@example.net>\r\n" +
			"Subject: disk usage report\r\n"},
		{"split/qf/qf6AQ4a2Bc013001", "Received: from client.example.com (client.example.com [192.0.2.44])\r\n" +
			"\t(authenticated bits=0)\r\n" +
			"\tby mail.example.org (8.18.1/8.18.1) with ESMTPSA id 6AQ4a2Bc013001\r\n" +
			"\t(version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 bits=128 verify=NO)\r\n" +
			"\tfor <partner@partner.example>; Thu, 26 Nov 2026 04:10:02 GMT\r\n" +
			"X-Authenticated-User: alice\r\n" +
			"Date: Thu, 26 Nov 2026 05:10:00 +0100\r\n" +
			"From: Alice <alice@example.org>\r\n" +
			"To: partner@partner.example\r\n" +
			"Subject: contract draft\r\n" +
			"Message-Id: <c0ffee.42@client.example.com>\r\n"},
	} {
		f := readFixture(t, c.path)
		if got := string(f.HeaderBlock(SMTPMailerFlags)); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.path, got, c.want)
		}
	}
	// A local mailer (F=...P...) would get Return-Path with $g expanded.
	f := readFixture(t, "flat/qf6AQ3n0LQ012206")
	if got := string(f.HeaderBlock("lsDFMAw5:/|@qSPfhn9")); !strings.HasPrefix(got, "Return-Path: <www-data@example.org>\r\n") {
		t.Errorf("local mailer header:\n%s", got)
	}
	// A field that expands to nothing goes; an empty one stays.
	f, err := Parse("6AQ3n0LQ012206", []byte(strings.Replace(minimal, "H??Subject: hi\n", "H?D?X-Gone: \x81u\nH??X-Empty:\nH??X-Raw: \x81u\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.HeaderBlock(SMTPMailerFlags)); got != "X-Empty:\r\nX-Raw: \x81u\r\n" {
		t.Errorf("got %q", got)
	}
}

func TestMessage(t *testing.T) {
	f := readFixture(t, "flat/qf6AQ3n0LQ012206")
	body := "line 1\nline 2\r\n\nlast without newline"
	got, err := io.ReadAll(f.Message(strings.NewReader(body), SMTPMailerFlags))
	if err != nil {
		t.Fatal(err)
	}
	hdr := f.HeaderBlock(SMTPMailerFlags)
	want := string(hdr) + "\r\nline 1\r\nline 2\r\n\r\nlast without newline\r\n"
	if string(got) != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestCRLF(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\n", "a\r\n"},
		{"a\r\n", "a\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb\n", "a\rb\r\n"},
		{"a\r\r\n", "a\r\r\n"},
		{".\n..\n", ".\r\n..\r\n"},
		{strings.Repeat("x\n", 40000), strings.Repeat("x\r\n", 40000)},
	} {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r },
			iotest.OneByteReader,
			iotest.HalfReader,
			iotest.DataErrReader,
		} {
			got, err := io.ReadAll(NewCRLF(wrap(strings.NewReader(c.in))))
			if err != nil || string(got) != c.want {
				t.Errorf("%.20q: got %.40q, %v", c.in, got, err)
			}
		}
		if err := iotest.TestReader(NewCRLF(strings.NewReader(c.in)), []byte(c.want)); err != nil {
			t.Errorf("%.20q: %v", c.in, err)
		}
	}
	// A read error comes through.
	boom := errors.New("boom")
	if _, err := io.ReadAll(NewCRLF(iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Errorf("error %v", err)
	}
	// Small reads of a CRLF pair split across reads.
	var out bytes.Buffer
	r := NewCRLF(strings.NewReader("a\nb\n"))
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if out.String() != "a\r\nb\r\n" {
		t.Errorf("one byte at a time: %q", out.String())
	}
}

func entryNames(t *testing.T, root string, ents []Entry) []string {
	t.Helper()
	var out []string
	for _, e := range ents {
		rel, err := filepath.Rel(root, e.Path)
		if err != nil {
			t.Fatal(err)
		}
		qd, _ := filepath.Rel(root, e.QueueDir)
		out = append(out, fmt.Sprintf("%s %s %s %s", e.ID, e.Kind, rel, qd))
	}
	return out
}

func TestScan(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{"flat", []string{
			"6AP9xR4a010117 qf qf6AP9xR4a010117 .",
			"6AQ3n0LQ012206 qf qf6AQ3n0LQ012206 .",
			"6AQ3p1Hq012410 hf hf6AQ3p1Hq012410 .",
			"6AQ3q0Rs012501 qf qf6AQ3q0Rs012501 .",
			"6AQ3r0Lo012601 Qf Qf6AQ3r0Lo012601 .",
		}},
		{"split", []string{"6AQ4a2Bc013001 qf qf/qf6AQ4a2Bc013001 ."}},
		{"groups", []string{
			"6AQ5b3Cd014001 qf q1/qf6AQ5b3Cd014001 q1",
			"6AQ5b3Ce014002 qf q2/qf/qf6AQ5b3Ce014002 q2",
			"6AQ5b3Cf014003 qf q2/qf/qf6AQ5b3Cf014003 q2",
		}},
	} {
		root := filepath.Join("testdata", c.dir)
		ents, err := Scan(root)
		if err != nil {
			t.Fatal(err)
		}
		if got := entryNames(t, root, ents); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n%s\nwant:\n%s", c.dir, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if _, err := Scan("testdata/none"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := Scan("testdata/README.md"); err == nil {
		t.Error("a file scanned as a directory")
	}
}

func TestScanSkips(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"tf6AQ3n0LQ012206", "xf6AQ3n0LQ012206", "df6AQ3n0LQ012206", "qfshort", "qf6AQ3n0LQ01220-", "imported.qf6AQ3n0LQ012207", "qf6AQ3n0LQ012208"} {
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("qf6AQ3n0LQ012208", filepath.Join(root, "qf6AQ3n0LQ012209")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "qf6AQ3n0LQ012210"), 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryNames(t, root, ents); !reflect.DeepEqual(got, []string{"6AQ3n0LQ012208 qf qf6AQ3n0LQ012208 ."}) {
		t.Errorf("got %q", got)
	}
}

func TestDataPaths(t *testing.T) {
	root := "/var/spool/mqueue"
	e := Entry{ID: "6AQ5b3Ce014002", Kind: Queued, Path: root + "/q2/qf/qf6AQ5b3Ce014002", QueueDir: root + "/q2", Root: root}
	for _, c := range []struct {
		d    string
		want []string
		err  string
	}{
		{"", []string{root + "/q2/df/df6AQ5b3Ce014002", root + "/q2/df6AQ5b3Ce014002"}, ""},
		{"q1", []string{root + "/q1/df/df6AQ5b3Ce014002", root + "/q1/df6AQ5b3Ce014002"}, ""},
		{root + "/q3", []string{root + "/q3/df/df6AQ5b3Ce014002", root + "/q3/df6AQ5b3Ce014002"}, ""},
		{"/etc", nil, "outside"},
		{"../../etc", nil, "leaves the queue"},
		{"q1/../../x", nil, "leaves the queue"},
	} {
		got, err := e.DataPaths(&File{DataDir: c.d})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("d=%q: %v, %v", c.d, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("d=%q: %q, %v; want %q", c.d, got, err, c.want)
		}
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"6AQ3n0LQ012206":        true,
		"h32E30p01763":          true, // 8.11
		"6AQ3n0L":               false,
		"6AQ3n0LQ01220/":        false,
		"../../etc":             false,
		"":                      false,
		strings.Repeat("a", 21): false,
	} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

// marshal writes f as a qf file, for the round trip of the fuzz target.
func marshal(f *File) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "V%d\nT%d\n", f.Version, f.Created.Unix())
	k := int64(0)
	if !f.LastAttempt.IsZero() {
		k = f.LastAttempt.Unix()
	}
	fmt.Fprintf(&b, "K%d\nN%d\nP%d\n", k, f.Attempts, f.Priority)
	opt := func(code byte, v string) {
		if v != "" {
			b.WriteByte(code)
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	opt('I', f.Inode)
	opt('d', f.DataDir)
	opt('B', f.BodyType)
	opt('q', f.Quarantine)
	opt('M', f.Status)
	opt('F', f.Flags)
	names := make([]string, 0, len(f.Macros))
	for n := range f.Macros {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if len(n) == 1 {
			fmt.Fprintf(&b, "$%s%s\n", n, f.Macros[n])
		} else {
			fmt.Fprintf(&b, "${%s}%s\n", n, f.Macros[n])
		}
	}
	fmt.Fprintf(&b, "S%s\n", f.Sender)
	opt('Z', f.EnvID)
	opt('A', f.Auth)
	opt('!', f.DeliverBy)
	ctl := ""
	for _, r := range f.Rcpts {
		if r.CtlAddr != ctl {
			fmt.Fprintf(&b, "C%s\n", r.CtlAddr)
			ctl = r.CtlAddr
		}
		opt('Q', r.ORcpt)
		opt('r', r.Final)
		fmt.Fprintf(&b, "R%s:%s\n", r.Flags, r.Addr)
	}
	for _, h := range f.Headers {
		b.WriteByte('H')
		switch {
		case h.Macro != "":
			fmt.Fprintf(&b, "?${%s}?", h.Macro)
		default: // sendmail writes "??" for no condition
			fmt.Fprintf(&b, "?%s?", h.Cond)
		}
		fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Value)
	}
	b.WriteString(".\n")
	return b.Bytes()
}

func FuzzParseQf(f *testing.F) {
	f.Add([]byte(minimal))
	for _, p := range []string{"flat/qf6AP9xR4a010117", "split/qf/qf6AQ4a2Bc013001", "msp/qf6AQ3nGAo012478"} {
		if data, err := os.ReadFile(filepath.Join("testdata", p)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		qf, err := Parse("6AQ3n0LQ012206", data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		if len(qf.Rcpts) == 0 || qf.Version < MinVersion || qf.Version > MaxVersion {
			t.Fatalf("accepted %+v", qf)
		}
		for _, r := range qf.Rcpts {
			if strings.TrimSpace(r.Addr) == "" {
				t.Fatal("empty recipient accepted")
			}
			_ = r.Notify()
		}
		// What Parse accepts, marshal writes back the same.
		again, err := Parse("6AQ3n0LQ012206", marshal(qf))
		if err != nil {
			t.Fatalf("round trip: %v\n%q", err, marshal(qf))
		}
		if !reflect.DeepEqual(qf, again) {
			t.Fatalf("round trip:\n%+v\n%+v", qf, again)
		}
		// The header is whole lines, each ending in CRLF, no bare LF.
		hdr := qf.HeaderBlock(SMTPMailerFlags)
		if len(hdr) > 0 && !bytes.HasSuffix(hdr, []byte("\r\n")) {
			t.Fatalf("header %q", hdr)
		}
		if bytes.Count(hdr, []byte("\n")) != bytes.Count(hdr, []byte("\r\n")) {
			t.Fatalf("bare LF in %q", hdr)
		}
		msg, err := io.ReadAll(qf.Message(bytes.NewReader(data), SMTPMailerFlags))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(msg, []byte("\r\n")) {
			t.Fatalf("message does not end in CRLF: %q", msg)
		}
	})
}
