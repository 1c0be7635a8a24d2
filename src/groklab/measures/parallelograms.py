"""Representation quality index and predicted accuracy (Liu et al. 2022, "Towards
Understanding Grokking: An Effective Theory of Representation Learning", NeurIPS 2022,
Sec. 3.2-3.3).

Reading of the definitions used here:

* Training pairs D = {(i, j)} (the task's train rows). P0(D) = ordered quadruples
  (i, j, m, n) of two training pairs with the same answer: i + j = m + n for ``add_int``
  (Liu et al.'s non-modular addition), (i + j) mod p = (m + n) mod p for ``add`` (i.e. equal
  answers c in both cases). Trivial quadruples, where {m, n} = {i, j} as multisets (the pair
  with itself or its swap), are excluded: they are parallelograms for any embedding.
* P(R, delta) = those with |(E_i + E_j) - (E_m + E_n)|_2 <= delta; RQI = |P| / |P0| (0 if P0
  is empty).
* delta = ``delta_frac`` * s, with s = sqrt(mean_i |E_i - mean(E)|^2) the RMS distance of the
  symbol embeddings to their centroid (default ``delta_frac`` = 0.05). For two unrelated
  pairs, |E_i + E_j - E_m - E_n| is about 2 s.
* Predicted accuracy: a validation pair (i, j) is predicted correct if some training pair
  (m, n) with the same answer satisfies |(E_i + E_j) - (E_m + E_n)| <= delta (the training
  pair may be the swap (j, i): the toy model's input E_i + E_j is symmetric).
"""

from __future__ import annotations

import torch

from groklab.measures._common import embedding

DELTA_FRAC = 0.05


def embedding_scale(W: torch.Tensor) -> torch.Tensor:
    """W (E, n, d) -> (E,) RMS distance of the rows to their centroid."""
    return (W - W.mean(1, keepdim=True)).square().sum(-1).mean(1).sqrt()


def _class_slots(c: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Rows grouped by answer: (n_classes, m) row indices, -1 padded, m the largest group."""
    order = torch.argsort(c, stable=True)
    counts = torch.bincount(c, minlength=n_classes)
    starts = torch.cumsum(counts, 0) - counts
    cs = c[order]
    slots = torch.full((n_classes, max(int(counts.max()) if len(c) else 0, 1)), -1, dtype=torch.long, device=c.device)
    slots[cs, torch.arange(len(c), device=c.device) - starts[cs]] = order
    return slots


@torch.no_grad()
def rqi_from_embedding(W: torch.Tensor, task, delta: float | torch.Tensor | None = None,
                       delta_frac: float = DELTA_FRAC) -> dict[str, torch.Tensor]:
    """``rqi`` and ``rqi_pred_acc`` (E,) for symbol embeddings W (E, n_symbols, d); see the
    module doc. ``delta`` (a number or (E,)) overrides ``delta_frac`` * scale.

    Only rows with the same answer can form a parallelogram, so the distances are taken
    within each answer's group of rows (sum_c n_c^2 pairs, not N^2)."""
    W = W.double()
    E = W.shape[0]
    if delta is None:
        delta = delta_frac * embedding_scale(W)
    delta = torch.as_tensor(delta, dtype=torch.float64, device=W.device).expand(E)
    a, b, c = task.a.to(W.device), task.b.to(W.device), task.c.to(W.device)
    tr, va = task.train_idx.to(W.device), task.val_idx.to(W.device)
    n_classes = int(c.max()) + 1 if len(c) else 1
    S = W[:, a] + W[:, b]  # (E, N, d): E_a + E_b of every row
    if not len(tr):
        zero = torch.zeros(E, dtype=torch.float64)
        return {"rqi": zero, "rqi_pred_acc": zero.clone()}
    st = _class_slots(c[tr], n_classes)
    gt, ok_t = tr[st], st >= 0  # (C, m) task rows of each answer (padding: tr[-1], masked)
    A, B = a[gt], b[gt]
    trivial = ((A[:, :, None] == A[:, None, :]) & (B[:, :, None] == B[:, None, :])) | (
        (A[:, :, None] == B[:, None, :]) & (B[:, :, None] == A[:, None, :]))
    pairs = ok_t[:, :, None] & ok_t[:, None, :] & ~trivial  # (C, m, m): P0 within each answer
    n_p0 = pairs.sum()
    if len(va):
        sv = _class_slots(c[va], n_classes)
        gv, ok_v = va[sv], sv >= 0  # (C, mv)
    n_p = torch.zeros(E, dtype=torch.float64)
    pred = torch.zeros(E, dtype=torch.float64)
    for e in range(E):  # one member at a time bounds the memory: C * m * m distances
        St = S[e][gt]  # (C, m, d)
        n_p[e] = ((torch.cdist(St, St) <= delta[e]) & pairs).sum()
        if len(va):
            close = (torch.cdist(S[e][gv], St) <= delta[e]) & ok_t[:, None, :]  # (C, mv, m)
            pred[e] = (close.any(-1) & ok_v).sum() / len(va)
    rqi = n_p / n_p0 if n_p0 > 0 else torch.zeros(E, dtype=torch.float64)
    return {"rqi": rqi.cpu(), "rqi_pred_acc": pred.cpu()}


@torch.no_grad()
def rqi(model, task, delta: float | None = None, delta_frac: float = DELTA_FRAC) -> dict[str, torch.Tensor]:
    """RQI = |P(R, delta)| / |P0(D)| and the predicted accuracy of Liu et al. 2022 for the
    model's symbol embeddings ``W_E[:n_symbols]`` (module doc for the exact reading)."""
    return rqi_from_embedding(embedding(model, task), task, delta, delta_frac)
