# The two commands of the README:
#   make book   builds the whole book on the offline default model (creates .venv and installs what it needs)
#   make test   runs the test suite in the same environment
# Other targets: make env (environment only), make lab (JupyterLab with the jupytext pairs), make bench (the rates
# behind the build's budget, a few minutes), make bench-all (every benchmark), make clean.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test env lab bench bench-all browser clean

book: $(STAMP)
	$(BIN)/python -m bookbuild build

# The tests run in one worker per core (pytest-xdist), a test file's tests together: test_book.py, which executes
# every chapter on tiny parameters, is the longest file, and the other files run beside it.
test: $(STAMP) browser
	$(BIN)/python -m pytest -n auto --dist loadfile

env: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Headless Chromium for the browser test of the built book (Debian's package; the test drives it over the DevTools
# protocol, so no driver is needed). Installed only where it is missing.
browser:
	@command -v chromium >/dev/null || { \
		echo "installing chromium for the browser test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# JupyterLab opens the chapters' .py files as notebooks (jupytext's viewer), a setting kept inside the environment
LAB_OVERRIDES := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json

lab: $(STAMP)
	$(BIN)/jupytext-config --settings-file $(LAB_OVERRIDES) set-default-viewer python
	$(BIN)/jupyter lab book/

# make bench: the rates behind the build's budget (a few minutes); make bench-all: every benchmark script (longer)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_budget.py

bench-all: $(STAMP)
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build
