"""Forward + backward time of a preset's model under two source trees (an older commit's
worktree against this one), in paired rounds: each round runs one process per tree, one
after the other, the order alternating; each process times ``--steps`` full-batch steps
(after 5 to warm up) ``--repeats`` times and reports the median. We report each tree's
median over rounds and the median of the per-round ratios new / old. Run it alone.

    git worktree add /tmp/oldtree <commit>
    .venv/bin/python benchmarks/ab_commits.py /tmp/oldtree --preset power2022 --rounds 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import statistics, sys, time, torch
import groklab
from groklab.models import build_model
from groklab.tasks import make_task
torch.set_num_threads({threads})
cfg = groklab.resolve({preset!r})
task = make_task(cfg.task)
model = build_model(cfg, task, torch.device("cpu"))
tok, y = task.tokens[task.train_idx], task.c[task.train_idx]
def step():
    logits = model(tok)
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(logits.shape[0])).backward()
for _ in range(5):
    step()
times = []
for _ in range({repeats}):
    t = time.perf_counter()
    for _ in range({steps}):
        step()
    times.append((time.perf_counter() - t) / {steps} * 1000)
print(statistics.median(times))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="the older source tree (a git worktree)")
    ap.add_argument("--preset", default="power2022")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    trees = {"old": args.old / "src", "new": Path(__file__).resolve().parent.parent / "src"}
    code = CHILD.format(threads=args.threads, preset=args.preset, repeats=args.repeats, steps=args.steps)
    ms: dict[str, list[float]] = {"old": [], "new": []}
    ratios = []
    for r in range(args.rounds):
        for tag in (("old", "new") if r % 2 == 0 else ("new", "old")):
            out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(trees[tag])},
                                 capture_output=True, text=True, check=True).stdout
            ms[tag].append(float(out))
        ratios.append(ms["new"][-1] / ms["old"][-1])
        print(f"round {r}: old {ms['old'][-1]:.1f} ms, new {ms['new'][-1]:.1f} ms, new/old {ratios[-1]:.3f}", flush=True)
    q = statistics.quantiles(ratios, n=4)
    print(f"{args.preset}: old {statistics.median(ms['old']):.1f} ms/step, new {statistics.median(ms['new']):.1f} "
          f"ms/step (medians of {args.rounds} rounds); new/old median {statistics.median(ratios):.3f} "
          f"[IQR {q[0]:.3f}-{q[2]:.3f}]")


if __name__ == "__main__":
    main()
