"""Power-law scaling fits with bootstrap intervals (Michaud et al. 2023, Fig. 2 and App. Fig. 10).

The paper fits L proportional to X^(-alpha_X) by ordinary least squares on (log X, log L),
L the mean test loss in bits: against parameters N the **final** loss of each width, against
data D the **minimum** over training (early stopping), against steps S the loss curve of the
largest model (``scaling-exp-vs-zipf-exp.ipynb``). Theory (their Sec. 3): alpha_N = alpha,
alpha_D = alpha_S = alpha / (alpha + 1), alpha the Zipf exponent of subtask frequencies
(p_r proportional to r^-(alpha+1)).

Here the point estimate is the OLS fit to the mean loss over seeds at each X, and the 95%
interval is a percentile bootstrap over seeds: each replicate resamples, at every X on its
own, that X's seeds with replacement, averages them and refits (runs at different X are
independent, so X's seeds are resampled independently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from groklab.config import ConfigError
from groklab.run import Run
from groklab.store import RunStore
from groklab.sweep import summarize

LN2 = math.log(2)
KINDS = {"model.hidden": "N", "params": "N", "task.train_size": "D", "step": "S", "train.steps": "S"}


def theory_exponent(kind: str, zipf_alpha: float) -> float:
    """The quantization model's prediction: alpha_N = alpha; alpha_D = alpha_S = alpha/(alpha+1)."""
    return zipf_alpha if kind == "N" else zipf_alpha / (zipf_alpha + 1)


def fit_power_law(x, y) -> tuple[float, float]:
    """OLS of log10 y on log10 x -> (exponent alpha with y ~ x^-alpha, log10 prefactor)."""
    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    slope, icpt = np.polyfit(lx, ly, 1)
    return float(-slope), float(icpt)


@dataclass
class PowerLawFit:
    exponent: float  # alpha_X: L proportional to X^-alpha_X
    log10_prefactor: float
    ci_low: float  # bootstrap percentile interval of the exponent
    ci_high: float
    level: float
    n_x: int  # distinct X values fitted
    n_runs: int  # (X, seed) points
    n_boot: int

    def predict(self, x) -> np.ndarray:
        return 10 ** self.log10_prefactor * np.asarray(x, float) ** -self.exponent


def bootstrap_power_law(df: pd.DataFrame, x: str = "x", y: str = "loss_bits", n_boot: int = 2000,
                        level: float = 0.95, seed: int = 0) -> PowerLawFit:
    """Fit ``y ~ x^-alpha`` to the per-x mean of ``df`` (one row per run: x, y) with a
    percentile bootstrap over each x's runs (module docstring)."""
    groups = [g[y].to_numpy(float) for _, g in df.groupby(x, sort=True)]
    xs = np.array(sorted(df[x].unique()), float)
    if len(xs) < 2:
        raise ValueError(f"a power law needs at least two distinct {x} values; got {len(xs)}")
    if not all(np.all(g > 0) for g in groups):
        raise ValueError("a power law needs positive losses")
    est, icpt = fit_power_law(xs, [g.mean() for g in groups])
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        means = [g[rng.integers(0, len(g), len(g))].mean() for g in groups]
        boots[b] = fit_power_law(xs, means)[0]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return PowerLawFit(est, icpt, float(lo), float(hi), level, len(xs), len(df), n_boot)


def from_first_below(points: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The points from the first X whose mean loss is below ``level`` bits on (the paper's D
    fit starts there: below it the loss sits at the untrained 1 bit)."""
    means = points.groupby("x")["loss_bits"].mean().sort_index()
    below = means[means < level]
    return points[points["x"] >= below.index[0]] if len(below) else points.iloc[:0]


def _bits(cfg, values) -> np.ndarray:
    if cfg.train.loss != "cross_entropy":
        raise ConfigError("train.loss", cfg.train.loss, "scaling in bits needs the cross-entropy loss")
    return np.asarray(values, float) / LN2


def scaling_points(sweep_dir: str | Path, x_key: str, stat: str = "final") -> pd.DataFrame:
    """One row per finished (run, member) of a sweep: x (parameters N for ``model.hidden``),
    seed, the mean test loss in bits (``stat``: the last evaluation's, or the minimum over
    training), and the Zipf alpha."""
    if stat not in ("final", "min"):
        raise ConfigError("--stat", stat, "choose from final, min")
    sweep_dir = Path(sweep_dir)
    df = summarize(sweep_dir)
    axis = "model.hidden" if x_key == "params" else x_key
    if axis not in df.columns:
        axes = [c for c in df.columns if "." in c]
        raise ConfigError("--x", x_key, f"not an axis of the sweep; axes: {', '.join(axes) or 'none'}")
    df = df[df["status"] == "done"]
    if df.empty:
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "no finished runs yet")
    rows, cache = [], {}
    for _, r in df.iterrows():
        d = r["dir"]
        if d not in cache:
            run = Run(sweep_dir / d)
            cfg = run.config
            if cfg.task.kind != "sparse_parity":
                raise ConfigError("SWEEP_DIR", str(sweep_dir), f"scaling reads sparse parity runs; this is {cfg.task.kind!r}")
            m = RunStore(sweep_dir / d).metrics()
            val = m[m["name"] == "val_loss"]
            n_params = None
            if axis == "model.hidden":
                model = run.model()
                n_params = sum(p.numel() for p in model.parameters()) // cfg.n_members
            cache[d] = (cfg, val, n_params)
        cfg, val, n_params = cache[d]
        v = val[val["member"] == r["member"]].sort_values("step")["value"].to_numpy()
        loss = v[-1] if stat == "final" else np.nanmin(v)
        x = n_params if axis == "model.hidden" else float(r[axis])
        rows.append({"x": x, "seed": r["seed"], "loss_bits": float(_bits(cfg, [loss])[0]),
                     "zipf_alpha": cfg.task.zipf_alpha, "run": r["run"]})
    return pd.DataFrame(rows)


def steps_points(sweep_dir: str | Path, select: dict | None = None, step_range: tuple[int, int] | None = None
                 ) -> pd.DataFrame:
    """Loss curves (step, seed, loss bits) of the runs of a sweep at one point: ``select``
    maps axis keys to values (default: the largest ``model.hidden`` if that is an axis),
    restricted to ``step_range`` [lo, hi)."""
    sweep_dir = Path(sweep_dir)
    df = summarize(sweep_dir)
    df = df[df["status"] == "done"]
    if df.empty:
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "no finished runs yet")
    if select is None and "model.hidden" in df.columns:
        biggest = max(df["model.hidden"], key=lambda h: sum(h))
        df = df[df["model.hidden"].map(lambda h: list(h) == list(biggest))]
    for k, v in (select or {}).items():
        if k not in df.columns:
            raise ConfigError("--select", k, "not an axis of the sweep")
        df = df[df[k].map(lambda a: a == v)]
    rows = []
    for _, r in df.iterrows():
        run = Run(sweep_dir / r["dir"])
        m = run.metrics
        m = m[(m["name"] == "val_loss") & (m["member"] == r["member"])]
        for s, v in zip(m["step"], _bits(run.config, m["value"])):
            if s > 0 and (step_range is None or step_range[0] <= s < step_range[1]):
                rows.append({"x": int(s), "seed": r["seed"], "loss_bits": float(v),
                             "zipf_alpha": run.config.task.zipf_alpha, "run": r["run"]})
    return pd.DataFrame(rows)
