# Two commands set everything up on a fresh Debian/Python 3.11 machine:
#   make demo   - create .venv, install the pinned set, train + build + verify tfc-w1a1
#   make test   - same install, then the default test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.bnnflow-installed
DEMO   ?= build/demo
# the held-out MNIST test set, when present, gives the demo's final accuracy figure
TEST_DATA ?= $(wildcard ../shared/data/mnist-t10k)
PYTEST_ARGS ?=
# test workers (pytest-xdist; one file per worker keeps module fixtures built once); 0 = one process
JOBS ?= auto

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

# Re-installs only when the pinned set or the package metadata changed.
# hls4ml is installed without its dependencies: only its ap_fixed headers are used (tests).
$(STAMP): requirements.lock pyproject.toml setup.py Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps hls4ml==1.3.0
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

demo: install
	$(VENV)/bin/bnnflow models
	$(VENV)/bin/bnnflow train tfc-w1a1 --out $(DEMO)/train
	$(VENV)/bin/bnnflow build $(DEMO)/train/best.pt --out $(DEMO)/tfc-w1a1 --verify-images 1000 \
		$(if $(TEST_DATA),--test-data $(TEST_DATA))
	@echo "demo report: $(DEMO)/tfc-w1a1/report.json"

test: install
	$(PY) -m pytest -q -m "not slow" -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/bench_engines.py

clean:
	rm -rf build .pytest_cache
