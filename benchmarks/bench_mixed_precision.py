"""Mixed precision on this CPU: is bfloat16 a lever here? (issue 5)

1. The product the issue quotes: (4704 x 512) @ (512 x 512), float32 vs bfloat16, as a plain
   matrix product (``torch.mm``) and as the batched product the models use (``torch.bmm``);
   GFLOP/s = 2 * 4704 * 512 * 512 / seconds.
2. One training step (forward, loss, backward, AdamW) of the `fastest_transformer` recipe
   (power2022's 2-layer transformer, batch 512) with ``train.autocast`` off and bfloat16.

Rounds alternate between the variants; medians. Run it alone on the machine.

    .venv/bin/python benchmarks/bench_mixed_precision.py [--rounds 5]
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


def timed(f, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t) / reps


def matmul_rows(rounds: int) -> list[str]:
    M, K, N = 4704, 512, 512
    flop = 2 * M * K * N
    out = []
    for dt in (torch.float32, torch.bfloat16):
        a, b = torch.randn(M, K, dtype=dt), torch.randn(K, N, dtype=dt)
        for name, f in (("mm", lambda: a @ b), ("bmm", lambda: torch.bmm(a[None], b[None]))):
            f()
            reps = 20 if dt == torch.float32 else 2
            secs = statistics.median(timed(f, reps) for _ in range(rounds))
            out.append(f"| {name} | {str(dt).replace('torch.', '')} | {secs * 1e3:.1f} | {flop / secs / 1e9:.1f} |")
    return out


def make_step(autocast: str | None):
    cfg = groklab.resolve("fastest_transformer")
    task = make_task(cfg.task)
    model = build_model(cfg, task)
    lr = torch.tensor(cfg.member_values("optim.lr"))
    wd = torch.tensor(cfg.member_values("optim.weight_decay"))
    opt = EnsembleOptimizer(dict(model.named_parameters()), model.param_groups(), cfg.optim, lr, wd)
    tokens, targets = task.tokens[task.train_idx], task.c[task.train_idx]
    sampler = BatchSampler(len(targets), cfg.train.batch_size, cfg.member_values("train.seeds"))
    active = torch.ones(1, dtype=torch.bool)

    def step():
        idx = sampler.next()[0]
        if autocast:
            with torch.autocast("cpu", dtype=getattr(torch, autocast)):
                logits = model(tokens[idx])
            logits = logits.float()
        else:
            logits = model(tokens[idx])
        loss_per_member(logits, targets[idx], "cross_entropy").sum().backward()
        opt.step(active)
        opt.zero_grad()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tune_malloc()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("| product | dtype | ms | GFLOP/s |\n|---|---|---|---|")
    for row in matmul_rows(args.rounds):
        print(row, flush=True)
    steps = {"float32": make_step(None), "bfloat16 autocast": make_step("bfloat16")}
    times = {k: [] for k in steps}
    for f in steps.values():
        f()
    for _ in range(args.rounds):
        for k, f in steps.items():
            times[k].append(timed(f, 3 if k == "float32" else 1) * 1e3)
    print("\n| training step (fastest_transformer, batch 512) | ms/step |\n|---|---|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.1f} |")


if __name__ == "__main__":
    main()
