# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up.
# Two installs, each with its own stamp: `make run` needs only okrflow's runtime dependencies
# (RUNTIME); `make test` and the other developer targets add the dev extras on top (DEV).
# Both work on a fresh clone; a change to pyproject.toml renames the stamps, so both re-run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUNTIME := $(VENV)/.runtime-$(SUM)
DEV := $(VENV)/.dev-$(SUM)

# Kafka jars and the local broker's state stay in the repo's .cache/kafka (ignored by git,
# removed by `make clean`, reused by the tests' broker). Outside make, okrflow defaults to
# $XDG_CACHE_HOME/okrflow/kafka (~/.cache/okrflow/kafka): see okrflow/settings.py.
export OKRFLOW_KAFKA_CACHE_DIR ?= $(CURDIR)/.cache/kafka

.PHONY: run test lint typecheck unit bench bench-soak stress-rebalance kafka-jars clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	rm -f $(VENV)/.runtime-* $(VENV)/.installed-*
	touch $@

$(DEV): $(RUNTIME)
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.dev-*
	touch $@

kafka-jars: $(RUNTIME)
	$(BIN)/okrflow kafka fetch

run: kafka-jars
	$(BIN)/okrflow demo

lint: $(DEV)
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests

typecheck: $(DEV)
	$(BIN)/mypy --strict services

# One pytest worker per core (each starts its own broker and PostgreSQL when a test needs
# them); worksteal keeps both busy to the end, the long integration tests included.
test: $(DEV) kafka-jars lint typecheck
	$(BIN)/pytest -n auto --dist worksteal

# Throughput against raw aiokafka, to SQLite and PostgreSQL (1,000,000 events; EVENTS=N to change);
# the HTTP intake against a raw aiokafka producer (200,000 events); scrape and page latency.
EVENTS ?= 1000000
bench: $(DEV) kafka-jars
	$(BIN)/python -m tests.perf.stages
	$(BIN)/python -m tests.perf.bench --events $(EVENTS)
	$(BIN)/python -m tests.perf.intake_bench
	$(BIN)/python -m tests.perf.scrape_bench
	$(BIN)/python -m tests.perf.scrape_bench --postgres
	$(BIN)/python -m tests.perf.scrape_bench --postgres --rate 10000
	$(BIN)/python -m tests.perf.pages_bench

# One worker's memory over a long stream into PostgreSQL: RSS every 5 s, the peak, the growth
# after the first minute (EVENTS=10000000 make bench-soak for docs/performance.md's figures).
bench-soak: $(DEV) kafka-jars
	$(BIN)/python -m tests.perf.soak --events $(EVENTS)

# Rebalance storm: 50 joins, SIGTERMs and kill -9s during a 1,000,000-event stream; exact counts,
# no hang, no batch above OKRFLOW_BATCH_SIZE (CI runs a short seeded one). REBALANCES=N, --postgres.
REBALANCES ?= 50
stress-rebalance: $(DEV) kafka-jars
	$(BIN)/python -m tests.perf.rebalance_storm --events $(EVENTS) --rebalances $(REBALANCES)
	$(BIN)/python -m tests.perf.rebalance_storm --events $(EVENTS) --rebalances $(REBALANCES) --postgres

unit: $(DEV)
	$(BIN)/pytest tests/unit tests/contract

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
