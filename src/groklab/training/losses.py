"""Training losses, per ensemble member: outputs (E, N, C) -> (E,) mean losses.

Targets are classes (N,) / (E, N) int64 or vectors (N, C) / (E, N, C) float.

* ``cross_entropy``  classes only.
* ``mse``            classes: against one-hot targets, as ``nn.MSELoss()`` on one-hot
                     vectors (mean over rows and outputs; Omnigrok, and the grokking
                     challenge's sklearn MLPRegressor entry); vectors: mean over rows and
                     outputs (Omnigrok's teacher-student).
* ``stablemax``      classes only: StableMax cross-entropy (Prieto et al. 2025).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "mse", "stablemax")
CLASS_ONLY = ("cross_entropy", "stablemax")


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0 (both branches finite for every x,
    so the gradient through ``torch.where`` is never NaN)."""
    return torch.where(x >= 0, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax(x)_i = log s(x_i) - log sum_j s(x_j)."""
    s = stablemax_s(x)
    return s.log() - s.sum(dim, keepdim=True).log()


def loss_per_member(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """outputs (E, N, C), targets as in the module docstring -> mean loss per member (E,)."""
    E, N, C = outputs.shape
    if targets.is_floating_point():  # vectors
        if kind != "mse":
            raise ValueError(f"loss {kind!r} needs class targets; vector targets take mse")
        return (outputs - targets.expand(E, N, C)).square().mean(dim=(1, 2))
    targets = targets.expand(E, N)
    if kind == "mse":
        onehot = F.one_hot(targets, C).to(outputs.dtype)
        return (outputs - onehot).square().mean(dim=(1, 2))
    if kind == "stablemax":
        lp = log_stablemax(outputs, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return -lp.mean(1)
    return F.cross_entropy(outputs.reshape(E * N, C), targets.reshape(-1), reduction="none").view(E, N).mean(1)


def row_losses(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """outputs (E, N, C), targets as in the module docstring -> the loss of every row (E, N)
    (for weighted means; ``loss_per_member`` is its plain mean over rows)."""
    E, N, C = outputs.shape
    if targets.is_floating_point():
        if kind != "mse":
            raise ValueError(f"loss {kind!r} needs class targets; vector targets take mse")
        return (outputs - targets.expand(E, N, C)).square().mean(2)
    targets = targets.expand(E, N)
    if kind == "mse":
        return (outputs - F.one_hot(targets, C).to(outputs.dtype)).square().mean(2)
    if kind == "stablemax":
        return -log_stablemax(outputs, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return F.cross_entropy(outputs.reshape(E * N, C), targets.reshape(-1), reduction="none").view(E, N)
