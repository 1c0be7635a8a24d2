"""The three phases of grokking of Nanda et al. 2023 ("Progress measures for grokking via
mechanistic interpretability", ICLR 2023, Sec. 5.2), located on saved loss curves.

Nanda et al. describe (their epochs: 0-1.4k, 1.4k-9.4k, 9.4k-13.3k):

* memorization: train and excluded loss fall together, test and restricted loss stay high;
* circuit formation: excluded loss rises, restricted loss falls, test loss stays high;
* cleanup: test and restricted loss fall sharply, weight norm falls; it ends when the
  memorizing components are gone and test loss is at its floor.

The paper describes the phases in words; :func:`nanda_phases` turns the description into
rules (in its docstring) without tuned constants: each threshold is the 99% level groklab
uses for its events, a comparison between two of the curves, or the factor 2 that marks
the excluded loss's floor.

>>> ph = nanda_phases(steps, train_loss, val_loss, restricted_loss, excluded_loss)
>>> ph.memorization_end, ph.circuit_formation_end, ph.cleanup_end
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ACC_LEVEL = 0.99  # the level of groklab's step_train_99 / step_val_99 events
TOL = 2.0  # the excluded loss's floor: within this factor of its minimum


@dataclass(frozen=True)
class NandaPhases:
    """Phase boundaries (optimization steps; None: not reached in the curves given).
    Memorization is [first step, memorization_end], circuit formation
    [memorization_end, circuit_formation_end], cleanup [circuit_formation_end, cleanup_end]."""

    memorization_end: int | None
    circuit_formation_end: int | None  # = the start of cleanup
    cleanup_end: int | None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


def _as_1d(name: str, x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    return a


def nanda_phases(steps, train_loss, val_loss, restricted_loss, excluded_loss, *,
                 acc_level: float = ACC_LEVEL, tol: float = TOL) -> NandaPhases:
    """Memorization / circuit formation / cleanup boundaries from aligned curves (n,) each:
    steps (increasing), train and val (test) loss, restricted and excluded loss (Nanda et al.
    2023, Sec. 5.1; groklab's ``restricted_loss`` measure, best with the final checkpoint's
    key frequencies: ``groklab analyze RUN -m restricted_loss``, which fixes them by default). Rows with a
    non-finite value are ignored.

    Rules, with eps = (1 - acc_level) log 2 (0.0069 nats for 99%): a mean cross-entropy
    below eps guarantees accuracy >= acc_level, since a misclassified row puts at most 1/2
    on its answer and so costs at least log 2.

    1. The training set is memorized at the first step with train_loss <= eps. Before that
       no phase ends (all None if it never happens).
    2. ``circuit_formation_end`` (= cleanup start): the first step, not before (1), from
       which on restricted_loss < excluded_loss at every later step: the key-frequency part
       of the logits alone now fits the training rows better than everything else (the
       memorizing part), i.e. the generalizing circuit has overtaken the memorizing one. The
       "from which on" ignores transient crossings (e.g. loss spikes). None if the restricted
       loss is still above the excluded loss at the last step.
    3. ``memorization_end``: the excluded loss falls with the train loss, then rises. Between
       (1) and (2) (or the last step), take its minimum m; the floor is the contiguous run of
       steps around the minimum with excluded_loss <= tol * m; memorization ends at the floor's
       last step, where the excluded loss turns up. tol = 2: the excluded loss falls and then
       rises by orders of magnitude, while on its floor it jitters by tens of percent between
       checkpoints, so a factor 2 separates the floor from both slopes.
    4. ``cleanup_end``: the first step, not before (2), with val_loss <= eps and
       restricted_loss <= eps: the model classifies >= acc_level of the held-out rows, and the
       key frequencies alone the training rows (test loss has reached the generalizing level).

    On ``benchmarks/out/nanda2023_full`` (Nanda's setup: p = 113, 30% train, AdamW lr 1e-3,
    wd 1, full batch; final keys) this gives 1585 / 4467 / 7079 steps, against Nanda's
    1.4k / 9.4k / 13.3k epochs (one epoch = one full-batch step).
    """
    cols = {n: _as_1d(n, x) for n, x in (("steps", steps), ("train_loss", train_loss), ("val_loss", val_loss),
                                         ("restricted_loss", restricted_loss), ("excluded_loss", excluded_loss))}
    lengths = {n: len(a) for n, a in cols.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"curves of different lengths: {lengths}")
    if not 0 < acc_level < 1:
        raise ValueError(f"acc_level={acc_level!r}: expected a share in (0, 1)")
    if not tol > 1:
        raise ValueError(f"tol={tol!r}: expected a factor > 1")
    keep = np.logical_and.reduce([np.isfinite(a) for a in cols.values()])
    s, tr, va, re, ex = (cols[n][keep] for n in cols)
    if len(s) == 0:
        raise ValueError("no step has all five values finite")
    if np.any(np.diff(s) <= 0):
        bad = int(np.flatnonzero(np.diff(s) <= 0)[0])
        raise ValueError(f"steps must increase: step {s[bad]:g} is followed by {s[bad + 1]:g}")
    eps = (1 - acc_level) * math.log(2)
    n = len(s)

    # (1) memorized
    hit = np.flatnonzero(tr <= eps)
    if len(hit) == 0:
        return NandaPhases(None, None, None)
    i_mem = int(hit[0])

    # (2) restricted < excluded from some step on, for good
    above = np.flatnonzero(~(re < ex))
    i_cf = 0 if len(above) == 0 else int(above[-1]) + 1
    i_cf = max(i_cf, i_mem) if i_cf < n else None

    # (3) the end of the excluded loss's floor, in [i_mem, i_cf]
    hi = (n - 1) if i_cf is None else i_cf
    i_end = i_mem + int(np.argmin(ex[i_mem : hi + 1]))
    floor = tol * ex[i_end]
    while i_end + 1 <= hi and ex[i_end + 1] <= floor:
        i_end += 1

    # (4) val and restricted loss at the generalizing level
    i_cl = None
    if i_cf is not None:
        done = np.flatnonzero((va[i_cf:] <= eps) & (re[i_cf:] <= eps))
        i_cl = None if len(done) == 0 else i_cf + int(done[0])

    step = lambda i: None if i is None else int(s[i])  # noqa: E731
    return NandaPhases(step(i_end), step(i_cf), step(i_cl))
