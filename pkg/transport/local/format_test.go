package local

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func convert(t testing.TB, in string, quote bool) (string, bool) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	endsNL, err := copyMessage(w, strings.NewReader(in), quote)
	if err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return out.String(), endsNL
}

func TestCopyMessage(t *testing.T) {
	long := strings.Repeat("x", 70000) // longer than the read buffer
	tests := []struct {
		in, quoted, plain string
		endsNL            bool
	}{
		{"", "", "", true},
		{"a\r\nb\r\n", "a\nb\n", "a\nb\n", true},
		{"a\r\nb", "a\nb", "a\nb", false},
		{"lone\rcr\r\n", "lone\rcr\n", "lone\rcr\n", true},
		{"ends in cr\r", "ends in cr\r", "ends in cr\r", false},
		{"From x\r\n", ">From x\n", "From x\n", true},
		{">From x\r\n>>From y\r\n", ">>From x\n>>>From y\n", ">From x\n>>From y\n", true},
		{"From", "From", "From", false},
		{"From\r\nFromage\r\n>From:\r\n>\r\n", "From\nFromage\n>From:\n>\n", "From\nFromage\n>From:\n>\n", true},
		{"a\r\n>>>", "a\n>>>", "a\n>>>", false},
		{" From x\r\nx From y\r\n", " From x\nx From y\n", " From x\nx From y\n", true},
		{long + "\r\nFrom z\r\n", long + "\n>From z\n", long + "\nFrom z\n", true},
		{strings.Repeat(">", 70000) + "From z\r\n", strings.Repeat(">", 70001) + "From z\n", strings.Repeat(">", 70000) + "From z\n", true},
	}
	for _, tt := range tests {
		got, endsNL := convert(t, tt.in, true)
		if got != tt.quoted || endsNL != tt.endsNL {
			t.Errorf("quoted %.40q: got %.60q %v, want %.60q %v", tt.in, got, endsNL, tt.quoted, tt.endsNL)
		}
		if got, _ := convert(t, tt.in, false); got != tt.plain {
			t.Errorf("plain %.40q: got %.60q, want %.60q", tt.in, got, tt.plain)
		}
	}
}

// A CRLF split by the reader's buffer boundary is still one line end.
func TestCopyMessageCRLFAcrossBuffer(t *testing.T) {
	for _, n := range []int{65535, 65536, 65537} {
		in := strings.Repeat("a", n-1) + "\r\nb\r\n"
		got, _ := convert(t, in, true)
		if want := strings.Repeat("a", n-1) + "\nb\n"; got != want {
			t.Errorf("n=%d: CRLF across the buffer boundary not converted", n)
		}
	}
}

func TestFromLine(t *testing.T) {
	at := time.Date(2026, time.November, 29, 7, 45, 0, 0, time.UTC)
	if got := fromLine("alice@example.org", at); got != "From alice@example.org Sun Nov 29 07:45:00 2026\n" {
		t.Errorf("got %q", got)
	}
	if got := fromLine("", at.AddDate(0, 0, 3)); got != "From MAILER-DAEMON Wed Dec  2 07:45:00 2026\n" {
		t.Errorf("got %q", got)
	}
	if got := returnPath("a\r\nBcc: x@y"); got != "Return-Path: <a__Bcc: x@y>\n" {
		t.Errorf("control characters not neutralised: %q", got)
	}
}

var quotedFrom = regexp.MustCompile(`(?m)^>(>*From )`)

// FuzzCopyMessage checks the properties readers rely on for any input:
// every CRLF becomes LF and nothing else changes, no line starts with
// "From ", and mboxrd unquoting gives back the message with LF line ends.
func FuzzCopyMessage(f *testing.F) {
	for _, s := range []string{"", "From a\r\n", ">From a\r\n\r\n", "a\rb\r\n", "x\r", ">>>From  \r\nFrom"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, endsNL := convert(t, in, true)
		if endsNL != (out == "" || strings.HasSuffix(out, "\n")) {
			t.Fatalf("endsNL %v for %q", endsNL, out)
		}
		if strings.HasPrefix(out, "From ") || strings.Contains(out, "\nFrom ") {
			t.Fatalf("unquoted From_ line in %q", out)
		}
		// A lone CR is data, so "\r\r\n" rightly keeps one CR before LF.
		plain, _ := convert(t, in, false)
		if want := strings.ReplaceAll(in, "\r\n", "\n"); plain != want {
			t.Fatalf("plain copy of %q is %q, want %q", in, plain, want)
		}
		if back := quotedFrom.ReplaceAllString(out, "$1"); back != plain {
			t.Fatalf("unquoting %q gives %q, want %q", out, back, plain)
		}
	})
}
