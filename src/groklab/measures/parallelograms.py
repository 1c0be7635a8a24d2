"""Representation quality index and predicted accuracy (Liu et al. 2022, "Towards
Understanding Grokking: An Effective Theory of Representation Learning", NeurIPS 2022,
Sec. 3.2-3.3), as the authors' code computes them (``toy/train_add.py`` of
ejmichaud/grokking-squared, the code behind the paper's toy-model figures).

* Samples are unordered pairs {a, b} of the table (the authors deem a + b and b + a one
  sample; on an ordered table the rows with a <= b stand for them).
* Normalisation: each embedding dimension is standardised over the symbols,
  R = (E - mean) / std (std with Bessel's correction, as ``torch.std``); a dimension that
  is constant over the symbols becomes 0 (in their code, 0/0 makes every quadruple fail).
* P0: every pair of distinct samples with the same answer, over the **whole table** — for
  ``add_int`` exactly the authors' quadruples (i, n, j, m) with i < j <= m < n and
  i + n = j + m.
* A quadruple is a delta-parallelogram when the **mean over dimensions** of
  ((R_a + R_b) - (R_c + R_d))^2 is below ``threshold_P`` = 0.01 (their default; for a 1-D
  representation, |dist| < 0.1 standard deviations).
* ``rqi`` = |P(R)| / |P0|; it is 1 for any linear representation E_k = u + k v.
* ``rqi_pred_acc`` (their ``acc_pred_test``): the share of validation samples {a, b} for
  which some training sample {c, d} forms a delta-parallelogram with it (a validation row
  whose swap is a training sample counts as predicted: the model's input E_a + E_b is
  symmetric).
* ``rqi_train``: the same count over the training samples only (P0(D), the set the paper's
  formula writes); reported beside ``rqi`` because the formula and the code differ.

These apply where a pair is represented as E_a + E_b (the toy model, ``model.kind = toy``).
"""

from __future__ import annotations

import torch

from groklab.measures._common import embedding

THRESHOLD_P = 0.01  # Liu et al.'s threshold_P: mean squared distance per dimension


def normalized(W: torch.Tensor) -> torch.Tensor:
    """W (E, n, d) -> each dimension standardised over the n symbols (Liu et al.'s reprs_scale).
    A dimension constant over the symbols (0/0 in their code, which then counts nothing) is
    set to 0 here: it carries no information."""
    centred = W - W.mean(1, keepdim=True)
    std = W.std(1, keepdim=True)
    return torch.where(std > 0, centred / std.clamp_min(torch.finfo(W.dtype).tiny), torch.zeros_like(W))


def _samples(task) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unordered samples of the table: a <= b, answer c, and whether the sample is trained on
    (either order in the training rows)."""
    a, b, c = task.a.cpu(), task.b.cpu(), task.c.cpu()
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    n = int(hi.max()) + 1 if len(hi) else 1
    key = lo * n + hi
    uniq, first = torch.unique(key, return_inverse=True)
    s_lo, s_hi = uniq // n, uniq % n
    s_c = torch.zeros(len(uniq), dtype=c.dtype)
    s_c[first] = c
    trained = torch.zeros(len(uniq), dtype=torch.bool)
    trained[first[task.train_idx.cpu()]] = True
    return s_lo, s_hi, s_c, trained


def _same_answer_pairs(c: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (s, t), s < t, of samples with the same answer (among ``rows`` if given)."""
    idx = torch.arange(len(c)) if rows is None else rows
    cc = c[idx]
    same = (cc[:, None] == cc[None, :]).triu(1)
    s, t = same.nonzero(as_tuple=True)
    return idx[s], idx[t]


@torch.no_grad()
def rqi_from_embedding(W: torch.Tensor, task, threshold: float = THRESHOLD_P) -> dict[str, torch.Tensor]:
    """``rqi``, ``rqi_train`` and ``rqi_pred_acc`` (E,) for symbol embeddings W (E, n_symbols, d);
    see the module doc."""
    R = normalized(W.double().cpu())
    E = R.shape[0]
    lo, hi, c, trained = _samples(task)
    S = R[:, lo] + R[:, hi]  # (E, n_samples, d)

    def close(s, t):  # (E, len(s)) mean squared distance per dimension below the threshold
        return (S[:, s] - S[:, t]).square().mean(-1) < threshold

    def share(s, t):
        return close(s, t).double().mean(1) if len(s) else torch.zeros(E, dtype=torch.float64)

    s, t = _same_answer_pairs(c)
    out = {"rqi": share(s, t)}
    s, t = _same_answer_pairs(c, trained.nonzero().flatten())
    out["rqi_train"] = share(s, t)
    # predicted accuracy over the validation rows (each row's unordered sample)
    va = task.val_idx.cpu()
    if not len(va):
        out["rqi_pred_acc"] = torch.zeros(E, dtype=torch.float64)
        return out
    a, b = task.a.cpu()[va], task.b.cpu()[va]
    key_of = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(lo.tolist(), hi.tolist()))}
    v = torch.tensor([key_of[(min(x, y), max(x, y))] for x, y in zip(a.tolist(), b.tolist())], dtype=torch.long)
    tr = trained.nonzero().flatten()
    same = c[v][:, None] == c[tr][None, :]  # (V, T) same answer
    vi, ti = same.nonzero(as_tuple=True)
    hits = torch.zeros(E, len(v), dtype=torch.int64)
    if len(vi):
        hits.index_add_(1, vi, close(v[vi], tr[ti]).long())  # parallelograms with a training sample
    hit = (hits > 0) | trained[v][None, :]  # or the swap of a training sample
    out["rqi_pred_acc"] = hit.double().mean(1)
    return out


@torch.no_grad()
def rqi(model, task, threshold: float = THRESHOLD_P) -> dict[str, torch.Tensor]:
    """RQI, RQI over the training samples, and predicted accuracy of Liu et al. 2022 for the
    model's symbol embeddings (module doc for the exact definitions)."""
    return rqi_from_embedding(embedding(model, task), task, threshold)
