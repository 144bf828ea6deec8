# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make baseline   trains the tuned linear baseline (10 seeds) and writes results/baseline*/
#   make test       runs the test suite on the real data
# and, for every table of the README (about two hours on 2 CPU cores):
#   make results    runs every experiment's cpu preset into results/<name>/
#   make results-gpu  every experiment's gpu preset into results/<name>-gpu/ (needs a GPU)
#   make benchmark  our speed against the peers (PyTorch, scikit-learn, a Flax-style loop), into benchmarks/README.md
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MNIST_LINEAR_DATA ?= $(abspath ../shared/data)

.PHONY: baseline test results results-gpu benchmark
RUN := $(BIN)/python -m experiments

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

baseline: $(VENV)/installed
	$(RUN).baseline --out results/baseline --preset cpu
	$(RUN).baseline --out results/baseline-fashion --preset cpu --dataset fashion_mnist
	$(RUN).readme README.md

results: baseline
	$(RUN).baseline --out results/baseline-bf16 --preset cpu --compute-dtype bfloat16
	$(RUN).translation --out results/translation --preset cpu
	$(RUN).translation --out results/translation-fashion --preset cpu --dataset fashion_mnist
	$(RUN).ladder --out results/ladder --preset cpu
	$(RUN).locality --out results/locality --preset cpu
	$(RUN).locality --out results/locality-fashion --preset cpu --dataset fashion_mnist
	$(RUN).templates --out results/templates --preset cpu
	$(RUN).resolution --out results/resolution --preset cpu
	$(RUN).spatial --out results/spatial --preset cpu
	$(RUN).spatial --out results/spatial-fashion --preset cpu --dataset fashion_mnist
	$(RUN).regression --out results/regression --preset cpu
	$(RUN).regression --out results/regression-fashion --preset cpu --dataset fashion_mnist --problems keypoint quality
	$(RUN).readme README.md

results-gpu: $(VENV)/installed
	$(RUN).ladder --out results/ladder-gpu --preset gpu
	$(RUN).translation --out results/translation-gpu --preset gpu
	$(RUN).resolution --out results/resolution-gpu --preset gpu
	$(RUN).spatial --out results/spatial-gpu --preset gpu
	$(RUN).readme README.md

# The peers live in their own environment (pyproject's "bench"). PyTorch's CPU build lives on its own index:
# PyPI's torch pulls a CUDA build of several GB. TORCH_INDEX= leaves it out (offline, with a local wheel).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
.venv-bench/installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e '.[bench]' $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	touch $@

benchmark: .venv-bench/installed
	.venv-bench/bin/python -m benchmarks.speed --out benchmarks/README.md
	$(RUN).readme README.md

# The suite twice: rank promotion "raise" catches silent broadcasts in our code; JAX's default
# ("allow") is what users run, and every shape check must hold there too.
test: $(VENV)/installed
	JAX_NUMPY_RANK_PROMOTION=raise $(BIN)/python -m pytest -n 2 --dist loadgroup
	JAX_NUMPY_RANK_PROMOTION=allow $(BIN)/python -m pytest -n 2 --dist loadgroup
