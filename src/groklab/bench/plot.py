"""``val_acc_vs_seconds.png``: val accuracy against training seconds, one panel per task,
one line per method (the median over seeds), drawn from the runs' saved metrics."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from groklab.report.bench_curves import median_curve  # noqa: E402


def plot_val_acc_vs_seconds(curves: pd.DataFrame, summary: pd.DataFrame, path: str | Path,
                            budget_s: float) -> Path:
    """One subplot per task; prior-knowledge methods dashed. Log time axis up to the budget."""
    path = Path(path)
    tasks = list(dict.fromkeys(summary["task"]))
    prior = dict(zip(summary["method"], summary["prior_knowledge"]))
    n = len(tasks)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
    pos = curves["time_s"][curves["time_s"] > 0]
    t_min = max(float(pos.min()) if len(pos) else 1e-2, 1e-3)
    grid = np.union1d(np.geomspace(t_min, max(budget_s, t_min * 10), 400), pos)  # and every evaluation's time
    methods = list(dict.fromkeys(summary["method"]))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    for ax, task in zip(axes.flat, tasks):
        for m in methods:
            c = curves[(curves["task"] == task) & (curves["method"] == m)]
            if c.empty:
                continue
            y = median_curve(c, grid)
            ax.plot(grid, y, color=colors[m], ls="--" if prior.get(m) else "-", lw=1.6,
                    label=m + (" (prior knowledge)" if prior.get(m) else ""))
        ax.axhline(0.99, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task)
        ax.set_xlabel("training seconds")
        ax.set_ylabel("best val accuracy so far\n(median over seeds)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in list(axes.flat)[1:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(labels) / 4), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
