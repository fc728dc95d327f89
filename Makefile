# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench kafka-jars clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

kafka-jars: $(STAMP)
	$(BIN)/okrflow kafka fetch

run: kafka-jars
	$(BIN)/okrflow demo

lint: $(STAMP)
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict services

test: kafka-jars lint typecheck
	$(BIN)/pytest

# Throughput against raw aiokafka, to SQLite and PostgreSQL (1,000,000 events; EVENTS=N to change);
# the HTTP intake against a raw aiokafka producer (200,000 events).
EVENTS ?= 1000000
bench: kafka-jars
	$(BIN)/python -m tests.perf.bench --events $(EVENTS)
	$(BIN)/python -m tests.perf.intake_bench
	$(BIN)/python -m tests.perf.scrape_bench
	$(BIN)/python -m tests.perf.scrape_bench --postgres
	$(BIN)/python -m tests.perf.scrape_bench --postgres --rate 10000

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/contract

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
