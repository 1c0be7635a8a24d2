"""Post-hoc progress measures over a run's saved checkpoints (``groklab analyze``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from groklab import measures
from groklab.config import ConfigError
from groklab.measures.fourier import default_key_frequencies, embedding_key_frequencies
from groklab.run import Run
from groklab.store import METRIC_COLUMNS


def analyze(run_dir: str | Path, names: list[str], steps: list[int] | None = None,
            progress: bool = False, final_keys: bool = True) -> pd.DataFrame:
    """Compute ``names`` at every saved checkpoint (or ``steps``) and merge the rows into
    ``metrics.parquet`` (same long format; a recomputed value replaces the old one).
    ``final_keys`` (default, Nanda et al. 2023's convention): every Fourier measure uses the
    key frequencies of the last checkpoint at every step — for ``restricted_loss`` those of
    Nanda et al.'s neuron rule, for ``fourier`` and ``frequency_ablation`` the embedding's;
    ``final_keys=False``: each checkpoint its own. Returns the new rows."""
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
        keyed = [n for n in ("fourier", "frequency_ablation", "restricted_loss") if n in names]
        final = run.model() if keyed else None
        keyed = [n for n in keyed if measures.MEASURES[n].applies_to(final, task)]
        if set(keyed) & {"fourier", "frequency_ablation"}:
            emb = embedding_key_frequencies(final, task)  # one list per member
            options = {n: {"key_freqs": emb} for n in ("fourier", "frequency_ablation") if n in keyed}
        if "restricted_loss" in keyed:
            options["restricted_loss"] = {"key_freqs": default_key_frequencies(final, task)}
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
