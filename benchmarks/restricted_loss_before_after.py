"""Restricted and excluded loss before and after issue 15 (item 4), on nanda2023 (20,000 steps).

* **before**: groklab's former default — key frequencies recomputed at every checkpoint, the
  losses over the training rows (``groklab analyze RUN -m restricted_loss --per-step-keys``:
  ``restricted_loss_train``, ``excluded_loss``);
* **after**: Nanda et al.'s convention, now the default — the key frequencies of the final
  model, the restricted loss over all p^2 inputs (``restricted_loss``) and the excluded loss
  over the training rows (``excluded_loss``), as their ``mode='all'`` / ``mode='train'``.

    cp -r benchmarks/out/nanda2023_20k /tmp/n20k_ps
    .venv/bin/groklab analyze /tmp/n20k_ps -m restricted_loss --per-step-keys
    .venv/bin/python benchmarks/restricted_loss_before_after.py benchmarks/out/nanda2023_20k /tmp/n20k_ps \\
        -o docs/nanda2023_restricted_loss_before_after.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import groklab  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("after", type=Path, help="the run analysed with the default (final keys)")
    ap.add_argument("before", type=Path, help="a copy analysed with --per-step-keys")
    ap.add_argument("-o", "--output", type=Path, default=Path("runs/restricted_loss_before_after.png"))
    args = ap.parse_args()
    a, b = groklab.load_run(args.after).wide(0), groklab.load_run(args.before).wide(0)
    cols = {"before: restricted (per-step keys, train rows)": (b, "restricted_loss_train", "#ff7f0e", "-"),
            "before: excluded (per-step keys, train rows)": (b, "excluded_loss", "#ff7f0e", "--"),
            "after: restricted (final keys, all p² inputs)": (a, "restricted_loss", "#1f77b4", "-"),
            "after: excluded (final keys, train rows)": (a, "excluded_loss", "#1f77b4", "--")}
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    ax.plot(np.maximum(a.index, 1), a["train_loss"], color="#999999", lw=1, label="train loss")
    ax.plot(np.maximum(a.index, 1), a["val_loss"], color="#d62728", lw=1, label="val loss")
    print("step  " + "  ".join(f"{k}" for k in cols))
    for label, (w, col, c, ls) in cols.items():
        s = w[col].dropna()
        ax.plot(np.maximum(s.index, 1), s, color=c, ls=ls, marker=".", ms=4, label=label)
    for step in (158, 1585, 3981, 5012, 6310, 7943, 20000):
        print(step, "  ".join(f"{w[col].get(step, np.nan):.3g}" for w, col, _, _ in cols.values()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    ax.set_title("nanda2023: restricted and excluded loss, former default vs Nanda et al.'s convention", fontsize=9)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=130)
    print(f"figure: {args.output}")


if __name__ == "__main__":
    main()
