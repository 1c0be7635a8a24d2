"""Numba kernels of :func:`groklab.models.row_attention.row_attention` (CPU, float32/float64).

Shapes: tables qt (E, Rq, Cq) and kvt (E, Rk, Ck), a head h of a row being the dh columns
from ``off + h * dh``; sequence n of member e reads query rows q_rows[e or 0, n] (Tq of
them) and key rows k_rows[e or 0, n] (Tk), rows of member e's table; allowed[n or 0]
(Tq, Tk) masks keys. Outputs: z (E, N, Tq, H * dh) and the probabilities p (E, N, Tq, Tk,
H), kept for the backward.

The kernels run on the calling thread and release the GIL. Not in parallel: Numba's
OpenMP layer kills a process forked after it ran (a DataLoader's workers, say), its
work-queue layer aborts on calls from two threads at once, and a thread pool of our own
lost to one thread here, its workers contending with torch's for the two cores
(benchmarks/RESULTS.md). The backward adds into rows that many sequences share, in
sequence order: the result is deterministic. ``scale`` carries the dtype: every constant is
made from it, so float32 inputs are computed in float32 throughout.
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM vectorise the dot products; no nnan/ninf: NaN and inf propagate.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
# The tables are read through flat views at unsigned offsets: no array views made in the
# loops (each costs reference counting) and no negative-index checks (signed indices get
# one per access), which left the loops unvectorised: 2x slower backward, measured.
_u = np.uint64


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def forward(qt, q_off, kvt, k_off, v_off, q_rows, k_rows, allowed, H, dh, scale, z, p):  # pragma: no cover - compiled
    E, N, Tq, Tk = z.shape[0], z.shape[1], q_rows.shape[2], k_rows.shape[2]
    Rq, Cq, Rk, Ck, d = qt.shape[1], qt.shape[2], kvt.shape[1], kvt.shape[2], z.shape[3]
    qf, kf, zf = qt.ravel(), kvt.ravel(), z.ravel()
    zero, one = scale - scale, scale / scale
    s = np.empty(Tk, dtype=qt.dtype)
    D = _u(dh)
    kb = np.empty(Tk, dtype=np.uint64)
    for m in range(E * N):
        e, n = m // N, m % N
        eq, ek, na = min(e, q_rows.shape[0] - 1), min(e, k_rows.shape[0] - 1), min(n, allowed.shape[0] - 1)
        for k in range(Tk):  # flat offsets of the sequence's key rows
            kb[k] = _u((e * Rk + k_rows[ek, n, k]) * Ck)
        for i in range(Tq):
            qb = _u((e * Rq + q_rows[eq, n, i]) * Cq + q_off)
            zb = _u(m * Tq * d + i * d)
            for h in range(H):
                hd = _u(h * dh)
                top, seen = zero, False
                for k in range(Tk):
                    if allowed[na, i, k]:
                        b = kb[k] + _u(k_off) + hd
                        a = qb + hd
                        acc = zero
                        for c in range(D):
                            acc += qf[a + c] * kf[b + c]
                        s[k] = acc * scale
                        if not seen or s[k] > top:
                            top, seen = s[k], True
                total = zero
                for k in range(Tk):
                    s[k] = np.exp(s[k] - top) if allowed[na, i, k] else zero
                    total += s[k]
                inv = one / total
                o = zb + hd
                for c in range(D):
                    zf[o + c] = zero
                for k in range(Tk):
                    p_k = s[k] * inv
                    p[e, n, i, k, h] = p_k
                    if p_k != zero:
                        b = kb[k] + _u(v_off) + hd
                        for c in range(D):
                            zf[o + c] += p_k * kf[b + c]


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def backward(qt, q_off, kvt, k_off, v_off, q_rows, k_rows, dh, scale, p, gz, gq, gkv):  # pragma: no cover - compiled
    """Adds the gradients into gq (like qt) and gkv (like kvt); they may be one array."""
    E, N, Tq, Tk, H = p.shape
    Rq, Cq, Rk, Ck, d = qt.shape[1], qt.shape[2], kvt.shape[1], kvt.shape[2], gz.shape[3]
    qf, kf, gzf, gqf, gkf = qt.ravel(), kvt.ravel(), gz.ravel(), gq.ravel(), gkv.ravel()
    zero = scale - scale
    g_s = np.empty(Tk, dtype=qt.dtype)
    D = _u(dh)
    kb = np.empty(Tk, dtype=np.uint64)
    for e in range(E):
        eq, ek = min(e, q_rows.shape[0] - 1), min(e, k_rows.shape[0] - 1)
        for n in range(N):
            for k in range(Tk):
                kb[k] = _u((e * Rk + k_rows[ek, n, k]) * Ck)
            for i in range(Tq):
                qb = _u((e * Rq + q_rows[eq, n, i]) * Cq + q_off)
                gb = _u(((e * N + n) * Tq + i) * d)
                for h in range(H):
                    hd = _u(h * dh)
                    a, g0 = qb + hd, gb + hd
                    mean = zero  # sum_k p_k dL/dp_k
                    for k in range(Tk):
                        p_k, g_p = p[e, n, i, k, h], zero
                        if p_k != zero:
                            b = kb[k] + _u(v_off) + hd
                            for c in range(D):
                                g_p += gzf[g0 + c] * kf[b + c]
                            for c in range(D):
                                gkf[b + c] += p_k * gzf[g0 + c]
                        g_s[k] = g_p
                        mean += p_k * g_p
                    for k in range(Tk):
                        p_k = p[e, n, i, k, h]
                        if p_k != zero:
                            g = p_k * (g_s[k] - mean) * scale  # dL/d(q.k) through the softmax
                            b = kb[k] + _u(k_off) + hd
                            for c in range(D):
                                gqf[a + c] += g * kf[b + c]
                            for c in range(D):
                                gkf[b + c] += g * qf[a + c]
