# Set-up and everyday commands. Every target creates .venv and installs the package
# (with its dev and export extras) from pyproject.toml when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all bench bench-gpu lint format clean

$(STAMP): pyproject.toml setup.py $(wildcard bnn_edge/hardware/packed/csrc/*.[ch])
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,export]'
	touch $(STAMP)

## run: train the default job (ECG, binarized classifier, aug=7) on the embedded synthetic data;
## ARGS="..." adds or replaces options: make run ARGS="trainer.max_epochs=3 seed=7"
ARGS ?=
run: $(STAMP)
	$(BIN)/python -m bnn_edge.train model=ecg binarize=classifier aug=7 $(ARGS)

## test: the default test suite (slow tests excluded), one worker per core
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

## test-all: every test, slow ones included
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m ''

## bench: the benchmark tables of benchmarks/ (roofline, throughput, bit errors, packed engine, ...)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.roofline
	$(BIN)/python -m benchmarks.train_throughput
	$(BIN)/python -m benchmarks.bit_errors
	$(BIN)/python -m benchmarks.eeg
	$(BIN)/python -m benchmarks.mobilenet
	$(BIN)/python -m benchmarks.packed
	$(BIN)/python -m benchmarks.packed_sweep
	$(BIN)/python -m benchmarks.sweeps

## bench-gpu: on a CUDA machine, the GPU-marked tests and the GPU timings (docs/gpu.md)
bench-gpu: $(STAMP)
	PYTHON=$(BIN)/python benchmarks/gpu.sh

lint: $(STAMP)
	$(BIN)/ruff check bnn_edge hydra_plugins tests benchmarks experiments

format: $(STAMP)
	$(BIN)/ruff check --fix bnn_edge hydra_plugins tests benchmarks experiments
	$(BIN)/ruff format bnn_edge tests benchmarks

clean:
	rm -rf logs .pytest_cache .ruff_cache
