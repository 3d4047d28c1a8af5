package spool

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzMarshal builds an envelope from any values (addresses, DSN
// parameters and reasons come from SMTP clients and remote servers) and
// checks that Marshal writes a qf file that Unmarshal reads back to the
// same envelope, or, for values the format cannot hold (negative numbers,
// an unknown state, an empty address or target key), that Unmarshal
// refuses it rather than reading something else.
func FuzzMarshal(f *testing.F) {
	f.Add(int64(1795664940), int64(0), int64(1795668540), 2, int64(30512), "www-data@example.org", 33, "www-data",
		"", "8BITMIME", "x+2By", "HDRS", "", "Deferred: Connection refused", "wb",
		byte('P'), "x@example.net", "FAILURE,DELAY", "rfc822;x@example.net", "", "mbox:root", "100%\r\nevil@example.net")
	f.Fuzz(func(t *testing.T, created, last, next int64, attempts int, priority int64, sender string, uid int, user,
		client, bodyType, envID, ret, hold, status, flags string,
		state byte, addr, notify, orcpt, reason, done, addr2 string) {
		e := &Envelope{
			ID: "x22FdWV1010569", Created: time.Unix(created, 0), LastAttempt: timeOrZero(last), NextAttempt: timeOrZero(next),
			Attempts: attempts, Priority: priority, Sender: sender, UID: uid, User: user, Client: client,
			BodyType: bodyType, EnvID: envID, Ret: ret, Hold: hold, Status: status, Flags: flags,
			// The state is one of ours, or a letter that is not.
			Rcpts: []Recipient{{Addr: addr, State: State("PSFX"[state%4]), Notify: notify, ORcpt: orcpt, Reason: reason}},
		}
		if done != "" {
			e.Rcpts[0].Done = []string{done, done + "2"}
		}
		if addr2 != "" {
			e.Rcpts = append(e.Rcpts, Recipient{Addr: addr2, State: Sent})
		}
		valid := created >= 0 && unixOrZero(e.LastAttempt) >= 0 && unixOrZero(e.NextAttempt) >= 0 && attempts >= 0 && priority >= 0 && uid >= -1 &&
			addr != "" && e.Rcpts[0].State != 'X'

		data := e.Marshal()
		if strings.Count(string(data), "\n") != 9+countNonEmpty(client, bodyType, envID, ret, flags, hold, status)+len(e.Rcpts)+len(e.Rcpts[0].Done) {
			t.Fatalf("a value broke the line format:\n%q", data)
		}
		got, err := Unmarshal(e.ID, data)
		if !valid {
			if err == nil {
				t.Fatalf("invalid envelope %+v read back as %+v", e, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("Unmarshal: %v\n%q", err, data)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("read back\n%+v\nwrote\n%+v", got, e)
		}
	})
}

func countNonEmpty(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// FuzzEscape checks the value escaping of qf and drop files: Escape
// leaves no byte that would end or split a record, Unescape reverses it,
// and Unescape refuses raw control bytes and malformed escapes rather than
// passing them on.
func FuzzEscape(f *testing.F) {
	f.Add("100% \r\n\x00\x7f é")
	f.Add("%0D%0A%25%")
	f.Fuzz(func(t *testing.T, s string) {
		esc := Escape(s)
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; c <= ' ' || c == 0x7f {
				t.Fatalf("Escape(%q) = %q: byte 0x%02x left", s, esc, c)
			}
		}
		if back, err := Unescape(esc); err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
		// s read as an escaped value: if it is one, escaping what it
		// means gives a value that means the same.
		v, err := Unescape(s)
		if err != nil {
			return
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Fatalf("Unescape(%q) took a raw control byte or space", s)
		}
		if back, err := Unescape(Escape(v)); err != nil || back != v {
			t.Fatalf("Unescape(%q) = %q does not survive Escape: %q, %v", s, v, back, err)
		}
		if len(v) > len(s) {
			t.Fatalf("Unescape(%q) = %q grew", s, v)
		}
	})
}
