package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The man pages are written in scdoc (man/NAME.SECTION.scd) and committed
// both as source and as the generated page (man/NAME.SECTION), which `make
// man` regenerates. TestManPages checks, for every source:
//
//   - that the generated page exists and is what scdoc makes of the source
//     now (skipped when scdoc is not installed: Debian package scdoc);
//   - that man(1) renders it without a single warning (Debian packages
//     man-db and groff-base, which the test requires);
//   - that the preamble names the page as its file does, that the page has
//     the sections every page needs, and that SEE ALSO names only pages of
//     man/ or a few well-known system pages.
//
// The page's date is not part of the comparison: `make man` stamps pages
// with the date of the last commit, so the regenerated page is given the
// committed page's date (scdoc takes it from SOURCE_DATE_EPOCH). Neither is
// scdoc's version, which it writes in a comment on the first line.
func TestManPages(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	manDir := filepath.Join(filepath.Dir(filepath.Dir(file)), "man")
	srcs, err := filepath.Glob(filepath.Join(manDir, "*.scd"))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatalf("no man page sources (*.scd) in %s", manDir)
	}
	pages := map[string]bool{} // "name(section)" of every page in man/
	for _, src := range srcs {
		name, section, ok := pageName(src)
		if !ok {
			t.Errorf("%s: want a file named NAME.SECTION.scd", src)
			continue
		}
		pages[name+"("+section+")"] = true
	}
	scdoc, scdocErr := exec.LookPath("scdoc")
	man, manErr := exec.LookPath("man")

	for _, src := range srcs {
		page := strings.TrimSuffix(src, ".scd")
		t.Run(filepath.Base(page), func(t *testing.T) {
			source, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			generated, err := os.ReadFile(page)
			if err != nil {
				t.Fatalf("the generated page is missing (run make man): %v", err)
			}

			t.Run("up-to-date", func(t *testing.T) {
				if scdocErr != nil {
					t.Skip("scdoc is not installed (Debian package scdoc): cannot check that " + filepath.Base(page) + " is generated from its source")
				}
				fresh, err := runScdoc(scdoc, source, generated)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(normalizeScdoc(fresh), normalizeScdoc(generated)) {
					t.Errorf("%s is not what scdoc makes of %s: run make man\n%s",
						filepath.Base(page), filepath.Base(src), firstDiff(generated, fresh))
				}
			})

			t.Run("renders", func(t *testing.T) {
				if manErr != nil {
					t.Fatalf("man is not installed (Debian packages man-db and groff-base): cannot render %s", filepath.Base(page))
				}
				// The page goes in on stdin (man -l -), so that a man
				// that drops privileges need not be able to open it.
				cmd := exec.Command(man, "--warnings=all,mac", "-l", "-Tutf8", "-")
				cmd.Stdin = bytes.NewReader(generated)
				cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "MANOPT=", "LC_ALL=C.UTF-8")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("man -l %s: %v\n%s", filepath.Base(page), err, stderr.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("man -l %s warns:\n%s", filepath.Base(page), stderr.String())
				}
				// Bold and underlined text come as overstrikes (x\bx).
				text := overstrike.ReplaceAllString(stdout.String(), "")
				if !strings.Contains(text, "\nNAME\n") {
					t.Errorf("man -l %s printed no NAME section:\n%s", filepath.Base(page), text)
				}
			})

			t.Run("content", func(t *testing.T) {
				checkContent(t, src, string(source), pages)
			})
		})
	}
}

// overstrike is a character that grotty overstrikes with the next one.
var overstrike = regexp.MustCompile("[^\b]\b")

// pageName splits man/NAME.SECTION.scd into NAME and SECTION.
func pageName(src string) (name, section string, ok bool) {
	base := strings.TrimSuffix(filepath.Base(src), ".scd")
	i := strings.LastIndexByte(base, '.')
	if i <= 0 || i == len(base)-1 || base[i+1] < '1' || base[i+1] > '9' {
		return "", "", false
	}
	return base[:i], base[i+1:], true
}

// thDate finds the date on a generated page's .TH line.
var thDate = regexp.MustCompile(`(?m)^\.TH "[^"]*" "[^"]*" "(\d{4}-\d{2}-\d{2})"`)

// runScdoc makes the page from source, dated as the committed page is (or
// today, if that has no date).
func runScdoc(scdoc string, source, committed []byte) ([]byte, error) {
	epoch := time.Now().Unix()
	if m := thDate.FindSubmatch(committed); m != nil {
		if d, err := time.Parse("2006-01-02", string(m[1])); err == nil {
			epoch = d.Unix()
		}
	}
	cmd := exec.Command(scdoc)
	cmd.Stdin = bytes.NewReader(source)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch, 10))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scdoc: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// scdocVersion is the comment in which scdoc names itself.
var scdocVersion = regexp.MustCompile(`(?m)^\.\\" Generated by scdoc .*$`)

func normalizeScdoc(b []byte) []byte {
	return scdocVersion.ReplaceAll(b, []byte(`.\" Generated by scdoc`))
}

// firstDiff shows the first line where two pages differ.
func firstDiff(have, want []byte) string {
	h := strings.Split(string(have), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(h) || i < len(w); i++ {
		var hl, wl string
		if i < len(h) {
			hl = h[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if hl != wl {
			return fmt.Sprintf("line %d:\n  committed: %q\n  scdoc:     %q", i+1, hl, wl)
		}
	}
	return "(the pages differ only in line ends)"
}

// requiredSections are the sections every page has.
var requiredSections = []string{"NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXAMPLES", "SEE ALSO"}

// systemPages are the pages outside man/ that SEE ALSO may name.
var systemPages = map[string]bool{
	"man(1)": true, "syslog(3)": true, "crontab(5)": true, "systemd(1)": true,
	"opendkim(8)": true, "opendkim.conf(5)": true, "opendkim-genkey(8)": true,
	"swaks(1)": true, "htpasswd(1)": true, "procmail(1)": true,
}

// seeAlsoRef is one page reference in scdoc source: *name*(section).
var seeAlsoRef = regexp.MustCompile(`\*?([A-Za-z0-9][A-Za-z0-9._+-]*)\*?\((\d[a-z]*)\)`)

func checkContent(t *testing.T, src, source string, pages map[string]bool) {
	name, section, ok := pageName(src)
	if !ok {
		t.Fatalf("%s: want a file named NAME.SECTION.scd", src)
	}
	preamble, _, _ := strings.Cut(source, "\n")
	if want := name + "(" + section + ")"; !strings.HasPrefix(preamble, want+" ") && preamble != want {
		t.Errorf("the preamble %q does not name the page %s", preamble, want)
	}

	sections := map[string]string{} // heading -> text up to the next heading
	var order []string
	cur := ""
	for _, line := range strings.Split(source, "\n") {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			cur = strings.TrimSpace(h)
			order = append(order, cur)
			continue
		}
		if cur != "" {
			sections[cur] += line + "\n"
		}
	}
	for _, s := range requiredSections {
		if !slices.Contains(order, s) {
			t.Errorf("no %s section", s)
		}
	}
	if len(order) > 0 && order[0] != "NAME" {
		t.Errorf("the first section is %s, not NAME", order[0])
	}
	if nameLine := strings.TrimSpace(sections["NAME"]); !strings.HasPrefix(nameLine, name+" - ") {
		t.Errorf("the NAME section %q does not start with %q", nameLine, name+" - ")
	}

	refs := seeAlsoRef.FindAllStringSubmatch(sections["SEE ALSO"], -1)
	if len(refs) == 0 {
		t.Errorf("SEE ALSO names no page")
	}
	for _, m := range refs {
		ref := m[1] + "(" + m[2] + ")"
		if ref == name+"("+section+")" {
			t.Errorf("SEE ALSO names the page itself")
		}
		if !pages[ref] && !systemPages[ref] {
			t.Errorf("SEE ALSO names %s, which is neither in man/ nor a known system page", ref)
		}
	}
}
