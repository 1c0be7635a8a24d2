"""Figures of the quantization model (Michaud et al. 2023), drawn from saved files alone:
per-subtask emergence, scaling laws against the theory slope, QDG's rank-size plot."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from groklab.quanta.scaling import PowerLawFit  # noqa: E402

# the paper's fitted exponents at Zipf alpha = 0.4 (their App. Fig. 10; read off its legend, +-0.005)
PAPER_EXPONENT_04 = {"N": 0.332, "S": 0.346}
X_LABEL = {"N": "parameters N", "D": "training samples D", "S": "steps S"}


def plot_emergence(curves: pd.DataFrame, summary: dict, out: str | Path, max_curves: int = 40,
                   title: str | None = None) -> Path:
    """Left: every subtask's test loss (bits) vs step, coloured by frequency rank. Right:
    emergence step vs rank (learned subtasks), with the Spearman rho."""
    table = summary["table"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.5, 3.9), constrained_layout=True)
    steps = curves.index.to_numpy()
    pos = steps > 0
    ranks = list(curves.columns[:max_curves])
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(ranks):
        a.plot(steps[pos], curves[r].to_numpy()[pos], color=cmap(i / max(1, len(ranks) - 1)), lw=0.9)
    a.axhline(summary["threshold_bits"], color="#555", ls=":", lw=0.8)
    a.set_xscale("log")
    a.set_xlabel("step")
    a.set_ylabel("subtask test loss (bits)")
    a.set_title(f"subtasks 1-{len(ranks)} (yellow = rarer)", fontsize=9)
    learned = table.dropna(subset=["emergence_step"])
    b.plot(learned.index, learned["emergence_step"], "o", ms=4, color="#1f77b4")
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("subtask frequency rank")
    b.set_ylabel(f"step its loss < {summary['threshold_bits']:g} bits")
    b.set_title(f"{summary['n_learned']}/{summary['n_tasks']} learned; Spearman ρ = {summary['spearman_rho']:.3f}; "
                f"median abruptness {summary['median_abruptness']:.2f}", fontsize=9)
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return Path(out)


def plot_scaling(points: pd.DataFrame, fit: PowerLawFit, kind: str, theory: float, out: str | Path,
                 title: str | None = None) -> Path:
    """Log-log mean loss (bits) vs X with each seed's points, the fit (with its bootstrap
    interval) and the theory slope drawn through the fit's middle."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2), constrained_layout=True)
    means = points.groupby("x")["loss_bits"].mean()
    ax.plot(points["x"], points["loss_bits"], ".", color="#999", ms=4, label="seeds")
    ax.plot(means.index, means.values, "o", color="#1f77b4", ms=5, label="mean over seeds")
    xs = np.geomspace(means.index.min(), means.index.max(), 50)
    ax.plot(xs, fit.predict(xs), "-", color="#d62728",
            label=f"fit α_{kind} = {fit.exponent:.3f} [{fit.ci_low:.3f}, {fit.ci_high:.3f}]")
    xm = float(np.sqrt(xs[0] * xs[-1]))
    ym = float(fit.predict(xm))
    ax.plot(xs, ym * (xs / xm) ** -theory, "--", color="#555", label=f"theory α_{kind} = {theory:.3f}")
    alpha = float(points["zipf_alpha"].iloc[0])
    if kind in PAPER_EXPONENT_04 and abs(alpha - 0.4) < 1e-9:
        ax.plot([], [], " ", label=f"paper (α = 0.4): α_{kind} = {PAPER_EXPONENT_04[kind]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(X_LABEL.get(kind, kind))
    ax.set_ylabel("mean test loss (bits)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or f"Zipf α = {alpha:g}: {fit.n_runs} runs, {fit.level:.0%} bootstrap interval", fontsize=9)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return Path(out)


def plot_qdg(result: dict, out: str | Path, title: str | None = None) -> Path:
    """Rank-size of the clusters QDG found beside that of the true subtasks among the same
    samples (log-log)."""
    fig, ax = plt.subplots(figsize=(5.4, 4.0), constrained_layout=True)
    cs, ts = result["cluster_sizes"], result["true_sizes"]
    ax.plot(np.arange(1, len(cs) + 1), cs, "o-", ms=4, label="QDG clusters")
    ax.plot(np.arange(1, len(ts) + 1), ts, "s--", ms=3, color="#555", label="true subtasks")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("samples")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    method = "\n".join(textwrap.wrap(result.get("method", "QDG"), 70))  # a variant's name is long
    ax.set_title(title or f"{method}\n{result['n_clusters']} clusters, ARI {result['ari']:.3f}, "
                 f"NMI {result['nmi']:.3f} ({'with' if result['with_control'] else 'without'} control rows)",
                 fontsize=9)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return Path(out)
