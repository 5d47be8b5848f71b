# The interface to the project: `make run` and `make test` set up a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-slow test-pure test-bench lint bench chaos clean

$(VENV)/.runtime: pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	$(PIP) install -e ./client
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) install -e '.[dev]'
	touch $@

## run: install, migrate and start everything (embedded Redis + SQLite unless configured)
run: $(VENV)/.runtime
	$(BIN)/python manage.py up

## test: install what the tests need and run the suite (slow and bench runs excluded)
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-slow: only the slow runs (chaos, long model-based walks)
test-slow: $(VENV)/.dev
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## test-pure: only the pure tests, which start no redis-server
test-pure: $(VENV)/.dev
	$(BIN)/python -m pytest -m no_redis $(PYTEST_ARGS)

## test-bench: smoke-test the benchmarks (make bench measures)
test-bench: $(VENV)/.dev
	$(BIN)/python -m pytest -m bench $(PYTEST_ARGS)

## lint: ruff and mypy, configured in pyproject.toml
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

## bench: the benchmarks; results land in bench/results/
bench: $(VENV)/.dev
	$(BIN)/python -m bench publish
	$(BIN)/python -m bench consume

## chaos: faults under load (servers drained and killed, consumers killed, Redis restarted)
chaos: $(VENV)/.dev
	$(BIN)/python -m bench chaos

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
