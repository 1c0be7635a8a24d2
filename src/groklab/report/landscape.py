"""Omnigrok's "LU" loss landscapes (Liu, Michaud & Tegmark 2023, Fig. 3), drawn from a sweep
directory's saved files alone.

A landscape sweep trains at a fixed weight norm (``method.norm_constraint``) over a grid of
init scales alpha (``model.init_scale``, the weight norm relative to the default init's)
and one other axis (the training-set size). Per point it keeps, as Omnigrok's notebook
does, the **best** train and test accuracy over the run's evaluations; error = 1 - best
accuracy. :func:`plot_landscape` draws the slices (error vs alpha, one line per size; train
dashed, test solid: the "L" and the "U") and the two heatmaps.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from groklab.config import ConfigError  # noqa: E402
from groklab.store import RunStore  # noqa: E402
from groklab.sweep import summarize  # noqa: E402

ALPHA = "model.init_scale"


def landscape_table(sweep_dir: str | Path, y: str = "task.train_size") -> pd.DataFrame:
    """One row per (y, alpha): best train / test accuracy over the run's evaluations, and
    the errors (1 - best), averaged over seeds. Finished runs only."""
    sweep_dir = Path(sweep_dir)
    df = summarize(sweep_dir)
    for k in (ALPHA, y):
        if k not in df.columns:
            raise ConfigError("--y" if k == y else "SWEEP_DIR", k,
                              f"not an axis of the sweep; axes: {', '.join(c for c in df.columns if '.' in c)}")
    df = df[df["status"] == "done"]
    if df.empty:
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "no finished runs yet")
    metrics = {}
    rows = []
    for _, r in df.iterrows():
        if r["dir"] not in metrics:
            m = RunStore(sweep_dir / r["dir"]).metrics()
            m = m[m["name"].isin(["train_acc", "val_acc"])]
            metrics[r["dir"]] = m.groupby(["member", "name"])["value"].max().unstack()
        best = metrics[r["dir"]].loc[r["member"]]
        rows.append({y: r[y], "alpha": r[ALPHA], "seed": r["seed"],
                     "best_train_acc": best["train_acc"], "best_test_acc": best["val_acc"],
                     "final_train_acc": r["train_acc"], "final_test_acc": r["val_acc"]})
    rows = pd.DataFrame(rows)
    out = rows.groupby([y, "alpha"], as_index=False).mean(numeric_only=True).drop(columns="seed")
    out[y] = out[y].astype(df[y].dtype)  # a size stays an integer (iterrows made it float)
    out["train_error"] = 1 - out["best_train_acc"]
    out["test_error"] = 1 - out["best_test_acc"]
    return out.sort_values([y, "alpha"]).reset_index(drop=True)


def plot_landscape(table: pd.DataFrame, out: str | Path, y: str = "task.train_size",
                   title: str = "fixed-norm training (Omnigrok's LU landscape)") -> Path:
    """Slices (error vs alpha, one colour per ``y``; train dashed, test solid) and heatmaps
    of train and test error over (alpha, ``y``)."""
    sizes = sorted(table[y].unique())
    alphas = sorted(table["alpha"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(sizes)))
    for c, size in zip(colors, sizes):
        s = table[table[y] == size].sort_values("alpha")
        axes[0].plot(s["alpha"], s["train_error"], ls="--", marker=".", color=c, label=f"train, {y.split('.')[-1]}={size}")
        axes[0].plot(s["alpha"], s["test_error"], ls="-", marker="o", ms=4, color=c, label=f"test, {y.split('.')[-1]}={size}")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("alpha = weight norm / default init's")
    axes[0].set_ylabel("error (1 - best accuracy)")
    axes[0].set_ylim(-0.02, 1.0)
    axes[0].legend(fontsize=7)
    axes[0].set_title("slices: train 'L', test 'U'", fontsize=10)
    for ax, key in ((axes[1], "train_error"), (axes[2], "test_error")):
        grid = table.pivot(index=y, columns="alpha", values=key).reindex(index=sizes, columns=alphas)
        im = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="magma_r", vmin=0, vmax=1)
        ax.set_xticks(range(len(alphas)), [f"{a:.2g}" for a in alphas], rotation=60, fontsize=7)
        ax.set_yticks(range(len(sizes)), [str(s) for s in sizes], fontsize=8)
        ax.set_xlabel("alpha")
        ax.set_ylabel(y)
        ax.set_title(key.replace("_", " "), fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
