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
"""

from __future__ import annotations

import numpy as np

PHASES = ("comprehension", "grokking", "memorization", "confusion")


def first_step_at_least(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """The first step whose value is >= threshold, or None."""
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    return int(np.asarray(steps)[hit[0]]) if len(hit) else None


def phase(step_train: int | None, step_val: int | None, budget: int | None, gap: int) -> str:
    """Liu et al. Table 1 from the first steps at which train / val accuracy crossed."""
    def within(s):
        return s is not None and (budget is None or s <= budget)

    if not within(step_train):
        return "confusion"
    if not within(step_val):
        return "memorization"
    return "comprehension" if step_val - step_train < gap else "grokking"


def member_events(steps, train_acc, val_acc, *, threshold: float, budget: int | None, gap: int,
                  seconds=None) -> dict:
    """Events of one member from its evaluated series (equal-length arrays)."""
    steps = np.asarray(steps)
    s_tr = first_step_at_least(steps, train_acc, threshold)
    s_va = first_step_at_least(steps, val_acc, threshold)
    out = {
        "step_train_99": first_step_at_least(steps, train_acc, 0.99),
        "step_val_99": first_step_at_least(steps, val_acc, 0.99),
        "step_train_thr": s_tr,
        "step_val_thr": s_va,
        "phase": phase(s_tr, s_va, budget, gap),
    }
    out["seconds_val_99"] = None
    if seconds is not None and out["step_val_99"] is not None:
        i = int(np.flatnonzero(steps == out["step_val_99"])[0])
        out["seconds_val_99"] = float(np.asarray(seconds)[i])
    return out


def events_from_metrics(df, member: int, *, threshold: float = 0.9, budget: int | None = None,
                        gap: int = 1000) -> dict:
    """Events of ``member`` from a long-format metrics frame."""
    m = df[df["member"] == member].pivot_table(index="step", columns="name", values="value")
    secs = m["time_s"].to_numpy() if "time_s" in m else None
    return member_events(m.index.to_numpy(), m["train_acc"].to_numpy(), m["val_acc"].to_numpy(),
                         threshold=threshold, budget=budget, gap=gap, seconds=secs)
