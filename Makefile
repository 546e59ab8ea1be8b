# Two commands do all set-up: `make audit` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: audit test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

audit: $(STAMP)  ## audit seeds/ into reports/
	$(BIN)/scrape-audit run seeds/ --out reports/ --force

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(BIN)/ruff check audit tests bench
	$(BIN)/ruff format --check audit tests bench
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) reports/*.jsonl reports/*.json reports/*.md reports/*.html
