# cxmon — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test
ARGS   ?=

# Debian packages the integration tests drive for real (promtool, Prometheus, Alertmanager, tmux).
TEST_DEBS := prometheus:promtool prometheus-alertmanager:prometheus-alertmanager tmux:tmux chromium:chromium
BENCH_DEBS := mtail:mtail

.PHONY: run install bytecode test lint bench typecheck clean system-deps bench-deps

# The modules compiled with mypyc (cxmon/compiled.py): the install stamp depends on their sources, so
# an edited one is compiled again before `make run` or `make test` use it (its .so would shadow it).
CORE_SRCS := $(shell $(PYTHON) -I cxmon/compiled.py)
# What setup.py needs to compile them, in the venv (the build runs without isolation, beside the deps).
BUILD_DEPS := 'setuptools>=77' wheel 'mypy>=1.10'
# pyproject's runtime dependencies (no argument) or an extra's, one a line.
DEPS = $(BIN)/python -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(p["optional-dependencies"][sys.argv[1]] if sys.argv[1:] else p["dependencies"]))'

# CXMON_PURE=1 make install: pure Python, nothing compiled (and no compiled module left behind).
$(STAMP): pyproject.toml setup.py cxmon/compiled.py $(CORE_SRCS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(BUILD_DEPS)
	$(DEPS) | $(BIN)/python -m pip install -q -r /dev/stdin
	$(BIN)/python -m pip install -q --no-build-isolation --no-deps -e .
	$(BIN)/cxmon --version
	touch $@

$(TSTAMP): pyproject.toml $(STAMP)
	$(DEPS) test | $(BIN)/python -m pip install -q -r /dev/stdin
	touch $@

install: $(STAMP) bytecode

# Bytecode for the modules left as Python, as a non-editable install has: every start of cxmon (an
# import's three processes, each test's subprocesses) reads it instead of compiling the source again,
# even where the environment says not to write it (PYTHONDONTWRITEBYTECODE). Files already current
# are skipped, so this costs a fraction of a second.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q cxmon collectors

run: $(STAMP) bytecode
	$(BIN)/cxmon run --config config/default.toml $(ARGS)

system-deps:
	@bash scripts/ensure-debs.sh $(TEST_DEBS)

bench-deps:
	@bash scripts/ensure-debs.sh $(BENCH_DEBS)

test: $(TSTAMP) bytecode system-deps
	$(BIN)/python -m pytest $(ARGS)

lint: $(TSTAMP)
	$(BIN)/ruff check cxmon collectors tests bench
	$(BIN)/ruff format --check cxmon collectors tests bench

typecheck: $(TSTAMP)
	$(BIN)/mypy cxmon collectors tests bench

# Every script in bench/ but the converter the queue_log benchmark imports (it needs an output file).
BENCHES := $(filter-out bench/bank_queue_log.py,$(sort $(wildcard bench/*.py)))

bench: $(TSTAMP) bytecode bench-deps
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache cxmon/compiled.json
	find cxmon collectors -name '*.so' -delete
	find cxmon collectors -name __pycache__ -prune -exec rm -rf {} +
