# groklab — the two commands: `make demo` and `make test`.
# The one place torch is pinned: a CPU build of this version lies on this machine's disk.
TORCH_PIN ?= torch==2.13.0
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[test,ray]"
	touch $(STAMP)

demo: install
	rm -rf runs/demo
	$(BIN)/groklab train --preset demo --runs-dir runs --name demo
	$(BIN)/groklab plot runs/demo --member 0 -o runs/demo/curves.png
	@echo "figure: runs/demo/curves.png (the README's docs/demo.png is this figure, copied there by hand)"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_fast_path.py
	$(BIN)/python benchmarks/bench_ensemble.py

clean:
	rm -rf $(VENV) runs
