"""Liu et al.'s phases before and after issue 15 (item 3) on the run that showed the problem:
the toy phase diagram ``sweeps/liu2022_toy_lr_wd.toml`` (10 lr x 10 weight decays x 3 seeds).

* **before**: the former rule — each first evaluated crossing of 90% taken as the exact step,
  the budget the run's own length, and a cell's phase the one most seeds got, a tie going to
  the earlier phase in (comprehension, grokking, memorization, confusion);
* **after**: the current rule, as the runs' summaries record it (crossings as intervals
  between evaluations, ``undetermined`` where they cannot decide the 10^3-step gap, ties
  drawn as ``tie``).

Prints the run-by-run table (former x current) and the cells that changed, and draws both
phase diagrams side by side.

    .venv/bin/python benchmarks/phases_before_after.py benchmarks/out/issue15/liu2022_toy_lr_wd \\
        -o docs/liu2022_toy_lr_wd_before_after.png
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from groklab.detect import first_step_at_least, phase  # noqa: E402
from groklab.report.sweep_plots import CELLS, PHASE_COLORS, PHASES, modal_phase  # noqa: E402
from groklab.store import RunStore  # noqa: E402
from groklab.sweep import summarize  # noqa: E402

X, Y = "optim.lr", "optim.weight_decay"


def former_phase(w: pd.DataFrame, threshold: float, gap: int) -> str:
    steps = w.index.to_numpy()
    return phase(first_step_at_least(steps, w["train_acc"].to_numpy(), threshold),
                 first_step_at_least(steps, w["val_acc"].to_numpy(), threshold), None, gap)


def former_modal(phases) -> str:
    c = Counter(phases)
    best = max(c.values())
    return next(p for p in PHASES if c.get(p) == best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("runs/phases_before_after.png"))
    args = ap.parse_args()
    df = summarize(args.sweep)
    former = []
    cache: dict[str, pd.DataFrame] = {}
    for r in df.itertuples():
        if r.dir not in cache:
            store = RunStore(args.sweep / r.dir)
            cache[r.dir] = (store.metrics(), store.config().detect)
        m, det = cache[r.dir]
        w = m[m["member"] == r.member].pivot_table(index="step", columns="name", values="value")
        former.append(former_phase(w, det.threshold, det.gap))
    df["former"] = former
    print(pd.crosstab(df["former"], df["phase"], rownames=["former"], colnames=["current"]).to_string())
    cells = {}
    for name, col, modal in (("before", "former", former_modal), ("after", "phase", modal_phase)):
        cells[name] = df.groupby([Y, X])[col].agg(modal).unstack(X).sort_index().sort_index(axis=1)
    changed = (cells["before"] != cells["after"]).to_numpy()
    print(f"cells that changed: {int(changed.sum())} of {changed.size}")
    for (i, j) in zip(*np.nonzero(changed)):
        print(f"  {X}={cells['after'].columns[j]:g} {Y}={cells['after'].index[i]:g}: "
              f"{cells['before'].iat[i, j]} -> {cells['after'].iat[i, j]}")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    cmap = ListedColormap(PHASE_COLORS)
    for ax, name in zip(axes, ("before", "after")):
        t = cells[name]
        codes = t.apply(lambda c: c.map(lambda v: CELLS.index(v))).to_numpy(float)
        ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(CELLS) - 0.5, origin="lower", aspect="auto")
        for (i, j) in zip(*np.nonzero(changed)):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=1.6))
        ax.set_xticks(range(t.shape[1]), [f"{v:.0e}" for v in t.columns], rotation=45, fontsize=7)
        ax.set_yticks(range(t.shape[0]), [f"{v:.0e}" for v in t.index], fontsize=7)
        ax.set_xlabel(X)
        ax.set_ylabel(Y)
        ax.set_title({"before": "before: first crossings as exact steps, ties to the earlier phase",
                      "after": "after: crossings as intervals; undetermined; ties shown"}[name], fontsize=9)
    fig.legend(handles=[Patch(color=c, label=p) for p, c in zip(CELLS, PHASE_COLORS)], loc="outside right center",
               fontsize=8, title="cell (boxed: changed)", title_fontsize=8)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=130)
    print(f"figure: {args.output}")


if __name__ == "__main__":
    main()
