# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make report     every experiment's quick preset and report/REPORT.md with all their tables and figures
#   make test       runs the test suite on the real data
# and, for every table of the README:
#   make results    the quick report into results/quick/, then every experiment's cpu preset on both datasets
#                   into results/ (results/REPORT.md; hours on 2 CPU cores)
#   make results-gpu  every gpu preset into results/*-gpu/ (results/REPORT-gpu.md; needs a GPU)
#   make benchmark  our speed against the peers (PyTorch, scikit-learn, a Flax-style loop), into benchmarks/README.md
# Each is resumable: run it again after a kill and it goes on where it stopped.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MNIST_LINEAR_DATA ?= $(abspath ../shared/data)

.PHONY: report test results results-gpu benchmark
RUN := $(BIN)/python -m experiments

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

report: $(VENV)/installed
	$(RUN).reproduce --preset quick --out report

results: $(VENV)/installed
	$(RUN).reproduce --preset quick --out results/quick
	$(RUN).reproduce --preset cpu --dataset both --out results
	$(RUN).readme README.md

results-gpu: $(VENV)/installed
	$(RUN).reproduce --preset gpu --out results
	$(RUN).readme README.md

# The peers live in their own environment (pyproject's "bench"). PyTorch's CPU build lives on its own index:
# PyPI's torch pulls a CUDA build of several GB. TORCH_INDEX= leaves it out (offline, with a local wheel).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
.venv-bench/installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e '.[bench]' $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	touch $@

benchmark: .venv-bench/installed $(VENV)/installed
	.venv-bench/bin/python -m benchmarks.speed --out benchmarks/README.md
	$(RUN).readme README.md

# The suite twice: rank promotion "raise" catches silent broadcasts in our code; JAX's default
# ("allow") is what users run, and every shape check must hold there too.
test: $(VENV)/installed
	JAX_NUMPY_RANK_PROMOTION=raise $(BIN)/python -m pytest -n 2 --dist loadgroup
	JAX_NUMPY_RANK_PROMOTION=allow $(BIN)/python -m pytest -n 2 --dist loadgroup
