"""``groklab bench``: every method x task x seed under one wall-clock budget.

    groklab bench --suite challenge --methods fastest,grokfast2024 --budget-s 120   # held-out seeds 100-109
    groklab bench --tasks add97_random --methods fastest --seeds dev                # the tuning seeds 0-4

* :mod:`groklab.bench.suite`: the suites' tasks, the named methods (recipes = presets plus
  overrides) and their expansion into validated run configs.
* :mod:`groklab.bench.runner`: the budgeted training of one run (a ``Trainer`` subclass;
  ``loop.py`` untouched), skipping / resuming / extending runs, the per-run results.
* :mod:`groklab.bench.aggregate`: share reaching 99%, median, IQR and a bootstrap interval
  of the median of steps and seconds, ranks (prior-knowledge recipes ranked apart).
* :mod:`groklab.bench.plot`: val accuracy against training seconds.

Outputs (``--output``): ``bench.parquet`` (one row per method and task), ``runs.parquet``
(one row per run), ``bench.json`` (both, plus the settings) and ``val_acc_vs_seconds.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from groklab.bench.plot import plot_val_acc_vs_seconds
from groklab.bench.runner import run_bench
from groklab.report.bench_curves import curves
from groklab.config import ConfigError
from groklab.store import write_json, write_parquet
from groklab.bench.aggregate import SUMMARY_COLUMNS, fidelity, rank, summarize
from groklab.bench.suite import (
    ANCHORS,
    BENCH_TRAIN,
    DEV_SEEDS,
    HELDOUT_SEEDS,
    METHODS,
    SUITE_DEFAULTS,
    SUITES,
    TASKS,
    BenchMethod,
    BenchRun,
    BenchTask,
    config_for,
    expand,
    parse_seeds,
)


def _span(seeds: list[int]) -> str:
    """[100, 101, ..., 109] -> "100-109"; otherwise the list."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def bench(suite: str = "challenge", methods: str | None = None, tasks: str | None = None,
          seeds: int | str | list | None = None,
          budget_s: float | None = None, runs_dir: str | Path = "runs/bench", output: str | Path | None = None,
          max_steps: int | None = None, log: Callable[[str], Any] = print,
          device: str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the bench and write its outputs; returns (summary per method and task, runs).
    ``budget_s`` None: the suite's (:data:`SUITE_DEFAULTS`). Where a run's method and task
    have a published number (:data:`ANCHORS`), ``fidelity.parquet`` sets ours beside it."""
    if budget_s is None:
        budget_s = SUITE_DEFAULTS[suite]["budget_s"] if suite in SUITE_DEFAULTS else 120.0
    if not budget_s > 0:
        raise ConfigError("--budget-s", budget_s, "must be a positive number of seconds")
    seed_list = parse_seeds(seeds)
    plan = expand(suite, methods, tasks, seed_list, max_steps, device)  # every name checked before any run
    runs_dir = Path(runs_dir)
    output = Path(output) if output is not None else runs_dir
    log(f"bench {suite}: {len(plan)} runs ({len({r.method for r in plan})} methods x "
        f"{len({r.task for r in plan})} tasks x {len(seed_list)} seeds: {_span(seed_list)}), budget {budget_s:g} s per run, in {runs_dir}")
    runs = run_bench(plan, runs_dir, budget_s, log)
    summary = summarize(runs)
    fid = fidelity(runs, ANCHORS)
    output.mkdir(parents=True, exist_ok=True)
    write_parquet(output / "bench.parquet", summary)
    write_parquet(output / "fidelity.parquet", fid)
    write_parquet(output / "runs.parquet", runs)
    record = {"suite": suite, "budget_s": budget_s, "seeds": seed_list, "max_steps": max_steps, "device": device,
              "dev_seeds": list(DEV_SEEDS), "heldout_seeds": list(HELDOUT_SEEDS),
              "bench_train": BENCH_TRAIN, "methods": sorted({r.method for r in plan}),
              "tasks": sorted({r.task for r in plan}), "runs_dir": str(runs_dir),
              "summary": json.loads(summary.to_json(orient="records")),
              "runs": json.loads(runs.to_json(orient="records")),
              "fidelity": json.loads(fid.to_json(orient="records"))}
    write_json(output / "bench.json", record)
    plot_val_acc_vs_seconds(curves(runs), summary, output / "val_acc_vs_seconds.png", budget_s)
    return summary, runs


__all__ = ["bench", "expand", "config_for", "summarize", "rank", "fidelity", "ANCHORS", "SUITE_DEFAULTS", "METHODS", "SUITES", "TASKS",
           "BENCH_TRAIN", "DEV_SEEDS", "HELDOUT_SEEDS", "parse_seeds", "BenchMethod", "BenchRun", "BenchTask", "SUMMARY_COLUMNS"]
