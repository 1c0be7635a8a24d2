"""Per-step training time, fast vs reference transformer, on the same config.

A step is what the loop does: forward, loss, backward, optimizer update. Each
implementation is timed in a process of its own, as a training run has the machine to
itself (timing both in one process lets one model's memory traffic and allocations slow
the other: measured in RESULTS.md). ``--repeats`` pairs of processes, in alternating order
(reference first, then fast first, ...); each process takes ``--rounds`` rounds of
``--steps`` steps after a burn-in and reports its median round; we report the median over
processes and the ratio of medians.

    .venv/bin/python benchmarks/bench_fast_path.py [--repeats 5] [--rounds 7] [--steps 10] [--threads N]
    .venv/bin/python benchmarks/bench_fast_path.py --in-process   # the old protocol: one process, alternating rounds

Run it alone on the machine: anything else running spoils the timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

import groklab
from groklab._runtime import tune_malloc
from groklab.models import build_model
from groklab.tasks import make_task
from groklab.training.loop import BatchSampler, loss_per_member
from groklab.training.optim import EnsembleOptimizer


def make_step(cfg, impl: str):
    task = make_task(cfg.task)
    cfg.model.impl = impl
    model = build_model(cfg, task)
    lr = torch.tensor(cfg.member_values("optim.lr"))
    wd = torch.tensor(cfg.member_values("optim.weight_decay"))
    opt = EnsembleOptimizer(dict(model.named_parameters()), model.param_groups(), cfg.optim, lr, wd)
    tokens, targets = task.tokens[task.train_idx], task.c[task.train_idx]
    sampler = None
    if cfg.train.batch_size and cfg.train.batch_size < len(targets):
        sampler = BatchSampler(len(targets), cfg.train.batch_size, cfg.member_values("train.seeds"))
    active = torch.ones(cfg.n_members, dtype=torch.bool)

    def step():
        tok, tg = tokens, targets
        if sampler is not None:
            idx = sampler.next()[0]
            tok, tg = tokens[idx], targets[idx]
        loss = loss_per_member(model(tok), tg, cfg.train.loss)
        loss.sum().backward()
        opt.step(active)
        opt.zero_grad()

    return step, len(tokens) if sampler is None else cfg.train.batch_size


def time_rounds(step, rounds: int, steps: int, burn_in: int = 3) -> list[float]:
    for _ in range(burn_in):
        step()
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        out.append((time.perf_counter() - t) / steps * 1e3)
    return out


def worker(preset: str, impl: str, rounds: int, steps: int, threads: int | None = None) -> None:
    tune_malloc()  # as the training loop does
    if threads:
        torch.set_num_threads(threads)  # as train.threads does
    step, batch = make_step(groklab.resolve(preset), impl)
    print(json.dumps({"ms": statistics.median(time_rounds(step, rounds, steps)), "batch": batch}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["nanda2023", "power2022"])
    ap.add_argument("--repeats", type=int, default=5, help="processes per implementation")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, as a run without train.threads)")
    ap.add_argument("--in-process", action="store_true", help="both implementations in this process, alternating rounds")
    ap.add_argument("--worker", nargs=2, metavar=("PRESET", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker, args.rounds, args.steps, args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          + ("one process, alternating rounds" if args.in_process else f"{args.repeats} processes per implementation"))
    print("| preset | batch | reference ms/step | fast ms/step | speed-up |")
    print("|---|---|---|---|---|")
    for name in args.presets:
        times: dict[str, list[float]] = {"reference": [], "fast": []}
        if args.in_process:
            tune_malloc()
            steps = {impl: make_step(groklab.resolve(name), impl) for impl in times}
            for impl, (step, _) in steps.items():
                time_rounds(step, 0, 0)  # burn-in only
            for _ in range(args.rounds):
                for impl, (step, _) in steps.items():
                    times[impl] += time_rounds(step, 1, args.steps, burn_in=0)
            batch = steps["fast"][1]
        else:
            for r in range(args.repeats):
                order = ("reference", "fast") if r % 2 == 0 else ("fast", "reference")
                for impl in order:
                    cmd = [sys.executable, __file__, "--worker", name, impl, "--rounds", str(args.rounds), "--steps", str(args.steps)]
                    if args.threads:
                        cmd += ["--threads", str(args.threads)]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    times[impl].append(res["ms"])
                    batch = res["batch"]
        ref, fast = statistics.median(times["reference"]), statistics.median(times["fast"])
        spread = " ".join(f"{k[0]}:[{min(v):.1f}-{max(v):.1f}]" for k, v in times.items())
        print(f"| {name} | {batch} | {ref:.1f} | {fast:.1f} | {ref / fast:.2f}x |  {spread}", flush=True)


if __name__ == "__main__":
    main()
