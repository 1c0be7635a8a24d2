"""Algorithmic tasks: binary operations on Z_p and on S5 (Power et al. 2022, Appendix A.1).

The full operation table is built once as tensors; a split is an index set fixed by
``(op, p, fraction, split, split_seed, dedupe_commutative)`` alone, drawn with its own
``torch.Generator`` (never the init seed).

Token layout (vocabulary: symbols ``0..n_sym-1``, then ``op`` = n_sym, ``=`` = n_sym + 1):

* ``"ab="``   -> ``[a, b, =]``       (Nanda et al. 2023)
* ``"aopb="`` -> ``[a, op, b, =]``   (Power et al. 2022)

The answer is read at the last position (``=``); it is a class in ``0..n_classes-1``.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from groklab.config import SPLITS, AlgorithmicConfig, ConfigError
from groklab.tasks.base import Task

# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    id: str
    formula: str
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    group: str = "Zp"  # Zp | S5 | Z (no modulus)
    needs_prime: bool = False
    commutative: bool = False
    nonzero_b: bool = False  # the table excludes b = 0 (division)


def _inv(b: np.ndarray, p: int) -> np.ndarray:
    return np.array([pow(int(x), p - 2, p) for x in b.ravel()], dtype=np.int64).reshape(b.shape)


def _div_odd(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return np.where(b % 2 == 1, (a * _inv(np.where(b == 0, 1, b), p)) % p, (a - b) % p)


# S5: permutations of (0..4) in lexicographic order; x∘y means (x∘y)(i) = x[y[i]].
_S5 = np.array(list(itertools.permutations(range(5))), dtype=np.int64)  # (120, 5)
_S5_INDEX = {tuple(p): i for i, p in enumerate(_S5.tolist())}


def _s5_compose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of x∘y for index arrays x, y."""
    comp = np.take_along_axis(_S5[x], _S5[y], axis=-1)  # (n, 5): x[y[i]]
    return np.array([_S5_INDEX[tuple(r)] for r in comp.tolist()], dtype=np.int64)


def _s5_inverse(x: np.ndarray) -> np.ndarray:
    inv = np.argsort(_S5[x], axis=-1)
    return np.array([_S5_INDEX[tuple(r)] for r in inv.tolist()], dtype=np.int64)


OPS: dict[str, Op] = {
    o.id: o
    for o in [
        Op("add", "x+y mod p", lambda a, b, p: (a + b) % p, commutative=True),
        Op("sub", "x-y mod p", lambda a, b, p: (a - b) % p),
        Op("mul", "x*y mod p", lambda a, b, p: (a * b) % p, commutative=True),
        Op("mul_nz", "x*y mod p (y != 0, as Grokfast's main.py)", lambda a, b, p: (a * b) % p,
           nonzero_b=True),
        Op("div", "x/y mod p (y != 0)", lambda a, b, p: (a * _inv(b, p)) % p,
           needs_prime=True, nonzero_b=True),
        Op("div_odd", "x/y if y odd else x-y, mod p", _div_odd, needs_prime=True),
        Op("sq_add", "x^2+y^2 mod p", lambda a, b, p: (a * a + b * b) % p, commutative=True),
        Op("quad", "x^2+xy+y^2 mod p", lambda a, b, p: (a * a + a * b + b * b) % p,
           commutative=True),
        Op("quad_x", "x^2+xy+y^2+x mod p", lambda a, b, p: (a * a + a * b + b * b + a) % p),
        Op("cube_xy", "x^3+xy mod p", lambda a, b, p: (a**3 + a * b) % p),
        Op("cube_xy2", "x^3+xy^2+y mod p", lambda a, b, p: (a**3 + a * b * b + b) % p),
        Op("s5_mul", "x∘y on S5", lambda a, b, p: _s5_compose(a, b), group="S5"),
        Op("s5_conj", "x∘y∘x^-1 on S5",
           lambda a, b, p: _s5_compose(_s5_compose(a, b), _s5_inverse(a)), group="S5"),
        Op("s5_xyx", "x∘y∘x on S5", lambda a, b, p: _s5_compose(_s5_compose(a, b), a),
           group="S5"),
        Op("add_int", "x+y without modulus (Liu et al. 2022 toy)", lambda a, b, p: a + b,
           group="Z", commutative=True),
    ]
}


# --------------------------------------------------------------------------- dataset


def check_config(cfg: AlgorithmicConfig) -> None:
    """The checks that need the operations (the rest are the config's own)."""
    if cfg.op not in OPS:
        raise ConfigError("task.op", cfg.op, f"unknown op; choose from {', '.join(OPS)}")
    op = OPS[cfg.op]
    if op.group == "S5" and cfg.p != 120:
        raise ConfigError("task.p", cfg.p, f"op {cfg.op!r} acts on S5, whose order is 120")
    if op.needs_prime and not _is_prime(cfg.p):
        raise ConfigError("task.p", cfg.p, f"op {cfg.op!r} needs a prime modulus")
    if cfg.dedupe_commutative and not op.commutative:
        raise ConfigError("task.dedupe_commutative", True, f"op {cfg.op!r} is not commutative")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(math.isqrt(n)) + 1))


@dataclass
class AlgorithmicTask(Task):
    """The whole table of one operation, its split, and its tokenisation.

    Attributes (all tensors live on ``device``):
      a, b, c:    (N,) operands and answer of every row of the table
      tokens:     (N, T) token ids in the configured layout (= ``inputs``; ``c`` = ``targets``)
      train_idx:  (N_train,) rows used for training;  val_idx: the rest
    """

    kind = "algorithmic"
    input_kind, target_kind = "tokens", "classes"
    cfg: AlgorithmicConfig
    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    tokens: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    n_symbols: int
    n_classes: int

    @property
    def op(self) -> Op:
        return OPS[self.cfg.op]

    @property
    def inputs(self) -> torch.Tensor:
        return self.tokens

    @property
    def targets(self) -> torch.Tensor:
        return self.c

    @property
    def out_dim(self) -> int:
        return self.n_classes

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 2

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1]

    @property
    def b_pos(self) -> int:
        """Position of the second operand in ``tokens``."""
        return self.seq_len - 2

    def _tensor_names(self) -> tuple[str, ...]:
        return ("a", "b", "c", "tokens", "train_idx", "val_idx")


def table(op_id: str, p: int, dedupe_commutative: bool = False,
          exclude_diagonal: bool = False) -> tuple[np.ndarray, ...]:
    """Every (a, b, a∘b) in lexicographic (a, b) order, as int64 arrays."""
    op = OPS[op_id]
    n = 120 if op.group == "S5" else p
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, b = a.ravel(), b.ravel()
    keep = np.ones_like(a, dtype=bool)
    if op.nonzero_b:
        keep &= b != 0
    if dedupe_commutative:
        keep &= a <= b
    if exclude_diagonal:
        keep &= a != b
    a, b = a[keep], b[keep]
    return a, b, op.fn(a, b, p).astype(np.int64)


def split_indices(n: int, fraction: float, kind: str, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/val row indices. ``random``: a permutation from its own generator; ``prefix``:
    the first ``int(n * fraction)`` rows (the grokking-challenge thread's split);
    ``python_shuffle``: Nanda et al.'s (``progress-measures-paper``): ``random.seed(seed)``
    then ``random.shuffle`` of the (a, b) pairs in (a, b) order, the first ``int(n *
    fraction)`` for training (a shuffle's permutation depends on the list's length alone,
    so shuffling the row numbers gives their pairs' order)."""
    n_train = min(max(int(n * fraction), 1), n - 1)
    if kind == "prefix":
        order = torch.arange(n)
    elif kind == "random":
        g = torch.Generator().manual_seed(split_seed)
        order = torch.randperm(n, generator=g)
    elif kind == "python_shuffle":
        rows = list(range(n))
        random.Random(split_seed).shuffle(rows)
        order = torch.tensor(rows)
    else:  # validated earlier; kept for direct callers
        raise ConfigError("task.split", kind, f"choose from {', '.join(SPLITS)}")
    return order[:n_train].sort().values, order[n_train:].sort().values


def make(cfg: AlgorithmicConfig) -> AlgorithmicTask:
    """Build the table, tokens and split for ``cfg`` (already validated), on the CPU."""
    check_config(cfg)
    op = OPS[cfg.op]
    a, b, c = table(cfg.op, cfg.p, cfg.dedupe_commutative, cfg.exclude_diagonal)
    n_sym = 120 if op.group == "S5" else cfg.p
    n_classes = 2 * cfg.p - 1 if op.group == "Z" else n_sym
    op_tok, eq_tok = n_sym, n_sym + 1
    cols = [a, b, np.full_like(a, eq_tok)]
    if cfg.layout == "aopb=":
        cols.insert(1, np.full_like(a, op_tok))
    tokens = torch.from_numpy(np.stack(cols, axis=1))
    train_idx, val_idx = split_indices(len(a), cfg.fraction, cfg.split, cfg.split_seed)
    task = AlgorithmicTask(
        cfg=cfg,
        a=torch.from_numpy(a),
        b=torch.from_numpy(b),
        c=torch.from_numpy(c),
        tokens=tokens,
        train_idx=train_idx,
        val_idx=val_idx,
        n_symbols=n_sym,
        n_classes=n_classes,
    )
    return task
