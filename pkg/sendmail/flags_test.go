package sendmail

import (
	"reflect"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func TestParseGluedAndSeparate(t *testing.T) {
	pairs := [][2][]string{
		{{"-froot"}, {"-f", "root"}},
		{{"-rroot"}, {"-r", "root"}},
		{{"-FCronDaemon"}, {"-F", "CronDaemon"}},
		{{"-B8BITMIME"}, {"-B", "8BITMIME"}},
		{{"-ti"}, {"-t", "-i"}},
		{{"-oi"}, {"-o", "i"}},
		{{"-odi"}, {"-o", "di"}},
		{{"-Nsuccess,failure"}, {"-N", "success,failure"}},
		{{"-bp"}, {"-b", "p"}},
		{{"-tif", "x@y"}, {"-t", "-i", "-f", "x@y"}},
	}
	for _, p := range pairs {
		a, err1 := Parse(p[0])
		b, err2 := Parse(p[1])
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%q and %q differ: %+v %v / %+v %v", p[0], p[1], a, err1, b, err2)
		}
	}
}

func TestParseFields(t *testing.T) {
	o, err := Parse([]string{"-oem", "-oi", "-B8BITMIME", "-f", "me@x.org", "-N", "success,failure", "-R", "hdrs", "-V", "id1", "-q30m", "-L", "my tag!", "--", "-a@x.org", "b@x.org"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{Mode: "m", IgnoreDots: true, Sender: "me@x.org", SenderSet: true, BodyType: "8BITMIME",
		Notify: "SUCCESS,FAILURE", Ret: "HDRS", EnvID: "id1", ErrorMode: 'm', LogTag: "mytag",
		QueueRun: true, QueueInterval: 30 * time.Minute, Rcpts: []string{"-a@x.org", "b@x.org"}}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got  %+v\nwant %+v", o, want)
	}
}

func TestParseQueue(t *testing.T) {
	for arg, want := range map[string]time.Duration{"-q15": 15 * time.Minute, "-q1h30m": 90 * time.Minute, "-qp15m": 15 * time.Minute, "-q": 0} {
		o, err := Parse([]string{arg})
		if err != nil || !o.QueueRun || o.QueueInterval != want {
			t.Errorf("%s: %+v %v", arg, o, err)
		}
	}
	o, _ := Parse([]string{"-bp", "-qIabc", "-q!Rfoo", "-qSbar"})
	if !reflect.DeepEqual(o.QueueFilters, []string{"-qIabc", "-q!Rfoo", "-qSbar"}) {
		t.Fatalf("filters %q", o.QueueFilters)
	}
}

func TestParseRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"-X", "/tmp/log"}, {"-X/tmp/log"}, {"-f"}, {"-N", "maybe"}, {"-R", "x"}, {"-B", "x"},
		{"-bx"}, {"-q!"}, {"-qI"}, {"-q5x"}, {"a\nb"}, {"-f", "a\x00"},
	} {
		_, err := Parse(args)
		if err == nil || mailerr.ExitCode(err) != mailerr.ExUsage {
			t.Errorf("%q: %v", args, err)
		}
	}
	o, err := Parse([]string{"-oQ/tmp", "-OAliasFile=/x", "-O", "PidFile=/p", "-D", "/d"})
	if err != nil || len(o.Privileged) != 4 {
		t.Fatalf("privileged options not collected: %+v %v", o, err)
	}
	o, err = Parse([]string{"-Z", "--weird", "-oZ", "-O", "Foo=bar", "-d0.1"})
	if err != nil || len(o.Warnings) != 5 {
		t.Fatalf("unknown flags must be warnings: %q %v", o.Warnings, err)
	}
}
