# One-command entry points.
#   make demo   install what is missing, start Label Studio + the backend, import a noisy MNIST
#               sample, train, print the URL and login (Ctrl-C stops everything)
#   make test   the test suite (end-to-end tests need .venv-ls: make ls-venv)
#   make fashion  Fashion-MNIST (Debian package dataset-fashion-mnist) for --source fashion and the benchmark
#   make benchmark-dev  the benchmark's development draw (6 scenarios; see scripts/benchmark.py)
#   make screenshots  the browser test (tests/browser) writing the README's pictures to docs/img
PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-ls
LS_VERSION := 1.23.2
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test venv ls-venv fashion benchmark-dev screenshots
FASHION_DIR := /usr/share/datasets/fashion-mnist

venv: $(VENV)/.installed

# Rebuilt when the requirements change; pip leaves satisfied packages alone.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q $(TORCH)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# Label Studio lives in a virtualenv of its own: its pins clash with ours.
ls-venv: $(LS_VENV)/.installed

$(LS_VENV)/.installed:
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --disable-pip-version-check -q label-studio==$(LS_VERSION)
	touch $@

demo: venv ls-venv
	$(VENV)/bin/python scripts/demo.py

test: venv fashion
	$(VENV)/bin/python -m pytest

# Installed with apt-get when its idx files are missing (through sudo when not root).
fashion:
	@test -e $(FASHION_DIR)/train-images-idx3-ubyte.gz || test -e $(FASHION_DIR)/train-images-idx3-ubyte || \
	  { $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -q && \
	    $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -q dataset-fashion-mnist; }

benchmark-dev: venv fashion
	nice -n 15 $(VENV)/bin/python scripts/benchmark.py --draw dev --count 6

# Needs Debian's chromium and chromium-driver (.ci/run installs them).
screenshots: venv ls-venv
	SCREENSHOT_DIR=docs/img $(VENV)/bin/python -m pytest tests/browser -q
