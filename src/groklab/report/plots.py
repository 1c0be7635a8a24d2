"""Figures drawn from saved run files only (never inside the training loop)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from groklab.measures._common import embedding  # noqa: E402
from groklab.measures.fourier import fourier_basis, frequency_sq_norms, key_frequencies  # noqa: E402
from groklab.measures import MEASURES  # noqa: E402
from groklab.phases import nanda_phases  # noqa: E402
from groklab.run import Run  # noqa: E402
from groklab.rundir import writer_pid  # noqa: E402

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
    title = f"{_task_title(cfg)}, {cfg.model.kind}"
    if writer_pid(run.path) is not None:
        title += f" — running (drawn at step {int(df['step'].max())})"
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
    fig.savefig(out, dpi=130, metadata={"Title": title})  # the PNG says what it shows
    plt.close(fig)
    return out


def _task_title(cfg) -> str:
    t = cfg.task
    if t.kind == "algorithmic":
        return f"{t.op} p={t.p}, {t.fraction:.0%} {t.split} split"
    return t.describe()


MEMBER_KEYS = (("init_scale", "α"), ("lr", "lr"), ("weight_decay", "wd"), ("seed", "seed"))


def plot_ensemble(run_dir: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Every member of an ensemble in its own colour, labelled by the per-member values
    that differ (init scale, lr, weight decay, seed): train (dashed) and held-out (solid)
    accuracy vs step, and the weight norm, log x. Returns the PNG path."""
    run = Run(run_dir)
    df = run.metrics
    if df.empty:
        raise ValueError(f"{run.path}: no metrics yet")
    ms = (run.summary or {"members": []})["members"]
    members = sorted(df["member"].unique())
    differ = [(k, sym) for k, sym in MEMBER_KEYS if len({m.get(k) for m in ms}) > 1] if ms else []
    fig, (ax_acc, ax_wn) = plt.subplots(1, 2, figsize=(11, 3.9), constrained_layout=True,
                                        gridspec_kw={"width_ratios": [1.6, 1]})
    colors = plt.cm.tab10(np.arange(len(members)) % 10)
    for e, c in zip(members, colors):
        w = run.wide(e)
        steps = w.index.to_numpy().clip(min=1)
        keys = differ or MEMBER_KEYS[:1]  # one member (or all alike): its init scale
        name = ", ".join(f"{sym}={ms[e][k]:g}" if isinstance(ms[e][k], float) else f"{sym}={ms[e][k]}"
                         for k, sym in keys) if e < len(ms) else f"member {e}"
        ax_acc.plot(steps, w["train_acc"], color=c, ls="--", lw=1.3, label=f"{name}: train")
        ax_acc.plot(steps, w["val_acc"], color=c, lw=1.8, label=f"{name}: held out")
        ax_wn.plot(steps, w["weight_norm"], color=c, lw=1.8, label=name)
    for ax in (ax_acc, ax_wn):
        ax.set_xscale("log")
        ax.set_xlabel("optimization step")
        ax.grid(alpha=0.3)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.legend(fontsize=8, loc="upper left")
    ax_wn.set_ylabel("weight norm ||w||")
    ax_wn.legend(fontsize=8)
    fig.suptitle(title or f"{_task_title(run.config)}, {run.config.model.kind}", fontsize=10)
    out = Path(out) if out else run.path / "ensemble.png"
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
    wanted = []
    for n in names:  # a saved metric, or a measure's name (as `analyze` takes it): its saved metrics
        if n in w:
            wanted.append(n)
        elif n in MEASURES and [m for m in MEASURES[n].metrics if m in w]:
            wanted += [m for m in MEASURES[n].metrics if m in w and w[m].notna().any()]
        else:
            how = f"groklab analyze {run.path} -m {n}" if n in MEASURES else f"groklab analyze {run.path} -m ..."
            raise ValueError(f"{run.path}: no metric {n!r} saved; compute it with `{how}` "
                             f"(saved: {', '.join(w.columns)})")
    names = wanted
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
    run = Run(run_dir)
    if run.config.task.kind != "algorithmic":
        raise ValueError(f"{run.path}: the Fourier spectrum needs a modular table (task.kind='algorithmic'); "
                         f"this run's task.kind is {run.config.task.kind!r}")
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


PHASE_COLORS = {"memorization": "#9ecae1", "circuit formation": "#fdd0a2", "cleanup": "#a1d99b"}
RESTRICTED, EXCLUDED, WNORM = "#2ca02c", "#9467bd", "#7f7f7f"


def plot_phases(run_dir: str | Path, out: str | Path | None = None, member: int = 0) -> Path:
    """The phases of Nanda et al. 2023 (memorization, circuit formation, cleanup) shaded on
    train/val accuracy (top), with train, val, restricted and excluded loss (middle, log y)
    and the weight norm (bottom, if saved), log x. Boundaries from
    :func:`groklab.phases.nanda_phases` on the saved curves. Reads metrics.parquet
    only; the restricted/excluded loss must have been saved by ``groklab analyze``."""
    from matplotlib.patches import Patch


    run = Run(run_dir)
    w = run.wide(member)
    if w.empty:
        raise ValueError(f"{run.path}: no metrics for member {member}")
    missing = [n for n in ("restricted_loss", "excluded_loss") if n not in w]
    if missing:
        raise ValueError(f"{run.path}: no {' / '.join(missing)} saved; compute them first with "
                         f"`groklab analyze {run.path} -m restricted_loss`")
    cp = w.dropna(subset=["train_loss", "val_loss", "restricted_loss", "excluded_loss"])
    ph = nanda_phases(cp.index.to_numpy(), cp["train_loss"], cp["val_loss"], cp["restricted_loss"],
                      cp["excluded_loss"])
    steps = w.index.to_numpy().clip(min=1)  # step 0 drawn at 1 on the log axis
    x0, x1 = float(steps[0]), float(steps[-1])
    ends = {"memorization": ph.memorization_end, "circuit formation": ph.circuit_formation_end,
            "cleanup": ph.cleanup_end}
    spans: list[tuple[str, int, int | None]] = []  # (phase, first step, last step; None: not ended)
    start = int(w.index[0])
    for name, end in ends.items():  # a phase is drawn once the one before it has ended
        spans.append((name, start, end))
        if end is None:
            break
        start = end

    has_wn = "weight_norm" in w and w["weight_norm"].notna().any()
    n_rows = 3 if has_wn else 2
    fig, axes = plt.subplots(n_rows, 1, figsize=(8, 2.6 * n_rows + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": [1.0, 1.3, 0.7][:n_rows]}, constrained_layout=True)
    ax_acc, ax_loss = axes[0], axes[1]
    for ax in axes:
        for name, a, b in spans:
            ax.axvspan(max(a, 1), x1 if b is None else max(b, 1), color=PHASE_COLORS[name], alpha=0.4, lw=0)
            if b is not None:
                ax.axvline(max(b, 1), color="k", lw=0.7, ls=":")
    phase_handles = [Patch(color=PHASE_COLORS[name], alpha=0.6, label=f"{name}: {a}–{'…' if b is None else b}")
                     for name, a, b in spans]
    ax_acc.plot(steps, w["train_acc"], color=TRAIN, label="train")
    ax_acc.plot(steps, w["val_acc"], color=VAL, label="val")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.add_artist(ax_acc.legend(fontsize=8, loc="lower right"))
    ax_acc.legend(handles=phase_handles, title="phase (steps)", fontsize=8, title_fontsize=8, loc="center left")

    cs = cp.index.to_numpy().clip(min=1)
    ax_loss.plot(steps, w["train_loss"], color=TRAIN, lw=1, alpha=0.8, label="train")
    ax_loss.plot(steps, w["val_loss"], color=VAL, lw=1.3, label="val")
    ax_loss.plot(cs, cp["restricted_loss"], color=RESTRICTED, lw=1.6, marker=".", ms=4, label="restricted (all p² inputs)")
    ax_loss.plot(cs, cp["excluded_loss"], color=EXCLUDED, lw=1.6, marker=".", ms=4, label="excluded (train rows)")
    ax_loss.axhline(math.log(run.task.out_dim), color="k", lw=0.6, ls="--", alpha=0.6)  # chance
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss (nats)")
    ax_loss.legend(fontsize=7.5, loc="lower left", ncol=2)
    if has_wn:
        wn = w["weight_norm"].dropna()
        axes[2].plot(wn.index.to_numpy().clip(min=1), wn.to_numpy(), color=WNORM)
        axes[2].set_ylabel("weight norm")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(x0, x1)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("optimization step")
    t = run.config.task
    fig.suptitle(f"{run.path.name} ({t.op} p={t.p}, {t.fraction:.0%} train), member {member}: the phases of "
                 f"Nanda et al. 2023\n(boundaries: groklab.phases.nanda_phases; dashed: log p, "
                 f"the loss of a uniform guess)", fontsize=9.5)
    out = Path(out) if out else run.path / "phases.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def plot_compare(run_dirs: list[str | Path], out: str | Path, member: int | None = None) -> Path:
    """Train (dashed) and val (solid) accuracy and loss of several runs (every member, or
    ``member``) overlaid, one colour per curve, log x. The PNG twin of ``groklab compare``'s
    HTML. Returns the PNG path."""
    runs = [Run(p) for p in run_dirs]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    k = 0
    for r in runs:
        df = r.metrics
        if df.empty:
            continue
        all_members = sorted(df["member"].unique())
        if member is not None and member not in all_members:
            raise ValueError(f"--member {member}: {r.path} has members {all_members}")
        for e in all_members if member is None else [member]:
            w = r.wide(e)
            steps = w.index.to_numpy().clip(min=1)
            c = plt.cm.tab10(k % 10)
            k += 1
            name = r.path.name + (f"[{e}]" if len(all_members) > 1 else "")
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                ax.plot(steps, w[f"train_{metric}"], color=c, ls="--", lw=1.0)
                ax.plot(steps, w[f"val_{metric}"], color=c, lw=1.6, label=name)
    for ax, name in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.set_xscale("log")
        ax.set_xlabel("optimization step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_loss.set_yscale("log")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.legend(fontsize=7, loc="upper left", title="val (solid), train (dashed)", title_fontsize=7)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
