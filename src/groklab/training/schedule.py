"""Step schedules: when to evaluate, when to keep weights.

Log-spaced (``per_decade`` points per factor of 10, as openai/grok's ``1.01 *`` schedule but
fixed in advance) or every ``every`` steps; step 0 and the last step are always included.
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


def eval_steps(total: int, every: int | None, per_decade: int) -> list[int]:
    return interval_steps(total, every) if every else log_steps(total, per_decade)

