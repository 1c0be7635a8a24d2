"""A fidelity task's baselines as seed ensembles on one device: steps (and epochs) to the threshold.

``groklab bench --suite fidelity`` trains one run per seed. Where a baseline needs tens of
thousands of small steps (Tveit et al.'s batch of 32: ~145 steps an epoch, ~100-150 epochs), ten
seeds one by one take hours on a CPU and most of a GPU lease. This script trains, per method and
split, one ensemble whose members are init seeds (``train.seeds``), batched into one model, and
runs the (method, split) ensembles as parallel processes on the same device.

What matches the bench, and what does not:

* Member ``s`` of the ensemble on split ``s`` is the bench's seed ``s`` (init seed and split seed
  both ``s``; ensemble members equal their single runs). The other members of that ensemble are
  other init seeds on the same split: the split varies only across ensembles.
* Every member stops counting at its first evaluation with val acc >= the task's threshold; the
  ensemble stops once every member has held it for one evaluation, or at ``--deadline-s``
  (SIGTERM: the run saves its metrics and stays resumable). Steps and epochs are read from each
  run's metrics.parquet, so a run cut off by the deadline still counts the members that crossed.
* Seconds are not reported: members share a model, and processes share the device.

    python benchmarks/fidelity_ensembles.py --task tveit_div97 \\
        --methods tveit2025_muon,tveit2025_adamw --splits 100,105 --members 5 \\
        --device cuda --deadline-s 450 --out runs/fidelity_ens

``--nondeterministic`` turns off CUDA's deterministic kernels (faster; steps to the threshold
differ only in the last bits of the arithmetic, not in expectation).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import groklab
from groklab.bench.aggregate import median_ci
from groklab.bench.suite import ANCHORS, TASKS, config_for
from groklab.detect import first_step_at_least
from groklab.resolve import check
from groklab.store import RunStore
from groklab.tasks import make_task


def ensemble_config(method: str, task: str, split: int, members: int, device: str, deterministic: bool):
    """The bench's config of ``method`` on ``task`` with seed ``split``, as an ensemble of init
    seeds split..split+members-1 on split ``split``."""
    cfg = config_for(method, task, split, device=device)
    cfg.train.seeds = list(range(split, split + members))
    cfg.train.deterministic = deterministic
    cfg.train.checkpoint_every = 10 * (cfg.train.eval_every or 100)  # metrics reach disk at checkpoints
    return check(cfg)


def train_one(args) -> None:
    cfg = ensemble_config(args.one, args.task, args.split, args.members, args.device, not args.nondeterministic)
    try:
        groklab.train(cfg, Path(args.out) / f"{args.one}_split{args.split}", progress=False)
    except KeyboardInterrupt:  # the deadline's SIGTERM: the run saved itself and is resumable
        pass


def results(out: Path, task: str, methods: list[str], splits: list[int]) -> list[dict]:
    t = TASKS[task]
    rows = []
    for method in methods:
        for split in splits:
            run_dir = out / f"{method}_split{split}"
            if not (run_dir / "config.json").exists():
                continue
            store = RunStore(run_dir)
            cfg = store.config()
            n_train = len(make_task(cfg.task).train_idx)  # the split, drawn again from its seed
            bs = cfg.train.batch_size
            per_epoch = n_train // bs if cfg.train.drop_last else math.ceil(n_train / bs)
            df = store.metrics()
            acc = df[df.name == "val_acc"]
            for m, seed in enumerate(cfg.train.seeds):
                a = acc[acc.member == m].sort_values("step")
                step = first_step_at_least(a.step.to_numpy(), a.value.to_numpy(), t.threshold)
                rows.append({"method": method, "split": split, "seed": seed, "bench_seed": seed == split,
                             "steps_per_epoch": per_epoch, "step": step, "epoch": None if step is None else step / per_epoch,
                             "last_step": int(a.step.max()) if len(a) else 0,
                             "val_acc": float(a.value.iloc[-1]) if len(a) else None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="tveit_div97")
    ap.add_argument("--methods", default=None, help="comma-separated (default: the task's)")
    ap.add_argument("--splits", default="100,105", help="comma-separated split seeds, one ensemble each")
    ap.add_argument("--members", type=int, default=5, help="init seeds per ensemble: split .. split+members-1")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--nondeterministic", action="store_true")
    ap.add_argument("--deadline-s", type=float, default=3600.0, help="SIGTERM every run still going then")
    ap.add_argument("--out", default="runs/fidelity_ens")
    ap.add_argument("--report", action="store_true", help="train nothing: the tables from the runs in --out")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: train one ensemble
    ap.add_argument("--split", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task not in TASKS:
        sys.exit(f"--task {args.task!r}: not a bench task (one of {', '.join(TASKS)})")
    if args.one:
        return train_one(args)
    methods = args.methods.split(",") if args.methods else list(TASKS[args.task].methods)
    splits = [int(s) for s in args.splits.split(",")]
    for method in methods:  # fail here, naming the bad value, before anything starts
        ensemble_config(method, args.task, splits[0], args.members, "cpu", True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        train_all(args, methods, splits, out)
    report(out, args.task, methods, splits)


def train_all(args, methods: list[str], splits: list[int], out: Path) -> None:
    procs = []
    for method in methods:
        for split in splits:
            cmd = [sys.executable, __file__, "--task", args.task, "--one", method, "--split", str(split),
                   "--members", str(args.members), "--device", args.device, "--out", str(out)]
            if args.nondeterministic:
                cmd.append("--nondeterministic")
            procs.append(((method, split), subprocess.Popen(cmd)))
    t0 = time.time()
    while any(p.poll() is None for _, p in procs) and time.time() - t0 < args.deadline_s:
        time.sleep(1.0)
    for _, p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for key, p in procs:
        rc = p.wait()
        print(f"{key[0]} split {key[1]}: exit {rc}", flush=True)


def report(out: Path, task: str, methods: list[str], splits: list[int]) -> None:
    rows = results(out, task, methods, splits)
    (out / "fidelity_ensembles.json").write_text(json.dumps(rows, indent=1))
    print(f"{'method':18} {'split':>5} {'seed':>5} {'step':>7} {'epoch':>7} {'last':>7} {'val_acc':>7}")
    for r in rows:
        ep = f"{r['epoch']:.1f}" if r["epoch"] is not None else "-"
        print(f"{r['method']:18} {r['split']:5d} {r['seed']:5d} {str(r['step']):>7} {ep:>7} {r['last_step']:7d} "
              f"{r['val_acc']:7.3f}")
    summary = [summarize(rows, method, ANCHORS.get((method, task))) for method in methods]
    (out / "fidelity_summary.json").write_text(json.dumps(summary, indent=1))
    for s in summary:
        print(f"{s['method']}: {s['reached']}/{s['members']} reached by epoch {s['cutoff_epoch']:.0f}; "
              f"median epoch of those reached {_f(s['median_reached'])} (95% CI {_f(s['ci_lo'])}-{_f(s['ci_hi'])}); "
              f"of all, the later counted as later: {_f(s['median_all'])}; paper: {s['paper']}")


def _f(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.1f}"


def summarize(rows: list[dict], method: str, anchor) -> dict:
    """Per method: how many members reached the threshold, by which epoch at the latest (the
    shortest run's last evaluation), the median epoch of those that reached it (the bench's
    convention, with its bootstrap interval), and the median of all members with those that
    did not reach it counted as later than every one that did (None where they are half or more)."""
    g = [r for r in rows if r["method"] == method]
    ep = np.array([r["epoch"] if r["epoch"] is not None else np.inf for r in g], dtype=float)
    hit = ep[np.isfinite(ep)]
    lo, hi = median_ci(hit) if len(hit) >= 2 else (None, None)
    cutoff = min(r["last_step"] / r["steps_per_epoch"] for r in g)
    med_all = float(np.median(ep)) if len(hit) > len(ep) / 2 else None
    return {"method": method, "members": len(g), "reached": int(len(hit)), "cutoff_epoch": cutoff,
            "median_reached": float(np.median(hit)) if len(hit) else None, "ci_lo": lo, "ci_hi": hi,
            "median_all": med_all, "paper": anchor.published if anchor else None}

if __name__ == "__main__":
    main()
