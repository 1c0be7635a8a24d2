"""Description length before and after issue 15 (item 2), on the run that showed the problem:
nanda2023 trained for 20,000 steps (``benchmarks/out/nanda2023_20k``).

* **before**: groklab's former measure (commit 841df04, ``measures/numerics.py``), as it was:
  the weights quantised at a fixed step of 1e-2 (int32, lzma preset 6) for the model bits,
  and the training cross-entropy of the *unquantised* model for the data bits. Transliterated
  here, since the package no longer carries it.
* **after**: ``description_length`` as it is now (a two-part code: the data bits under the
  dequantised model whose integers the model bits encode, the step per tensor the coarsest
  power of two within 1e-3 nats of training loss), read from the run's metrics, which
  ``groklab analyze RUN -m description_length`` wrote.

Printed: per checkpoint, the weight norm and both measures; the Pearson correlation of each
measure with the weight norm over all checkpoints and over those after memorisation
(step >= 300). Figure: both measures and the weight norm against the step (each scaled to
its maximum), and each measure against the weight norm.

    .venv/bin/groklab analyze benchmarks/out/nanda2023_20k -m description_length
    .venv/bin/python benchmarks/description_length_before_after.py benchmarks/out/nanda2023_20k \\
        -o docs/nanda2023_description_length_before_after.png
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import groklab  # noqa: E402
from groklab.measures._common import train_logits  # noqa: E402
from groklab.measures.numerics import data_bits_from_logits  # noqa: E402

FORMER_STEP = 1e-2


def former_description_length(model, task) -> tuple[float, float]:
    """(data bits, model bits) of member 0 by the former definition (see the module doc)."""
    with torch.no_grad():
        logits, targets = train_logits(model, task)
        data = float(data_bits_from_logits(logits, targets)[0])
        q = [np.rint(p[0].detach().double().numpy().ravel() / FORMER_STEP).astype("<i4") for p in model.parameters()]
    return data, 8.0 * len(lzma.compress(np.concatenate(q).tobytes(), preset=6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("runs/description_length_before_after.png"))
    args = ap.parse_args()
    run = groklab.load_run(args.run)
    wide = run.wide(0)
    if "description_bits" not in wide:
        raise SystemExit(f"{args.run}: no description_bits in its metrics; run `groklab analyze {args.run} "
                         "-m description_length` first")
    rows = []
    for step in run.checkpoint_steps:
        data, model_bits = former_description_length(run.model(step), run.task)
        w = wide.loc[step]
        rows.append({"step": step, "val_acc": w["val_acc"], "weight_norm": w["weight_norm"],
                     "before_data": data, "before_model": model_bits, "before": data + model_bits,
                     "after_data": w["data_bits"], "after_model": w["model_bits"], "after": w["description_bits"]})
    df = pd.DataFrame(rows).set_index("step")
    with pd.option_context("display.width", 160, "display.max_rows", 100):
        print(df.round(1).to_string())
    late = df[df.index >= 300]
    corr = {}
    for m in ("before", "after"):
        corr[m] = (np.corrcoef(df["weight_norm"], df[m])[0, 1], np.corrcoef(late["weight_norm"], late[m])[0, 1])
        print(f"{m}: Pearson r with the weight norm, all {len(df)} checkpoints {corr[m][0]:.3f}; "
              f"step >= 300 ({len(late)}) {corr[m][1]:.3f}")

    fig, (ax, ax_s) = plt.subplots(1, 2, figsize=(11, 3.9), constrained_layout=True)
    x = np.maximum(df.index.to_numpy(), 1)
    styles = (("weight_norm", "weight norm", "#555555"), ("before", "before: fixed step 1e-2 + unquantised data bits",
                                                          "#ff7f0e"),
              ("after", "after: two-part code (per-tensor step, 1e-3 nat)", "#1f77b4"))
    for col, lab, c in styles:
        ax.plot(x, df[col] / df[col].max(), "-o", ms=2.5, color=c, label=lab)
    ax.plot(x, df["val_acc"], color="#2ca02c", lw=1, alpha=0.6, label="val acc")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("value / its maximum")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{run.config.preset} ({run.path.name}): description length before and after, beside the weight norm", fontsize=9)
    for col, lab, c in styles[1:]:
        ax_s.scatter(df["weight_norm"], df[col] / df[col].max(), s=12, color=c,
                     label=f"{col}: r = {corr[col][0]:.2f} (all), {corr[col][1]:.2f} (step ≥ 300)")
    ax_s.set_xlabel("weight norm")
    ax_s.set_ylabel("description bits / maximum")
    ax_s.grid(alpha=0.3)
    ax_s.legend(fontsize=7, loc="lower right")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=130)
    print(f"figure: {args.output}")


if __name__ == "__main__":
    main()
