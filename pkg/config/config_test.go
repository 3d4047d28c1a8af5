package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsWhenMissing(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.toml"), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.QueueDir != "/var/spool/mqueue" || c.MaxMessageSize != 50<<20 || len(c.Listen) != 2 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml"), true); err == nil {
		t.Fatal("a named missing file must be an error")
	}
}

func TestParse(t *testing.T) {
	src := `hostname = "mx.example.org"
max_message_size = "10M"
relay_from = ["127.0.0.1/32", "192.0.2.7"]
[delivery]
queue_return = "5d"
retry_min = "1m"
retry_max = "1w"
[[listen]]
name = "test"
address = "127.0.0.1:2525"
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxMessageSize != 10<<20 || c.Delivery.QueueReturn.D() != 120*time.Hour || c.Delivery.RetryMax.D() != 168*time.Hour {
		t.Fatalf("bad values: %+v", c)
	}
	if len(c.Listen) != 1 || c.Listen[0].Mode != "mta" {
		t.Fatalf("listeners: %+v", c.Listen)
	}
}

func TestErrorsNameFileLineKey(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ src, want string }{
		{"hostname = \"a.example\"\nbogus = 1\n", `:2: unknown key "bogus"`},
		{"[delivery]\n\nretry_min = \"zz\"\n", `:3: key "delivery.retry_min": bad duration "zz"`},
		{"max_message_size = \"12Q\"\n", `:1: key "max_message_size": bad size`},
		{"hostname = 3\n", `:1: key "hostname"`},
		{"\n\nlog = \"relative/file\"\n", `:3: key "log"`},
		{"[delivery]\nclient_family = \"ipx\"\n", `:2: key "delivery.client_family"`},
		{"\ndelivery.client_family = \"ipx\"\n", `:2: key "delivery.client_family"`},
		{"relay_from = [\"300.1.1.1\"]\n", `:1: key "relay_from": bad network`},
		{"privacy = [\"goaway\", \"nosuch\"]\n", `:1: key "privacy": unknown privacy word "nosuch"`},
		{"x = = 1\n", `:1:`},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, true)
		if err == nil || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, p+tc.want)
		}
	}
}

func TestDurationAndSize(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "4h": 4 * time.Hour, "5d": 120 * time.Hour, "1w2d": 216 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "5", "d", "5x", "-1h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]int64{"50MB": 50 << 20, "50M": 50 << 20, "1k": 1024, "2G": 2 << 30, "100": 100} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v", in, got, err)
		}
	}
}

func TestPrivacyGoaway(t *testing.T) {
	c := Defaults()
	if !c.HasPrivacy("novrfy") || !c.HasPrivacy("noreceipts") || c.HasPrivacy("restrictqrun") {
		t.Fatal("goaway expansion wrong")
	}
}

// The example file shipped in etc/ parses, and with every commented key
// uncommented it still parses: each key it lists exists.
func TestExampleFileParses(t *testing.T) {
	f := "../../etc/gosendmail.toml"
	if _, err := Load(f, true); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		// "#key = value" and "#[[table]]" lines are the listed keys.
		if strings.HasPrefix(line, "#") && len(line) > 1 && line[1] != ' ' && line[1] != '#' {
			line = line[1:]
		}
		out = append(out, line)
	}
	p := filepath.Join(t.TempDir(), "all.toml")
	os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644)
	if _, err := Load(p, true); err != nil {
		t.Fatalf("the example's keys, uncommented: %v", err)
	}
}

// Every key of Config is listed in etc/gosendmail.toml.
func TestExampleListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../etc/gosendmail.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(typ reflect.Type, table string)
	walk = func(typ reflect.Type, table string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			if key == "" || key == "-" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				if !strings.Contains(text, "[["+key+"]]") {
					t.Errorf("table [[%s]] not listed", key)
				}
				walk(ft.Elem(), key)
				continue
			}
			if ft.Kind() == reflect.Struct && ft.Name() != "Duration" {
				if !strings.Contains(text, "["+key+"]") {
					t.Errorf("table [%s] not listed", key)
				}
				walk(ft, key)
				continue
			}
			if !strings.Contains(text, "\n#"+key+" = ") && !strings.Contains(text, "\n"+key+" = ") {
				t.Errorf("key %s (in [%s]) not listed", key, table)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestMailqAllUsers(t *testing.T) {
	if Defaults().MailqAllUsers {
		t.Fatal("mailq_all_users must default to false")
	}
	c, err := Parse("t.toml", []byte("mailq_all_users = true\n"))
	if err != nil || !c.MailqAllUsers {
		t.Fatalf("%v %+v", err, c)
	}
	if _, err := Parse("t.toml", []byte("\nmailq_all_users = \"yes\"\n")); err == nil || !strings.Contains(err.Error(), `t.toml:2: key "mailq_all_users"`) {
		t.Fatalf("a string: %v", err)
	}
}
