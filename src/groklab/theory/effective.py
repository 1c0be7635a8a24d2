"""The effective theory of representation learning (Liu et al. 2022, "Towards Understanding
Grokking: An Effective Theory of Representation Learning", NeurIPS 2022, Sec. 3.4-3.5).

The toy model embeds symbol i in 0..p-1 as a row E_i of E (p, d) and decodes E_i + E_j. A
representation is "good" when it keeps every parallelogram of the training set:

* D = the training pairs (i, j); P0(D) = ordered quadruples (i, j, m, n) of two training
  pairs with the same answer (i + j = m + n for ``add_int``, (i + j) mod p equal for
  ``add``), excluding the trivial ones where {m, n} = {i, j} as multisets. This is the set
  of ``rqi_train`` in :mod:`groklab.measures.parallelograms` (there counted once per
  unordered pair of samples).
* Effective loss  l_eff = l0 / Z0,
      l0 = (1/|P0|) sum_{(i,j,m,n) in P0} |E_i + E_j - E_m - E_n|^2,   Z0 = sum_k |E_k|^2,
  trained by gradient flow dE/dt = -grad l_eff (Z0 removes the collapse E -> 0).
* l0 is a quadratic form, the same one in every output dimension: l0 = sum_d e_d^T A e_d,
  A = (1/|P0|) sum_q v_q v_q^T, v_q = e_i + e_j - e_m - e_n (a p-vector). With Z0 = 1 the
  Hessian is 2A (per dimension); its eigenvalues lam1 <= lam2 <= lam3 <= ...

For ``add_int`` the constant (E_i = c) and the linear (E_i = i) embeddings are exact
parallelogram solutions, so lam1 = lam2 = 0 always. lam3 > 0 exactly when the training
parallelograms pin down the linear structure (null space of A = span{1, i}); it is the
"grokking rate": the slowest non-trivial mode of the flow decays like exp(-lam3 t), so the
time to a linear representation scales as 1/lam3. For ``add`` (mod p) the linear embedding
is *not* an exact solution once a quadruple wraps around p (i + j = m + n +- p), so lam2 > 0
there and lam3 is just the third eigenvalue; the theory's clean statement is for ``add_int``.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import torch

from groklab.config import ConfigError, AlgorithmicConfig
from groklab.tasks import OPS, make_task

ZERO_TOL = 1e-9  # an eigenvalue of 2A at or below this counts as zero
THEORY_OPS = ("add_int", "add")

ArrayLike = np.ndarray | torch.Tensor


def _np_int(x: ArrayLike, name: str) -> np.ndarray:
    """A 1-D int64 numpy copy of ``x`` (numpy or torch)."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 1:
        raise ConfigError(name, tuple(arr.shape), "must be a 1-D array")
    return arr.astype(np.int64)


def _check_p(p: int) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 3:
        raise ConfigError("p", p, "must be an integer >= 3")


def _check_quads(p: int, quads: ArrayLike) -> np.ndarray:
    """``quads`` as an int64 (Q, 4) array with entries in 0..p-1."""
    q = quads.detach().cpu().numpy() if isinstance(quads, torch.Tensor) else np.asarray(quads)
    if q.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if q.ndim != 2 or q.shape[1] != 4:
        raise ConfigError("quads", tuple(q.shape), "must have shape (Q, 4)")
    q = q.astype(np.int64)
    if q.min() < 0 or q.max() >= p:
        bad = int(q.min()) if q.min() < 0 else int(q.max())
        raise ConfigError("quads", bad, f"symbol outside 0..{p - 1}")
    return q


# --------------------------------------------------------------------------- parallelograms


def parallelograms(a: ArrayLike, b: ArrayLike, c: ArrayLike) -> np.ndarray:
    """Nontrivial quadruples (i, j, m, n) of two training rows with equal answers.

    a, b, c: (N,) operands and answer of the training rows. Every ordered pair of rows
    (r, s) with c_r = c_s and {a_s, b_s} != {a_r, b_r} (as multisets) gives one quadruple
    (a_r, b_r, a_s, b_s). Returns int64 (Q, 4), grouped by answer, rows in (r, s) order.
    """
    a, b, c = _np_int(a, "a"), _np_int(b, "b"), _np_int(c, "c")
    if not (len(a) == len(b) == len(c)):
        raise ConfigError("a, b, c", (len(a), len(b), len(c)), "must have the same length")
    out: list[np.ndarray] = []
    for ans in np.unique(c):
        rows = np.flatnonzero(c == ans)  # (k,) training rows with this answer
        if len(rows) < 2:
            continue
        r, s = np.meshgrid(rows, rows, indexing="ij")
        r, s = r.ravel(), s.ravel()  # (k*k,) ordered pairs of rows
        trivial = ((a[r] == a[s]) & (b[r] == b[s])) | ((a[r] == b[s]) & (b[r] == a[s]))
        r, s = r[~trivial], s[~trivial]
        out.append(np.stack([a[r], b[r], a[s], b[s]], axis=1))  # (k', 4)
    return np.concatenate(out) if out else np.zeros((0, 4), dtype=np.int64)


def parallelograms_of_task(task) -> np.ndarray:
    """:func:`parallelograms` of the task's training rows, (Q, 4) int64."""
    tr = task.train_idx.cpu()
    return parallelograms(task.a.cpu()[tr], task.b.cpu()[tr], task.c.cpu()[tr])


# --------------------------------------------------------------------------- quadratic form


def quadratic_form(p: int, quads: ArrayLike) -> np.ndarray:
    """A (p, p) = (1/Q) sum_q v_q v_q^T with v_q = e_i + e_j - e_m - e_n, float64.

    l0 = sum over output dims of e^T A e. An empty quadruple set gives A = 0.
    """
    _check_p(p)
    q = _check_quads(p, quads)
    if len(q) == 0:
        return np.zeros((p, p))
    V = np.zeros((len(q), p))  # (Q, p): one row v_q per quadruple
    rows = np.arange(len(q))
    for col, sign in ((0, 1.0), (1, 1.0), (2, -1.0), (3, -1.0)):
        np.add.at(V, (rows, q[:, col]), sign)
    return V.T @ V / len(q)  # (p, p)


def hessian_eigenvalues(p: int, quads: ArrayLike) -> np.ndarray:
    """Eigenvalues of the Hessian 2A of l_eff at Z0 = 1 (one output dimension), ascending,
    (p,). Round-off below ``ZERO_TOL`` in magnitude is set to exactly 0."""
    lam = np.linalg.eigvalsh(2.0 * quadratic_form(p, quads))  # ascending
    lam[np.abs(lam) <= ZERO_TOL] = 0.0
    return lam


def grokking_rate(p: int, quads: ArrayLike) -> float:
    """lam3, the third smallest eigenvalue of 2A; 0.0 when it is <= ``ZERO_TOL``."""
    lam3 = float(hessian_eigenvalues(p, quads)[2])
    return lam3 if lam3 > ZERO_TOL else 0.0


# --------------------------------------------------------------------------- loss and flow


def effective_loss(E: torch.Tensor, quads: ArrayLike) -> torch.Tensor:
    """l_eff = l0 / Z0 for E (p, d) (or (p,) for d = 1); a differentiable 0-d tensor.

    Invariant to E -> s E (s != 0). An empty quadruple set gives 0.
    """
    if E.dim() == 1:
        E = E[:, None]  # (p, 1)
    if E.dim() != 2:
        raise ConfigError("E", tuple(E.shape), "must have shape (p, d) or (p,)")
    q = torch.as_tensor(_check_quads(E.shape[0], quads), device=E.device)
    if len(q) == 0:
        return (E * 0).sum()
    diff = E[q[:, 0]] + E[q[:, 1]] - E[q[:, 2]] - E[q[:, 3]]  # (Q, d)
    l0 = diff.square().sum(-1).mean()
    return l0 / E.square().sum()


def linearity(E: ArrayLike) -> float:
    """R^2 of the least-squares fit E_i ~ alpha + beta * i (alpha, beta in R^d), E (p, d).

    1.0 for an exactly linear embedding (E_i = alpha + beta i); 0.0 for a constant one.
    """
    E = E.detach().cpu().double().numpy() if isinstance(E, torch.Tensor) else np.asarray(E, float)
    E = E.reshape(E.shape[0], -1)  # (p, d)
    X = np.stack([np.ones(len(E)), np.arange(len(E), dtype=float)], axis=1)  # (p, 2)
    coef, *_ = np.linalg.lstsq(X, E, rcond=None)  # (2, d)
    resid = np.square(E - X @ coef).sum()
    total = np.square(E - E.mean(0)).sum()
    return float(1.0 - resid / total) if total > 0 else 0.0


class Flow(TypedDict):
    steps: np.ndarray  # (K,) recorded steps
    time: np.ndarray  # (K,) steps * lr
    E: np.ndarray  # (K, p, d) the representation at each recorded step
    loss: np.ndarray  # (K,) l_eff
    linearity: np.ndarray  # (K,) :func:`linearity` of E


def gradient_flow(E0: ArrayLike, quads: ArrayLike, lr: float = 0.5, steps: int = 2000,
                  record_every: int = 100) -> Flow:
    """Integrate dE/dt = -grad l_eff(E) by explicit Euler with step ``lr``, float64.

    E0: (p, d) (d = 1 or 2; (p,) means d = 1). The gradient is the closed form
        grad l_eff = 2 A E / Z0 - 2 l0 E / Z0^2,
    (the second term is radial: l_eff is scale-invariant, so the flow never shrinks E).
    The step is stable while lr * lam_max(2A) / Z0 < 2; for p ~ 10 and E0 ~ N(0, 1),
    lam_max(2A) is a few units and Z0 ~ p d, so the default lr = 0.5 is far inside.
    Records steps 0, record_every, 2 record_every, ... and the last step.
    """
    E = torch.as_tensor(np.asarray(E0) if not isinstance(E0, torch.Tensor) else E0).double().clone()
    if E.dim() == 1:
        E = E[:, None]
    if E.dim() != 2 or E.shape[1] not in (1, 2):
        raise ConfigError("E0", tuple(E.shape), "must have shape (p,), (p, 1) or (p, 2)")
    p = E.shape[0]
    _check_p(p)
    if not lr > 0:
        raise ConfigError("lr", lr, "must be positive")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError("steps", steps, "must be an integer >= 0")
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise ConfigError("record_every", record_every, "must be a positive integer")
    if not E.square().sum() > 0:
        raise ConfigError("E0", "all zeros", "l_eff is undefined at E = 0")
    A = torch.from_numpy(quadratic_form(p, quads))  # (p, p)
    rec: dict[str, list] = {"steps": [], "E": [], "loss": []}

    def record(t: int, l_eff: float) -> None:
        rec["steps"].append(t)
        rec["E"].append(E.numpy().copy())
        rec["loss"].append(l_eff)

    for t in range(steps + 1):
        Z0 = E.square().sum()
        AE = A @ E  # (p, d)
        l0 = (E * AE).sum()
        if t % record_every == 0 or t == steps:
            record(t, float(l0 / Z0))
        if t == steps:
            break
        grad = 2 * AE / Z0 - 2 * l0 * E / Z0**2  # (p, d)
        E = E - lr * grad
    E_hist = np.stack(rec["E"])  # (K, p, d)
    steps_arr = np.asarray(rec["steps"], dtype=np.int64)
    return Flow(steps=steps_arr, time=steps_arr * float(lr), E=E_hist,
                loss=np.asarray(rec["loss"]), linearity=np.array([linearity(e) for e in E_hist]))


# --------------------------------------------------------------------------- sweeps


class Lambda3Sweep(TypedDict):
    fraction: np.ndarray  # (F,) requested training fractions
    n_train: np.ndarray  # (F,) training rows actually used (int(N * fraction), as make_task)
    actual_fraction: np.ndarray  # (F,) n_train / N, N = rows of the whole table
    lambda3: np.ndarray  # (F, S) lam3 of split_seed s = 0..S-1
    mean: np.ndarray  # (F,)
    median: np.ndarray  # (F,)
    q25: np.ndarray  # (F,)
    q75: np.ndarray  # (F,)
    share_positive: np.ndarray  # (F,) share of splits with lam3 > 0


def _check_sweep(p: int, fractions, n_splits: int, op: str) -> np.ndarray:
    _check_p(p)
    if op not in THEORY_OPS:
        raise ConfigError("op", op, f"the effective theory here covers {', '.join(THEORY_OPS)}")
    fr = np.atleast_1d(np.asarray(fractions, dtype=float))
    if fr.ndim != 1 or len(fr) == 0:
        raise ConfigError("fractions", fractions, "must be a non-empty 1-D sequence")
    for f in fr:
        if not (0.0 < f < 1.0):
            raise ConfigError("fractions", float(f), "every fraction must lie in (0, 1)")
    if np.any(np.diff(fr) <= 0):
        raise ConfigError("fractions", fr.tolist(), "must be strictly increasing")
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ConfigError("n_splits", n_splits, "must be a positive integer")
    return fr


def lambda3_vs_fraction(p: int, fractions, n_splits: int, op: str = "add_int",
                        dedupe_commutative: bool = True) -> Lambda3Sweep:
    """lam3 of the training set of ``make_task(AlgorithmicConfig(op, p, fraction=f, split_seed=s,
    dedupe_commutative))`` for every f in ``fractions`` and s in range(n_splits): exactly the
    splits of real training runs. For one seed the training sets are nested in f (the same
    permutation, a longer prefix). Per fraction: mean, median, quartiles and the share of
    splits with lam3 > 0.
    """
    fr = _check_sweep(p, fractions, n_splits, op)
    if dedupe_commutative and not OPS[op].commutative:
        raise ConfigError("dedupe_commutative", True, f"op {op!r} is not commutative")
    lam = np.zeros((len(fr), n_splits))  # (F, S)
    n_train = np.zeros(len(fr), dtype=np.int64)
    n_rows = 0
    for k, f in enumerate(fr):
        for s in range(n_splits):
            task = make_task(AlgorithmicConfig(op=op, p=p, fraction=float(f), split_seed=s,
                                        dedupe_commutative=dedupe_commutative))
            lam[k, s] = grokking_rate(p, parallelograms_of_task(task))
            n_train[k] = len(task.train_idx)
            n_rows = len(task.a)
    q25, med, q75 = np.quantile(lam, [0.25, 0.5, 0.75], axis=1)
    return Lambda3Sweep(fraction=fr, n_train=n_train, actual_fraction=n_train / n_rows,
                        lambda3=lam, mean=lam.mean(1), median=med, q25=q25, q75=q75,
                        share_positive=(lam > 0).mean(1))


def critical_fraction_of(sweep: Lambda3Sweep, level: float = 0.5, actual: bool = False) -> float:
    """The fraction where ``share_positive`` first reaches ``level`` (1/2), linearly
    interpolated between the grid points around the crossing. NaN when the share is already
    >= level at the first grid point or never reaches it (not bracketed by the grid).

    ``actual=True`` interpolates in the fraction of rows really used (n_train / N): the split
    uses int(N * fraction) rows, so the share is a step function of the requested fraction
    and the interpolated crossing in it depends a little on the grid.
    """
    if not (0.0 < level < 1.0):
        raise ConfigError("level", level, "must lie in (0, 1)")
    fr = sweep["actual_fraction"] if actual else sweep["fraction"]
    share = sweep["share_positive"]
    above = np.flatnonzero(share >= level)
    if len(above) == 0 or above[0] == 0:
        return float("nan")
    k = above[0]
    f0, f1, s0, s1 = fr[k - 1], fr[k], share[k - 1], share[k]
    return float(f0 + (level - s0) * (f1 - f0) / (s1 - s0))


def critical_fraction(p: int, fractions, n_splits: int, op: str = "add_int",
                      dedupe_commutative: bool = True) -> float:
    """The training fraction at which lam3 > 0 for half of the random splits (see
    :func:`lambda3_vs_fraction` and :func:`critical_fraction_of`)."""
    return critical_fraction_of(lambda3_vs_fraction(p, fractions, n_splits, op, dedupe_commutative))
