"""The cost of durable writes: a nanda2023 run (``--steps`` steps, its real checkpoint
schedule: log-spaced weights and a resume checkpoint every 1,000 steps, metrics and
summary) with groklab's fsyncs (the temporary file before the rename, the directory after)
against the same run with ``groklab.store._fsync`` made a no-op, rounds alternating, in one
process. Also the time spent inside fsync itself. Run it alone on the machine.

    .venv/bin/python benchmarks/bench_fsync.py [--steps 1500] [--rounds 3] [--runs-dir runs/bench_fsync]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import groklab
import groklab.store as store

REAL_FSYNC = store._fsync


def one(steps: int, d: Path, durable: bool) -> tuple[float, float, int]:
    spent, calls = [0.0], [0]

    def timed_fsync(path):
        t = time.perf_counter()
        REAL_FSYNC(path)
        spent[0] += time.perf_counter() - t
        calls[0] += 1

    store._fsync = timed_fsync if durable else (lambda path: None)
    try:
        shutil.rmtree(d, ignore_errors=True)
        cfg = groklab.resolve("nanda2023", overrides=[f"train.steps={steps}", "train.progress=false"])
        t = time.perf_counter()
        groklab.train(cfg, d, progress=False)
        return time.perf_counter() - t, spent[0], calls[0]
    finally:
        store._fsync = REAL_FSYNC


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs-dir", default="runs/bench_fsync")
    a = ap.parse_args()
    root = Path(a.runs_dir)
    res = {"durable": [], "no_fsync": [], "fsync_s": [], "fsync_calls": 0}
    for r in range(a.rounds):
        wall, spent, calls = one(a.steps, root / "durable", True)
        res["durable"].append(round(wall, 2))
        res["fsync_s"].append(round(spent, 3))
        res["fsync_calls"] = calls
        res["no_fsync"].append(round(one(a.steps, root / "plain", False)[0], 2))
    med = {k: statistics.median(res[k]) for k in ("durable", "no_fsync", "fsync_s")}
    res["median"] = med
    res["overhead"] = round(med["durable"] / med["no_fsync"] - 1, 4)
    res["fsync_share_of_durable_run"] = round(med["fsync_s"] / med["durable"], 4)
    print(json.dumps(res, indent=1))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
