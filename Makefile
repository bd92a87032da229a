# Two entry points: `make demo` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.orchnb-installed
TEST_STAMP := $(VENV)/.orchnb-test-installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e . ipykernel nbclient nbconvert nbformat
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml scripts/setup_test_env.sh
	bash scripts/setup_test_env.sh $(PY)
	touch $@

demo: $(STAMP)
	$(PY) scripts/run_notebook.py notebooks/quickstart.ipynb

test: $(TEST_STAMP)
	$(PY) -m pytest -m "" --basetemp=.pytest-tmp -p no:cacheprovider --durations=30

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -m "not slow" --basetemp=.pytest-tmp -p no:cacheprovider

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check orchnb tests benchmarks

bench: $(TEST_STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest-tmp notebooks/_executed notebooks/.orchnb
