"""Omnigrok's MNIST runs: groklab (alpha = 8 and alpha = 1 as one ensemble, the real
``groklab train`` CLI, evaluation, checkpoints and process start-up included) against a
plain PyTorch loop run once per alpha (``plain_mnist_loop.py``: ``nn.Sequential``,
``torch.optim.AdamW``, batch 200, no evaluation at all), in the same sitting.

Rounds alternate groklab and the plain loop; each is timed over ``--steps`` steps (the
plain loop's time is for its training steps alone) and the medians over ``--rounds`` are
compared as a ratio. Seconds for the full 100,000 steps are extrapolated from the
per-step times (the full groklab run's own time is in benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/bench_omnigrok.py [--steps 5000] [--rounds 3] [--dtype float32]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from plain_mnist_loop import plain_run

CLI = [sys.executable, "-m", "groklab.cli", "train", "--preset", "omnigrok_mnist", "-q"]


def groklab_run(steps: int, dtype: str, tmp: Path, name: str) -> float:
    t = time.perf_counter()
    subprocess.run(CLI + ["--runs-dir", str(tmp), "--name", name, "--set", "model.init_scale=[8.0,1.0]",
                          "--set", f"train.steps={steps}", "--set", f"model.dtype={dtype}"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-omnigrok-"))
    g, p = [], []
    try:
        for r in range(a.rounds):
            g.append(groklab_run(a.steps, a.dtype, tmp, f"r{r}"))
            p.append(sum(plain_run(alpha, a.steps, getattr(torch, a.dtype))["seconds"] for alpha in (8.0, 1.0)))
            print(f"round {r}: groklab (both alphas) {g[-1]:.1f} s, plain loop (alpha 8 + alpha 1) {p[-1]:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(tmp)
    gm, pm = statistics.median(g), statistics.median(p)
    out = {"dtype": a.dtype, "steps": a.steps, "rounds": a.rounds, "groklab_s": g, "plain_s": p,
           "groklab_median_s": gm, "plain_median_s": pm, "ratio_plain_over_groklab": pm / gm,
           "groklab_ms_per_step_both": 1000 * gm / a.steps, "plain_ms_per_step_one": 1000 * pm / (2 * a.steps),
           "groklab_100k_min_extrapolated": gm / a.steps * 1e5 / 60, "plain_100k_min_extrapolated": pm / a.steps * 1e5 / 60}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
