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
