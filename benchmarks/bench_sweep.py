"""Wall-clock of one sweep spec under the `ensemble` and `process` executors (issue 4).

Each repeat runs the whole spec from scratch in a fresh directory through the real CLI and
times it end to end (start-up, training, summary). Run it on an otherwise idle machine: any
other work on the 2 cores spoils the timing. Afterwards it checks that both executors gave
the same per-run results.

    .venv/bin/python benchmarks/bench_sweep.py sweeps/liu2022_toy_lr_wd.toml --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GROKLAB = [sys.executable, "-m", "groklab.cli"]


def run_once(spec: Path, executor: str, out: Path, workers: int | None) -> float:
    if out.exists():
        shutil.rmtree(out)
    cmd = GROKLAB + ["sweep", str(spec), "--executor", executor, "--runs-dir", str(out), "-q"]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", type=Path)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each executor (median quoted)")
    ap.add_argument("--process-repeats", type=int, default=1, help="runs of the (slow) process executor")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "bench_sweep")
    args = ap.parse_args()

    times: dict[str, list[float]] = {"ensemble": [], "process": []}
    for executor, n in (("ensemble", args.repeats), ("process", args.process_repeats)):
        for i in range(n):
            dt = run_once(args.spec, executor, args.out / executor, args.workers if executor == "process" else None)
            times[executor].append(dt)
            print(f"{executor} #{i + 1}: {dt:.1f} s", flush=True)
    name = next((args.out / "ensemble").iterdir()).name
    a = pd.read_parquet(args.out / "ensemble" / name / "summary.parquet").sort_values("run")
    b = pd.read_parquet(args.out / "process" / name / "summary.parquet").sort_values("run")
    same_phase = (a["phase"].to_numpy() == b["phase"].to_numpy()).mean()
    loss_diff = float((a["train_loss"].to_numpy() - b["train_loss"].to_numpy()).__abs__().max())
    med = {k: statistics.median(v) for k, v in times.items() if v}
    result = {"spec": str(args.spec), "runs": len(a), "seconds": times, "median_s": med,
              "ratio_process_over_ensemble": med["process"] / med["ensemble"],
              "same_phase_share": same_phase, "max_train_loss_diff": loss_diff,
              "phases": a["phase"].value_counts().to_dict()}
    print(json.dumps(result, indent=2))
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
