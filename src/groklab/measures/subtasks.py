"""Per-subtask loss and accuracy of multitask sparse parity (Michaud et al. 2023, "The
Quantization Model of Neural Scaling", Fig. 2 bottom row and Figs. 7-8: each subtask's
test loss in bits, which falls from 1 bit to ~0 abruptly when its quantum is learned).

Subtask r (1 = the most frequent) is measured on its own ``task.test_per_task`` held-out
rows. Its loss is the mean cross-entropy in bits (nats / ln 2); with m rows the standard
error of its accuracy is at most 0.5 / sqrt(m) (0.016 at m = 1000, 0.035 at m = 200).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CHUNK = 65_536  # rows per forward pass


@torch.no_grad()
def subtask_means(model, task) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss in bits, accuracy), each (E, n_tasks): subtask i's mean over its held-out rows."""
    rows, y = task.inputs[task.val_idx], task.targets[task.val_idx]
    losses, hits = [], []
    for i in range(0, len(rows), CHUNK):
        lg = model(rows[i: i + CHUNK])  # (E, n, 2)
        E, n, C = lg.shape
        t = y[i: i + CHUNK].expand(E, n)
        losses.append(F.cross_entropy(lg.reshape(E * n, C).double(), t.reshape(-1), reduction="none").view(E, n))
        hits.append((lg.argmax(-1) == t).double())
    E = losses[0].shape[0]
    m = task.cfg.test_per_task
    loss = torch.cat(losses, 1).view(E, task.n_tasks, m).mean(-1) / math.log(2)
    acc = torch.cat(hits, 1).view(E, task.n_tasks, m).mean(-1)
    return loss, acc


def subtasks(model, task) -> dict[str, torch.Tensor]:
    """``subtask_loss_bits/r`` and ``subtask_acc/r`` for r = 1..n_tasks (frequency rank), and
    ``val_loss_bits`` (sum_r p_r x subtask r's loss: the expected test loss in bits)."""
    loss, acc = subtask_means(model, task)
    out = {"val_loss_bits": (loss * task.probs.to(loss)).sum(1)}
    for r in range(task.n_tasks):
        out[f"subtask_loss_bits/{r + 1}"] = loss[:, r]
        out[f"subtask_acc/{r + 1}"] = acc[:, r]
    return out
