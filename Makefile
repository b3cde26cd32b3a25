# Two commands for a fresh machine: `make run` (install + serve) and `make test` (install + test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# One environment serves both commands, installed once, under a lock: `make run` and
# `make test` started together on a fresh clone do not both build it; the second waits,
# then finds it ready. (Python's own flock, so it works wherever Python does.)
LOCKED = $(PYTHON) -c 'import fcntl, subprocess, sys; lock = open(sys.argv[1], "a"); \
	fcntl.flock(lock, fcntl.LOCK_EX); sys.exit(subprocess.call(sys.argv[2:]))' $(VENV).lock sh -c

.PHONY: install run test lint typecheck bench bench-scale clean browser

# The dashboard's browser test drives Debian's Chromium (and a CJK font, for the partner
# names). Installed here when missing and we may (root with apt-get); otherwise the test
# says what is missing and skips, except in CI, where it fails.
CHROMIUM ?= /usr/bin/chromium

$(STAMP): pyproject.toml setup.py
	@$(LOCKED) '[ $(STAMP) -nt pyproject.toml ] && [ $(STAMP) -nt setup.py ] || { \
		echo "installing hedui and its dev tools into $(VENV)" && \
		$(PYTHON) -m venv $(VENV) && \
		$(BIN)/pip install --quiet --upgrade pip && \
		$(BIN)/pip install --quiet -e ".[dev]" && \
		touch $(STAMP); }'

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hedui serve

browser:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the dashboard's browser test" && \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	fi

# The suite on every core and one more (pytest-xdist): a third of its time goes to waiting on
# the processes it starts and on the database, so a worker more than the cores keeps them
# busy (9 min 12 s against 10 min 30 s with one per core, on 2 cores). A file's tests run on
# one worker, in order, sharing its fixtures. `make test TEST_JOBS=0` runs it in this process
# alone. The slowest tests are
# listed at the end, so a run that took longer than usual says where the time went. The
# project's modules are compiled first: the suite starts the command line and the server as
# processes of their own hundreds of times, and where the environment says not to write
# bytecode (PYTHONDONTWRITEBYTECODE) each would compile them again (0.1 s a start).
TEST_JOBS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1)')
test: $(STAMP) browser
	@$(BIN)/python -m compileall -q -j 0 service connectors schemas sandbox >/dev/null
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadfile --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.transport
	$(BIN)/python -m bench.sqlite_driver
	$(BIN)/python -m bench.declarative
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.shedding
	$(BIN)/python -m bench.crypto

# A 100,000-household batch on SQLite, and on PostgreSQL with 1 and 2 workers when
# BENCH_DATABASE_URL names a server (a throw-away database is created there). Takes hours
# at the default size on two cores: HOUSEHOLDS=2000 make bench-scale for a quick look.
# BENCH_LIMITS sets the partners' agreed limits, JSON as in HEDUI_CONNECTORS.
HOUSEHOLDS ?= 100000
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --households $(HOUSEHOLDS) \
		$(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL)) \
		$(if $(BENCH_LIMITS),--limits '$(BENCH_LIMITS)')

clean:
	rm -rf $(VENV) $(VENV).lock .pytest_cache .ruff_cache .mypy_cache .hypothesis hedui.db* hedui-sandbox.db* \
		test-artifacts
