package maillog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestShapes(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, "sm-mta")
	l.Received("x3N8T4Sn012752", "a@b.example", 512, 1, "<m@h>", "ESMTP", "IPv4-port-25", "host [192.0.2.1]")
	l.Delivered("x3N8T4Sn012752", Delivery{To: "<c@d.example>", Delay: time.Second, Xdelay: 26*time.Hour + time.Second, Mailer: "esmtp", Priority: 30512, Relay: "mx.d.example. [198.51.100.7]", DSN: "2.0.0", Stat: "Sent (ok)"})
	l.Rejected("x3N8T4Sn012752", "check_rcpt", "<c@d.example>", "host [192.0.2.1]", "550 5.7.1 <c@d.example>... Relaying denied. Proper authentication required.")
	l.Printf("x3N8T4Sn012752", "<%s>... User unknown", "x@gsm.example\r\nforged")
	want := []string{
		"sm-mta[", "]: x3N8T4Sn012752: from=<a@b.example>, size=512, class=0, nrcpts=1, msgid=<m@h>, proto=ESMTP, daemon=IPv4-port-25, relay=host [192.0.2.1]\n",
		"]: x3N8T4Sn012752: to=<c@d.example>, delay=00:00:01, xdelay=1+02:00:01, mailer=esmtp, pri=30512, relay=mx.d.example. [198.51.100.7], dsn=2.0.0, stat=Sent (ok)\n",
		"]: x3N8T4Sn012752: ruleset=check_rcpt, arg1=<c@d.example>, relay=host [192.0.2.1], reject=550 5.7.1 <c@d.example>... Relaying denied. Proper authentication required.\n",
		"]: x3N8T4Sn012752: <x@gsm.example??forged>... User unknown\n",
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("missing %q in\n%s", w, b.String())
		}
	}
}
