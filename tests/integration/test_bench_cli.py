"""The real `groklab bench` on a tiny suite: one method, one task, one seed."""

from __future__ import annotations

import json
import subprocess

import pandas as pd


def test_bench_cli_tiny(tmp_path, groklab_cmd):
    runs_dir, out_dir = tmp_path / "runs", tmp_path / "out"
    args = ["bench", "--tasks", "add97_random", "--methods", "fastest", "--seeds", "1", "--budget-s", "60",
            "--max-steps", "400", "--runs-dir", str(runs_dir), "--output", str(out_dir)]
    r = subprocess.run(groklab_cmd + args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fastest" in r.stdout and "add97_random" in r.stdout and "trained" in r.stdout
    for f in ("bench.parquet", "runs.parquet", "bench.json", "val_acc_vs_seconds.png"):
        assert (out_dir / f).is_file(), f
    assert (out_dir / "val_acc_vs_seconds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_parquet(out_dir / "bench.parquet")
    assert list(summary[["task", "method", "seeds"]].itertuples(index=False, name=None)) == [
        ("add97_random", "fastest", 1)]
    row = summary.iloc[0]
    assert row["n_params"] == 97 * 32 + 64 * 64 + 64 + 64 * 97 + 97 and row["ms_per_step"] > 0
    runs = pd.read_parquet(out_dir / "runs.parquet")
    assert len(runs) == 1 and (runs_dir / "fastest/add97_random/seed100/summary.json").is_file()  # held out
    if row["share"] == 1.0:  # the recipe normally reaches 99% in ~90 steps
        assert 0 < row["steps_median"] <= 400 and 0 < row["seconds_median"] <= 60
        assert f"{int(row['steps_median'])}" in r.stdout
    record = json.loads((out_dir / "bench.json").read_text())
    assert record["budget_s"] == 60 and record["summary"][0]["method"] == "fastest"

    # running it again skips the finished run
    r = subprocess.run(groklab_cmd + args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout


def test_bench_cli_bad_method(tmp_path, groklab_cmd):
    r = subprocess.run(groklab_cmd + ["bench", "--methods", "fastest,warp", "--runs-dir", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--methods='warp'" in r.stderr and "unknown method" in r.stderr
    assert not (tmp_path / "x").exists()
