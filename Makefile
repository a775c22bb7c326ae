# Quick start: `make demo` trains the default model, `make test` runs the test suite.
# Both create .venv and install into it. constraints.txt keeps pip on the torch build that is
# already on disk here; drop `-c constraints.txt` to let pip pick any torch.
PYTHON ?= python3
VENV ?= .venv
PIP_FLAGS ?= -c constraints.txt
TLEARN_DATA_DIR ?= ../shared/datasets
export TLEARN_DATA_DIR

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(PIP_FLAGS) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/tlearn train

test: install
	$(VENV)/bin/python -m pytest -q

bench: install
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
