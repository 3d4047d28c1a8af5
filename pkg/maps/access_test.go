package maps

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind ActionKind
		want string // Reply() or Text for QUARANTINE; "!" + part of the error
	}{
		{"OK", ActionOK, ""},
		{"ok", ActionOK, ""},
		{"RELAY", ActionRelay, ""},
		{"Relay", ActionRelay, ""},
		{"REJECT", ActionReject, "550 5.7.1 Access denied"},
		{"DISCARD", ActionDiscard, ""},
		{"SKIP", ActionSkip, ""},
		{"QUARANTINE:Mail from suspicious host", ActionQuarantine, "Mail from suspicious host"},
		{`QUARANTINE:"quoted reason"`, ActionQuarantine, "quoted reason"},
		{"ERROR:550 We don't accept mail", ActionError, "550 5.7.1 We don't accept mail"},
		{"error:550 lower tag", ActionError, "550 5.7.1 lower tag"},
		{"ERROR:5.7.1:550 text", ActionError, "550 5.7.1 text"},
		{"ERROR:5.7.0:550 text", ActionError, "550 5.7.0 text"},
		{`ERROR:"550 We don't accept mail from spammers"`, ActionError, "550 5.7.1 We don't accept mail from spammers"},
		{`ERROR:5.7.1:"550 quoted"`, ActionError, "550 5.7.1 quoted"},
		{"ERROR:550 5.7.0 status in text", ActionError, "550 5.7.0 status in text"},
		{"ERROR:450 mailbox full", ActionError, "450 4.7.1 mailbox full"},
		{"ERROR:4.2.2:450 mailbox full", ActionError, "450 4.2.2 mailbox full"},
		{"ERROR:421 closing", ActionError, "421 4.7.1 closing"},
		{`"550 We don't accept mail from spammers"`, ActionError, "550 5.7.1 We don't accept mail from spammers"},
		{"550 legacy unquoted", ActionError, "550 5.7.1 legacy unquoted"},
		{"ERROR:550", ActionError, "550 5.7.1"},
		{"RELAYS", 0, "!unknown value"},
		{"FRIEND", 0, "!unknown value"},
		{"ERROR:go away", 0, "!no reply code"},
		{"ERROR:nouser 550 x", 0, "!no reply code"},
		{"ERROR:5.7.1:450 x", 0, "!disagree"},
		{"ERROR:4.2.2:550 x", 0, "!disagree"},
		{"ERROR:250 fine", 0, "!not a refusal"},
		{"ERROR:5.7.1:550 5.7.2 x", 0, "!two statuses"},
		{"QUARANTINE:", 0, "!needs a reason"},
		{"5500 x", 0, "!unknown value"},
	} {
		a, err := parseAction(tc.in)
		if strings.HasPrefix(tc.want, "!") {
			if err == nil || !strings.Contains(err.Error(), tc.want[1:]) {
				t.Errorf("%q: got %+v, %v; want error with %q", tc.in, a, err, tc.want[1:])
			}
			continue
		}
		got := a.Reply()
		if a.Kind == ActionQuarantine {
			got = a.Text
		}
		if err != nil || a.Kind != tc.kind || got != tc.want {
			t.Errorf("%q: got %v %q %v, want %v %q", tc.in, a.Kind, got, err, tc.kind, tc.want)
		}
	}
}

// cf/README's examples, REFERENCE.md §3's Debian defaults, and a few of
// ours; the comments say which lookup each is for.
const accessExample = `# cf/README
From:spammer@aol.com			REJECT
From:cyberspammer.com			ERROR:"550 We don't accept mail from spammers"
From:okay.cyberspammer.com		OK
From:good@another.dom			OK
From:another.dom			REJECT
From:FREE.STEALTH.MAILER@		ERROR:550 Spam not accepted
From:[192.0.2]				OK
Connect:cyberspammer.com		REJECT
Connect:TLD				REJECT
Connect:192.168.212			REJECT
Connect:IPv6:2002:c0a8:02c7		RELAY
Connect:IPv6:2002:c0a8:51d2::23f4	REJECT
Connect:sendmail.org			RELAY
Connect:128.32				RELAY
Connect:128.32.2			SKIP
Connect:IPv6:1:2:3:4:5:6:7		RELAY
Connect:suspicious.example.com		QUARANTINE:Mail from suspicious host
Connect:[127.0.0.3]			OK
Connect:[IPv6:1:2:3:4:5:6:7:8]		OK
To:sendmail.org				RELAY
To:badlocaluser@			ERROR:550 Mailbox disabled for badlocaluser
To:host.my.TLD				ERROR:550 That host does not accept mail
To:user@other.my.TLD			ERROR:550 Mailbox disabled for this recipient
To:full@example.com			ERROR:4.2.2:450 mailbox full
To:blocked@example.com			REJECT
# Debian's defaults
Connect:127				RELAY
Connect:IPv6:::1			RELAY
GreetPause:127				0
GreetPause:				5000
ClientRate:				10
ClientConn:				10
Spam:abuse@				FRIEND
AuthInfo:smtp.example.com		"U:user" "P:secret" "M:PLAIN LOGIN"
Srv_Features:				l
Try_TLS:broken.example			NO
# SKIP for a host, then the address decides
Connect:good.example.com		SKIP
Connect:example.com			REJECT
Connect:10.9				RELAY
# untagged, the deprecated fallback, tried per key
10.1					RELAY
Connect:10.2.3				REJECT
10.2.3.4				OK
oldstyle.example			550 legacy refusal
`

func mustAccess(t *testing.T, text string) *Access {
	t.Helper()
	a, err := ParseAccess("access", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func describe(a Action, ok bool) string {
	switch {
	case !ok:
		return "-"
	case a.Kind == ActionError || a.Kind == ActionReject:
		return a.Reply()
	case a.Kind == ActionQuarantine:
		return "QUARANTINE:" + a.Text
	}
	return a.Kind.String()
}

func TestAccessConnect(t *testing.T) {
	a := mustAccess(t, accessExample)
	for _, tc := range []struct {
		ip, host, want string
	}{
		{"192.168.212.5", "", "550 5.7.1 Access denied"},
		{"192.168.212.5", "mail.isp.example", "550 5.7.1 Access denied"},
		{"192.168.213.5", "", "-"},
		{"192.0.2.9", "mail.cyberspammer.com", "550 5.7.1 Access denied"},
		{"192.0.2.9", "MAIL.CyberSpammer.COM.", "550 5.7.1 Access denied"},
		{"192.0.2.9", "x.y.tld", "550 5.7.1 Access denied"},
		{"192.0.2.9", "tld.example", "-"},
		{"2002:c0a8:2c7::1", "", "RELAY"}, // key written 02c7
		{"2002:c0a8:2c7:ffff::1", "", "RELAY"},
		{"2002:c0a8:2c8::1", "", "-"},
		{"2002:c0a8:51d2::23f4", "", "550 5.7.1 Access denied"},
		{"2002:c0a8:51d2:0:0:0:0:23f4", "", "550 5.7.1 Access denied"},
		{"2002:c0a8:51d2::23f5", "", "-"},
		{"1:2:3:4:5:6:7:9", "h.example", "RELAY"},
		{"1:2:3:4:5:6:8:9", "h.example", "-"},
		{"128.32.1.1", "", "RELAY"},
		{"128.32.2.9", "", "-"}, // SKIP: default action
		{"128.32.2.9", "www.sendmail.org", "RELAY"},
		{"128.3.21.1", "", "-"}, // whole octets only: 128.32 is not 128.3
		{"192.0.2.1", "suspicious.example.com", "QUARANTINE:Mail from suspicious host"},
		{"127.0.0.3", "", "OK"},             // bracketed: no name
		{"127.0.0.3", "localhost", "RELAY"}, // named: Connect:127
		{"1:2:3:4:5:6:7:8", "", "OK"},       // bracketed IPv6
		{"1:2:3:4:5:6:7:8", "h.example", "RELAY"},
		{"::1", "", "RELAY"},
		{"::ffff:192.168.212.1", "", "550 5.7.1 Access denied"}, // mapped: as IPv4
		{"fe80::1%eth0", "", "-"},
		{"10.9.1.1", "good.example.com", "RELAY"}, // host SKIP, address RELAY
		{"10.8.1.1", "good.example.com", "-"},
		{"10.8.1.1", "bad.example.com", "550 5.7.1 Access denied"},
		{"10.1.7.7", "", "RELAY"}, // untagged
		{"10.2.3.4", "", "OK"},    // untagged 10.2.3.4 before Connect:10.2.3
		{"10.2.3.5", "", "550 5.7.1 Access denied"},
		{"192.0.2.1", "oldstyle.example", "550 5.7.1 legacy refusal"},
		{"127.0.0.3", "127.0.0.3", "OK"},   // an address for a name: as unresolved
		{"127.0.0.3", "[127.0.0.3]", "OK"}, // sendmail's own stand-in name
		{"10.0.0.1", "192.168.212.1", "-"}, // the name is not the address
		{"1:2:3:4:5:6:7:8", "[IPv6:1:2:3:4:5:6:7:8]", "OK"},
	} {
		act, ok := a.Connect(netip.MustParseAddr(tc.ip), tc.host)
		if got := describe(act, ok); got != tc.want {
			t.Errorf("Connect(%s, %q) = %s, want %s", tc.ip, tc.host, got, tc.want)
		}
	}
}

func TestAccessRelayClient(t *testing.T) {
	a := mustAccess(t, "Connect:10.1 RELAY\nConnect:host.example OK\nConnect:relay.example RELAY\nConnect:10.2 REJECT\n")
	for _, tc := range []struct {
		ip, host string
		want     bool
	}{
		{"10.1.1.1", "host.example", true}, // Connect() says OK (name first); relaying asks the address first
		{"10.3.1.1", "a.relay.example", true},
		{"10.3.1.1", "", false},
		{"10.3.1.1", "[10.3.1.1]", false},
		{"10.2.1.1", "relay.example", true},
		{"10.3.1.1", "host.example", false},
	} {
		if got := a.RelayClient(netip.MustParseAddr(tc.ip), tc.host); got != tc.want {
			t.Errorf("RelayClient(%s, %q) = %v", tc.ip, tc.host, got)
		}
	}
	if act, _ := a.Connect(netip.MustParseAddr("10.1.1.1"), "host.example"); act.Kind != ActionOK {
		t.Errorf("Connect: %v", act.Kind)
	}
}

func TestAccessFrom(t *testing.T) {
	a := mustAccess(t, accessExample)
	for _, tc := range []struct{ addr, want string }{
		{"spammer@aol.com", "550 5.7.1 Access denied"},
		{"SPAMMER@AOL.COM", "550 5.7.1 Access denied"},
		{"other@aol.com", "-"},
		{"anyone@cyberspammer.com", "550 5.7.1 We don't accept mail from spammers"},
		{"x@deep.sub.cyberspammer.com", "550 5.7.1 We don't accept mail from spammers"},
		{"x@okay.cyberspammer.com", "OK"},
		{"good@another.dom", "OK"},
		{"bad@another.dom", "550 5.7.1 Access denied"},
		{"free.stealth.mailer@anywhere.example", "550 5.7.1 Spam not accepted"},
		{"x@[192.0.2.7]", "OK"},
		{"x@[192.0.3.7]", "-"},
		{"", "-"},
		{"<>", "-"},
	} {
		act, ok := a.From(tc.addr)
		if got := describe(act, ok); got != tc.want {
			t.Errorf("From(%q) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// TestAccessFromOrder checks full address, then user@, then domain, and
// the +detail variants of the first two.
func TestAccessFromOrder(t *testing.T) {
	a := mustAccess(t, `From:u@d.example OK
From:u@ DISCARD
From:d.example REJECT
From:p+*@d.example RELAY
From:q+x@ OK
From:q@ DISCARD
From:r+*@ QUARANTINE:r
root@ ERROR:550 no root
`)
	for _, tc := range []struct{ addr, want string }{
		{"u@d.example", "OK"},
		{"u@other.example", "DISCARD"},
		{"v@d.example", "550 5.7.1 Access denied"},
		{"v@sub.d.example", "550 5.7.1 Access denied"},
		{"p+anything@d.example", "RELAY"},
		{"p+@d.example", "RELAY"},
		{"p@d.example", "550 5.7.1 Access denied"},
		{"q+x@d.example", "OK"}, // user+detail@ before the domain
		{"q+y@d.example", "DISCARD"},
		{"r+z@d.example", "QUARANTINE:r"},
		{"u+z@d.example", "OK"}, // u+z@, u+*@ miss; u@d.example
		{"root", "550 5.7.1 no root"},
		{"root@x.example", "550 5.7.1 no root"},
	} {
		act, ok := a.From(tc.addr)
		if got := describe(act, ok); got != tc.want {
			t.Errorf("From(%q) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestAccessTo(t *testing.T) {
	a := mustAccess(t, accessExample)
	for _, tc := range []struct {
		addr       string
		to, toLocl string
	}{
		{"badlocaluser@my.tld", "-", "550 5.7.1 Mailbox disabled for badlocaluser"},
		{"x@host.my.tld", "550 5.7.1 That host does not accept mail", "550 5.7.1 That host does not accept mail"},
		{"x@a.host.my.tld", "550 5.7.1 That host does not accept mail", "550 5.7.1 That host does not accept mail"},
		{"user@other.my.tld", "550 5.7.1 Mailbox disabled for this recipient", "550 5.7.1 Mailbox disabled for this recipient"},
		{"full@example.com", "450 4.2.2 mailbox full", "450 4.2.2 mailbox full"},
		{"blocked@example.com", "550 5.2.1 Mailbox disabled for this recipient", "550 5.2.1 Mailbox disabled for this recipient"},
		{"x@sendmail.org", "RELAY", "RELAY"},
		{"badlocaluser", "550 5.7.1 Mailbox disabled for badlocaluser", "550 5.7.1 Mailbox disabled for badlocaluser"},
		{"nobody@nowhere.example", "-", "-"},
	} {
		act, ok := a.To(tc.addr)
		if got := describe(act, ok); got != tc.to {
			t.Errorf("To(%q) = %s, want %s", tc.addr, got, tc.to)
		}
		act, ok = a.ToLocal(tc.addr)
		if got := describe(act, ok); got != tc.toLocl {
			t.Errorf("ToLocal(%q) = %s, want %s", tc.addr, got, tc.toLocl)
		}
	}
	b := mustAccess(t, "To:x@d.example OK\nTo:x@ REJECT\nTo:d.example DISCARD\n")
	if act, _ := b.ToLocal("x@d.example"); act.Kind != ActionOK {
		t.Errorf("full address first: %v", act.Kind)
	}
	if act, _ := b.ToLocal("x@e.example"); act.Kind != ActionReject {
		t.Errorf("then user@: %v", act.Kind)
	}
	if act, _ := b.ToLocal("y@d.example"); act.Kind != ActionDiscard {
		t.Errorf("then the domain: %v", act.Kind)
	}
}

func TestAccessRelayTo(t *testing.T) {
	a := mustAccess(t, accessExample+"example.net RELAY\nTo:skip.sendmail.org SKIP\nTo:ok.example OK\n")
	for dom, want := range map[string]bool{
		"sendmail.org": true, "MAIL.SENDMAIL.ORG.": true, "other.org": false,
		"example.net": true, "a.example.net": true, "skip.sendmail.org": false,
		"ok.example": false, "": false,
	} {
		if got := a.RelayTo(dom); got != want {
			t.Errorf("RelayTo(%q) = %v", dom, got)
		}
	}
}

func TestAccessTaggedAndClientValue(t *testing.T) {
	a := mustAccess(t, accessExample)
	for _, tc := range []struct{ tag, key, want string }{
		{"GreetPause", "127", "0"},
		{"greetpause:", "", "5000"},
		{"ClientRate", "", "10"},
		{"Spam", "ABUSE@", "FRIEND"},
		{"AuthInfo", "smtp.example.com", `"U:user" "P:secret" "M:PLAIN LOGIN"`},
		{"Srv_Features", "", "l"},
		{"Try_TLS", "broken.example", "NO"},
		{"Connect", "IPv6:2002:C0A8:2C7", "RELAY"},
		{"Connect", "[ipv6:0001:2:3:4:5:6:7:8]", "OK"},
		{"", "10.1", "RELAY"},
		{"From", "spammer@aol.com", "REJECT"},
	} {
		if got, ok := a.Tagged(tc.tag, tc.key); !ok || got != tc.want {
			t.Errorf("Tagged(%q, %q) = %q %v", tc.tag, tc.key, got, ok)
		}
	}
	if _, ok := a.Tagged("Nope", "x"); ok {
		t.Error("unknown key found")
	}
	if v, ok := a.ClientValue("GreetPause", netip.MustParseAddr("127.0.0.1"), "localhost"); !ok || v != "0" {
		t.Errorf("GreetPause for 127.0.0.1: %q", v)
	}
	if v, ok := a.ClientValue("GreetPause", netip.MustParseAddr("192.0.2.1"), "x.example"); !ok || v != "5000" {
		t.Errorf("GreetPause default: %q", v)
	}
	if v, ok := a.ClientValue("Try_TLS", netip.MustParseAddr("192.0.2.1"), "mx.broken.example"); !ok || v != "NO" {
		t.Errorf("Try_TLS: %q", v)
	}
	if _, ok := a.ClientValue("ClientConn", netip.MustParseAddr("192.0.2.1"), ""); !ok {
		t.Error("ClientConn default")
	}
	if _, ok := a.ClientValue("Nope", netip.MustParseAddr("192.0.2.1"), ""); ok {
		t.Error("no such tag")
	}
}

func TestAccessBadLines(t *testing.T) {
	in := "Connect:10.0 OK\n" +
		"Connect:IPv6:zzzz RELAY\n" + // 2
		"From:a@b.example SKIP\n" + // 3
		"Connect: RELAY\n" + // 4
		"To:x.example RELAYS\n" + // 5
		"untagged.example FOO\n" + // 6
		"From:c.example ERROR:go away\n" + // 7
		"Connect:IPv6:1:2:3:4:5:6:7:8:9 OK\n" + // 8
		"Unknown_Tag:whatever anything at all\n" +
		"GreetPause:IPv6:zzzz 0\n" +
		"From:d.example SKIP\n"
	a, err := ParseAccess("access", strings.NewReader(in))
	probs := Problems(err)
	want := []int{2, 3, 4, 5, 6, 7, 8}
	if len(probs) != len(want) {
		t.Fatalf("%d problems: %v", len(probs), err)
	}
	for i, p := range probs {
		if le := p.(*LineError); le.Line != want[i] {
			t.Errorf("problem %d on line %d: %v", i, le.Line, p)
		}
	}
	if a.Len() != 4 {
		t.Errorf("kept %d entries", a.Len())
	}
	if v, _ := a.Tagged("unknown_tag", "whatever"); v != "anything at all" {
		t.Errorf("unknown tag: %q", v)
	}
}

func TestActionKindString(t *testing.T) {
	if ActionQuarantine.String() != "QUARANTINE" || ActionKind(0).String() != "ActionKind(0)" {
		t.Error(ActionQuarantine.String(), ActionKind(0).String())
	}
	if (Action{Kind: ActionOK}).Reply() != "" {
		t.Error("OK has no reply")
	}
}
