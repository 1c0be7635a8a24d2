"""Theory against measured toy runs (Liu et al. 2022, Sec. 3.5 and Fig. 4).

For every run of a sweep over the training fraction (and split seed) of the toy model:

* ``lambda3``: the grokking rate of its training split (:func:`grokking_rate`);
* ``linearity``: R^2 of its final 1-D representation against E_i = a + b i. A run
  *generalizes* when ``linearity >= LINEAR_R2`` (0.99): on ``add_int`` a representation
  keeps every parallelogram of the whole table exactly when it is linear, so this is the
  representation-level reading of "the network generalized", free of the val split's
  answer coverage;
* ``step_linear``: the first saved checkpoint at which the representation is linear
  (``linearity >= LINEAR_R2``) — the time the theory says scales as 1/lambda3. (Liu et al.
  read it off RQI > 0.95, their ``iter_rqi``; the two clocks are compared in
  ``benchmarks/RESULTS.md``.)

The measured critical fraction is where the share of generalizing runs first reaches half
of its plateau (the share at the largest fraction), by linear interpolation between grid
points; the theory's is where the share of splits with lambda3 > 0 crosses 1/2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from groklab.config import ConfigError
from groklab.run import Run
from groklab.sweep import summarize
from groklab.tasks import make_task
from groklab.theory.effective import grokking_rate, linearity, parallelograms_of_task

LINEAR_R2 = 0.99


def runs_table(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per finished run: fraction, split seed, seed, lambda3, linearity,
    generalized, step_linear (NaN if never), val_acc."""
    sweep_dir = Path(sweep_dir)
    df = summarize(sweep_dir)
    df = df[df["status"] == "done"]
    if df.empty:
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "no finished runs")
    rows = []
    cache: dict[str, tuple] = {}
    for _, r in df.iterrows():
        if r["dir"] not in cache:
            run = Run(sweep_dir / r["dir"])
            if run.config.model.kind != "toy" or run.config.task.op not in ("add_int", "add"):
                raise ConfigError("SWEEP_DIR", str(sweep_dir), "the comparison needs toy-model runs on add_int/add")
            if run.config.model.committee > 1:
                raise ConfigError("model.committee", run.config.model.committee,
                                  f"run {r['dir']}: the comparison reads one embedding a member, not a committee's")
            W = run.model().W_E.detach()  # (E, p, d)
            task = make_task(run.config.task)
            lam = grokking_rate(task.n_symbols, parallelograms_of_task(task))
            first = np.full(W.shape[0], np.nan)  # first checkpoint step with a linear representation
            for step in run.checkpoint_steps:
                _, weights = run.store.load_weights(step)
                for e in np.flatnonzero(np.isnan(first)):
                    if linearity(weights["W_E"][e]) >= LINEAR_R2:
                        first[e] = step
            cache[r["dir"]] = (W, lam, run.config.task, first)
        W, lam, tcfg, first = cache[r["dir"]]
        e = int(r["member"])
        lin = linearity(W[e])
        rows.append({"run": r["run"], "fraction": tcfg.fraction, "split_seed": tcfg.split_seed,
                     "seed": r["seed"], "lambda3": lam, "linearity": lin,
                     "generalized": lin >= LINEAR_R2, "step_linear": first[e], "val_acc": r["val_acc"]})
    return pd.DataFrame(rows)


def measured_critical_fraction(table: pd.DataFrame) -> tuple[float, pd.Series]:
    """(fraction where the share of generalizing runs reaches half its plateau, the share
    per fraction)."""
    share = table.groupby("fraction")["generalized"].mean().sort_index()
    level = 0.5 * float(share.iloc[-1])
    fr, s = share.index.to_numpy(float), share.to_numpy(float)
    for i in range(1, len(s)):
        if s[i - 1] < level <= s[i]:
            return float(fr[i - 1] + (level - s[i - 1]) / (s[i] - s[i - 1]) * (fr[i] - fr[i - 1])), share
    return (float(fr[0]) if len(s) and s[0] >= level else float("nan")), share


def bootstrap_critical_fractions(table: pd.DataFrame, lambda3: np.ndarray, fractions: np.ndarray,
                                 n_boot: int = 2000, seed: int = 0, level: float = 0.5) -> dict:
    """Percentile 95% intervals of the measured critical fraction, the predicted one and their
    difference. The unit resampled is a training split: within each fraction, the runs' split
    seeds are drawn with replacement (all init seeds of a drawn split come along), and the
    theory's splits (``lambda3``: (fractions, splits)) likewise, independently. ``samples``
    holds the resampled values themselves (NaN where a resample has no crossing)."""
    rng = np.random.default_rng(seed)
    fr = np.asarray(fractions, float)
    groups = {f: {s: g["generalized"].to_numpy(float) for s, g in gf.groupby("split_seed")}
              for f, gf in table.groupby("fraction")}
    meas, pred = [], []
    for _ in range(n_boot):
        rows = []
        for f, splits in groups.items():
            keys = list(splits)
            for k in rng.integers(0, len(keys), len(keys)):
                rows.extend((f, v) for v in splits[keys[k]])
        boot = pd.DataFrame(rows, columns=["fraction", "generalized"])
        meas.append(measured_critical_fraction(boot)[0])
        lam = lambda3[:, rng.integers(0, lambda3.shape[1], lambda3.shape[1])]
        share = (lam > 0).mean(1)
        above = np.flatnonzero(share >= level)
        if len(above) == 0 or above[0] == 0:
            pred.append(float("nan"))
        else:
            k = above[0]
            pred.append(float(fr[k - 1] + (level - share[k - 1]) * (fr[k] - fr[k - 1]) / (share[k] - share[k - 1])))
    meas, pred = np.asarray(meas), np.asarray(pred)
    diff = meas - pred

    def ci(x):
        x = x[np.isfinite(x)]
        return (float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))) if len(x) else (float("nan"),) * 2

    return {"measured": ci(meas), "predicted": ci(pred), "difference": ci(diff), "n_boot": n_boot,
            "samples": {"measured": meas, "predicted": pred, "difference": diff}}


__all__ = ["runs_table", "measured_critical_fraction", "bootstrap_critical_fractions", "LINEAR_R2"]
