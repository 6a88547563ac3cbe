# desksim: `make run` and `make test` work on a fresh machine with Python 3.11 and nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/desksim run scenarios/baseline.yaml --seed 7 --out runs/baseline --force
	@echo "report: $(CURDIR)/runs/baseline/report.html (and summary.json, *.parquet, *.png in that folder)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy desksim scenarios fix actors sim
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_book.py
	$(BIN)/python benchmarks/bench_run.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
