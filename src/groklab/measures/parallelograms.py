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
_CHUNK = 1024


def embedding_scale(W: torch.Tensor) -> torch.Tensor:
    """W (E, n, d) -> (E,) RMS distance of the rows to their centroid."""
    return (W - W.mean(1, keepdim=True)).square().sum(-1).mean(1).sqrt()


@torch.no_grad()
def rqi_from_embedding(W: torch.Tensor, task, delta: float | torch.Tensor | None = None,
                       delta_frac: float = DELTA_FRAC) -> dict[str, torch.Tensor]:
    """``rqi`` and ``rqi_pred_acc`` (E,) for symbol embeddings W (E, n_symbols, d); see the
    module doc. ``delta`` (a number or (E,)) overrides ``delta_frac`` * scale."""
    W = W.double()
    E = W.shape[0]
    if delta is None:
        delta = delta_frac * embedding_scale(W)
    delta = torch.as_tensor(delta, dtype=torch.float64, device=W.device).expand(E)
    a, b, c = task.a.to(W.device), task.b.to(W.device), task.c.to(W.device)
    tr, va = task.train_idx.to(W.device), task.val_idx.to(W.device)
    S = W[:, a] + W[:, b]  # (E, N, d): E_a + E_b of every row
    at, bt, ct, St = a[tr], b[tr], c[tr], S[:, tr]
    n_p0 = torch.zeros((), dtype=torch.float64)
    n_p = torch.zeros(E, dtype=torch.float64)
    for s in range(0, len(tr), _CHUNK):
        sl = slice(s, s + _CHUNK)
        same = ct[sl, None] == ct[None, :]
        trivial = ((at[sl, None] == at[None, :]) & (bt[sl, None] == bt[None, :])) | (
            (at[sl, None] == bt[None, :]) & (bt[sl, None] == at[None, :]))
        m = same & ~trivial  # (chunk, N_train)
        n_p0 += m.sum()
        close = torch.cdist(St[:, sl], St) <= delta[:, None, None]  # (E, chunk, N_train)
        n_p += (close & m).sum((1, 2))
    rqi = n_p / n_p0 if n_p0 > 0 else torch.zeros(E, dtype=torch.float64)
    hit = torch.zeros(E, len(va), dtype=torch.bool, device=W.device)
    cv, Sv = c[va], S[:, va]
    for s in range(0, len(va), _CHUNK):
        sl = slice(s, s + _CHUNK)
        same = cv[sl, None] == ct[None, :]
        close = torch.cdist(Sv[:, sl], St) <= delta[:, None, None]
        hit[:, sl] = (close & same).any(-1)
    pred = hit.double().mean(1) if len(va) else torch.zeros(E, dtype=torch.float64)
    return {"rqi": rqi.cpu(), "rqi_pred_acc": pred.cpu()}


@torch.no_grad()
def rqi(model, task, delta: float | None = None, delta_frac: float = DELTA_FRAC) -> dict[str, torch.Tensor]:
    """RQI = |P(R, delta)| / |P0(D)| and the predicted accuracy of Liu et al. 2022 for the
    model's symbol embeddings ``W_E[:n_symbols]`` (module doc for the exact reading)."""
    return rqi_from_embedding(embedding(model, task), task, delta, delta_frac)
