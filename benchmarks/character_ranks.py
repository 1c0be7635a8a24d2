"""Ranks of the characters of a binary operation mod p: for f(x, y), the 97 x 97 matrices
e(k f(x, y) / p) (additive characters, k = 1..p-1) and chi_k(f(x, y)) (multiplicative
characters of the nonzero values, k = 1..p-2; 0 where f = 0), and the least and largest
numerical rank of each family (numpy's SVD, singular values above 1e-6 of the largest).

Rank 1 in one family means f = h(g1(x) o g2(y)) with that family's group operation read off
directly (a+b: additive; x*y: multiplicative). High ranks in both do not prove a task
unlearnable: (x+y)^2 has additive rank p and is a+b with relabelled answers.

    python benchmarks/character_ranks.py [--p 97]
"""

from __future__ import annotations

import argparse

import numpy as np

OPS = {
    "a+b": lambda x, y, p: (x + y) % p,
    "a-b": lambda x, y, p: (x - y) % p,
    "a*b": lambda x, y, p: (x * y) % p,
    "x^2+y^2": lambda x, y, p: (x * x + y * y) % p,
    "(x+y)^2": lambda x, y, p: (x + y) ** 2 % p,
    "x^2+xy+y^2": lambda x, y, p: (x * x + x * y + y * y) % p,
    "x^3+xy": lambda x, y, p: (x ** 3 + x * y) % p,
}


def discrete_log(p: int) -> np.ndarray:
    """log[v] of every nonzero v mod p to the smallest primitive root."""
    for g in range(2, p):
        if len({pow(g, k, p) for k in range(p - 1)}) == p - 1:
            log = np.zeros(p, dtype=int)
            for k in range(p - 1):
                log[pow(g, k, p)] = k
            return log
    raise ValueError(f"p={p} is not prime")


def rank(m: np.ndarray) -> int:
    s = np.linalg.svd(m, compute_uv=False)
    return int((s > 1e-6 * s[0]).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=int, default=97)
    p = ap.parse_args().p
    x, y = np.arange(p)[:, None], np.arange(p)[None, :]
    log = discrete_log(p)
    print(f"{'operation':12s} additive rank (min/max)  multiplicative rank (min/max)")
    for name, op in OPS.items():
        f = op(x, y, p)
        add = [rank(np.exp(2j * np.pi * k * f / p)) for k in range(1, p)]
        mul = [rank(np.where(f == 0, 0, np.exp(2j * np.pi * k * log[f] / (p - 1)))) for k in range(1, p - 1)]
        print(f"{name:12s} {min(add):>4d} / {max(add):<4d}              {min(mul):>4d} / {max(mul):<4d}")


if __name__ == "__main__":
    main()
