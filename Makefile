# steprund — build, test and run targets. `make help` lists them.
SHELL := /bin/bash
SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DOCDIR ?= $(PREFIX)/share/doc/steprund
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
DESTDIR ?=

.PHONY: help deps build release test test-asan test-resilience check-run proto run install clean fuzz

help:
	@echo "make build      build everything (debug)"
	@echo "make release    build optimised binaries"
	@echo "make test       install missing packages, start a throwaway Postgres, run the whole suite, clean up"
	@echo "make test-asan  the same, built with AddressSanitizer"
	@echo "make test-resilience  the fault tests at full size (crash, outage, overload, slow peers)"
	@echo "make check-run  check that make run comes up, answers steprunctl health, and stops cleanly on SIGINT, SIGTERM and SIGHUP"
	@echo "make proto      regenerate the protoc-c code from proto/"
	@echo "make run        start steprund (embedded dev database unless STEPRUN_DATABASE_URL is set)"
	@echo "make install    install binaries, systemd units, config and docs (PREFIX, DESTDIR)"
	@echo "make fuzz       libFuzzer over the frame and message decoders (FUZZ_SECONDS)"
	@echo "make bench      the standard benchmark set, daemon against direct Postgres"
	@echo "make goals      rounds of daemon/direct pairs for the performance goals, judged on undisturbed pairs"

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)

test: deps
	scripts/with-test-postgres $(SWIFT) test $(SWIFT_BUILD_FLAGS)

# One test at a time: under AddressSanitizer every thread runs several times slower, and on a
# 2-core machine forty suites in parallel (each with daemons, clients and Postgres backends)
# starved event loops for seconds — clients timed out waiting for Hello (4 of 5 parallel runs of
# the suite failed that way on 2026-12-01, the last landed commit included; serial runs pass in ~45 s).
test-asan: deps
	ASAN_OPTIONS=detect_leaks=0 scripts/with-test-postgres $(SWIFT) test --sanitize=address --scratch-path .build-asan --no-parallel $(SWIFT_BUILD_FLAGS)

test-resilience: deps
	STEPRUN_RESILIENCE_FULL=1 scripts/with-test-postgres $(SWIFT) test --filter 'FaultTests|BadInputCatalogueTests|PoolTests' $(SWIFT_BUILD_FLAGS)

check-run: deps
	scripts/check-make-run

proto:
	proto/generate.sh

run: deps
	scripts/run-dev $(ARGS)

install: release
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/steprund $(DESTDIR)$(DOCDIR)
	install -m 755 $$($(SWIFT) build -c release --show-bin-path)/steprund $(DESTDIR)$(BINDIR)/steprund
	install -m 755 $$($(SWIFT) build -c release --show-bin-path)/steprunctl $(DESTDIR)$(BINDIR)/steprunctl
	sed 's|/usr/local/bin|$(BINDIR)|g; s|/usr/local/share/doc/steprund|$(DOCDIR)|g; s|/etc/steprund|$(SYSCONFDIR)/steprund|g' \
		systemd/steprund.service > $(DESTDIR)$(UNITDIR)/steprund.service
	sed 's|/usr/local/share/doc/steprund|$(DOCDIR)|g' systemd/steprund.socket > $(DESTDIR)$(UNITDIR)/steprund.socket
	chmod 644 $(DESTDIR)$(UNITDIR)/steprund.service $(DESTDIR)$(UNITDIR)/steprund.socket
	[ -e $(DESTDIR)$(SYSCONFDIR)/steprund/steprund.conf ] || install -m 640 systemd/steprund.conf $(DESTDIR)$(SYSCONFDIR)/steprund/steprund.conf
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@echo "installed; next: put the TCP token in $(SYSCONFDIR)/steprund/token (mode 600), set database-url in"
	@echo "$(SYSCONFDIR)/steprund/steprund.conf, then: systemctl daemon-reload && systemctl enable --now steprund.socket steprund.service"

clean:
	rm -rf .build .build-asan

# Fuzz the request decode path for FUZZ_SECONDS (docs/FUZZING.md).
FUZZ_SECONDS ?= 300
fuzz:
	scripts/fuzz $(FUZZ_SECONDS)

# The standard benchmark set, daemon against direct Postgres (docs/PERFORMANCE.md).
.PHONY: bench
bench: deps
	scripts/bench

# The performance goals in rounds of pairs, counting only the pairs the hypervisor left alone
# (GOALS_ROUNDS, GOALS_STEAL_MAX; docs/PERFORMANCE.md).
.PHONY: goals
goals: deps
	scripts/goals
