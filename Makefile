# Two commands do all the set-up: `make demo` and `make test` (both create .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo reads the staged XNLI files when they sit beside the checkout, else synthetic data.
DEMO_DATA ?= $(wildcard ../shared/data)
# pip's default torch build for the machine; TORCH_INDEX=https://download.pytorch.org/whl/cpu
# picks the small CPU-only wheel.
TORCH_INDEX ?=

.PHONY: demo test lint clean

$(BIN)/mpt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/mpt
	MPT_DATA_DIR=$(DEMO_DATA) $(BIN)/mpt run --method mpt --shots 4 --preset smoke

test: $(BIN)/mpt lint
	$(BIN)/pytest -q

lint: $(BIN)/mpt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
