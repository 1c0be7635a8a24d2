"""RQI before and after issue 15 on the runs that showed the problem: Liu et al.'s toy
model in the set-up of ``sweeps/liu2022_toy_fraction.toml`` (a + b, p = 10, 1-D embedding,
MSE, AdamW lr 1e-3, weight decay 0.1) trained on 45 of the 55 samples (the paper's Fig. 3
setting train_num = 45), ``--seeds`` init seeds as one ensemble, weights kept at 20 steps a
decade.

For each member, at the end of training and along it:
* ``before``: groklab's former RQI (ordered pairs of training rows, delta = 0.05 x the
  embedding's RMS spread around its centroid, unnormalised);
* ``rqi``, ``rqi_train``, ``rqi_pred_acc``: Liu et al.'s definitions as their code computes
  them (``groklab.measures.parallelograms``);
* the real validation accuracy, the linear fit R^2 of the representation, and the first
  saved step at which RQI > 0.95 (their ``iter_rqi``) beside the first at which R^2 >= 0.99.

    .venv/bin/python benchmarks/rqi_before_after.py [--seeds 0 1 2] [--steps 5000] [--runs-dir runs/rqi_before_after] \
        [-o docs/rqi_before_after.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

import groklab
from groklab.measures.parallelograms import rqi_from_embedding
from groklab.theory.effective import linearity, parallelograms_of_task


def rqi_before(W: torch.Tensor, task) -> float:
    """The definition groklab used before: share of the training quadruples (ordered pairs of
    training rows, same answer, not trivial) with |E_i + E_j - E_m - E_n| <= 0.05 x RMS spread."""
    W = W.double()
    q = torch.as_tensor(parallelograms_of_task(task))
    if not len(q):
        return 0.0
    delta = 0.05 * (W - W.mean(0)).square().sum(-1).mean().sqrt()
    d = (W[q[:, 0]] + W[q[:, 1]] - W[q[:, 2]] - W[q[:, 3]]).norm(dim=-1)
    return (d <= delta).double().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--runs-dir", default="runs/rqi_before_after")
    ap.add_argument("-o", "--output", default=None, help="PNG: RQI before / after and R^2 against the step")
    args = ap.parse_args()
    d = Path(args.runs_dir)
    shutil.rmtree(d, ignore_errors=True)
    sweep_base = ["model.hidden=[32,32]", "model.embed_init_scale=0.01", "optim.name=adamw", "optim.lr=1e-3",
                  "optim.embed_lr=1e-3", "optim.weight_decay=0.1", "optim.embed_wd_mult=0", "train.loss=mse"]
    cfg = groklab.resolve("liu2022_toy", overrides=[*sweep_base, f"task.fraction={45 / 55}",
                                                    f"train.steps={args.steps}", f"train.seeds={args.seeds}",
                                                    "train.checkpoints_per_decade=20", "train.progress=false"])
    run = groklab.train(cfg, d, progress=False)
    task = run.task
    rows, curves = [], []
    for e, seed in enumerate(args.seeds):
        first_rqi = first_before = first_lin = None
        at_lin = {}
        for step in run.checkpoint_steps:
            W = run.store.load_weights(step)[1]["W_E"][e]
            new = rqi_from_embedding(W[None], task)["rqi"].item()
            curves.append((seed, step, rqi_before(W, task), new, float(linearity(W))))
            if first_rqi is None and new > 0.95:
                first_rqi = step
            if first_before is None and rqi_before(W, task) > 0.95:
                first_before = step
            if first_lin is None and linearity(W) >= 0.99:
                first_lin = step
                at_lin = {"before_at_linear": round(rqi_before(W, task), 4), "rqi_at_linear": round(new, 4)}
        W = run.store.load_weights()[1]["W_E"][e]
        new = {k: round(v.item(), 4) for k, v in rqi_from_embedding(W[None], task).items()}
        m = run.summary["members"][e]
        rows.append({"seed": seed, "before": round(rqi_before(W, task), 4), **new,
                     "val_acc": round(m["val_acc"], 4), "linearity_r2": round(float(linearity(W)), 5),
                     "first_step_rqi_gt_0.95": first_rqi, "first_step_before_gt_0.95": first_before,
                     "first_step_linear_r2_0.99": first_lin, **at_lin})
    for r in rows:
        print(json.dumps(r))
    if args.output:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        c = np.array(curves)
        fig, axes = plt.subplots(1, len(args.seeds), figsize=(4 * len(args.seeds), 3.4), constrained_layout=True,
                                 sharey=True, squeeze=False)
        for ax, seed in zip(axes[0], args.seeds):
            k = c[c[:, 0] == seed]
            x = np.maximum(k[:, 1], 1)
            ax.plot(x, k[:, 2], "-o", ms=2.5, color="#ff7f0e", label="before: training pairs, δ = 0.05 RMS")
            ax.plot(x, k[:, 3], "-o", ms=2.5, color="#1f77b4", label="after: Liu et al.'s rqi")
            ax.plot(x, k[:, 4], color="#555555", lw=1, label="R² of a linear fit")
            ax.axhline(0.95, color="k", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("step")
            ax.set_title(f"seed {seed}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("RQI / R²")
        axes[0][0].legend(fontsize=7, loc="upper left")
        fig.suptitle("toy model, a+b (p = 10), 45 of 55 training samples: RQI before and after", fontsize=10)
        fig.savefig(args.output, dpi=130)
        print(f"figure: {args.output}")


if __name__ == "__main__":
    main()
