# `make demo` sets everything up and chats with both bundled replica sites in a real Chromium.
# `make test` sets everything up and runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite runs on every core (pytest-xdist; each worker has its own browser); PYTEST_PARALLEL= runs it in one process.
PYTEST_PARALLEL ?= -n auto --dist worksteal

.PHONY: setup demo test soak lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	# the distribution's former name: its pytest entry point would load the plugin twice
	$(BIN)/python -m pip uninstall -q -y scraper 2>/dev/null || true
	rm -rf scraper.egg-info
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	scripts/ensure-browser.sh $(BIN)/python

demo: setup
	$(BIN)/scraper demo

test: setup
	$(BIN)/ruff check scraper tests benchmarks scripts
	$(BIN)/ruff format --check scraper tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The tests that repeat a race, run ten times as often (they are run once over in `make test`).
soak: setup
	SCRAPER_SOAK=$${SCRAPER_SOAK:-10} $(BIN)/python -m pytest $(PYTEST_PARALLEL) tests/e2e/test_faults.py -k at_once $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.serve

lint: setup
	$(BIN)/ruff check scraper tests benchmarks scripts
	$(BIN)/ruff format --check scraper tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
