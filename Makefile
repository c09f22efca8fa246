# kdfair: `make demo` and `make test` do all set-up on a fresh machine (kdfair with every
# extra, editable, into .venv; a user's own install needs only `pip install kdfair`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Exact pins for this project's machines (they install from local disk); pyproject keeps ranges.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-all bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e ".[all]" $(TORCH_PINS)
	touch $(STAMP)

# The embedded default (experiment/demo.yaml) over three seeds (mean +- std needs more than
# one), then its report: outputs/demo/analysis/report.md.
demo: install
	$(BIN)/kdfair train -m seed=0,1,2
	$(BIN)/kdfair analyze $${KDFAIR_OUTPUTS:-outputs}/demo

# The real RedditBias CSVs for the tests that read them (skipped where the folder is absent).
test test-all: export KDFAIR_REDDITBIAS ?= $(abspath ../shared/data/redditbias)

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/analyze.py

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) outputs
