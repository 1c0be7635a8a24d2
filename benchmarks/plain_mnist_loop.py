"""A plain PyTorch loop of Omnigrok's MNIST model, the baseline groklab is timed against
(``bench_omnigrok.py``): ``nn.Sequential`` 784-200-200-10 ReLU, default init x alpha,
``torch.optim.AdamW`` (lr 1e-3, wd 0.01; PyTorch's default implementation), MSE on one-hot
targets, batch 200 of 1,000 images, shuffled epochs from an index permutation (no
DataLoader: the images are one tensor in memory). No evaluation inside the timed loop.

    python benchmarks/plain_mnist_loop.py --alpha 8 --steps 2000 [--dtype float64]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from groklab.config import ImagesConfig
from groklab.tasks import make_task


def plain_run(alpha: float, steps: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> dict:
    task = make_task(ImagesConfig(dataset="mnist", train_size=1000), "cpu", dtype)
    x, y = task.inputs[task.train_idx], task.targets[task.train_idx]
    onehot = nn.functional.one_hot(y, 10).to(dtype)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(alpha)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.MSELoss()
    g = torch.Generator().manual_seed(seed)
    perm, cursor = torch.randperm(len(y), generator=g), 0
    t0 = time.perf_counter()
    for _ in range(steps):
        if cursor + 200 > len(y):
            perm, cursor = torch.randperm(len(y), generator=g), 0
        idx = perm[cursor: cursor + 200]
        cursor += 200
        loss = loss_fn(model(x[idx]), onehot[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        test_acc = float((model(task.inputs[task.val_idx]).argmax(-1) == task.targets[task.val_idx]).double().mean())
    return {"alpha": alpha, "steps": steps, "seconds": seconds, "ms_per_step": 1000 * seconds / steps,
            "test_acc": test_acc}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    print(plain_run(a.alpha, a.steps, getattr(torch, a.dtype)))
