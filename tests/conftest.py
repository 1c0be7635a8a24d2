import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GROKLAB = [sys.executable, "-m", "groklab.cli"]


@pytest.fixture
def groklab_cmd():
    """The real CLI, run in a subprocess with this interpreter."""
    return list(GROKLAB)


@pytest.fixture(autouse=True)
def _two_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
