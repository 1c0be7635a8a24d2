"""Grokking events and the phase of learning, per ensemble member.

Events are the first *evaluated* step at which an accuracy reaches a threshold.

Phases follow Liu et al. 2022 ("Towards Understanding Grokking", Table 1), with the
threshold (90%), the budget (1e5 steps) and the gap (1e3 steps) configurable:

=============  ==========================  ==========================  ===========================
phase          train acc > thr in budget   val acc > thr in budget     step(val) - step(train) < gap
=============  ==========================  ==========================  ===========================
comprehension  yes                         yes                         yes
grokking       yes                         yes                         no
memorization   yes                         no                          n/a
confusion      no                          no                          n/a
=============  ==========================  ==========================  ===========================

A member whose val accuracy crosses without its train accuracy ever crossing is counted as
confusion (the table leaves that case out; it does not occur on these tasks).

Evaluations are spaced (log-spaced, late in a run coarser than the 10^3-step gap), so a
crossing is known only to lie in (previous evaluated step, first evaluated step at or above
the threshold]. The phase is decided on those intervals: ``undetermined`` when the
evaluations cannot tell the two sides of the gap (or of the budget) apart, never a guess.
The budget defaults to the run's own length (``detect.budget = None``); the summary records
the budget, gap and threshold used (``summary["detect"]``). A run that stopped short of a
configured budget without crossing is ``undetermined`` too: it might still have crossed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

PHASES = ("comprehension", "grokking", "memorization", "confusion")
UNDETERMINED = "undetermined"
PHASES = ("comprehension", "grokking", "memorization", "confusion")
CELLS = PHASES + (UNDETERMINED, "tie")  # a phase-diagram cell's label: a phase, or no decision


def first_step_at_least(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """The first step whose value is >= threshold, or None."""
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    return int(np.asarray(steps)[hit[0]]) if len(hit) else None


def first_step_held(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """The first step from which every later evaluation stays >= threshold, or None (the
    last one is below). Unlike the first crossing, a dip before a run settles does not move
    it earlier; it marks where the run stays."""
    below = np.flatnonzero(~(np.asarray(values) >= threshold))
    steps = np.asarray(steps)
    if not len(steps) or (len(below) and below[-1] == len(steps) - 1):
        return None
    return int(steps[below[-1] + 1]) if len(below) else int(steps[0])


def crossing_interval(steps, values, threshold: float) -> tuple[int, int] | None:
    """(lo, hi): the first crossing happened at some step in [lo, hi] — hi the first evaluated
    step at or above ``threshold``, lo one past the evaluation before it (hi itself for the
    first evaluation). None if never."""
    steps = np.asarray(steps)
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    if not len(hit):
        return None
    i = int(hit[0])
    hi = int(steps[i])
    return (int(steps[i - 1]) + 1 if i > 0 else hi, hi)


def phase(step_train, step_val, budget: int | None, gap: int, steps_run: int | None = None) -> str:
    """Liu et al. Table 1 from the first crossings of train / val accuracy: each an exact step
    (int), an interval (lo, hi) known to hold it, or None (never crossed in the run).
    ``budget`` None: the run's own length. ``steps_run``: how far the run went (a configured
    budget beyond it leaves "never crossed" undecided)."""
    def iv(s):
        return None if s is None else (s, s) if isinstance(s, (int, np.integer)) else (int(s[0]), int(s[1]))

    tr, va = iv(step_train), iv(step_val)
    short = budget is not None and steps_run is not None and steps_run < budget

    def within(x):  # True / False / None (undecided)
        if x is None:
            return None if short else False
        if budget is None or x[1] <= budget:
            return True
        return False if x[0] > budget else None

    t, v = within(tr), within(va)
    if t is None:
        return UNDETERMINED
    if not t:
        return "confusion"
    if v is None:
        return UNDETERMINED
    if not v:
        return "memorization"
    d_min, d_max = va[0] - tr[1], va[1] - tr[0]
    if d_max < gap:
        return "comprehension"
    if d_min >= gap:
        return "grokking"
    return UNDETERMINED


def member_events(steps, train_acc, val_acc, *, threshold: float, budget: int | None, gap: int,
                  seconds=None, steps_run: int | None = None) -> dict:
    """Events of one member from its evaluated series (equal-length arrays)."""
    steps = np.asarray(steps)
    s_tr = first_step_at_least(steps, train_acc, threshold)
    s_va = first_step_at_least(steps, val_acc, threshold)
    out = {
        "step_train_99": first_step_at_least(steps, train_acc, 0.99),
        "step_val_99": first_step_at_least(steps, val_acc, 0.99),
        "step_val_99_held": first_step_held(steps, val_acc, 0.99),  # from here on >= 99% to the end
        "step_train_thr": s_tr,
        "step_val_thr": s_va,
        "phase": phase(crossing_interval(steps, train_acc, threshold), crossing_interval(steps, val_acc, threshold),
                       budget, gap, steps_run),
    }
    out["seconds_val_99"] = None
    if seconds is not None and out["step_val_99"] is not None:
        i = int(np.flatnonzero(steps == out["step_val_99"])[0])
        out["seconds_val_99"] = float(np.asarray(seconds)[i])
    return out


def events_from_metrics(df, member: int, *, threshold: float = 0.9, budget: int | None = None,
                        gap: int = 1000, steps_run: int | None = None) -> dict:
    """Events of ``member`` from a long-format metrics frame."""
    m = df[df["member"] == member].pivot_table(index="step", columns="name", values="value")
    secs = m["time_s"].to_numpy() if "time_s" in m else None
    return member_events(m.index.to_numpy(), m["train_acc"].to_numpy(), m["val_acc"].to_numpy(),
                         threshold=threshold, budget=budget, gap=gap, seconds=secs, steps_run=steps_run)


def modal_phase(phases) -> str | None:
    """The label most seeds got (a phase, or "undetermined"); "tie" when two labels share the
    largest count — never a silent pick."""
    c = Counter(p for p in phases if p in CELLS)
    if not c:
        return None
    best = max(c.values())
    top = [p for p in CELLS if c.get(p) == best]
    return top[0] if len(top) == 1 else "tie"
