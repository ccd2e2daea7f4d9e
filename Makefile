# Every target creates .venv and installs what it needs, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium

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

# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
# Installing it needs apt-get, root and the Debian mirror; when that fails the build goes on and
# the browser tests are skipped with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 \
	  || (export DEBIAN_FRONTEND=noninteractive; \
	      timeout 900 apt-get update -qq \
	      && timeout 900 apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	  || echo "WARNING: could not install chromium (needs apt-get, root and network):" \
	          "the browser tests will be skipped" >&2

test: $(STAMP) lint chromium
	$(BIN)/python -m pytest -m "not bench" -q

bench: $(STAMP)
	$(BIN)/python -m pytest -m bench -q -s bench

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
