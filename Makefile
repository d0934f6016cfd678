# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build that lies on this project's machines; asking
# for it first keeps pip from ever resolving a (multi-GB) CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
PACKAGES := -e '.[test,plot,docs]' $(patsubst %/pyproject.toml,-e %,$(wildcard plugins/*/pyproject.toml examples/*/pyproject.toml))

# Debian packages some tests and examples use (recorded instruments for `grafx-core fit`);
# installed with apt-get only when running as root and missing, skipped quietly otherwise.
APT_PACKAGES := fluidsynth fluid-soundfont-gm hydrogen-drumkits

.PHONY: install system-packages demo test bench docs clean

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then \
		missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
		if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y --no-install-recommends $$missing; fi; \
	fi

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH) $(PACKAGES)
	touch $@

install: $(STAMP)

# --force: the demo replaces its own earlier results in its output folder.
demo: system-packages $(STAMP)
	$(VENV)/bin/grafx-core demo --force $(ARGS)

test: system-packages $(STAMP)
	$(PY) -m pytest -q $(ARGS)

docs: $(STAMP)
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

bench: $(STAMP)
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build docs/_build
