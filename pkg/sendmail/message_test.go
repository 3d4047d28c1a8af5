package sendmail

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// render runs the header and body reading of a submission and returns the
// message as it would be stored (fields, blank line, body).
func render(t testing.TB, in string, ignoreDots bool) (string, *parsed) {
	r := newInput(strings.NewReader(in), ignoreDots, 1<<30)
	p, err := r.readHeader()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	p.write(w)
	w.Write(crlf)
	if p.hasFirst {
		w.WriteString(p.bodyFirst)
		if !p.partial {
			w.Write(crlf)
		}
	}
	w.Flush()
	if !p.ended {
		if err := r.copyBody(&b, p.partial); err != nil {
			t.Fatal(err)
		}
	} else if p.partial {
		b.Write(crlf)
	}
	return b.String(), p
}

func TestHeaderFolding(t *testing.T) {
	out, p := render(t, "To: a@x.org,\n  b@x.org\nSubject: one\r\n\ttwo\n\nbody\n", true)
	if p.get("to")[0].value() != "a@x.org,   b@x.org" {
		t.Fatalf("value %q", p.get("to")[0].value())
	}
	want := "To: a@x.org,\r\n  b@x.org\r\nSubject: one\r\n\ttwo\r\n\r\nbody\r\n"
	if out != want {
		t.Fatalf("got %q want %q", out, want)
	}
}

func TestLongHeaderBecomesBody(t *testing.T) {
	huge := "X-Huge: " + strings.Repeat("h", maxHeaderBytes+10)
	out, p := render(t, "Subject: s\n"+huge+"\nnext\n", true)
	if len(p.fields) != 1 || !strings.HasSuffix(out, "h\r\nnext\r\n") || !strings.Contains(out, "Subject: s\r\n\r\nX-Huge: hhh") {
		t.Fatalf("fields %d, out ends %q", len(p.fields), out[len(out)-20:])
	}
}

func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"To: a@x.org\r\nBcc: b@x.org\n\nbody\r\r\n.\n..\nend",
		"From x\nSubject: \n\n",
		"no header\r\n.\r\n",
		"\r\r\r\n\n\r",
		"X: y\n z\n\tw\nBad Header\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, ignoreDots bool) {
		out, p := render(t, in, ignoreDots)
		// Every line ends in CRLF; no CR CR LF; no bare LF.
		if out != "" && !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("no final CRLF: %q", out)
		}
		if strings.Contains(out, "\r\r\n") {
			t.Fatalf("CR CR LF in %q", out)
		}
		if strings.Count(out, "\n") != strings.Count(out, "\r\n") {
			t.Fatalf("bare LF in %q", out)
		}
		for _, fld := range p.fields {
			if !isFieldName(fld.name) {
				t.Fatalf("bad field name %q", fld.name)
			}
		}
		// With -i, no input line is lost: every non-empty input line's
		// text (CRs aside) is in the output.
		if ignoreDots && len(in) < 4096 {
			for _, l := range strings.Split(in, "\n") {
				l = strings.TrimRight(l, "\r")
				if l != "" && !strings.HasPrefix(l, "From ") && !strings.Contains(out, l) {
					t.Fatalf("line %q lost in %q", l, out)
				}
			}
		}
	})
}
