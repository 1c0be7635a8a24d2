"""Figures of a sweep, drawn from its ``summary.parquet`` alone.

* :func:`plot_phase_diagram`: a heatmap over two axes, each cell coloured by the phase most
  seeds reached (Liu et al. 2022, Table 1 and Figs. 6-7) or by the median of a metric.
* :func:`plot_sweep_curve`: a metric against one axis, median and every seed (as Power et
  al. 2022, Fig. 2: steps to generalise against the training fraction).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from groklab.config import ConfigError  # noqa: E402

from groklab.detect import CELLS, PHASES, modal_phase  # noqa: E402,F401  (re-exported)
from groklab.report.palette import PHASE_COLORS  # noqa: E402,F401
STEP_METRICS = ("step_train_99", "step_val_99", "seconds_val_99")


def _check(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    for k in keys:
        if k not in df.columns:
            axes = [c for c in df.columns if "." in c]
            raise ConfigError("--x/--y/--color", k, f"not a column of the sweep; axes: {', '.join(axes)}")
    done = df[df["status"] == "done"]
    if done.empty:
        raise ConfigError("SWEEP_DIR", "summary.parquet", "no finished runs yet")
    return done


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def _metric_values(s: pd.Series, metric: str) -> pd.Series:
    v = pd.to_numeric(s, errors="coerce").astype(float)
    return np.log10(v.clip(lower=1)) if metric in STEP_METRICS else v


def phase_table(df: pd.DataFrame, x: str, y: str, color: str = "phase") -> pd.DataFrame:
    """(y values) x (x values) table of the modal phase or the metric's median over seeds."""
    done = _check(df, x, y, *(() if color == "phase" else (color,)))
    if color == "phase":
        agg = done.groupby([y, x])["phase"].agg(modal_phase)
    else:
        done = done.assign(_m=_metric_values(done[color], color))
        agg = done.groupby([y, x])["_m"].median()
    return agg.unstack(x).sort_index().sort_index(axis=1)


def plot_phase_diagram(df: pd.DataFrame, x: str, y: str, out: str | Path, color: str = "phase",
                       title: str | None = None) -> Path:
    table = phase_table(df, x, y, color)
    xs, ys = list(table.columns), list(table.index)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.6 + 0.5 * len(xs)), max(4.0, 1.2 + 0.42 * len(ys))), dpi=150)
    if color == "phase":
        codes = table.apply(lambda col: col.map(lambda p: CELLS.index(p) if p in CELLS else np.nan))
        ax.imshow(codes.to_numpy(float), origin="lower", aspect="auto", vmin=-0.5, vmax=len(CELLS) - 0.5,
                  cmap=ListedColormap(PHASE_COLORS))
        present = [p for p in CELLS if (table == p).to_numpy().any()]
        ax.legend(handles=[Patch(color=PHASE_COLORS[CELLS.index(p)], label=p) for p in present],
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        n_seeds = df.groupby([y, x]).size().max()
        label = f"phase (most of {n_seeds} seeds; tie: no majority)"
    else:
        arr = table.to_numpy(float)
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("#cccccc")
        im = ax.imshow(np.ma.masked_invalid(arr), origin="lower", aspect="auto", cmap=cmap)
        label = f"log10 {color} (median; grey: never)" if color in STEP_METRICS else f"{color} (median)"
        fig.colorbar(im, ax=ax, label=label)
    ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys], fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title or label, fontsize=10)
    return _save(fig, out)


def plot_sweep_curve(df: pd.DataFrame, x: str, out: str | Path, metric: str = "step_val_99",
                     title: str | None = None) -> Path:
    """``metric`` against axis ``x``: every run (dots), the median over the runs that got
    there (line), and the share of runs that did (right axis) for step metrics. A second
    swept axis gets one curve per value (never pooled silently); more than one is refused."""
    done = _check(df, x, metric)
    others = [c for c in done.columns if "." in c and c != x and done[c].nunique() > 1]
    if len(others) > 1:
        raise ConfigError("--x", x, f"the sweep also varies {', '.join(others)}: draw a phase diagram with --y, "
                                    "or a sweep that varies one other axis at most")
    by = others[0] if others else None
    vals = pd.to_numeric(done[metric], errors="coerce").astype(float)
    done = done.assign(_v=vals)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=150)
    ax2 = None
    groups = list(done.groupby(by)) if by else [(None, done)]
    for i, (level, part) in enumerate(groups):
        color = f"C{i % 10}"
        name = "" if by is None else f"{by}={_fmt(level)}: "
        ax.scatter(part[x], part["_v"], s=12, alpha=0.5, color=color,
                   label=f"{name}one run" if by else "one run (seed)")
        g = part.groupby(x)["_v"]
        med = g.median()
        ax.plot(med.index, med.to_numpy(), "-o", color=color, label=f"{name}median")
        if metric in STEP_METRICS:
            share = g.apply(lambda s: s.notna().mean())
            if ax2 is None:
                ax2 = ax.twinx()
                ax2.set_ylim(-0.05, 1.05)
                ax2.set_ylabel("share of runs reaching it (dashed)")
            ax2.plot(share.index, share.to_numpy(), "--", color=color)
    if metric in STEP_METRICS:
        ax.set_yscale("log")
    xs = np.asarray(sorted(done[x].unique()), float)
    if len(xs) > 2 and xs.min() > 0 and xs.max() / xs.min() > 50:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.legend(loc="upper right", fontsize=7 if by else 8, frameon=False)
    ax.set_title(title or f"{metric} vs {x}", fontsize=10)
    return _save(fig, out)


__all__ = ["PHASES", "modal_phase", "phase_table", "plot_phase_diagram", "plot_sweep_curve"]
