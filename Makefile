# groklab — the two commands: `make demo` and `make test`.
# The one place torch is pinned: a CPU build of this version lies on this machine's disk.
TORCH_PIN ?= torch==2.13.0
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed

.PHONY: install chromium demo test bench clean

install: $(STAMP)

# compileall: bytecode for the editable sources, written here once; a shell with
# PYTHONDONTWRITEBYTECODE would otherwise compile cli.py and config.py at every start
# (40 ms of a 0.3 s --help).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[test,ray]"
	$(BIN)/python -m compileall -q src >/dev/null
	touch $(STAMP)

demo: install
	rm -rf runs/demo
	$(BIN)/groklab train --preset demo --runs-dir runs --name demo
	$(BIN)/groklab plot runs/demo --member 0 -o runs/demo/curves.png
	@echo "figure: runs/demo/curves.png (the README's docs/demo.png is this figure, copied there by hand)"

# The browser tests (tests/integration/test_report_browser.py) drive Debian's Chromium; they
# skip, saying why, only where it cannot be installed (not root, no apt-get, no registry).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing Debian's chromium for the browser tests"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	        echo "chromium: apt-get failed; the browser tests will skip"; \
	    else echo "chromium: not installed, and installing needs root and apt-get; the browser tests will skip"; fi; }

test: install chromium
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_fast_path.py
	$(BIN)/python benchmarks/bench_ensemble.py

clean:
	rm -rf $(VENV) runs
