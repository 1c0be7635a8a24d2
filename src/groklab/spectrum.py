"""An embedding's Fourier spectrum over the residues, in numpy (no torch): the key-frequency
rule of the Fourier measures (:mod:`groklab.measures.fourier`, whose module doc states it),
and the spectrum itself by the real FFT, for ``groklab report``.

In Nanda et al.'s orthonormal real basis, frequency k >= 1 (k < p/2) has the rows
sqrt(2/p) cos(w_k x) and sqrt(2/p) sin(w_k x), so its squared norm is (2/p) |F_k|^2 with
F_k = sum_x W_x e^{-i w_k x} (the real FFT); the constant's is |F_0|^2 / p, and for even p
frequency p/2 (one cosine row, 1/sqrt(p)) has |F_{p/2}|^2 / p. The cos/sin coefficients are
sqrt(2/p) Re F_k and -sqrt(2/p) Im F_k. ``tests/unit/test_measures.py`` checks these against
the basis of :func:`groklab.measures.fourier.fourier_basis`.
"""

from __future__ import annotations

import numpy as np

REL_THRESHOLD = 1.5  # a key frequency's share of the non-constant norm is >= 1.5 / K ...
MAX_KEY = 8  # ... and at most 8 of them, largest first


def key_frequencies(sq_norms, rel_threshold: float = REL_THRESHOLD, max_key: int = MAX_KEY) -> list[list[int]]:
    """Per-member key frequencies (largest norm first) from squared norms (E, K+1), column 0
    the constant: those with share >= rel_threshold / K of the non-constant norm, at most
    ``max_key``; the largest alone if none passes. Takes numpy arrays or CPU tensors."""
    nc = np.asarray(sq_norms, dtype=np.float64)[:, 1:]
    K = nc.shape[1]
    share = nc / np.maximum(nc.sum(1, keepdims=True), 1e-300)
    out = []
    for e in range(nc.shape[0]):
        order = np.argsort(-nc[e], kind="stable")
        keys = [int(k) + 1 for k in order if share[e, k] >= rel_threshold / K][:max_key]
        out.append(keys or [int(order[0]) + 1])
    return out


def frequency_sq_norms(W: np.ndarray) -> np.ndarray:
    """W (E, p, d) over the token axis p -> squared norm per frequency (E, p // 2 + 1),
    column 0 the constant (as :func:`groklab.measures.fourier.frequency_sq_norms`)."""
    p = W.shape[1]
    F = np.fft.rfft(np.asarray(W, dtype=np.float64), axis=1)  # (E, p // 2 + 1, d)
    sq = (np.abs(F) ** 2).sum(-1)
    scale = np.full(sq.shape[1], 2.0 / p)
    scale[0] = 1.0 / p
    if p % 2 == 0:
        scale[-1] = 1.0 / p
    return sq * scale


def cos_sin_directions(W: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The (d,) Fourier coefficients of W (p, d) on the cos and sin rows of frequency k >= 1."""
    p = W.shape[0]
    F = np.fft.rfft(np.asarray(W, dtype=np.float64), axis=0)[k]
    return np.sqrt(2.0 / p) * F.real, -np.sqrt(2.0 / p) * F.imag
