# The README's contract: `make demo` and `make test`. Both bootstrap .venv from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lock.sha256
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline AXOLOTL_DO_NOT_TRACK=1 PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup demo test bench lock clean

setup:
	@bash scripts/setup_venv.sh "$(PYTHON)" "$(VENV)"

demo: setup
	@$(OFFLINE) bash scripts/demo.sh

test: setup
	@$(OFFLINE) $(BIN)/python -m pytest -q

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(OFFLINE) $(BIN)/python $$b || exit 1; done

lock:
	@bash scripts/lock.sh "$(PYTHON)"

clean:
	rm -rf $(VENV) runs data/prepared data/models
