"""A bench's curves, without matplotlib or the training loop: each run's val accuracy against
its wall-clock seconds, and their median over seeds (for ``bench/plot.py`` and the HTML
report alike)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from groklab.store import RunStore


def curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table method, task, seed, time_s, val_acc from each run's metrics.parquet."""
    parts = []
    for r in runs.itertuples(index=False):
        df = RunStore(r.run_dir).metrics()
        if df.empty:
            continue
        w = df[df["member"] == 0].pivot_table(index="step", columns="name", values="value")
        if "val_acc" not in w or "time_s" not in w:
            continue
        parts.append(pd.DataFrame({"method": r.method, "task": r.task, "seed": r.seed,
                                   "time_s": w["time_s"].to_numpy(), "val_acc": w["val_acc"].to_numpy()}))
    cols = ["method", "task", "seed", "time_s", "val_acc"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def median_curve(curve: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """Median over seeds of the best val acc so far on a time grid: the quantity the
    bench's table scores (a seed has reached 99% once any evaluation did), so the curves
    cross the 99% line where the table says the seeds got there; a dip after the crossing
    does not pull a curve back under it. Each seed's curve is a step function (its best
    evaluation at or before t) and holds its value after it stops, up to the end of the
    longest seed; elsewhere it is NaN, and the median is over the seeds defined at t."""
    cols = []
    for _, g in curve.groupby("seed"):
        g = g.sort_values("time_s")
        t, v = g["time_s"].to_numpy(float), np.maximum.accumulate(g["val_acc"].to_numpy(float))
        i = np.searchsorted(t, grid, side="right") - 1
        cols.append(np.where(i >= 0, v[np.clip(i, 0, None)], np.nan))
    stack = np.vstack(cols)
    stack[:, grid > curve["time_s"].max()] = np.nan  # the line ends with the longest seed
    with np.errstate(all="ignore"):
        ok = ~np.isnan(stack).all(0)
        out = np.full(len(grid), np.nan)
        out[ok] = np.nanmedian(stack[:, ok], axis=0)
    return out
