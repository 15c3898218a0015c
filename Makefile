# steprund — build, test and run targets. `make help` lists them.
SHELL := /bin/bash
SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: help deps build release test test-asan proto run clean

help:
	@echo "make build      build everything (debug)"
	@echo "make release    build optimised binaries"
	@echo "make test       install missing packages, start a throwaway Postgres, run the whole suite, clean up"
	@echo "make test-asan  the same, built with AddressSanitizer"
	@echo "make proto      regenerate the protoc-c code from proto/"
	@echo "make run        start steprund"

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)

test: deps
	scripts/with-test-postgres $(SWIFT) test $(SWIFT_BUILD_FLAGS)

test-asan: deps
	scripts/with-test-postgres $(SWIFT) test --sanitize=address --scratch-path .build-asan $(SWIFT_BUILD_FLAGS)

proto:
	proto/generate.sh

run:
	@echo "make run arrives with the service issue (embedded dev database, systemd); until then:"
	@echo "  STEPRUN_DATABASE_URL=postgresql://... swift run steprund"
	@exit 1

clean:
	rm -rf .build .build-asan

.PHONY: bench
bench: deps
	scripts/bench
