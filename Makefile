# The course in a few commands. `make help` lists them.
#   make book   - set up .venv if needed, execute every chapter (quick profile), build the HTML book
#   make test   - unit tests (with the clean-notebook check), then the book built with warnings as errors: it
#                 executes every chapter once (quick profile) and fails on any cell that raises
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTER ?= ch00
PROFILE ?= quick
export PYTHONHASHSEED := 0
# Progress bars help in a terminal or JupyterLab; in the static book they would be empty boxes.
book book-check nbval: export RLCOURSE_PROGRESS := 0

.PHONY: help setup test unit nbval book book-check lab run clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  make run CHAPTER=ch01 PROFILE=full   execute one chapter headless (papermill)"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@bash scripts/sysdeps.sh
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required (3.11 recommended)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)
	@echo "environment ready: $(VENV) ($$($(BIN)/python --version))"

setup: $(STAMP) ## create .venv and install the pinned requirements (other targets do this for you)

unit: $(STAMP) ## pytest on rlcourse (includes the no-outputs-in-notebooks check)
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 tests

nbval: $(STAMP) ## execute every chapter notebook with nbval (quick profile; make test covers it through the book)
	$(BIN)/pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 notebooks

book-check: $(STAMP) ## execute every chapter once, build the book with warnings as errors, open every page offline
	$(BIN)/jupyter-book build . --warningiserror --keep-going --quiet
	$(BIN)/python scripts/check_book.py _build/html
	@echo "book OK: $(CURDIR)/_build/html/index.html"

test: unit book-check ## everything CI runs (each notebook is executed once, by the book build)
	@echo "make test: all checks passed"

book: $(STAMP) ## execute the chapters (quick profile) and build the HTML book into _build/html
	$(BIN)/jupyter-book build . --quiet
	@echo ""
	@echo "The book is ready: open file://$(CURDIR)/_build/html/index.html"

# Extra options for `make lab`, e.g. LAB_ARGS="--no-browser --port=8899" (tests/test_lab.py starts it this way).
LAB_ARGS ?=
lab: $(STAMP) ## start JupyterLab (token authentication stays on; open the URL it prints)
	$(BIN)/jupyter lab --ServerApp.root_dir='$(subst ','\'',$(CURDIR))' $(LAB_ARGS)

run: $(STAMP) ## execute CHAPTER in PROFILE headless, e.g. make run CHAPTER=ch01 PROFILE=full
	$(BIN)/rlcourse run $(CHAPTER) --profile $(PROFILE)

clean: ## remove build output and scratch runs (keeps .venv and checkpoints/)
	rm -rf _build runs .pytest_cache

distclean: clean ## also remove the virtual environment
	rm -rf $(VENV)
