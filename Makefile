# `make demo`: environment + install + the main job.  `make test`: environment + install + tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Corpora and tokenizer files come from $SEMSIM_DATA_DIR when set; otherwise semsim uses the GPT-2
# tokenizer and Tiny Shakespeare shipped inside the package, so no network is needed.
export SEMSIM_CACHE_DIR ?= $(abspath .cache/corpora)

.PHONY: demo test install clean

$(BIN)/semsim: pyproject.toml requirements/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/cpu.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/semsim

demo: install
	$(BIN)/semsim train --preset demo --out runs/demo --force
	$(BIN)/semsim eval runs/demo
	$(BIN)/semsim generate runs/demo --prompt "ROMEO:" --max-new-tokens 80 --top-k 50
	@echo "loss curve: runs/demo/loss_curve.png"

test: install
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) runs .cache
