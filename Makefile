# Everything a fresh Debian machine with Python 3.11 needs, from package registries only.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages the tests call: openssl (signature recipe). Installed only when missing.
deb-deps:
	@command -v openssl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openssl; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq openssl; fi; }

demo: $(STAMP)
	$(BIN)/archiver demo

test: $(STAMP) deb-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check archiver store tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_memory.py

clean:
	rm -rf $(VENV) build *.egg-info
