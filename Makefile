# Every target creates .venv and installs what it needs, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/troth demo

lint: $(STAMP)
	$(BIN)/ruff check troth tests bench
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not bench" -q

bench: $(STAMP)
	$(BIN)/python -m pytest -m bench -q -s bench

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
