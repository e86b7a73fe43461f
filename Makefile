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

.PHONY: run install test lint bench typecheck clean system-deps bench-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TSTAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/cxmon run --config config/default.toml $(ARGS)

system-deps:
	@bash scripts/ensure-debs.sh $(TEST_DEBS)

bench-deps:
	@bash scripts/ensure-debs.sh $(BENCH_DEBS)

test: $(TSTAMP) system-deps
	$(BIN)/python -m pytest $(ARGS)

lint: $(TSTAMP)
	$(BIN)/ruff check cxmon collectors tests bench
	$(BIN)/ruff format --check cxmon collectors tests bench

typecheck: $(TSTAMP)
	$(BIN)/mypy cxmon collectors

# Every script in bench/ but the converter the queue_log benchmark imports (it needs an output file).
BENCHES := $(filter-out bench/bank_queue_log.py,$(sort $(wildcard bench/*.py)))

bench: $(TSTAMP) bench-deps
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
