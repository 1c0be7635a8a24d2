"""Committees after the fact: the validation accuracy of the mean probability of k members of
an ensemble run (one split, different init seeds), for k = 1, 2, 4, ..., E.

For each k it draws ``--draws`` random sets of k members (one set when k = E) and prints the
median and range of their committees' accuracy, and the share of validation rows that at least
one member gets right (the most any committee of these members could reach by voting).

    python benchmarks/committee_posthoc.py RUN_DIR [--step STEP] [--draws 8]

It is how issue 17's x^2+xy+y^2 committees were measured (benchmarks/RESULTS.md, session 17):
a member's committee is the same mean of probabilities that ``model.committee`` trains.
"""

from __future__ import annotations

import argparse
import random

import torch

import groklab


def member_log_probs(run, step: int | None = None, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(E, N_val, C) log-probabilities of every member on the run's validation rows, and the targets."""
    task, model = run.task, run.model(step)
    x = task.inputs[task.val_idx]
    with torch.no_grad():
        lp = torch.cat([torch.log_softmax(model(x[i: i + chunk]).float(), -1) for i in range(0, len(x), chunk)], 1)
    return lp, task.targets[task.val_idx]


def committee_accuracy(lp: torch.Tensor, y: torch.Tensor, members: list[int]) -> float:
    """Accuracy of the mean probability of ``members`` (the argmax of the mean)."""
    return (lp[members].exp().mean(0).argmax(-1) == y).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--step", type=int, default=None, help="checkpoint (default: the last)")
    ap.add_argument("--draws", type=int, default=8, help="random member sets per committee size")
    args = ap.parse_args()
    run = groklab.load_run(args.run)
    lp, y = member_log_probs(run, args.step)
    E = lp.shape[0]
    right = lp.argmax(-1) == y
    print(f"{args.run}: {E} members, {len(y)} validation rows")
    print("members' val acc:", " ".join(f"{v:.3f}" for v in right.float().mean(1).tolist()))
    rng = random.Random(0)
    sizes = sorted({k for k in (1, 2, 4, 8, 12, 16, 24, 32, 64) if k < E} | {E})
    for k in sizes:
        accs = sorted(committee_accuracy(lp, y, rng.sample(range(E), k)) for _ in range(args.draws if k < E else 1))
        print(f"committee of {k:2d}: median {accs[len(accs) // 2]:.4f}  range {accs[0]:.4f}-{accs[-1]:.4f}")
    print(f"rows some member gets right: {right.any(0).float().mean().item():.4f}")


if __name__ == "__main__":
    main()
