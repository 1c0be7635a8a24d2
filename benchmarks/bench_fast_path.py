"""Per-step training time, fast vs reference transformer, on the same config.

A step is what the loop does: forward, loss, backward, optimizer update. For each preset
the two implementations alternate in rounds (so drift in machine speed hits both); each
round times ``--steps`` steps after a burn-in; we report medians and their ratio.

    .venv/bin/python benchmarks/bench_fast_path.py [--rounds 7] [--steps 10]

Run it alone on the machine: anything else running spoils the timing.
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["nanda2023", "power2022"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    tune_malloc()  # as the training loop does
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| preset | batch | reference ms/step | fast ms/step | speed-up |")
    print("|---|---|---|---|---|")
    for name in args.presets:
        steps = {impl: make_step(groklab.resolve(name), impl) for impl in ("reference", "fast")}
        times = {impl: [] for impl in steps}
        for impl, (step, _) in steps.items():  # burn-in
            for _ in range(3):
                step()
        for _ in range(args.rounds):
            for impl, (step, _) in steps.items():
                t = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[impl].append((time.perf_counter() - t) / args.steps * 1e3)
        ref, fast = statistics.median(times["reference"]), statistics.median(times["fast"])
        print(f"| {name} | {steps['fast'][1]} | {ref:.1f} | {fast:.1f} | {ref / fast:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
