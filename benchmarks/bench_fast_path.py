"""Per-step training time, fast vs reference transformer, on the same config.

A step is what the loop does: forward, loss, backward, optimizer update. Each
implementation runs in a process of its own, as a training run has the machine to itself
(timing both in one process lets one model's memory traffic and allocations slow the
other: measured in RESULTS.md).

Default protocol, ``paired``: the two processes start together, burn in, then take turns,
one round of ``--steps`` steps each, never at the same time, the order alternating. This
machine's speed drifts by 20-30% over seconds (another tenant of the host), so each
reference round is compared with the fast round right next to it: we report each side's
median round and the median of the per-pair ratios, over ``--rounds`` pairs.

``--protocol processes`` is the older one: ``--repeats`` pairs of processes, one after the
other, each timing ``--rounds`` rounds; the ratio of the medians over processes.

    .venv/bin/python benchmarks/bench_fast_path.py [--rounds 41] [--steps 10] [--threads N]
    .venv/bin/python benchmarks/bench_fast_path.py --protocol processes [--repeats 5] [--rounds 7]
    .venv/bin/python benchmarks/bench_fast_path.py --protocol in-process --rounds 9   # one process, alternating rounds

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


def worker(preset: str, impl: str, rounds: int, steps: int, threads: int | None = None, serve: bool = False) -> None:
    tune_malloc()  # as the training loop does
    if threads:
        torch.set_num_threads(threads)  # as train.threads does
    step, batch = make_step(groklab.resolve(preset), impl)
    if not serve:
        print(json.dumps({"ms": statistics.median(time_rounds(step, rounds, steps)), "batch": batch}))
        return
    time_rounds(step, 0, 0)  # burn-in
    print(json.dumps({"ready": True, "batch": batch}), flush=True)
    for line in sys.stdin:  # one line per round asked for
        if line.strip() != "go":
            break
        print(json.dumps({"ms": time_rounds(step, 1, steps, burn_in=0)[0]}), flush=True)


def paired(name: str, rounds: int, steps: int, threads: int | None) -> tuple[dict[str, list[float]], list[float], int]:
    """Two persistent workers taking turns; returns each side's round times, the per-pair
    ratios reference/fast, and the batch size."""
    procs = {}
    for impl in ("reference", "fast"):
        cmd = [sys.executable, __file__, "--worker", name, impl, "--steps", str(steps), "--serve"]
        if threads:
            cmd += ["--threads", str(threads)]
        procs[impl] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        batch = 0
        for p in procs.values():
            batch = json.loads(p.stdout.readline())["batch"]
        times: dict[str, list[float]] = {"reference": [], "fast": []}
        ratios = []
        for r in range(rounds):
            order = ("reference", "fast") if r % 2 == 0 else ("fast", "reference")
            for impl in order:
                p = procs[impl]
                p.stdin.write("go\n")
                p.stdin.flush()
                times[impl].append(json.loads(p.stdout.readline())["ms"])
            ratios.append(times["reference"][-1] / times["fast"][-1])
        return times, ratios, batch
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["nanda2023", "power2022"])
    ap.add_argument("--protocol", choices=["paired", "processes", "in-process"], default="paired")
    ap.add_argument("--repeats", type=int, default=5, help="processes per implementation (--protocol processes)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default: 41 paired, 7 per process, 9 in-process)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, as a run without train.threads)")
    ap.add_argument("--in-process", action="store_true", help="the same as --protocol in-process")
    ap.add_argument("--worker", nargs=2, metavar=("PRESET", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_process:
        args.protocol = "in-process"
    if args.rounds is None:
        args.rounds = {"paired": 41, "processes": 7, "in-process": 9}[args.protocol]
    if args.worker:
        return worker(*args.worker, args.rounds, args.steps, args.threads, args.serve)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads; protocol {args.protocol}, "
          + {"paired": f"{args.rounds} pairs of rounds", "processes": f"{args.repeats} processes per implementation",
             "in-process": "one process, alternating rounds"}[args.protocol] + f" of {args.steps} steps")
    print("| preset | batch | reference ms/step | fast ms/step | speed-up |")
    print("|---|---|---|---|---|")
    for name in args.presets:
        times: dict[str, list[float]] = {"reference": [], "fast": []}
        if args.protocol == "paired":
            times, ratios, batch = paired(name, args.rounds, args.steps, args.threads)
            ref, fast = statistics.median(times["reference"]), statistics.median(times["fast"])
            q = statistics.quantiles(ratios, n=4)
            print(f"| {name} | {batch} | {ref:.1f} | {fast:.1f} | {statistics.median(ratios):.2f}x |  "
                  f"per-pair ratio quartiles {q[0]:.2f}-{q[2]:.2f}, min {min(ratios):.2f}", flush=True)
            continue
        if args.protocol == "in-process":
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
