"""Durable, checked run files: atomic writes are flushed to disk (file and directory), every
safetensors file carries a checksum, and a damaged latest resume checkpoint is passed over
for the previous one (the run still ends bit for bit where an undamaged run ends)."""

from __future__ import annotations

import os

import pytest
import torch

import groklab
from groklab import store as store_mod
from groklab.store import RunDirError, RunStore, read_tensors, write_tensors

SMALL = ["task.p=7", "model.d_model=8", "model.n_heads=2", "model.d_mlp=8", "train.stop_val_acc=none",
         "train.checkpoint_every=10", "train.steps=40"]


def test_atomic_write_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(store_mod.os, "fsync", spy)
    store_mod.write_json(tmp_path / "a.json", {"x": 1})
    assert len(synced) == 2
    assert os.path.basename(synced[0]).startswith(".a.json.")  # the temporary file, before the rename
    assert synced[1] == str(tmp_path)  # then the directory, after it
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_checksum_catches_a_flipped_byte(tmp_path):
    p = tmp_path / "t.safetensors"
    write_tensors(p, {"w": torch.arange(100, dtype=torch.float32)})
    assert torch.equal(read_tensors(p)[0]["w"], torch.arange(100, dtype=torch.float32))
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0xFF  # inside the tensor data
    p.write_bytes(bytes(raw))
    with pytest.raises(RunDirError, match="checksum mismatch"):
        read_tensors(p)
    p.write_bytes(bytes(raw[:20]))  # truncated inside the header
    with pytest.raises(RunDirError, match="unreadable"):
        read_tensors(p)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_latest_resume_falls_back_to_the_previous_one(tmp_path, capfd, damage):
    whole = groklab.train(groklab.resolve("demo", overrides=SMALL), tmp_path / "whole", progress=False)
    cfg = groklab.resolve("demo", overrides=SMALL[:-1] + ["train.steps=30"])
    part = groklab.train(cfg, tmp_path / "part", progress=False)  # stops at 30: resume = 30, prev earlier
    # pretend it was killed at step 30 (status interrupted, steps 40 wanted)
    st = RunStore(part.path)
    s = st.summary()
    s["status"] = "interrupted"
    st.write_summary(s)
    c = st.config()
    c.train.steps = 40
    store_mod.write_json(part.path / "config.json", {"format": store_mod.CONFIG_FORMAT, **c.to_dict()})
    latest = st.resume_path
    prev_step = RunStore._resume_step(st.prev_resume_path)
    assert prev_step is not None and prev_step < 30
    if damage == "flip":
        raw = bytearray(latest.read_bytes())
        raw[-3] ^= 0xFF
        latest.write_bytes(bytes(raw))
    elif damage == "truncate":
        latest.write_bytes(latest.read_bytes()[:100])
    else:
        latest.unlink()
    capfd.readouterr()
    groklab.resume(part.path, progress=False)
    err = capfd.readouterr().err
    assert f"resuming from the previous checkpoint (step {prev_step})" in err and len(err.strip().splitlines()) == 1
    a, b = whole.model().state_dict(), groklab.load_run(part.path).model().state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_both_resume_checkpoints_damaged_is_one_clear_error(tmp_path):
    run = groklab.train(groklab.resolve("demo", overrides=SMALL), tmp_path / "r", progress=False)
    st = RunStore(run.path)
    for p in (st.resume_path, st.prev_resume_path):
        p.write_bytes(b"\x00" * 16)
    with pytest.raises(RunDirError, match=r"resume\.safetensors: unreadable.*previous checkpoint too: .*resume\.prev"):
        st.load_resume()


def test_read_parquet_hands_pyarrow_its_own_file_not_a_python_one(tmp_path, monkeypatch):
    """A Python file object makes pyarrow hold a Python reference that one of its worker
    threads may drop after the read returns; at interpreter exit that thread's GIL request
    aborted the process (SIGABRT, apache/arrow#34314; benchmarks/parquet_exit_abort.py
    measures the rate). The reader must get a pyarrow NativeFile, and read the frame intact."""
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame({"step": [0, 10, 20], "name": ["a", "b", None], "value": [0.5, float("nan"), 1.0]})
    path = tmp_path / "m.parquet"
    store_mod.write_parquet(path, df)
    seen, real = [], pd.read_parquet
    monkeypatch.setattr(store_mod.pd, "read_parquet", lambda f, *a, **k: seen.append(type(f)) or real(f, *a, **k))
    pd.testing.assert_frame_equal(store_mod.read_parquet(path), real(path))
    assert len(seen) == 1 and issubclass(seen[0], pa.NativeFile), seen
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(RunDirError, match="m.parquet: damaged"):
        store_mod.read_parquet(path)
    with pytest.raises(RunDirError, match="nope.parquet"):
        store_mod.read_parquet(tmp_path / "nope.parquet")
