# gosendmail build. `make` builds the four binaries into bin/.
# Targets: all, run, test, check, fuzz, bench, cover, install, clean, fmt, man.

GO        ?= go
PREFIX    ?= /usr
DESTDIR   ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Under about 5s per target Go's fuzzer may end with a spurious
# "context deadline exceeded".
FUZZTIME  ?= 20s
export CGO_ENABLED ?= 0
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

LDFLAGS := -s -w -X github.com/gosendmail/gosendmail/pkg/version.Version=$(VERSION)
CMDS    := sendmail mailq newaliases smtpd

.PHONY: all run test check fmt fuzz bench cover install clean deb man

all:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# Build and start the daemon in the foreground on a development
# configuration: unprivileged ports, spool and logs under ./run.
run: all
	sh scripts/dev-run.sh

# The whole test suite, as CI runs it: static checks, then every unit and
# black-box test with the race detector.
test: check
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags crashtest ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: all
	bash scripts/bench/run.sh

cover:
	mkdir -p cover
	$(GO) test -coverprofile=cover/unit.out ./...
	$(GO) tool cover -func=cover/unit.out | tail -1

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)/etc/mail
	install -m 0755 bin/smtpd $(DESTDIR)$(PREFIX)/sbin/smtpd
	install -m 0755 bin/sendmail $(DESTDIR)$(PREFIX)/sbin/sendmail
	install -m 0755 bin/mailq $(DESTDIR)$(PREFIX)/bin/mailq
	install -m 0755 bin/newaliases $(DESTDIR)$(PREFIX)/bin/newaliases
	ln -sf ../sbin/sendmail $(DESTDIR)$(PREFIX)/lib/sendmail
	[ -e $(DESTDIR)/etc/mail/gosendmail.toml ] || install -m 0644 etc/gosendmail.toml $(DESTDIR)/etc/mail/gosendmail.toml
	install -d $(DESTDIR)/lib/systemd/system
	install -m 0644 packaging/debian/gosendmail.service $(DESTDIR)/lib/systemd/system/gosendmail.service
	for page in man/*.[0-9]; do \
	  install -d $(DESTDIR)$(PREFIX)/share/man/man$${page##*.}; \
	  install -m 0644 $$page $(DESTDIR)$(PREFIX)/share/man/man$${page##*.}/; \
	done
	@# Into the running system (no DESTDIR, as root): what the package's
	@# postinst does (user, groups, spool, setgid sendmail, /etc/aliases).
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  PREFIX=$(PREFIX) sh packaging/setup-system.sh; \
	else \
	  echo "note: run PREFIX=$(PREFIX) sh packaging/setup-system.sh as root on the target system (user, groups, spool, setgid sendmail)"; \
	fi

# The Debian package, gosendmail_<version>_<arch>.deb in the checkout, with
# dpkg-deb (offline); binaries built for it alone, position-independent.
deb:
	rm -rf build/deb-bin
	$(GO) build -trimpath -buildmode=pie -ldflags '$(LDFLAGS)' -o build/deb-bin/ ./cmd/...
	BINDIR=build/deb-bin VERSION=$(VERSION) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) sh packaging/build-deb.sh .

clean:
	rm -rf bin cover build

# The man pages: man/NAME.N from man/NAME.N.scd, with scdoc (Debian
# package scdoc). Both are committed; test/man_test.go checks that they
# agree. The pages carry the date of the last commit.
man:
	@for f in man/*.scd; do \
	  echo "scdoc < $$f > $${f%.scd}"; \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) scdoc < $$f > $${f%.scd}.tmp && mv $${f%.scd}.tmp $${f%.scd} || { rm -f $${f%.scd}.tmp; exit 1; }; \
	done

# The long soak (docs/reliability.md): SOAK_SECONDS at SOAK_RATE msg/s
# through the daemon to a sink MX, its RSS, goroutines and descriptors
# sampled every 10 s; prints the samples and a verdict and writes
# soak-results.json. `make test` runs the 30-second version (TestSoakShort).
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 100
.PHONY: soak
soak:
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_RATE=$(SOAK_RATE) GO=$(GO) bash scripts/soak/run.sh
