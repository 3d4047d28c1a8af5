package importmc

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// keyOrder is the order of keys within a table, as in etc/gosendmail.toml.
var keyOrder = []string{
	"hostname", "queue_dir", "local_host_names", "virtusertable", "trusted_users", "aliases",
	"access", "relay_domains", "mailertable", "privacy", "max_message_size",
	"max_connections", "max_recipients", "greet_pause",
	"cert_file", "key_file",
	"client_family", "smart_host", "queue_warn", "queue_return", "default_user",
	"key_table", "signing_table", "on_error",
}

func keyRank(k string) int {
	for i, x := range keyOrder {
		if x == k {
			return i
		}
	}
	return len(keyOrder)
}

// appendFrom adds "from" comment lines to the setting key of tbl.
func appendFrom(tbl []setting, key string, lines ...string) {
	for i := range tbl {
		if tbl[i].key == key {
			tbl[i].from = append(tbl[i].from, lines...)
		}
	}
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeComments(b *bytes.Buffer, lines ...[]string) {
	for _, ls := range lines {
		for _, l := range ls {
			// Keep the indentation of a note, but nothing that would
			// end the comment or break TOML.
			indent := len(l) - len(strings.TrimLeft(l, " "))
			if l = oneLine(l); l == "" {
				b.WriteString("#\n")
			} else {
				b.WriteString("# " + strings.Repeat(" ", min(indent, 8)) + l + "\n")
			}
		}
	}
}

func writeSettings(b *bytes.Buffer, tbl []setting, blankFirst bool) {
	sort.SliceStable(tbl, func(i, j int) bool { return keyRank(tbl[i].key) < keyRank(tbl[j].key) })
	for i, s := range tbl {
		if i > 0 || blankFirst {
			b.WriteString("\n")
		}
		writeComments(b, s.from, s.notes)
		b.WriteString(s.key + " = " + s.val + "\n")
	}
}

func writeTable(b *bytes.Buffer, name string, tbl []setting, notes []string) {
	if len(tbl) == 0 {
		return
	}
	b.WriteString("\n[" + name + "]\n")
	writeComments(b, notes)
	writeSettings(b, tbl, len(notes) > 0)
}

// render writes the configuration.
func (t *translator) render() []byte {
	var b bytes.Buffer
	src := oneLine(t.file)
	if t.od != nil && t.dkimBy != nil {
		src += " and " + oneLine(t.od.path)
	}
	writeComments(&b, []string{
		"gosendmail.toml made by \"smtpd import-mc\" from " + src,
		"on " + t.opt.Now.Format("2006-01-02 15:04 -0700") + ".",
		"",
		"Each key names the line it comes from. Keys that " + t.base + " does not set are",
		"left out, so gosendmail's defaults apply to them (see gosendmail.toml(5)).",
		"What could not be translated was listed on standard error.",
	})
	writeSettings(&b, t.top, true)
	writeTable(&b, "limits", t.limits, nil)
	writeTable(&b, "tls", t.tls, nil)
	if len(t.listeners) > 0 {
		b.WriteString("\n# Listeners (DAEMON_OPTIONS). mode: mta, submission, smtps; auth: none, optional, required.\n")
	}
	for _, l := range t.listeners {
		b.WriteString("\n")
		writeComments(&b, l.from, l.notes)
		b.WriteString(l.toml(t.auth(l)))
	}
	writeTable(&b, "delivery", t.delivery, nil)
	writeTable(&b, "dkim", t.dkim, t.dkimNotes)
	if len(t.milters) > 0 {
		b.WriteString("\n# Mail filters (INPUT_MAIL_FILTER), run in this order.\n")
	}
	for _, m := range t.milters {
		b.WriteString("\n")
		writeComments(&b, m.from, m.notes)
		b.WriteString(m.toml())
	}
	return b.Bytes()
}
