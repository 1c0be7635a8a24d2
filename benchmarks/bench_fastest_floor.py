"""The floor under `fastest`'s seconds on this machine: one full-batch training step of its
model (a+b mod 97, 4,704 train pairs, [E_a, E_b] 32+32 -> 64 ReLU -> 97, cross-entropy) in
plain PyTorch, forward and backward only, no optimizer, no evaluation, no groklab.
Also the first layer as two (97 x 64) tables gathered per pair, the cheapest exact form.

    .venv/bin/python benchmarks/bench_fastest_floor.py      # alone on the machine

Prints the median ms per step of 7 rounds of 50 steps, and what 78 steps (the held-out
median to 99% val) cost at that rate."""
import time

import torch

torch.manual_seed(0)
p, d, h, N = 97, 32, 64, 4704
a, b = torch.randint(0, p, (N,)), torch.randint(0, p, (N,))
y = (a + b) % p
E = torch.randn(1, p, d, requires_grad=True)
W0 = torch.randn(1, 2 * d, h, requires_grad=True)
b0 = torch.zeros(1, 1, h, requires_grad=True)
W1 = torch.randn(1, h, p, requires_grad=True)
b1 = torch.zeros(1, 1, p, requires_grad=True)


def step(kind: str) -> None:
    if kind == "concat":
        x = torch.cat([E[:, a], E[:, b]], -1)
        hid = torch.relu(torch.baddbmm(b0, x, W0))
    else:
        hid = torch.relu((E @ W0[:, :d])[:, a] + (E @ W0[:, d:])[:, b] + b0)
    logits = torch.baddbmm(b1, hid, W1)
    torch.nn.functional.cross_entropy(logits.reshape(-1, p), y).backward()


for kind in ("concat", "table"):
    for _ in range(5):
        step(kind)
    rounds = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(50):
            step(kind)
        rounds.append((time.perf_counter() - t) / 50 * 1e3)
    ms = sorted(rounds)[3]
    print(f"{kind:6s} first layer: {ms:.2f} ms/step (rounds {min(rounds):.2f}-{max(rounds):.2f}); "
          f"78 steps: {78 * ms / 1e3:.2f} s")
