"""Numba kernels of :func:`groklab.models.row_attention.row_attention` (CPU, float32/float64).

Shapes (flat, the ensemble axis folded into rows and sequences): tables qt (Rq, Cq) and
kvt (Rk, Ck); a head h of a row is the dh columns from ``off + h * dh``. Sequences m < M
read query rows q_rows (M, Tq) and key rows k_rows (M, Tk); allowed (M, Tq, Tk) masks keys.
Outputs: z (M, Tq, H * dh) and the probabilities p (M, Tq, Tk, H), kept for the backward.

The forward runs sequences in parallel. The backward adds into rows that many sequences
share, so it runs heads in parallel instead: a head's columns are its own, no two threads
add into the same element, and each element's additions come in sequence order (the
result does not depend on the thread count). ``scale`` carries the dtype: every constant is
made from it, so float32 inputs are computed in float32 throughout.
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM vectorise the dot products; no nnan/ninf: NaN and inf propagate.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


@numba.njit(cache=True, fastmath=_FASTMATH, parallel=True)
def forward(qt, q_off, kvt, k_off, v_off, q_rows, k_rows, allowed, H, dh, scale, z, p):  # pragma: no cover - compiled
    M, Tq = q_rows.shape
    Tk = k_rows.shape[1]
    zero, one = scale - scale, scale / scale
    for m in numba.prange(M):
        s = np.empty(Tk, dtype=qt.dtype)
        for i in range(Tq):
            q_row = qt[q_rows[m, i]]
            for h in range(H):
                q_h = q_row[q_off + h * dh : q_off + (h + 1) * dh]
                z_h = z[m, i, h * dh : (h + 1) * dh]
                top, seen = zero, False
                for k in range(Tk):
                    if allowed[m, i, k]:
                        k_h = kvt[k_rows[m, k], k_off + h * dh : k_off + (h + 1) * dh]
                        acc = zero
                        for c in range(dh):
                            acc += q_h[c] * k_h[c]
                        s[k] = acc * scale
                        if not seen or s[k] > top:
                            top, seen = s[k], True
                total = zero
                for k in range(Tk):
                    s[k] = np.exp(s[k] - top) if allowed[m, i, k] else zero
                    total += s[k]
                inv = one / total
                z_h[:] = zero
                for k in range(Tk):
                    p_k = s[k] * inv
                    p[m, i, k, h] = p_k
                    if p_k != zero:
                        v_h = kvt[k_rows[m, k], v_off + h * dh : v_off + (h + 1) * dh]
                        for c in range(dh):
                            z_h[c] += p_k * v_h[c]


@numba.njit(cache=True, fastmath=_FASTMATH, parallel=True)
def backward(qt, q_off, kvt, k_off, v_off, q_rows, k_rows, H, dh, scale, p, gz, gq, gkv):  # pragma: no cover - compiled
    """Adds the gradients into gq (like qt) and gkv (like kvt); they may be one array."""
    M, Tq = q_rows.shape
    Tk = k_rows.shape[1]
    zero = scale - scale
    for h in numba.prange(H):
        g_s = np.empty(Tk, dtype=qt.dtype)
        qa, ka, va = q_off + h * dh, k_off + h * dh, v_off + h * dh
        for m in range(M):
            for i in range(Tq):
                r = q_rows[m, i]
                q_h, gq_h = qt[r, qa : qa + dh], gq[r, qa : qa + dh]
                gz_h = gz[m, i, h * dh : (h + 1) * dh]
                mean = zero  # sum_k p_k dL/dp_k
                for k in range(Tk):
                    p_k, g_p = p[m, i, k, h], zero
                    if p_k != zero:
                        r_k = k_rows[m, k]
                        v_h, gv_h = kvt[r_k, va : va + dh], gkv[r_k, va : va + dh]
                        for c in range(dh):
                            g_p += gz_h[c] * v_h[c]
                        for c in range(dh):
                            gv_h[c] += p_k * gz_h[c]
                    g_s[k] = g_p
                    mean += p_k * g_p
                for k in range(Tk):
                    p_k = p[m, i, k, h]
                    if p_k != zero:
                        g = p_k * (g_s[k] - mean) * scale  # dL/d(q.k) through the softmax
                        r_k = k_rows[m, k]
                        k_h, gk_h = kvt[r_k, ka : ka + dh], gkv[r_k, ka : ka + dh]
                        for c in range(dh):
                            gq_h[c] += g * k_h[c]
                        for c in range(dh):
                            gk_h[c] += g * q_h[c]
