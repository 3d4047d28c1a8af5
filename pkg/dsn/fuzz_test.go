package dsn

import (
	"bytes"
	"testing"
)

// FuzzBuild feeds arbitrary bytes as the original message (and as the
// remote server's reply): whatever they are, Build must succeed and give a
// well-formed report whose third part is the original, repaired only where
// the line rules demand.
func FuzzBuild(f *testing.F) {
	f.Add([]byte(simpleOriginal), "550 5.1.1 User unknown", false)
	f.Add([]byte(bounceOriginal), "421-4.7.0 try\r\n421 4.7.0 later", true)
	f.Add([]byte("From: a\x00b\r\nno separator\n\rx"), "", false)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--"), "\xff\xfe", true)
	f.Add(bytes.Repeat([]byte{'a'}, 3000), "5", false)
	f.Fuzz(func(t *testing.T, orig []byte, diag string, headersOnly bool) {
		r := failureReport()
		r.Original = bytes.NewReader(orig)
		r.Rcpts[0].Diagnostic = diag
		if headersOnly {
			r.Ret = "HDRS"
		}
		var out bytes.Buffer
		if err := Build(&out, r); err != nil {
			t.Fatalf("Build: %v", err)
		}
		p := checkWellFormed(t, out.Bytes())
		if len(p.parts) != 3 {
			t.Fatalf("%d parts", len(p.parts))
		}
		body := p.parts[2].body
		if bytes.IndexByte(body, 0) >= 0 {
			t.Fatal("NUL in the returned original")
		}
		// An original that needs no repair comes back byte for byte (all of
		// it, or its leading header lines).
		if isClean(orig) {
			if p.parts[2].ctype == "message/rfc822" && !bytes.Equal(body, orig) {
				t.Fatalf("original changed:\n%q\n%q", orig, body)
			}
			if !bytes.HasPrefix(orig, body) {
				t.Fatalf("returned headers are not the original's:\n%q\n%q", orig, body)
			}
		}
	})
}

// isClean reports whether b is CRLF text ending in CRLF, without NUL or
// bare CR/LF, with short lines.
func isClean(b []byte) bool {
	if len(b) == 0 || !bytes.HasSuffix(b, []byte("\r\n")) || bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	for _, l := range bytes.Split(b[:len(b)-2], []byte("\r\n")) {
		if len(l) > maxLine || bytes.ContainsAny(l, "\r\n") {
			return false
		}
	}
	return true
}
