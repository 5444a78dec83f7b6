# The README's contract: `make demo`, `make test` and `make test-local`. All bootstrap .venv from requirements.lock;
# demo and test-local also build llama.cpp once (scripts/build_llama_cpp.sh, cached under .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lock.sha256
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline AXOLOTL_DO_NOT_TRACK=1 PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup llama-cpp demo test test-local bench lock clean

setup:
	@bash scripts/setup_venv.sh "$(PYTHON)" "$(VENV)"

llama-cpp: setup
	@bash scripts/build_llama_cpp.sh "$(VENV)"

demo: llama-cpp
	@$(OFFLINE) bash scripts/demo.sh

test: setup
	@$(OFFLINE) $(BIN)/python -m pytest -q --ignore=tests/test_export.py

# The llama.cpp / Ollama / vLLM export tests: apart from `make test` because a cold llama.cpp build adds minutes.
test-local: llama-cpp
	@$(OFFLINE) $(BIN)/python -m pytest -q tests/test_export.py

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(OFFLINE) $(BIN)/python $$b || exit 1; done

lock:
	@bash scripts/lock.sh "$(PYTHON)"

clean:
	rm -rf $(VENV) runs data/prepared data/models
