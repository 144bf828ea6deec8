# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make baseline   trains the tuned linear baseline (10 seeds) and writes results/baseline*/
#   make test       runs the test suite on the real data
# and, for every table of the README (about an hour on 2 CPU cores):
#   make results    runs every experiment with its CPU defaults into results/<name>/
#   make results-gpu  the bigger settings of the GPU runs into results/<name>-gpu/
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MNIST_LINEAR_DATA ?= $(abspath ../shared/data)
export JAX_NUMPY_RANK_PROMOTION := raise

.PHONY: baseline test results results-gpu
RUN := $(BIN)/python -m experiments

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

baseline: $(VENV)/installed
	$(RUN).baseline --out results/baseline
	$(RUN).baseline --out results/baseline-fashion --dataset fashion_mnist
	$(RUN).readme README.md

results: baseline
	$(RUN).translation --out results/translation
	$(RUN).ladder --out results/ladder
	$(RUN).locality --out results/locality
	$(RUN).templates --out results/templates
	$(RUN).resolution --out results/resolution
	$(RUN).readme README.md

results-gpu: $(VENV)/installed
	$(RUN).ladder --out results/ladder-gpu --seeds 10 --epochs 15 --large-widths 32 64 --large-hidden 256
	$(RUN).translation --out results/translation-gpu --cnn-seeds 10 --cnn-epochs 10 --matrix-cnn-seeds 5 \
		--cnn-eval-batch-size 200 --cnn-offsets-at-once 3
	$(RUN).resolution --out results/resolution-gpu --seeds 5 --epochs 5 --train-examples 0 \
		--num-validation 10000 --cnn-widths 16 32 64
	$(RUN).readme README.md

test: $(VENV)/installed
	$(BIN)/python -m pytest -n 2
