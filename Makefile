# wsgifcgi: build, test, benchmark.
GO ?= go
BIN := bin/wsgifcgi

.PHONY: all build test check deps fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/wsgifcgi

# deps installs what the tests run against (nginx, Apache with mod_fcgid,
# lighttpd, Caddy, cgi-fcgi, Debian's Python with Django and Flask) when it
# is missing; it needs root for apt-get.
deps:
	@scripts/install-deps.sh

# check: formatting and vet, and pyflakes3 (make deps installs it) on the
# worker's Python, which reports syntax errors, undefined names and unused
# imports file:line by line without byte-compiling anything. No tests.
PYSRC := $(wildcard pyworker/_wsgifcgi/*.py)
check:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v pyflakes3 >/dev/null || { echo "check: pyflakes3 is missing (make deps installs it)"; exit 1; }
	pyflakes3 $(PYSRC)

test: deps check
	$(GO) test -race -count=1 -timeout 20m ./...

# fuzz runs each fuzzer briefly (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzNameValues$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzRecordReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzConn$$' -fuzztime $(FUZZTIME)

# bench compares wsgifcgi with uWSGI, mod_wsgi, gunicorn and two ceilings on
# this machine (installs them by apt-get; about 10 minutes) and writes
# bench/RESULTS.md. Not part of make test.
bench:
	bench/run $(if $(QUICK),-quick)

clean:
	rm -rf bin
