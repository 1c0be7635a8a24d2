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
    E, H, dh = q_table.shape[0], n_heads, d // n_heads
    N, Tq, Tk = q_rows.shape[-2], q_rows.shape[-1], k_rows.shape[-1]
    q = gather_rows(q_table[..., q_off : q_off + d], q_rows, q_rows.dim() == 3).view(E, N, Tq, 1, H, dh)
    k = gather_rows(kv_table[..., k_off : k_off + d], k_rows, k_rows.dim() == 3).view(E, N, 1, Tk, H, dh)
    v = gather_rows(kv_table[..., v_off : v_off + d], k_rows, k_rows.dim() == 3).view(E, N, 1, Tk, H, dh)
    scores = (q * k).sum(-1) / math.sqrt(dh)  # (E, N, Tq, Tk, H)
    if allowed is not None:
        scores = scores.masked_fill(~allowed[..., None], float("-inf"))
    pattern = scores.softmax(dim=3)
    return (pattern[..., None] * v).sum(3).reshape(E, N, Tq, d)


def _kernel_applies(q_table: torch.Tensor, kv_table: torch.Tensor) -> bool:
    dt = q_table.dtype
    return dt in (torch.float32, torch.float64) and kv_table.dtype == dt and q_table.device.type == kv_table.device.type == "cpu"


@functools.cache
def _kernels():
    """Numba compiles on first use (cached on disk next to the module, or in the user's cache)."""
    from groklab.models import _row_kernels

    return _row_kernels


def _flat_rows(rows: torch.Tensor, E: int, R: int) -> torch.Tensor:
    """(N, T) or (E, N, T) rows of an (E, R, C) table -> (E * N, T) rows of its (E * R, C) view."""
    offsets = (torch.arange(E) * R).view(E, 1, 1)
    return (rows.expand(E, *rows.shape[-2:]) + offsets).reshape(E * rows.shape[-2], rows.shape[-1]).contiguous()


class _RowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q_table, kv_table, q_rows, k_rows, allowed, H, cols):
        kern = _kernels()
        d, q_off, k_off, v_off = cols
        E, N, Tq, Tk = q_table.shape[0], q_rows.shape[-2], q_rows.shape[-1], k_rows.shape[-1]
        qt = q_table.detach().reshape(E * q_table.shape[1], -1).contiguous()
        kvt = kv_table.detach().reshape(E * kv_table.shape[1], -1).contiguous()
        qr, kr = _flat_rows(q_rows, E, q_table.shape[1]), _flat_rows(k_rows, E, kv_table.shape[1])
        ok = torch.ones((), dtype=torch.bool) if allowed is None else allowed
        ok = ok.expand(E, N, Tq, Tk).reshape(E * N, Tq, Tk).contiguous()
        scale = np.dtype(str(qt.dtype).removeprefix("torch.")).type(1 / math.sqrt(d // H))
        z = qt.new_empty(E * N, Tq, d)
        p = qt.new_empty(E * N, Tq, Tk, H)
        _threads(kern)
        kern.forward(qt.numpy(), q_off, kvt.numpy(), k_off, v_off, qr.numpy(), kr.numpy(), ok.numpy(), H, d // H, scale, z.numpy(), p.numpy())
        ctx.save_for_backward(qt, kvt, qr, kr, p)
        ctx.same = q_table is kv_table
        ctx.meta = (H, d, q_off, k_off, v_off, scale, q_table.shape, kv_table.shape)
        return z.view(E, N, Tq, d)

    @staticmethod
    def backward(ctx, gz):
        kern = _kernels()
        qt, kvt, qr, kr, p = ctx.saved_tensors
        H, d, q_off, k_off, v_off, scale, q_shape, kv_shape = ctx.meta
        gq = torch.zeros_like(qt)
        gkv = gq if ctx.same else torch.zeros_like(kvt)  # one table: one gradient, added into once
        gz = gz.reshape(qr.shape[0], qr.shape[1], d).contiguous()
        _threads(kern)
        kern.backward(qt.numpy(), q_off, kvt.numpy(), k_off, v_off, qr.numpy(), kr.numpy(), H, d // H, scale, p.numpy(), gz.numpy(), gq.numpy(), gkv.numpy())
        return gq.view(q_shape), None if ctx.same else gkv.view(kv_shape), None, None, None, None, None


def _threads(kern) -> None:
    """The kernels use as many threads as torch (``train.threads``)."""
    n = max(1, min(torch.get_num_threads(), kern.numba.config.NUMBA_NUM_THREADS))
    if kern.numba.get_num_threads() != n:
        kern.numba.set_num_threads(n)
