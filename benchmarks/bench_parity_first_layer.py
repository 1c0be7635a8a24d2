"""ms per training step of Michaud et al.'s sparse-parity MLP with its first layer as a row
gather (``model.first_layer = "gather"``, groklab's default) against the plain dense product
with the one-hot control block (``"dense"``): the same model (same parameters, same
numbers up to rounding), the same batches, the same sitting.

A step = fresh batch drawn + forward + cross-entropy + backward + Adam update, through
groklab's own loop (``groklab.train``, evaluated only at its first and last step): the
wall time of a run of S steps minus that of a run of S/5 steps, over 4S/5, so that
start-up, evaluation and checkpoints cancel.
Rounds alternate gather and dense; medians over rounds and their ratio are printed.

    .venv/bin/python benchmarks/bench_parity_first_layer.py [--rounds 5] [--config laptop|paper]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import groklab

CONFIGS = {  # (preset, overrides, steps)
    "laptop": ("michaud2023_parity_laptop", ["task.test_per_task=20"], 2000),
    "paper": ("michaud2023_parity", ["task.test_per_task=2", "task.monitor_size=100"], 20),
}


def timed(preset: str, overrides: list[str], steps: int, first: str, tmp: Path, tag: str) -> float:
    cfg = groklab.resolve(preset, overrides=overrides + [f"model.first_layer={first}", f"train.steps={steps}",
                                                          "train.eval_every=1000000000", "measures=[]",
                                                          "train.checkpoint_every=1000000000",
                                                          "train.checkpoints_per_decade=1", "train.progress=false"])
    t = time.perf_counter()
    groklab.train(cfg, tmp / tag, progress=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--config", default="laptop", choices=list(CONFIGS))
    a = ap.parse_args()
    preset, overrides, steps = CONFIGS[a.config]
    tmp = Path(tempfile.mkdtemp(prefix="groklab-parity-"))
    ms = {"gather": [], "dense": []}
    for r in range(a.rounds):
        for first in ("gather", "dense"):
            long = timed(preset, overrides, steps, first, tmp, f"{first}{r}L")
            short = timed(preset, overrides, steps // 5, first, tmp, f"{first}{r}S")
            ms[first].append(1000 * (long - short) / (steps - steps // 5))
    med = {k: statistics.median(v) for k, v in ms.items()}
    print(json.dumps({"config": a.config, "steps": steps, "rounds": a.rounds,
                      "ms_per_step": {k: [round(x, 3) for x in v] for k, v in ms.items()},
                      "median_ms_per_step": {k: round(v, 3) for k, v in med.items()},
                      "dense_over_gather": round(med["dense"] / med["gather"], 3)}, indent=1))


if __name__ == "__main__":
    main()
