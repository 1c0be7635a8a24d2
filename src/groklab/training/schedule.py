"""Step schedules: when to evaluate, when to keep weights.

Log-spaced (``per_decade`` points per factor of 10, as openai/grok's ``1.01 *`` schedule but
fixed in advance, optionally thinned to a minimum gap) or every ``every`` steps; step 0 and
the last step are always included.
"""

from __future__ import annotations

def log_steps(total: int, per_decade: int) -> list[int]:
    """0, then round(10 ** (i / per_decade)) for i = 0, 1, ... up to ``total``, and total."""
    out = {0, total}
    i = 0
    while True:
        s = round(10 ** (i / per_decade))
        if s > total:
            break
        out.add(s)
        i += 1
    return sorted(out)


def interval_steps(total: int, every: int) -> list[int]:
    return sorted(set(range(0, total + 1, every)) | {total})


def thin(steps: list[int], min_gap: int) -> list[int]:
    """Keep steps at least ``min_gap`` apart, walking up from the first; the last step is
    always kept (it may then follow its predecessor more closely)."""
    if min_gap <= 1 or not steps:
        return list(steps)
    out = [steps[0]]
    for s in steps[1:]:
        if s - out[-1] >= min_gap:
            out.append(s)
    if out[-1] != steps[-1]:
        out.append(steps[-1])
    return out


def eval_steps(total: int, every: int | None, per_decade: int, min_gap: int = 1) -> list[int]:
    """``every`` steps, or log-spaced with ``per_decade`` points a decade and at least
    ``min_gap`` steps between evaluations (a log schedule evaluates every one of the first
    steps; min_gap spares short runs that cost)."""
    return interval_steps(total, every) if every else thin(log_steps(total, per_decade), min_gap)

