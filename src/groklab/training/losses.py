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


def _squared_errors(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """(E, N, C) squared errors against vector targets or one-hot classes (mse only)."""
    E, N, C = outputs.shape
    if targets.is_floating_point():  # vectors
        if kind != "mse":
            raise ValueError(f"loss {kind!r} needs class targets; vector targets take mse")
        return (outputs - targets.expand(E, N, C)).square()
    return (outputs - F.one_hot(targets.expand(E, N), C).to(outputs.dtype)).square()


def row_losses(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """outputs (E, N, C), targets as in the module docstring -> the loss of every row (E, N)."""
    E, N, C = outputs.shape
    if kind == "mse" or targets.is_floating_point():
        return _squared_errors(outputs, targets, kind).mean(2)
    targets = targets.expand(E, N)
    if kind == "stablemax":
        return -log_stablemax(outputs, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return F.cross_entropy(outputs.reshape(E * N, C), targets.reshape(-1), reduction="none").view(E, N)


def loss_per_member(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """outputs (E, N, C), targets as in the module docstring -> mean loss per member (E,):
    the mean of :func:`row_losses` (MSE as one mean over rows and outputs, as ``nn.MSELoss``)."""
    if kind == "mse" or targets.is_floating_point():
        return _squared_errors(outputs, targets, kind).mean(dim=(1, 2))
    return row_losses(outputs, targets, kind).mean(1)


def committee_rows(copy_logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A committee's training rows (``model.committee`` = K): every copy's logits (E, K, N, C)
    as (E, K·N, C), the targets (N,) or (E, N) repeated to match. The mean loss over these
    rows, times K, is the sum over copies of each copy's own mean loss: each copy gets the
    gradient it would get alone."""
    E, K, N, C = copy_logits.shape
    rows = copy_logits.reshape(E, K * N, C)
    return rows, (targets.repeat(K) if targets.dim() == 1 else targets.repeat(1, K))
