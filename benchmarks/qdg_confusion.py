"""Where QDG's clusters and the true subtasks disagree, for one trained sparse-parity run.

Runs QDG as ``benchmarks/qdg_seeds.py`` does (3,000 fresh samples, clustering seed 0, subtasks
with at least 5 kept samples) and prints, for each learned subtask: its parity bits, its
samples, the cluster holding most of them and that share, and how many subtasks that cluster
mixes. A subtask split over clusters has a low share. Subtasks merged into one cluster show
the same cluster. Their bits show whether they share data bits.

    .venv/bin/python benchmarks/qdg_confusion.py RUN_DIR [--clustering average|spectral] [--norm global|tensor]
"""

from __future__ import annotations

import argparse

import pandas as pd

from groklab.quanta.qdg import qdg
from groklab.run import Run
from qdg_seeds import SAMPLES, TAU  # the same QDG settings as the seed-by-seed scores (this folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--clustering", default="average", choices=["average", "spectral"])
    ap.add_argument("--norm", default="global", choices=["global", "tensor"])
    args = ap.parse_args()
    run = Run(args.run)
    kw = {"gradient": "logit_diff", "clustering": "average"} if args.clustering == "average" else \
        {"gradient": "logit_diff", "affinity": "rbf", "tau": TAU}
    r = qdg(run.model(), run.task, 0, SAMPLES, min_count=5, norm=args.norm, **kw)
    print(f"{r['method']}: ARI {r['ari']:.3f}, {r['n_subtasks']} subtasks, {r['n_kept']} samples")
    ct = pd.crosstab(r["true"], r["labels"])
    subsets = run.task.subsets
    for s, row in ct.iterrows():
        c = row.idxmax()
        print(f"subtask {s:3d} bits {subsets[s - 1].tolist()!s:14s} samples {row.sum():5d}  main cluster {c:2d} "
              f"({row.max() / row.sum():.2f} of them; the cluster mixes {(ct[c] > 0).sum()} subtasks)")


if __name__ == "__main__":
    main()
