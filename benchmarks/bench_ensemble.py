"""16 seeds as one ensemble vs 16 sequential `groklab train` runs (liu2022_toy, 3000 steps).

Both sides are the real CLI, timed end to end as a user would run them (process start-up
included). Afterwards every ensemble member is compared with its single run.

    .venv/bin/python benchmarks/bench_ensemble.py [--seeds 16] [--steps 3000]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from groklab import load_run

CLI = [sys.executable, "-m", "groklab.cli", "train", "--preset", "liu2022_toy", "-q"]


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-bench-"))
    seeds = list(range(args.seeds))
    common = ["--runs-dir", str(tmp), "--set", f"train.steps={args.steps}"]
    t_ens = run(CLI + common + ["--name", "ensemble", "--set", f"train.seeds={seeds}"])
    t_seq = sum(run(CLI + common + ["--name", f"seed{s}", "--set", f"train.seeds=[{s}]"]) for s in seeds)

    ens = load_run(tmp / "ensemble")
    w_ens = ens.model().state_dict()
    worst_w, worst_loss = 0.0, 0.0
    for s in seeds:
        one = load_run(tmp / f"seed{s}")
        w_one = one.model().state_dict()
        for k in w_ens:
            a, b = w_ens[k][s].double(), w_one[k][0].double()
            worst_w = max(worst_w, float((a - b).norm() / b.norm().clamp_min(1e-12)))
        la, lb = ens.summary["members"][s]["train_loss"], one.summary["members"][0]["train_loss"]
        worst_loss = max(worst_loss, abs(la - lb) / max(abs(lb), 1e-12))
    print(f"| {args.seeds} seeds x {args.steps} steps | ensemble {t_ens:.1f} s | sequential {t_seq:.1f} s "
          f"| ratio {t_ens / t_seq:.3f} ({t_seq / t_ens:.1f}x faster) "
          f"| max rel. weight diff {worst_w:.1e} | max rel. train-loss diff {worst_loss:.1e} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
