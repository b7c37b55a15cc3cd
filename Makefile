# Two commands: `make train` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS_STAMP := $(VENV)/.extras-stamp
DEV_STAMP := $(VENV)/.dev-stamp
ARGS ?=

.PHONY: train test lint docs install clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m asyncdqn.algo.mlp_kernels  # compile the learner's kernels once (numba's disk cache)
	touch $(STAMP)

# Optional extras (SB3 baseline, Ray, TensorBoard, video): only the tests need them all.
# torch is passed again as a constraint so no extra can swap the CPU build out.
$(EXTRAS_STAMP): $(STAMP) requirements-extras.txt
	$(BIN)/python -m pip install --quiet -r requirements-extras.txt torch==2.13.0
	touch $(EXTRAS_STAMP)

# Development tools (pytest, hypothesis, ruff, mypy): only `make test` and `make lint` need them.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

train: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/asyncdqn train --env LunarLander-v3 $(ARGS)

# Lint and type checks first: a new ruff or mypy finding fails the run before the tests start.
lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: $(EXTRAS_STAMP) $(DEV_STAMP) lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(ARGS)

# Optional: the docs/ pages as a static site in site/ (MkDocs).
docs: $(STAMP) requirements-docs.txt
	$(BIN)/python -m pip install --quiet -r requirements-docs.txt
	$(BIN)/mkdocs build

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
