"""Figures drawn from saved run files only (never inside the training loop)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from groklab.run import Run  # noqa: E402

TRAIN, VAL = "#1f77b4", "#d62728"


def plot_run(run_dir: str | Path, out: str | Path | None = None, member: int | None = None) -> Path:
    """Accuracy and loss vs step (log x), train and val, with the 99% events marked.

    All members are drawn (thin lines) unless ``member`` picks one. Returns the PNG path.
    """
    run = Run(run_dir)
    df = run.metrics
    if df.empty:
        raise ValueError(f"{run.path}: no metrics yet")
    summary = run.summary or {"members": []}
    members = sorted(df["member"].unique()) if member is None else [member]
    cfg = run.config
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    lw = 1.8 if len(members) == 1 else 0.9
    for e in members:
        w = run.wide(e)
        steps = w.index.to_numpy().clip(min=1)  # step 0 drawn at 1 on the log axis
        label = (lambda s: s) if e == members[0] else (lambda s: None)
        ax_acc.plot(steps, w["train_acc"], color=TRAIN, lw=lw, label=label("train"))
        ax_acc.plot(steps, w["val_acc"], color=VAL, lw=lw, label=label("val"))
        ax_loss.plot(steps, w["train_loss"], color=TRAIN, lw=lw, label=label("train"))
        ax_loss.plot(steps, w["val_loss"], color=VAL, lw=lw, label=label("val"))
        if e < len(summary["members"]):
            m = summary["members"][e]
            for key, color in (("step_train_99", TRAIN), ("step_val_99", VAL)):
                if m.get(key):
                    ax_acc.axvline(max(m[key], 1), color=color, ls="--", lw=0.8, alpha=0.7)
    if len(members) == 1 and members[0] < len(summary["members"]):
        m = summary["members"][members[0]]
        txt = f"train≥99% @ {m.get('step_train_99')}\nval≥99% @ {m.get('step_val_99')}\nphase: {m.get('phase')}"
        ax_acc.text(0.02, 0.97, txt, transform=ax_acc.transAxes, va="top", fontsize=8,
                    bbox=dict(boxstyle="round", fc="white", alpha=0.8))
    t = cfg.task
    title = f"{t.op} p={t.p}, {t.fraction:.0%} {t.split} split, {cfg.model.kind}"
    for ax, name in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.set_xscale("log")
        ax.set_xlabel("optimization step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if name == "accuracy" else "lower left", fontsize=8)
    ax_loss.set_yscale("log")
    ax_acc.set_ylim(-0.02, 1.02)
    fig.suptitle(title, fontsize=10)
    out = Path(out) if out else run.path / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def _events(run, member: int) -> dict:
    s = run.summary or {"members": []}
    return s["members"][member] if member < len(s["members"]) else {}


def plot_measures(run_dir: str | Path, names: list[str], out: str | Path | None = None,
                  member: int = 0) -> Path:
    """Accuracy (top) and each metric in ``names`` (below) vs step, log x, for one member,
    with the train/val 99% events marked on every panel. Reads saved files only."""
    run = Run(run_dir)
    w = run.wide(member)
    missing = [n for n in names if n not in w]
    if missing:
        raise ValueError(f"{run.path}: no metric {missing[0]!r} saved; compute it with "
                         f"`groklab analyze {run.path} --measures ...` (saved: {', '.join(w.columns)})")
    ev = _events(run, member)
    fig, axes = plt.subplots(len(names) + 1, 1, figsize=(7, 2.2 * (len(names) + 1)), sharex=True,
                             constrained_layout=True)
    ax = axes[0]
    steps = w.index.to_numpy().clip(min=1)
    ax.plot(steps, w["train_acc"], color=TRAIN, label="train")
    ax.plot(steps, w["val_acc"], color=VAL, label="val")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="center left")
    for ax, name in zip(axes[1:], names):
        col = w[name].dropna()
        ax.plot(col.index.to_numpy().clip(min=1), col.to_numpy(), color="#2ca02c", marker=".", ms=3)
        ax.set_ylabel(name, fontsize=8)
        if name.endswith("loss") and (col > 0).all():
            ax.set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        for key, color in (("step_train_99", TRAIN), ("step_val_99", VAL)):
            if ev.get(key):
                ax.axvline(max(ev[key], 1), color=color, ls="--", lw=0.8, alpha=0.7)
    axes[-1].set_xlabel("optimization step")
    fig.suptitle(f"{run.path.name}: progress measures (member {member})", fontsize=10)
    out = Path(out) if out else run.path / "measures.png"
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def plot_fourier(run_dir: str | Path, step: int | None = None, out: str | Path | None = None,
                 member: int = 0) -> Path:
    """The embedding's Fourier spectrum (norm per frequency, key frequencies marked) and the
    embedding projected on the top key frequency's cos/sin pair: the circle of Nanda et al.
    2023. From a saved checkpoint (the last by default)."""
    import numpy as np
    import torch

    from groklab.measures._common import embedding
    from groklab.measures.fourier import fourier_basis, frequency_sq_norms, key_frequencies

    run = Run(run_dir)
    step = run.checkpoint_steps[-1] if step is None else step
    model, task = run.model(step=step), run.task
    with torch.no_grad():
        W = embedding(model, task)[member : member + 1].double()  # (1, p, d)
        sq = frequency_sq_norms(W)[0]  # (p//2 + 1,)
        keys = key_frequencies(sq[None])[0]
        p = W.shape[1]
        B = fourier_basis(p, W.dtype)
        coef = B @ W[0]  # (p, d): one row per basis function
    norms = sq.sqrt().numpy()
    k = keys[0]
    cos_dir, sin_dir = coef[2 * k - 1], coef[2 * k]  # directions of frequency k in embedding space
    Wc = (W[0] - W[0].mean(0)).numpy()
    xy = np.stack([Wc @ (cos_dir / cos_dir.norm()).numpy(), Wc @ (sin_dir / sin_dir.norm()).numpy()], 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    freqs = np.arange(len(norms))
    colors = ["#d62728" if f in keys else "#7f7f7f" for f in freqs]
    a1.bar(freqs[1:], norms[1:], color=colors[1:], width=0.8)
    a1.set_xlabel("frequency k")
    a1.set_ylabel("embedding norm in frequency k")
    a1.set_title(f"step {step}: key frequencies {keys}", fontsize=9)
    sc = a2.scatter(xy[:, 0], xy[:, 1], c=np.arange(p), cmap="twilight", s=18)
    for i in range(0, p, max(1, p // 12)):
        a2.annotate(str(i), xy[i], fontsize=7)
    a2.set_aspect("equal")
    a2.set_title(f"embedding on the cos/sin directions of k = {k}", fontsize=9)
    fig.colorbar(sc, ax=a2, label="token")
    out = Path(out) if out else run.path / f"fourier_{step:08d}.png"
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
