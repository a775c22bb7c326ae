# Quick start: `make demo` trains the default model, `make test` lints and runs the test suite.
# Both create .venv and install into it. constraints.txt keeps pip on the torch build that is
# already on disk here; drop `-c constraints.txt` to let pip pick any torch.
PYTHON ?= python3
VENV ?= .venv
PIP_FLAGS ?= -c constraints.txt
# The datasets folder beside a clone of the repository (as CI has it). Without it, and without a
# TLEARN_DATA_DIR of your own, tlearn uses its user data directory (downloading MNIST when online).
SHARED_DATA := $(abspath $(wildcard ../shared/datasets))
ifneq ($(SHARED_DATA),)
TLEARN_DATA_DIR ?= $(SHARED_DATA)
export TLEARN_DATA_DIR
endif
# The benchmark scripts, in the order `make bench` runs them (each writes benchmarks/results/<name>.json).
BENCHMARKS := bench_cache bench_overhead bench_compute bench_step bench_memory bench_seed000 bench_curves bench_recipes bench_budget bench_photos bench_suite bench_serve

.PHONY: install demo test lint format bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(PIP_FLAGS) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/tlearn train

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks examples
	$(VENV)/bin/ruff format src tests benchmarks examples

test: lint
	$(VENV)/bin/python -m pytest -q

bench: install
	$(VENV)/bin/python -m pip install -q -r benchmarks/requirements.txt
	@for name in $(BENCHMARKS); do echo "== $$name"; $(VENV)/bin/python benchmarks/$$name.py || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
