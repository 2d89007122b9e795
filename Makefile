# wsgifcgi: build, test, benchmark.
GO ?= go
BIN := bin/wsgifcgi

.PHONY: all build test check pyunit deps fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/wsgifcgi

# deps installs what the tests run against (nginx, Apache with mod_fcgid,
# lighttpd, Caddy, cgi-fcgi, Debian's Python with Django and Flask) when it
# is missing; it needs root for apt-get.
deps:
	@scripts/install-deps.sh

# check: formatting and vet, and pyflakes3 (make deps installs it) on the
# worker's Python and its tests, which reports syntax errors, undefined
# names and unused imports file:line by line without byte-compiling
# anything. No tests.
PYSRC := $(wildcard pyworker/_wsgifcgi/*.py pyworker/pytests/*.py)
check:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v pyflakes3 >/dev/null || { echo "check: pyflakes3 is missing (make deps installs it)"; exit 1; }
	pyflakes3 $(PYSRC)

# pyunit runs the worker's Python unit tests (pyworker/pytests) with each
# interpreter of PYTHONS that exists, once per real executable: python3 on
# PATH, which the workers run by default, and Debian's, which the
# integration tests give them. -B: no __pycache__ in the tree.
PYTHONS ?= python3 /usr/bin/python3
pyunit:
	@seen=; for py in $(PYTHONS); do \
		exe=$$($$py -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || continue; \
		case " $$seen " in *" $$exe "*) continue;; esac; seen="$$seen $$exe"; \
		echo "pyunit: $$exe"; \
		(cd pyworker && $$py -B -m unittest discover -q -s pytests -t .) || exit 1; \
	done; [ -n "$$seen" ] || { echo "pyunit: no Python among: $(PYTHONS)"; exit 1; }

test: deps check pyunit
	$(GO) test -race -count=1 -timeout 20m ./...

# fuzz runs each fuzzer briefly (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzNameValues$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzRecordReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzConn$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bridge -run '^$$' -fuzz '^FuzzLoan$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pyworker -run '^$$' -fuzz '^FuzzWorkerFrames$$' -fuzztime $(FUZZTIME)
	$(GO) test ./convert -run '^$$' -fuzz '^FuzzConvert$$' -fuzztime $(FUZZTIME)
	$(GO) test ./groups -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)

# bench compares wsgifcgi with uWSGI, mod_wsgi, gunicorn and two ceilings on
# this machine (installs them by apt-get; about 10 minutes) and writes
# bench/RESULTS.md. Not part of make test.
bench:
	bench/run $(if $(QUICK),-quick)

clean:
	rm -rf bin
