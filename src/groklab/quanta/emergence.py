"""When each subtask is learned, and how abruptly (Michaud et al. 2023, Figs. 2 and 7-8).

From a run's per-subtask test losses (the ``subtasks`` measure, live or by ``groklab
analyze``), per subtask r (1 = the most frequent):

* ``emergence_step``: the first step at which its loss falls below ``threshold`` bits
  (0.1 bits, the paper's convergence criterion in ``sparse-parity-timeseries.ipynb``);
* ``t90`` / ``t10``: the steps at which it first falls to 90% / 10% of its initial loss,
  and ``abruptness = (t10 - t90) / t90``: the duration of the fall relative to its onset
  (0.2: the fall takes a fifth of the time it took to start).

Crossing steps are interpolated linearly in log(step) between the two evaluations that
bracket them (the evaluations are log-spaced). A subtask that never crosses gets NaN.
The Spearman correlation between frequency rank and emergence step, over the subtasks
learned, says whether quanta are learned in order of frequency.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

PREFIX = "subtask_loss_bits/"


def subtask_curves(metrics: pd.DataFrame, member: int = 0) -> pd.DataFrame:
    """Per-subtask loss (bits) of one member: index step, columns rank 1..n_tasks."""
    df = metrics[(metrics["member"] == member) & metrics["name"].str.startswith(PREFIX)]
    if df.empty:
        raise ValueError("no per-subtask losses in this run: train with measures=['subtasks'] "
                         "or run `groklab analyze RUN -m subtasks`")
    wide = df.pivot_table(index="step", columns="name", values="value")
    wide.columns = [int(c[len(PREFIX):]) for c in wide.columns]
    return wide.sort_index(axis=1)


def crossing(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """First step at which ``values`` is <= ``level``, interpolated in log(step) between the
    bracketing evaluations (steps > 0); NaN if never."""
    below = np.nonzero(values <= level)[0]
    if len(below) == 0:
        return math.nan
    j = below[0]
    if j == 0 or steps[j - 1] <= 0:
        return float(steps[j])
    v0, v1 = values[j - 1], values[j]
    f = (v0 - level) / (v0 - v1) if v0 != v1 else 1.0
    return float(math.exp(math.log(steps[j - 1]) + f * (math.log(steps[j]) - math.log(steps[j - 1]))))


def emergence_table(curves: pd.DataFrame, threshold: float = 0.1) -> pd.DataFrame:
    """One row per subtask rank: initial and final loss, emergence step, t90, t10, abruptness."""
    steps = curves.index.to_numpy(dtype=float)
    rows = []
    for r in curves.columns:
        v = curves[r].to_numpy(dtype=float)
        l0 = v[0]
        t90, t10 = crossing(steps, v, 0.9 * l0), crossing(steps, v, 0.1 * l0)
        rows.append({"rank": int(r), "initial_bits": l0, "final_bits": v[-1],
                     "emergence_step": crossing(steps, v, threshold), "t90": t90, "t10": t10,
                     "abruptness": (t10 - t90) / t90 if t90 > 0 else math.nan})
    return pd.DataFrame(rows).set_index("rank")


def emergence(curves: pd.DataFrame, threshold: float = 0.1, probs=None) -> dict:
    """The table and its summary: subtasks learned, Spearman rho (rank vs emergence step)
    and its p-value over them, median abruptness (and its interquartile range). With the
    subtasks' frequencies ``probs`` (rank 1 first) also the log-log slope of emergence step
    against frequency (the paper's Fig. 8: -0.81; theory: -1)."""
    table = emergence_table(curves, threshold)
    learned = table.dropna(subset=["emergence_step"])
    rho, p = (spearmanr(learned.index, learned["emergence_step"]) if len(learned) >= 3 else (math.nan, math.nan))
    ab = learned["abruptness"].dropna()
    slope = math.nan
    if probs is not None and len(learned) >= 2:
        f = np.asarray(probs, float)[learned.index.to_numpy() - 1]
        slope = float(np.polyfit(np.log(f), np.log(learned["emergence_step"].to_numpy(float)), 1)[0])
    return {"table": table, "n_learned": int(len(learned)), "n_tasks": int(len(table)),
            "spearman_rho": float(rho), "spearman_p": float(p),
            "median_abruptness": float(ab.median()) if len(ab) else math.nan,
            "abruptness_iqr": (float(ab.quantile(0.25)), float(ab.quantile(0.75))) if len(ab) else (math.nan,) * 2,
            "threshold_bits": threshold, "step_vs_frequency_slope": slope}
