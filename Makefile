# Two commands do all the set-up: `make quickstart` and `make test` create .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edgekit-installed
PYTHON ?= python3

.PHONY: quickstart test test-all lint docs site bench smoke-wheel clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0   # CPU build first: an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/edgekit run recipes/quickstart.yaml

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n 2 --durations=10

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=10

lint: $(STAMP)
	$(VENV)/bin/ruff check edgekit tests benchmarks tools
	$(VENV)/bin/basedpyright   # basic type checking of passes, export, runtimes and bench ([tool.pyright])

docs: $(STAMP)   # regenerate docs/recipe-reference.md and tests/README.md from the code
	$(PY) tools/gen_docs.py

site: docs   # the static docs site (mkdocs-material, installed on first use) in build/site
	$(PY) -m pip install -q mkdocs-material
	$(VENV)/bin/mkdocs build

bench: $(STAMP)
	$(PY) benchmarks/int8_vs_fp32.py

smoke-wheel:   # the wheel, installed with no extras in a fresh venv, used from an empty folder (needs PyPI)
	.ci/smoke-wheel

clean:
	rm -rf runs .pytest_cache build dist
