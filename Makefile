# certdesk — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

# Debian packages the project needs, and why:
#   softhsm2            PKCS#11 tokens: CA keys in an HSM, emulated USB keys
#   libharfbuzz-subset0 WeasyPrint embeds CJK font subsets fast (7 s a PDF without it)
#   fonts-wqy-microhei  a CJK font for the application-form PDFs
#   poppler-utils       pdftotext: tests read the generated PDFs
#   zbar-tools          zbarimg: tests read back the QR code printed on the application form
#   openssl             tests verify certificates, CRLs and OCSP with the openssl CLI
#   chromium            browser end-to-end tests (Playwright drives Debian's Chromium)
SYSTEM_PACKAGES := softhsm2 libharfbuzz-subset0 fonts-wqy-microhei poppler-utils zbar-tools openssl chromium

.PHONY: help run test lint e2e bench system-deps deps migrate demo clean

help:
	@echo "make run   - set up everything and start the portal with demo data on http://$(HOST):$(PORT)"
	@echo "make test  - set up and run the whole suite (ruff, mypy, pytest)"
	@echo "make lint  - ruff and mypy only"
	@echo "make e2e   - the browser tests only (Playwright + Debian Chromium); make test runs them too"
	@echo "make bench - every benchmark in bench/, tables printed and written to docs/benchmarks.md"
	@echo "make run-prod-like - gunicorn + worker + scheduler on PostgreSQL with production settings"

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them with: sudo apt-get install$$missing   (see the Makefile for what each is for)"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml agent/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -e ./agent
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: system-deps $(VENV)/.installed node_modules/.installed

migrate: deps
	@mkdir -p var staticfiles
	$(PY) manage.py migrate --noinput -v 0

demo: export CERTDESK_DEMO = true
demo: migrate
	$(PY) manage.py catalog_load_demo
	$(PY) manage.py accounts_make_demo
	$(PY) manage.py pki_init
	$(PY) manage.py tokens_make_demo 3 --prefix 55 --ensure
	$(PY) manage.py tokens_make_demo 1 --prefix 11 --ensure

run: export CERTDESK_DEMO = true
run: demo
	@echo ""
	@echo "  certdesk is starting on http://$(HOST):$(PORT)/"
	@$(PY) manage.py accounts_make_demo --print-only
	@echo "  demo inbox (every SMS / e-mail / WeChat message): http://$(HOST):$(PORT)/demo/inbox/"
	@echo ""
	@trap 'kill 0' EXIT INT TERM; \
	  $(PY) manage.py db_worker --interval 0.5 & \
	  $(PY) manage.py scheduler & \
	  $(PY) manage.py runserver $(HOST):$(PORT) --noreload

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy certdesk config agent/certdesk_agent

# The suite in TEST_WORKERS processes (pytest-xdist; each its own test database): on 2 cores about 40 %
# of a single process's wall time was waiting on commits, subprocesses and servers, which two overlap
# (15 min -> 8 min on a slow machine). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: deps lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

e2e: deps
	$(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules var staticfiles

# --- benchmarks and the production rehearsal (issue #10) ---
# make bench: every benchmark in bench/, tables on the terminal and in docs/benchmarks.md (about 12 min
# on 2 cores; needs the local PostgreSQL). BENCH_ARGS=--quick checks the machinery in a few minutes.
BENCH_ARGS ?=

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install -q -r bench/requirements.txt
	@touch $@

bench: deps $(VENV)/.bench-installed $(VENV)/.prod-installed
	$(PY) bench/run.py $(BENCH_ARGS)

# make run-prod-like: gunicorn + db_worker + scheduler with production settings on the local
# PostgreSQL (database certdesk_prodlike) and Redis; see deploy/run-prod-like.sh and docs/deployment.md.
$(VENV)/.prod-installed: deploy/requirements-prod.txt $(VENV)/.installed
	$(PY) -m pip install -q -r deploy/requirements-prod.txt
	@touch $@

.PHONY: run-prod-like
run-prod-like: deps $(VENV)/.prod-installed
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) deploy/run-prod-like.sh
