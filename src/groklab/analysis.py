"""Post-hoc progress measures over a run's saved checkpoints (``groklab analyze``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from groklab import measures
from groklab.config import ConfigError
from groklab.measures.fourier import embedding_key_frequencies
from groklab.run import Run
from groklab.store import METRIC_COLUMNS


def analyze(run_dir: str | Path, names: list[str], steps: list[int] | None = None,
            progress: bool = False, final_keys: bool = False) -> pd.DataFrame:
    """Compute ``names`` at every saved checkpoint (or ``steps``) and merge the rows into
    ``metrics.parquet`` (same long format; a recomputed value replaces the old one).
    ``final_keys``: every Fourier measure uses the key frequencies of the last checkpoint
    at every step, as Nanda et al. 2023 draw their progress measures. Returns the new rows."""
    for n in names:
        if n not in measures.MEASURES:
            raise ConfigError("--measures", n, f"unknown measure; choose from {', '.join(measures.MEASURES)}")
    run = Run(run_dir)
    task = run.task
    for n in names:
        why = measures.task_kind_problem(n, task.kind, task.target_kind)
        if why:
            raise ConfigError("--measures", n, why)
    steps = run.checkpoint_steps if steps is None else steps
    options = {}
    if final_keys:
        keys = embedding_key_frequencies(run.model(), task)  # one list per member
        options = {n: {"key_freqs": keys} for n in ("fourier", "restricted_loss", "frequency_ablation")
                   if n in names}
    rows = []
    it = steps
    if progress:
        from rich.progress import track

        it = track(steps, description="analyze")
    for step in it:
        model = run.model(step=step)
        for name, vals in measures.compute(names, model, task, options=options).items():
            rows.extend((step, e, name, float(v)) for e, v in enumerate(vals.tolist()))
    new = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    old = run.metrics
    key = ["step", "member", "name"]
    merged = pd.concat([old, new]).drop_duplicates(subset=key, keep="last").sort_values(key, kind="stable")
    run.store.write_metrics(list(merged.itertuples(index=False, name=None)))
    return new
