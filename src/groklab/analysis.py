"""Post-hoc progress measures over a run's saved checkpoints (``groklab analyze``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from groklab.run import Run
from groklab.store import METRIC_COLUMNS


def analyze(run_dir: str | Path, names: list[str], steps: list[int] | None = None,
            progress: bool = False) -> pd.DataFrame:
    """Compute ``names`` at every saved checkpoint (or ``steps``) and merge the rows into
    ``metrics.parquet`` (same long format; a recomputed value replaces the old one).
    Returns the new rows."""
    from groklab import measures
    from groklab.config import ConfigError

    for n in names:
        if n not in measures.MEASURES:
            raise ConfigError("--measures", n, f"unknown measure; choose from {', '.join(measures.MEASURES)}")
    run = Run(run_dir)
    task = run.task
    steps = run.checkpoint_steps if steps is None else steps
    rows = []
    it = steps
    if progress:
        from rich.progress import track

        it = track(steps, description="analyze")
    for step in it:
        model = run.model(step=step)
        for name, vals in measures.compute(names, model, task).items():
            rows.extend((step, e, name, float(v)) for e, v in enumerate(vals.tolist()))
    new = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    old = run.metrics
    key = ["step", "member", "name"]
    merged = pd.concat([old, new]).drop_duplicates(subset=key, keep="last").sort_values(key, kind="stable")
    run.store.write_metrics(list(merged.itertuples(index=False, name=None)))
    return new
