"""What sending runs back costs: the same sweep on a local Ray instance (``ray.init`` with
``--workers`` CPUs), once with ``--ray-storage object-store`` (each run trains in a
worker-local directory and its changed files travel to the driver after every checkpoint)
and once with ``--ray-storage shared`` (workers write the sweep directory themselves),
rounds alternating, Ray started once. Prints each wall-clock and the median ratio; also the
bytes the driver received. Run it alone on the machine.

    .venv/bin/python benchmarks/bench_ray_storage.py [--spec benchmarks/ray_storage.toml] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import ray

from groklab.sweep import SweepSpec, run_sweep
from groklab.sweep import executors, transfer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="benchmarks/ray_storage.toml")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    spec = SweepSpec.load(args.spec)
    received = [0]
    real_apply = transfer.apply_files

    def counting_apply(run_dir, files):
        received[0] += sum(len(b) for b in files.values())
        real_apply(run_dir, files)

    executors.apply_files = counting_apply
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    times: dict[str, list[float]] = {"object-store": [], "shared": []}
    root = Path(tempfile.mkdtemp(prefix="bench_ray_storage-"))
    try:
        for r in range(args.rounds):
            for storage in ("object-store", "shared"):
                d = root / f"{storage}-{r}"
                received[0] = 0
                t = time.perf_counter()
                run_sweep(spec, d, "ray", ray_storage=storage, progress=False, log=lambda *_: None)
                times[storage].append(time.perf_counter() - t)
                print(f"round {r} {storage:>12}: {times[storage][-1]:7.2f} s"
                      + (f", {received[0] / 1e6:.1f} MB received" if storage == "object-store" else ""), flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_runs = len(spec.runs())
    print(json.dumps({"spec": args.spec, "runs": n_runs, "rounds": args.rounds, "median_s": med,
                      "ratio_object_store_over_shared": med["object-store"] / med["shared"]}, indent=1))


if __name__ == "__main__":
    main()
