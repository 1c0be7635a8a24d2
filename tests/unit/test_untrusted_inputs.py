"""Untrusted inputs get a clear error in bounded time and memory (issue 18): a safetensors
file whose header claims a huge size or is not JSON, a sweep spec that expands to millions
of runs, a run directory that is a symlink loop."""

import os
import struct
import time
import tracemalloc

import pytest
from typer.testing import CliRunner

from groklab.cli import app
from groklab.config import ConfigError
from groklab.store import RunDirError, RunStore, list_runs, read_tensors
from groklab.sweep import SweepSpec


@pytest.mark.parametrize("header", [struct.pack("<Q", 2 ** 62) + b"{}",  # claims an exabyte header
                                    struct.pack("<Q", 12) + b"not json!!!!",  # malformed
                                    b"\x01\x02"])  # shorter than its length field
def test_bad_safetensors_headers_are_refused_quickly(tmp_path, header):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(header)
    tracemalloc.start()
    t = time.perf_counter()
    with pytest.raises(RunDirError, match="bad.safetensors"):
        read_tensors(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - t < 2 and peak < 50e6


@pytest.mark.parametrize("spec, key", [
    ({"seeds": 10 ** 9}, "sweep.seeds"),
    ({"axes": {"optim.lr": {"log": [1e-4, 1e-1], "n": 10 ** 9}}}, "sweep.axes.optim.lr.n"),
    ({"seeds": 10, "axes": {"optim.lr": {"log": [1e-4, 1e-1], "n": 1000},
                            "optim.weight_decay": {"linear": [0, 1], "n": 1000}}}, "sweep.axes"),
    ({"mode": "random", "samples": 10 ** 8, "axes": {"optim.lr": [1e-3, 1e-2]}}, "sweep.samples"),
])
def test_sweep_specs_that_expand_to_millions_of_runs_are_refused(spec, key):
    t = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        SweepSpec.from_dict({"preset": "demo", **spec})
    assert e.value.key == key
    assert time.perf_counter() - t < 2


def test_a_run_directory_that_is_a_symlink_loop_gets_one_line(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(RunDirError, match="not a run directory"):
        RunStore(a).config()
    assert list_runs(a) == [] and list_runs(tmp_path) == []
    r = CliRunner().invoke(app, ["plot", str(a)])
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["runs", "--runs-dir", str(a)])
    assert r.exit_code == 0
