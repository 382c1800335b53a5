# Two commands for a newcomer: `make demo` (main job on embedded data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-output

.PHONY: venv demo test lint docs clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/concretelab demo --out $(DEMO_OUT)

test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -q
	$(VENV)/bin/ruff check src tests benchmarks scripts examples

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks scripts examples

clean:
	rm -rf $(VENV) $(DEMO_OUT) site
