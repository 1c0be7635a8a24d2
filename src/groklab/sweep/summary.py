"""A sweep's results, read without torch: one row per run (``summarize``), and whether a run
directory is new, partial or done. The executors (:mod:`groklab.sweep.executors`) write
the runs; reports, phase diagrams and scaling fits read them through this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from groklab.config import ConfigError
from groklab.rundir import read_json
from groklab.store import RunStore, write_parquet

FINISHED = ("completed", "stopped", "diverged")
RESULT_KEYS = ("phase", "step_train_99", "step_val_99", "seconds_val_99", "train_acc", "val_acc",
               "train_loss", "val_loss", "diverged")


def _status(run_dir: Path) -> str:
    """new | partial | done"""
    if not (run_dir / "config.json").is_file():
        return "new"
    s = RunStore(run_dir).summary()
    return "done" if s and s.get("status") in FINISHED else "partial"


def summarize(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per run: id, seed, the axis values, status and results; written to
    ``summary.parquet``. Runs not finished yet have status "new" or "partial"."""
    sweep_dir = Path(sweep_dir)
    record_path = sweep_dir / "sweep.json"
    if not record_path.is_file():
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "not a sweep directory (no sweep.json)")
    record = read_json(record_path)
    cache: dict[str, dict | None] = {}
    rows = []
    for r in record["runs"]:
        d = sweep_dir / r["dir"]
        if r["dir"] not in cache:
            cache[r["dir"]] = RunStore(d).summary() if (d / "summary.json").is_file() else None
        s = cache[r["dir"]]
        row: dict[str, Any] = {"run": r["id"], "seed": r["seed"], **r["values"]}
        status = _status(d)
        row["status"] = status
        m = s["members"][r["member"]] if s else {}
        for k in RESULT_KEYS:
            row[k] = m.get(k) if status == "done" else None
        row["dir"], row["member"] = r["dir"], r["member"]
        rows.append(row)
    df = pd.DataFrame(rows)
    write_parquet(sweep_dir / "summary.parquet", df)
    return df
