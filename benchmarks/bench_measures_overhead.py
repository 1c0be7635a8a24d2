"""Training time of nanda2023 with and without live progress measures.

Both runs: the nanda2023 preset as it is (early stop once val acc holds 0.99), or cut to
--steps steps with early stop off; one adds every measure at its default schedule (cheap
ones at each evaluation, costly ones on `train.measures_per_decade`). Reports the
summary's training seconds.

    .venv/bin/python benchmarks/bench_measures_overhead.py [--steps 3000]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import groklab
from groklab.measures import MEASURES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=None, help="cut the run (early stop off)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-measures-"))
    common = [f"train.steps={args.steps}", "train.stop_val_acc=none"] if args.steps else []
    names = list(MEASURES)
    secs = {}
    for label, extra in (("without", []), ("with", [f"measures={names}"])):
        run = groklab.train(groklab.resolve("nanda2023", overrides=common + extra), tmp / label, progress=False)
        secs[label] = run.summary["seconds"]
    n_rows = len(groklab.load_run(tmp / "with").metrics)
    steps = {k: groklab.load_run(tmp / k).summary["steps"] for k in secs}
    print(f"| nanda2023, {steps['without']} / {steps['with']} steps | without measures {secs['without']:.1f} s | with all "
          f"{len(names)} measures {secs['with']:.1f} s | overhead {100 * (secs['with'] / secs['without'] - 1):.1f}% "
          f"| {n_rows} metric rows |")


if __name__ == "__main__":
    main()
