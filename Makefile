# Everything a fresh Debian machine with Python 3.11 needs, from package registries only.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pywb (a real replay system) and py-wacz (`wacz validate`) live in their own venv: they pin
# older cryptography/brotli than we use.
PYWB_VENV  := .venv-pywb
PYWB_STAMP := $(PYWB_VENV)/.installed

.PHONY: demo test lint bench bytecode clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

# pip compiles a wheel's modules at install; an editable install leaves ours as source, and where
# PYTHONDONTWRITEBYTECODE is set (as on the machines here) every command would compile them again
# (~60 ms of each start-up). Python ignores a .pyc older than its source, so edits stay live.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q archiver store >/dev/null

$(PYWB_STAMP):
	$(PYTHON) -m venv $(PYWB_VENV)
	$(PYWB_VENV)/bin/pip install --quiet --upgrade pip
	$(PYWB_VENV)/bin/pip install --quiet 'pywb==2.10.0' 'wacz==0.6.0'
	touch $(PYWB_STAMP)

# Debian packages the tests and the demo call: openssl (signature and timestamp recipes, the local
# TSA), poppler-utils (pdftoppm, to look at certificate PDFs) and chromium (browser capture, driven
# by Playwright; never `playwright install`), nodejs and npm (`npm pack replaywebpage`: the real
# ReplayWeb.page replays our bundles in tests/test_replaywebpage.py) and postgresql (the tests start their own throwaway
# server from its binaries: catalog, custody and queue on PostgreSQL), faketime (a local TSA whose clock
# is off, tests/test_timestamp.py), unzip (Info-ZIP's unzip and zipinfo: a second ZIP reader in
# tests/test_hostile_zip.py), go (golang-go: tests/tlogcheck, Go's own sumdb code verifying our transparency
# log, built offline against golang-golang-x-mod-dev's sources, checked by a file it installs). Installed
# only when missing.
DEB_NEEDED = openssl:openssl pdftoppm:poppler-utils pdfsig:poppler-utils pdftotext:poppler-utils chromium:chromium node:nodejs npm:npm faketime:faketime unzip:unzip \
	go:golang-go
DEB_FILES = /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go:golang-golang-x-mod-dev
deb-deps:
	@missing=""; for pair in $(DEB_NEEDED); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	for pair in $(DEB_FILES); do f=$${pair%%:*}; pkg=$${pair##*:}; \
	  [ -e $$f ] || missing="$$missing $$pkg"; done; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi

demo: $(STAMP) deb-deps bytecode
	$(BIN)/archiver demo

test: $(STAMP) $(PYWB_STAMP) deb-deps bytecode
	ARCHIVER_PYWB_BIN=$(CURDIR)/$(PYWB_VENV)/bin $(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check archiver store tests bench
	$(BIN)/mypy

bench: $(STAMP) $(PYWB_STAMP) deb-deps bytecode
	@command -v hyperfine >/dev/null 2>&1 && command -v wget >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq hyperfine wget wrk; }
	$(BIN)/python bench/bench_speed.py
	$(BIN)/python bench/bench_startup.py
	ARCHIVER_PYWB_BIN=$(CURDIR)/$(PYWB_VENV)/bin PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/run.py
	$(BIN)/python bench/bench_browser.py
	$(BIN)/python bench/bench_tlog.py
	$(BIN)/python bench/bench_queue.py
	$(BIN)/python bench/bench_web.py
	$(BIN)/python bench/bench_public.py
	$(BIN)/python bench/bench_web_mixed.py
	$(BIN)/python bench/bench_million.py  # 100,000 records; BENCH_MILLION_RECORDS=1000000 for the goal (~40 min)
	$(BIN)/pip install --quiet -e '.[all,test,bench]'
	$(BIN)/python bench/bench_maintext.py
	$(BIN)/python bench/bench_floor.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_capture_cpu.py

clean:
	rm -rf $(VENV) $(PYWB_VENV) build *.egg-info
