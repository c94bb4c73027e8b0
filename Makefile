# One command per job. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help setup lab test lint bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv with tinytorch and the pinned course, test and oracle packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,course,oracle]'
	touch $@

# Containers often run as root, which JupyterLab refuses without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup  ## open the course in JupyterLab (the student's view)
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/

test: setup lint  ## run every test (lint, unit, integration, audit, property, benchmark smoke)
	$(PY) -m pytest

lint: setup  ## ruff over the whole repository
	$(PY) -m ruff check .

bench: setup  ## time a 784-256-10 MLP training step: tinytorch vs numpy vs PyTorch
	$(PY) -m benchmarks.train_step

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis benchmarks/results
