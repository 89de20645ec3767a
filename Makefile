# Cloud PACS — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
DEB_PACKAGES := dcmtk chromium fonts-noto-cjk python3-venv
export PACS_DATA_DIR ?= $(CURDIR)/instance

.PHONY: run test bench install system-deps translations db demo clean

run: install db demo  ## install, migrate, load the demo, start web + DICOM node (+ render workers)
	$(FLASK) pacs serve

test: install $(VENV)/.test-deps  ## install test dependencies and run the whole suite
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install $(VENV)/.test-deps  ## run the benchmarks and print their figures
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

install: system-deps $(VENV)/.deps translations

system-deps:  ## Debian packages the project needs (dcmtk peers, Chromium, CJK fonts)
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

$(VENV)/.deps: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

translations: $(VENV)/.deps
	@if [ -d app/translations ]; then $(BIN)/pybabel compile -d app/translations; fi

db: install
	$(FLASK) db upgrade

demo: db
	$(FLASK) pacs load-demo

clean:
	rm -rf $(VENV) .pytest_cache
