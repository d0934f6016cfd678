# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build that lies on this project's machines; asking
# for it first keeps pip from ever resolving a (multi-GB) CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
# ray (runner="ray") is ~250 MB and 13 s to install: the suite and the benchmarks
# get it, the demo does not need it.
RAY_STAMP := $(VENV)/.installed-ray
PACKAGES := -e '.[test,plot,docs]' $(patsubst %/pyproject.toml,-e %,$(wildcard plugins/*/pyproject.toml examples/*/pyproject.toml))

.PHONY: install demo test bench docs clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH) $(PACKAGES)
	touch $@

$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH) -e '.[ray]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/grafx-core demo $(ARGS)

test: $(RAY_STAMP)
	$(PY) -m pytest -q $(ARGS)

docs: $(STAMP)
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

bench: $(RAY_STAMP)
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build docs/_build
