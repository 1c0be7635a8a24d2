"""Figures of the effective theory (Liu et al. 2022), drawn from computed arrays only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from groklab.config import ConfigError  # noqa: E402
from groklab.theory.effective import Lambda3Sweep, critical_fraction_of  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

LAM, SHARE, CRIT = "#1f77b4", "#d62728", "#555555"


def plot_lambda3(result: Lambda3Sweep, out_path: str | Path) -> Path:
    """Left: lam3 (median, IQR band) vs training fraction; right: P(lam3 > 0) vs fraction.
    The critical fraction (share crosses 1/2, :func:`critical_fraction_of`) is marked on
    both. ``result`` is the output of :func:`groklab.theory.lambda3_vs_fraction`. Returns
    the PNG path."""
    fr = np.asarray(result["fraction"])
    n_splits = np.asarray(result["lambda3"]).shape[1]
    crit = critical_fraction_of(result)
    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ax_l.fill_between(fr, result["q25"], result["q75"], color=LAM, alpha=0.25, label="IQR")
    ax_l.plot(fr, result["median"], "o-", color=LAM, ms=3, label="median λ3")
    ax_l.set_ylabel("λ3 (grokking rate)")
    ax_s.plot(fr, result["share_positive"], "o-", color=SHARE, ms=3, label="P(λ3 > 0)")
    ax_s.axhline(0.5, color=CRIT, lw=0.8, ls=":")
    ax_s.set_ylabel("share of splits with λ3 > 0")
    ax_s.set_ylim(-0.02, 1.02)
    for ax in (ax_l, ax_s):
        if np.isfinite(crit):
            ax.axvline(crit, color=CRIT, ls="--", lw=1.0, label=f"critical fraction {crit:.3f}")
        ax.set_xlabel("training fraction")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"effective theory: λ3 over {n_splits} random splits per fraction", fontsize=10)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def plot_theory_vs_runs(lam3: np.ndarray, steps: np.ndarray, out_path: str | Path,
                        ylabel: str = "steps") -> Path:
    """Scatter of measured steps (e.g. until RQI > 0.95) against 1/lam3, one point per run,
    with the least-squares line through the origin, steps = k / lam3, and the Pearson
    correlation of (1/lam3, steps) in the legend. Runs with lam3 <= 0 or a non-finite step
    count are left out (their number is noted). Returns the PNG path."""
    lam3 = np.asarray(lam3, dtype=float).ravel()  # (R,)
    steps = np.asarray(steps, dtype=float).ravel()  # (R,)
    if lam3.shape != steps.shape:
        raise ConfigError("steps", steps.shape, f"must match lam3's shape {lam3.shape}")
    keep = (lam3 > 0) & np.isfinite(lam3) & np.isfinite(steps)
    if keep.sum() < 2:
        raise ConfigError("lam3", int(keep.sum()), "need at least 2 runs with lam3 > 0 and finite steps")
    x, y = 1.0 / lam3[keep], steps[keep]
    k = float((x * y).sum() / (x * x).sum())  # least squares through the origin
    r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
    fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    ax.scatter(x, y, s=14, color=LAM, alpha=0.8, label=f"runs (n={keep.sum()})")
    xs = np.linspace(0, x.max() * 1.05, 50)
    ax.plot(xs, k * xs, color=SHARE, label=f"steps = {k:.3g} / λ3,  r = {r:.2f}")
    dropped = int((~keep).sum())
    title = "measured steps vs theory" + (f" ({dropped} left out: λ3 = 0 or no step)" if dropped else "")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("1 / λ3")
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def plot_critical_fraction(share: "pd.Series", n_runs: "pd.Series", theory: Lambda3Sweep, measured: float,
                           predicted: float, out_path: str | Path, measured_ci=None, predicted_ci=None) -> Path:
    """The runs' share of linear representations (points, with a 95% Wilson interval from
    ``n_runs`` runs per fraction) and the theory's P(lam3 > 0) (line) against the training
    fraction, each critical fraction marked with its interval (shaded) where given. ``share``
    and ``n_runs`` are indexed by fraction. Returns the PNG path."""
    fr = share.index.to_numpy(float)
    s = share.to_numpy(float)
    n = n_runs.reindex(share.index).to_numpy(float)
    z = 1.96  # Wilson score interval
    centre = (s + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(s * (1 - s) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    ax.errorbar(fr, s, yerr=[s - (centre - half), centre + half - s], fmt="o", color=LAM, ms=4, capsize=2,
                label=f"runs: share linear (R² ≥ 0.99), {int(np.median(n))} runs a fraction")
    ax.plot(theory["fraction"], theory["share_positive"], "-", color=SHARE,
            label=f"theory: P(λ3 > 0), {np.asarray(theory['lambda3']).shape[1]} splits a fraction")
    for x, ci, c, name in ((measured, measured_ci, LAM, "runs"), (predicted, predicted_ci, SHARE, "theory")):
        if not np.isfinite(x):
            continue
        lab = f"{name}: {x:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci is not None else "")
        ax.axvline(x, color=c, ls="--", lw=1.0, label=lab)
        if ci is not None:
            ax.axvspan(ci[0], ci[1], color=c, alpha=0.12, lw=0)
    ax.axhline(0.5 * s[-1], color=CRIT, lw=0.8, ls=":")
    ax.set_xlabel("training fraction")
    ax.set_ylabel("share")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(fr.min() - 0.02, fr.max() + 0.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("critical training fraction: runs vs effective theory (95% intervals)", fontsize=9)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
