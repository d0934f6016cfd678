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
# recorded instruments for test material, and Ardour 7 with its plug-ins (grafx-ardour's round trip).
# Installed by `make system-packages` when root.
APT_PACKAGES ?= liblilv-0-0 lsp-plugins-lv2 x42-plugins calf-plugins dpf-plugins-lv2 \
	fluidsynth fluid-soundfont-gm hydrogen-drumkits gcc libc6-dev ardour ardour-lv2-plugins

.PHONY: install system-packages demo test bench docs clean gpu-wheels gpu-check

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

test: system-packages $(RAY_STAMP)
	$(PY) -m pytest -q $(ARGS)

# The prepared command for a CUDA machine (bench/gpu_check.py). Such a machine usually has a CUDA
# torch in its own python3 and no package index: `make gpu-wheels` (here, with the index) saves the
# few wheels it lacks into $(GPU_WHEELS); `make gpu-check` there installs grafx-core over the system
# torch from that folder, offline, and measures. Without CUDA it runs the CPU dry run in .venv.
GPU_PYTHON ?= python3
GPU_WHEELS ?= .gpu-wheels
GPU_VENV ?= .venv-gpu
GPU_PY_VERSION ?= 3.12
gpu-wheels:
	$(PYTHON) -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version $(GPU_PY_VERSION) --implementation cp --platform manylinux_2_28_x86_64 \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d $(GPU_WHEELS) pluggy pedalboard

gpu-check:
	@if $(GPU_PYTHON) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then \
		$(GPU_PYTHON) -m venv --system-site-packages $(GPU_VENV) && \
		$(GPU_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-index --no-deps \
			--no-build-isolation --find-links $(GPU_WHEELS) pluggy pedalboard \
			-e . -e plugins/grafx-dsp -e plugins/grafx-pedalboard && \
		$(GPU_VENV)/bin/python bench/gpu_check.py --out gpu-check-output $(ARGS); \
	else \
		$(MAKE) --no-print-directory install && $(PY) bench/gpu_check.py --out gpu-check-output $(ARGS); \
	fi

docs: $(STAMP)
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

bench: $(RAY_STAMP)
	for f in bench/[!_]*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build docs/_build
