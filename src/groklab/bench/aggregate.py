"""The bench's summary: per method and task, from the table of runs (pure functions).

Per (method, task), over its seeds:

* ``share``: the share of seeds that reached 99% val accuracy within the budget;
* ``steps_median`` / ``steps_q25`` / ``steps_q75`` and ``seconds_*``: median and quartiles
  (the IQR is q75 - q25) of the steps and training seconds to 99% val accuracy, over the
  seeds that reached it (NaN when none did);
* ``steps_ci_lo`` / ``steps_ci_hi`` and ``seconds_ci_*``: a 95% bootstrap interval of that
  median (:func:`median_ci`: percentile bootstrap, 2,000 resamples of the seeds that
  reached 99%, a fixed random state so the table is reproducible; NaN with fewer than 2);
* ``n_params``: trainable parameters of one member; ``ms_per_step``: median over seeds of
  training seconds / steps (evaluation included, as the budget counts it);
* ``rank``: 1 = best within the task, *separately* for recipes that use prior knowledge
  of the task (fixed cyclic / scalar input codes) and for those that do not: higher share
  first, then lower median seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

SUMMARY_COLUMNS = ["task", "method", "prior_knowledge", "seeds", "reached", "share",
                   "steps_median", "steps_q25", "steps_q75", "steps_ci_lo", "steps_ci_hi",
                   "seconds_median", "seconds_q25", "seconds_q75", "seconds_ci_lo", "seconds_ci_hi",
                   "n_params", "ms_per_step", "rank"]
N_BOOT = 2000


def median_ci(values, confidence: float = 0.95, n_resamples: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (scipy.stats.bootstrap;
    resampling seeds with replacement). (NaN, NaN) with fewer than 2 values; a degenerate
    sample (all equal) gives (v, v)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if len(v) < 2:
        return (np.nan, np.nan)
    if np.all(v == v[0]):
        return (float(v[0]), float(v[0]))
    res = bootstrap((v,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _quartiles(x: pd.Series) -> tuple[float, float, float]:
    v = pd.to_numeric(x, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(v):
        return (np.nan, np.nan, np.nan)
    q25, med, q75 = np.percentile(v, [25, 50, 75])  # linear interpolation (numpy's default)
    return float(med), float(q25), float(q75)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, method) in the order they first appear in ``runs``.

    ``runs`` needs: method, task, seed, prior_knowledge, reached, step_val_99,
    seconds_val_99, n_params, ms_per_step (as :data:`groklab.bench.runner.RUN_COLUMNS`)."""
    rows = []
    order = list(dict.fromkeys(zip(runs["task"], runs["method"])))
    for task, method in order:
        g = runs[(runs["task"] == task) & (runs["method"] == method)]
        ok = g[g["reached"].astype(bool)]
        s_med, s_q25, s_q75 = _quartiles(ok["step_val_99"])
        t_med, t_q25, t_q75 = _quartiles(ok["seconds_val_99"])
        s_lo, s_hi = median_ci(ok["step_val_99"])
        t_lo, t_hi = median_ci(ok["seconds_val_99"])
        ms = pd.to_numeric(g["ms_per_step"], errors="coerce").dropna()
        rows.append({"task": task, "method": method, "prior_knowledge": bool(g["prior_knowledge"].iloc[0]),
                     "seeds": int(len(g)), "reached": int(len(ok)), "share": len(ok) / len(g),
                     "steps_median": s_med, "steps_q25": s_q25, "steps_q75": s_q75,
                     "steps_ci_lo": s_lo, "steps_ci_hi": s_hi,
                     "seconds_median": t_med, "seconds_q25": t_q25, "seconds_q75": t_q75,
                     "seconds_ci_lo": t_lo, "seconds_ci_hi": t_hi,
                     "n_params": int(g["n_params"].iloc[0]),
                     "ms_per_step": float(ms.median()) if len(ms) else np.nan})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1])
    out["rank"] = rank(out)
    return out[SUMMARY_COLUMNS]


def rank(summary: pd.DataFrame) -> pd.Series:
    """Rank within each (task, prior_knowledge) group: share desc, then median seconds asc
    (a method that never reached 99% sorts last among equals). Ties share a rank."""
    key = pd.DataFrame({"share": -summary["share"].astype(float),
                        "secs": summary["seconds_median"].astype(float).fillna(np.inf)})
    ranks = pd.Series(0, index=summary.index, dtype=int)
    for _, g in summary.groupby(["task", "prior_knowledge"], sort=False):
        k = key.loc[g.index]
        tuples = list(zip(k["share"], k["secs"]))
        uniq = sorted(set(tuples))
        for idx, t in zip(g.index, tuples):
            ranks[idx] = uniq.index(t) + 1
    return ranks


FIDELITY_COLUMNS = ["method", "task", "threshold", "seeds", "reached", "steps_median", "steps_q25", "steps_q75",
                    "steps_ci_lo", "steps_ci_hi", "published", "published_steps", "ratio", "source"]


def fidelity(runs: pd.DataFrame, anchors: dict) -> pd.DataFrame:
    """Each (method, task) with a published number (``anchors``: (method, task) -> Anchor):
    our steps to the paper's threshold (median, IQR, bootstrap interval, over the seeds that
    reached it) next to the paper's, and their ratio (ours / theirs)."""
    rows = []
    for (method, task), g in runs.groupby(["method", "task"], sort=False):
        a = anchors.get((method, task))
        if a is None:
            continue
        ok = pd.to_numeric(g["step_threshold"], errors="coerce").dropna()
        med, q25, q75 = _quartiles(ok)
        lo, hi = median_ci(ok)
        rows.append({"method": method, "task": task, "threshold": float(g["threshold"].iloc[0]),
                     "seeds": int(len(g)), "reached": int(len(ok)), "steps_median": med, "steps_q25": q25,
                     "steps_q75": q75, "steps_ci_lo": lo, "steps_ci_hi": hi, "published": a.published,
                     "published_steps": a.steps,
                     "ratio": med / a.steps if a.steps and not np.isnan(med) else np.nan, "source": a.source})
    return pd.DataFrame(rows, columns=FIDELITY_COLUMNS)
