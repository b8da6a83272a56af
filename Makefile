# The two commands a user needs: `make run` and `make test`. Both install what is missing first:
# a .venv from requirements*.txt, Azurite from package-lock.json, local.settings.json from the sample.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
# The indexing check runs the real Python worker's indexer, which needs Python 3.13 or newer.
INDEX_VENV := .venv-index
INDEX_PYTHON ?= $(shell for p in python3.14 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[3-9]*/bin/python3) \
	/usr/local/bin/python3.13 /usr/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; break; }; \
	done)

.PHONY: run demo demo-sentry test soak fuzz bench lint fmt clean help
.DEFAULT_GOAL := help

help:
	@echo "make run    serve the app on http://127.0.0.1:7071 with Azurite (Ctrl-C stops both)"
	@echo "make demo   a guided walkthrough: one Azure DevOps change synced to a tracked issue (simulated ADO)"
	@echo "make demo-sentry  the Sentry App's loop: a Sentry issue creates a work item, both follow each other"
	@echo "make test   lint, check indexing and run the whole test suite (Azurite included)"
	@echo "           inner loop: .venv/bin/python -m pytest -m \"not slow\" (no end-to-end processes)"
	@echo "make soak   the soak under faults alone, printing what it did and how long it took to settle"
	@echo "make fuzz   the property and fuzz tests with 20x the cases (FUZZ_SCALE)"
	@echo "make bench  measure against the physical floor and write docs/benchmarks.md"
	@echo "make lint   ruff check and format check"

$(STAMPS):
	@mkdir -p $(STAMPS)

$(STAMPS)/venv: requirements.txt requirements-dev.txt | $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(STAMPS)/node: package.json package-lock.json | $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/index-venv: requirements.txt requirements-index.txt | $(STAMPS)
	@if [ -n "$(INDEX_PYTHON)" ]; then \
		{ test -x $(INDEX_VENV)/bin/python || "$(INDEX_PYTHON)" -m venv $(INDEX_VENV); } && \
		$(INDEX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-index.txt; \
	else echo "No Python 3.13+ found: the indexing check will be skipped."; fi
	@touch $@

# The browser tests (tests/test_pages_*.py) drive Debian's Chromium with Selenium. Installed through apt when
# missing and this is root; elsewhere those tests are skipped with a loud message, never silently passed.
$(STAMPS)/browser: | $(STAMPS)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium and chromium-driver for the browser tests ..."; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; } \
		|| echo "WARNING: apt could not install chromium: the browser tests will be SKIPPED."; \
	else echo "WARNING: chromium/chromedriver missing and apt unavailable (not root): the browser tests will be SKIPPED."; fi
	@touch $@

local.settings.json:
	cp local.settings.sample.json $@

run: $(STAMPS)/venv $(STAMPS)/node local.settings.json
	$(PY) -m devhost --azurite

# In-memory Azurite on free ports and a simulated Azure DevOps: needs no local.settings.json, keeps .azurite/ as is.
demo: $(STAMPS)/venv $(STAMPS)/node
	$(PY) -m demo

demo-sentry: $(STAMPS)/venv $(STAMPS)/node
	$(PY) -m demo.sentry

lint: $(STAMPS)/venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: $(STAMPS)/venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: $(STAMPS)/venv $(STAMPS)/node $(STAMPS)/index-venv $(STAMPS)/browser lint
	INDEX_CHECK_PYTHON="$(if $(INDEX_PYTHON),$(CURDIR)/$(INDEX_VENV)/bin/python)" $(PY) -m pytest $(PYTEST_ARGS)

# Also part of `make test` (about 40 s alone); here alone, with its report printed.
soak: $(STAMPS)/venv $(STAMPS)/node
	$(PY) -m pytest -s -m soak tests/test_soak.py $(PYTEST_ARGS)

fuzz: $(STAMPS)/venv $(STAMPS)/node
	FUZZ_SCALE=$${FUZZ_SCALE:-20} $(PY) -m pytest tests/test_fuzz_admin.py tests/test_fuzz_sentry.py tests/test_sentry_webhook.py tests/test_sentry_ui_requests.py tests/test_webhook.py tests/test_delivery.py tests/test_sync_rules.py $(PYTEST_ARGS)

bench: $(STAMPS)/venv $(STAMPS)/node
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(INDEX_VENV) node_modules $(STAMPS) .azurite .pytest_cache .ruff_cache .hypothesis
