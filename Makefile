# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make baseline   trains the tuned linear baseline (10 seeds) and writes results/baseline/
#   make test       runs the test suite on the real data
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MNIST_LINEAR_DATA ?= $(abspath ../shared/data)
export JAX_NUMPY_RANK_PROMOTION := raise

.PHONY: baseline test

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

baseline: $(VENV)/installed
	$(BIN)/python -m experiments.baseline --out results/baseline
	$(BIN)/python -m experiments.baseline --out results/baseline-fashion --dataset fashion_mnist
	$(BIN)/python -m experiments.readme README.md

test: $(VENV)/installed
	$(BIN)/python -m pytest -n 2
