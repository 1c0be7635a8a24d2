"""Attention whose queries, keys and values are rows of small tables.

The transformer's fast path computes each distinct input once: the first layer's Q, K and V
take one row per (position, token) that occurs, the last layer's keys and values one row per
prefix or free position. A sequence's attention then reads rows:

    z[e, n, i, head h] = sum_k softmax_k(q . k / sqrt(dh)) v      over the allowed keys k,
    q = q_table[e, q_rows[n, i], q_off + h*dh : ...],  k, v = kv_table[e, k_rows[n, k], ...]

Two implementations of this one function:

* a fused kernel (``_row_kernels``, Numba; CPU, float32 and float64): per sequence and head
  it reads its few rows, and its backward adds straight into the tables' gradients. Eager
  PyTorch needs a dozen passes over (sequences x keys x d) temporaries for the same work
  (gathers, broadcast products, sums, and each one's backward); benchmarks/RESULTS.md
  (issue 2, section 3, session 6) measures the difference.
* ``row_attention_eager``: gathers and broadcast products, for every other device and dtype
  (CUDA, autocast) and as the kernel's oracle in the tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from groklab.models.common import gather_rows


def row_attention(q_table, kv_table, q_rows, k_rows, allowed, n_heads: int, cols: tuple[int, int, int, int]):
    """q_table (E, Rq, Cq), kv_table (E, Rk, Ck); q_rows (N, Tq) shared by the members or
    (E, N, Tq) per member, k_rows (N, Tk) or (E, N, Tk); ``allowed``: bool, broadcastable
    to (N, Tq, Tk), or None for every key. ``cols = (d, q_off, k_off, v_off)``: the query,
    key and value are the d columns from their offsets. -> z (E, N, Tq, d)."""
    if _kernel_applies(q_table, kv_table):
        return _RowAttention.apply(q_table, kv_table, q_rows, k_rows, allowed, n_heads, cols)
    return row_attention_eager(q_table, kv_table, q_rows, k_rows, allowed, n_heads, cols)


def row_attention_eager(q_table, kv_table, q_rows, k_rows, allowed, n_heads: int, cols: tuple[int, int, int, int]):
    """:func:`row_attention` by gathers and broadcast products (any device and dtype)."""
    d, q_off, k_off, v_off = cols
    q = gather_rows(q_table[..., q_off : q_off + d], q_rows, q_rows.dim() == 3)  # (E, N, Tq, d)
    k = gather_rows(kv_table[..., k_off : k_off + d], k_rows, k_rows.dim() == 3)  # (E, N, Tk, d)
    v = gather_rows(kv_table[..., v_off : v_off + d], k_rows, k_rows.dim() == 3)
    return broadcast_attention(q, k, v, n_heads, None if allowed is None else ~allowed)


def broadcast_attention(q, k, v, n_heads: int, hidden=None) -> torch.Tensor:
    """Attention over a few keys by broadcast products (CPUs run many tiny matmuls poorly):
    q (E, N, Tq, d), k/v (E, N, Tk, d); ``hidden``: bool, broadcastable to (N, Tq, Tk), True
    where a key is masked, or None -> z (E, N, Tq, d)."""
    (E, N, Tq, d), Tk = q.shape, k.shape[2]
    H, dh = n_heads, d // n_heads
    scores = (q.view(E, N, Tq, 1, H, dh) * k.view(E, N, 1, Tk, H, dh)).sum(-1) / math.sqrt(dh)  # (E, N, Tq, Tk, H)
    if hidden is not None:
        scores = scores.masked_fill(hidden[..., None], float("-inf"))
    pattern = scores.softmax(dim=3)
    return (pattern[..., None] * v.view(E, N, 1, Tk, H, dh)).sum(3).reshape(E, N, Tq, d)


def _kernel_applies(q_table: torch.Tensor, kv_table: torch.Tensor) -> bool:
    dt = q_table.dtype
    return dt in (torch.float32, torch.float64) and kv_table.dtype == dt and q_table.device.type == kv_table.device.type == "cpu"


@functools.cache
def _kernels():
    """Numba compiles on first use (cached on disk next to the module, or in the user's cache)."""
    from groklab.models import _row_kernels

    return _row_kernels


def _rows3(rows: torch.Tensor) -> np.ndarray:
    """(N, T) shared or (E, N, T) per-member rows -> a (1 or E, N, T) int64 array."""
    return rows.reshape(-1, *rows.shape[-2:]).to(torch.int64).contiguous().numpy()


class _RowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q_table, kv_table, q_rows, k_rows, allowed, H, cols):
        kern = _kernels()
        d, q_off, k_off, v_off = cols
        E, N, Tq, Tk = q_table.shape[0], q_rows.shape[-2], q_rows.shape[-1], k_rows.shape[-1]
        qt, kvt = q_table.detach().contiguous(), kv_table.detach().contiguous()
        qr, kr = _rows3(q_rows), _rows3(k_rows)
        ok = np.ones((1, Tq, Tk), dtype=np.bool_) if allowed is None else torch.broadcast_to(allowed, (N, Tq, Tk)).contiguous().numpy()
        scale = qt.numpy().dtype.type(1 / math.sqrt(d // H))  # the tables' dtype
        z = qt.new_empty(E, N, Tq, d)
        p = qt.new_empty(E, N, Tq, Tk, H)
        kern.forward(qt.numpy(), q_off, kvt.numpy(), k_off, v_off, qr, kr, ok, H, d // H, scale, z.numpy(), p.numpy())
        ctx.save_for_backward(qt, kvt, p)
        ctx.rows, ctx.same, ctx.meta = (qr, kr), q_table is kv_table, (H, d, q_off, k_off, v_off, scale)
        return z

    @staticmethod
    @once_differentiable  # the kernels' backward is not itself differentiable: say so, not zeros
    def backward(ctx, gz):
        kern = _kernels()
        qt, kvt, p = ctx.saved_tensors
        (qr, kr), (H, d, q_off, k_off, v_off, scale) = ctx.rows, ctx.meta
        gq = torch.zeros_like(qt)
        gkv = gq if ctx.same else torch.zeros_like(kvt)  # one table: one gradient, added into once
        kern.backward(qt.numpy(), q_off, kvt.numpy(), k_off, v_off, qr, kr, d // H, scale, p.numpy(),
                      gz.contiguous().numpy(), gq.numpy(), gkv.numpy())
        return gq, None if ctx.same else gkv, None, None, None, None, None
