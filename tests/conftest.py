import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GROKLAB = [sys.executable, "-m", "groklab.cli"]


@pytest.fixture
def groklab_cmd():
    """The real CLI, run in a subprocess with this interpreter."""
    return list(GROKLAB)


@pytest.fixture
def groklab_inproc():
    """The real CLI's command tree invoked in this process (click's runner): the same parsing,
    commands and exit codes as ``groklab_cmd`` without an interpreter start (~4 s with torch).
    For calls whose subject is a command's output, not the process (kills, signals, locks,
    entry point). Returns ``run(args) -> CompletedProcess`` with returncode, stdout, stderr."""
    from click.testing import CliRunner

    from groklab.cli import _command

    cmd = _command()

    def run(args) -> subprocess.CompletedProcess:
        r = CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)
        return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)

    return run


@pytest.fixture(autouse=True)
def _two_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
