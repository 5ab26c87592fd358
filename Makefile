# reeldb developer tasks. `make demo` and `make test` each work on a fresh clone:
# they build .venv first (once; again only when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp
# torch is installed first and pinned exactly: 2.13.0 is the CPU wheel the build machines
# carry (pip finds it in its find-links); any other spec can pull gigabytes of CUDA wheels.
TORCH  := torch==2.13.0
# Paths that exist (git does not keep empty folders, so bench/ may be missing on a clone).
LINT_PATHS := $(wildcard src tests bench compat)

.DEFAULT_GOAL := help
.PHONY: help venv constraints psql chromium demo test test-fast lint bench compat clean distclean

help:
	@echo "make demo       build .venv if needed, run the product brief's pipeline end to end"
	@echo "make test       build .venv if needed, run the test suite"
	@echo "make test-fast  the tests not marked slow, s3 or server (a few minutes; make test runs all)"
	@echo "make lint       ruff check src tests bench compat"
	@echo "make compat     run the client drivers' own suites (psycopg2, psycopg3, pgvector,"
	@echo "                sqlalchemy) against reeldb serve; fails on any outcome not in"
	@echo "                compat/<suite>-expected-failures.txt. SUITE=psycopg3: one suite;"
	@echo "                UPDATE=1: rewrite the expected-failures file from the run"
	@echo "make bench      run every bench/bench_*.py"
	@echo "make venv       create .venv: torch (CPU, pinned) then reeldb in editable mode + dev extras,"
	@echo "                at the versions in constraints.txt"
	@echo "make constraints  rewrite constraints.txt from .venv (after an upgrade and a green make test)"
	@echo "make clean      remove caches, build output and the demo database"
	@echo "make distclean  clean, and remove .venv"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(TORCH)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# rewrite constraints.txt from what .venv holds now (after an upgrade and a green make test)
constraints: venv
	{ sed -n '/^#/p' constraints.txt; \
	  $(BIN)/python -m pip list --format=freeze --exclude-editable | sed -e 's/+cpu$$//' | grep -Ev '^(pip|setuptools)=='; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: venv
	$(BIN)/python -m reeldb.demo

test: venv psql chromium
	$(BIN)/pytest -q

# the quick tier: no moto S3 server, no `reeldb serve`, none of the tests marked slow
test-fast: venv
	$(BIN)/pytest -q -m "not slow and not s3 and not server"

# psql (Debian's postgresql-client) for the server tests, installed once if missing
psql:
	@command -v psql >/dev/null 2>&1 || { \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; fi; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql-client >/dev/null; }

# chromium (Debian's package) for the browser tests of `reeldb ui`, driven by Playwright with
# executable_path=/usr/bin/chromium (Playwright's own browser download is never used)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; fi; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)

bench: venv
	@# byte-compile reeldb: with PYTHONDONTWRITEBYTECODE set, every cold start would
	@# recompile its sources, which the cold-start figure would then include
	$(BIN)/python -m compileall -q src
	@# the peers measured in the same run (Deeplake, Lance): pinned in the bench extra
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@set -e; found=0; for f in bench/bench_*.py; do \
		[ -e "$$f" ] || continue; found=1; \
		echo "== $$f"; $(BIN)/python "$$f"; \
	done; [ $$found = 1 ] || echo "no bench/bench_*.py yet"

# The client drivers' own test suites against a fresh `reeldb serve` each (suites and their
# venvs fetched once into .cache/compat/; see compat/README.md). Every suite runs even when
# one fails; the target's status is the worst of theirs (1: unexpected outcomes, 2: not run).
COMPAT_SUITES := psycopg2 psycopg3 pgvector sqlalchemy
SUITE ?= $(COMPAT_SUITES)
compat: venv
	@status=0; for suite in $(SUITE); do \
	  test -f compat/$${suite}_suite.py || { echo "no suite $$suite (one of: $(COMPAT_SUITES))"; exit 2; }; \
	  $(BIN)/python compat/$${suite}_suite.py $(if $(UPDATE),--update) || { rc=$$?; [ $$rc -gt $$status ] && status=$$rc; }; \
	done; exit $$status

clean:
	rm -rf build dist .pytest_cache .ruff_cache demo.reeldb src/*.egg-info *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .cache
