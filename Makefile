# softgrad — two commands on a fresh machine: `make demo` and `make test`.
#
# Both use one virtual environment, .venv, with the exact versions of
# requirements/constraints.txt. `make demo` installs only what `softgrad train`
# needs (the `cli` extra: scikit-learn, SciPy, click, rich; no numba, matplotlib
# or SymPy); `make test` adds every extra (explain, numba, PyTorch 2.13 CPU, JAX,
# Dask) and the development tools.
PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
# --no-compile: Python compiles what a program imports on first use, not all of
# SciPy and SymPy up front (that was most of a fresh `make demo`)
PIP         := $(PY) -m pip install -qq --no-compile -c $(CONSTRAINTS)
DEMO_STAMP  := $(VENV)/.demo-installed
DEV_STAMP   := $(VENV)/.dev-installed

.PHONY: demo test lint typecheck bench clean venv

# The venv is made without pip, then given one: by the interpreter's own pip
# (>= 22.3 installs into another environment with --python) when it has one,
# else by ensurepip. `python -m venv` alone runs ensurepip, which byte-compiles
# all of pip: 15 of a fresh `make demo`'s seconds here.
$(PY):
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install -qq --no-compile pip 2>/dev/null \
	  || $(PY) -m ensurepip --default-pip >/dev/null \
	  || { rm -rf $(VENV); exit 1; }

$(DEMO_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) -e ".[cli]"
	touch $@

# pip >= 25.1 reads the dependency groups of pyproject.toml (--group dev)
$(DEV_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install -qq "pip>=25.1"
	$(PIP) -e ".[all]" --group dev
	touch $@ $(DEMO_STAMP)

venv: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/softgrad train

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy src/softgrad

test: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(DEV_STAMP)
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
