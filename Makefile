# evoforge developer commands. Everything installs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
LOCAL_STAMP := $(VENV)/.installed-local
RUN_BUDGET ?= 1000
RUN_WORKERS ?= 2

.PHONY: run test lint bench clean

# make run needs the package alone (about 20 s to install on a new machine); tests, lint
# and benchmarks also need the dev extras (about 30 s more)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

# The local model for the real-model test, by the documented one step (with torch
# pinned to its CPU build; an unpinned 'pip install torch' would pull a CUDA one).
$(LOCAL_STAMP): $(DEV_STAMP)
	$(BIN)/evoforge install-local --torch torch==2.13.0
	touch $(LOCAL_STAMP)

## run: a short model-free evolution of the built-in bin packing problem, stored in
## ./evoforge.db so that the README's next commands (evoforge status, best) find it.
## --ordered-lag 4: results are used in proposal order, so every make run is the same run
run: $(STAMP)
	cd $(CURDIR) && $(BIN)/evoforge run bin_packing --budget $(RUN_BUDGET) \
		--workers $(RUN_WORKERS) --seed 1 --ordered-lag 4 \
		--run-name make-run-$$(date +%Y%m%d-%H%M%S)

## test: the whole test suite, plus ruff and mypy. The tests run in parallel (pytest-xdist,
## one process per core, at most 4); then the tests marked `alone` (they take the whole
## machine, tests/conftest.py) and the two browser tests, on their own (Playwright keeps
## an event loop running in the process that drives the browser).
test: $(DEV_STAMP) $(LOCAL_STAMP)
	$(BIN)/ruff check evoforge tests bench
	$(BIN)/mypy evoforge
	$(BIN)/pytest -q -n auto --maxprocesses 4 --dist loadgroup -m "not browser and not alone"
	$(BIN)/pytest -q -m alone
	$(BIN)/pytest -q -m browser

## lint: ruff and mypy only
lint: $(DEV_STAMP)
	$(BIN)/ruff check evoforge tests bench
	$(BIN)/mypy evoforge

## bench: throughput, overhead, scaling and search-quality benchmarks; PEERS=1 also runs
## evoforge against OpenEvolve and ShinkaEvolve (bench/peers, about two hours on 2 cores)
PEERS ?=
bench: $(DEV_STAMP)
	$(BIN)/python bench/run_all.py
	$(if $(PEERS),$(BIN)/python bench/peers/install.py && nice -n 10 $(BIN)/python bench/peers/run.py)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
