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
# Debian packages the plugins' tests and the demo use: the LV2 host library and plug-ins (grafx-lv2),
# and recorded instruments for test material. Installed by `make system-packages` when root.
APT_PACKAGES ?= liblilv-0-0 lsp-plugins-lv2 x42-plugins calf-plugins dpf-plugins-lv2 \
	fluidsynth fluid-soundfont-gm hydrogen-drumkits

.PHONY: install system-packages demo test test-fast lint bench docs clean

# apt-get only as root and only when a package is missing (`dpkg -s` is silent then); a
# no-op elsewhere, where the tests needing the packages skip with a one-line reason.
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH) $(PACKAGES)
	touch $@

$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH) -e '.[ray]'
	touch $@

install: $(STAMP)

# --force: the demo replaces its own earlier results in its output folder.
demo: system-packages $(STAMP)
	$(VENV)/bin/grafx-core demo --force $(ARGS)

# The linter and the type checker first (configured in pyproject.toml), then the suite.
lint: $(STAMP)
	$(VENV)/bin/ruff check grafx_core plugins tests bench examples docs
	$(VENV)/bin/mypy

test: system-packages $(RAY_STAMP) lint
	$(PY) -m pytest -q $(ARGS)

# Everything but the tests marked slow (each over ~10 s on 2 cores): under 2 minutes on 2 cores.
test-fast: system-packages $(RAY_STAMP) lint
	$(PY) -m pytest -q -m "not slow" $(ARGS)

docs: $(STAMP)
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

bench: $(RAY_STAMP)
	for f in bench/[!_]*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build docs/_build
