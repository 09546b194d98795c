# Two commands: `make run` (demo server) and `make test` (the whole suite on real services).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/annotation
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test bench battery lint format venv services chromium clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: venv
	bin/run

# Redis for the tests: started if it is not running. PostgreSQL: bin/test-database-url
# (the machine's server, started if need be; else the embedded one).
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done

chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: venv services chromium
	DATABASE_URL=$$(TEST_DATABASE_URL=$(TEST_DATABASE_URL) bin/test-database-url) \
	CELERY_BROKER_URL=$(TEST_BROKER_URL) CELERY_TASK_DEFAULT_QUEUE=annotation-tests-$$$$ \
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv services
	DATABASE_URL=$$(TEST_DATABASE_URL=$(TEST_DATABASE_URL) bin/test-database-url) \
	CELERY_BROKER_URL=$(TEST_BROKER_URL) bin/bench

# The battery of public labeled sets (docs/data): hours with every set and 5 seeds;
# BATTERY_ARGS=--quick for a smoke run, e.g. --sets digits,segment --strategies random,margin.
battery: venv
	$(PY) -m bench.bench_battery $(BATTERY_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	-$(PY) -m config.embedded_db stop
	rm -rf var
