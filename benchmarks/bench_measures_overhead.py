"""Training time of nanda2023 with and without live progress measures.

Both runs: the nanda2023 preset as it is (early stop once val acc holds 0.99), or cut to
--steps steps with early stop off; one adds every measure at its default schedule (cheap
ones at each evaluation, costly ones on `train.measures_per_decade`). Reports the
summary's training seconds, and where the measures' own time went (each measure timed
around its call in the run with measures).

    .venv/bin/python benchmarks/bench_measures_overhead.py [--steps 3000]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import groklab
from groklab import measures
from groklab.measures import MEASURES

SPENT: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter = collections.Counter()
_compute = measures.compute


def _timed_compute(names, model, task, *args, **kwargs):
    """measures.compute, one measure at a time, each timed (the loop calls it by name)."""
    out = {}
    for n in names:
        t = time.perf_counter()
        out.update(_compute([n], model, task, *args, **kwargs))
        SPENT[n] += time.perf_counter() - t
        CALLS[n] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=None, help="cut the run (early stop off)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-measures-"))
    common = [f"train.steps={args.steps}", "train.stop_val_acc=none"] if args.steps else []
    names = list(MEASURES)
    secs = {}
    for label, extra in (("without", []), ("with", [f"measures={names}"])):
        measures.compute = _timed_compute if label == "with" else _compute
        run = groklab.train(groklab.resolve("nanda2023", overrides=common + extra), tmp / label, progress=False)
        secs[label] = run.summary["seconds"]
    n_rows = len(groklab.load_run(tmp / "with").metrics)
    steps = {k: groklab.load_run(tmp / k).summary["steps"] for k in secs}
    print(f"| nanda2023, {steps['without']} / {steps['with']} steps | without measures {secs['without']:.1f} s | with all "
          f"{len(names)} measures {secs['with']:.1f} s | overhead {100 * (secs['with'] / secs['without'] - 1):.1f}% "
          f"| {n_rows} metric rows |")
    print("| measure | cost class | calls | seconds | share of the run without measures |")
    print("|---|---|---|---|---|")
    for n in names:
        print(f"| {n} | {MEASURES[n].cost} | {CALLS[n]} | {SPENT[n]:.1f} | {100 * SPENT[n] / secs['without']:.1f}% |")
    print(f"| all | | | {sum(SPENT.values()):.1f} | {100 * sum(SPENT.values()) / secs['without']:.1f}% |")


if __name__ == "__main__":
    main()
