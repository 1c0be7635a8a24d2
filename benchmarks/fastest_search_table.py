"""Rank the recipes of a finished `fastest_search` sweep (sweeps/fastest_search.toml).

Within each shape (the non-member axes: width, batch size) the recipes (member axes) are
ranked by the median over seeds of step_val_99 (a recipe with a seed that never reached
99% ranks last). Steps are comparable within a shape only; across shapes a step costs a
different time, so the best of each shape is then timed alone with `groklab bench`.

    .venv/bin/python benchmarks/fastest_search_table.py benchmarks/out/fastest_search [--top 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args()
    spec = json.loads((args.sweep_dir / "sweep.json").read_text())["spec"]
    axes = list(spec["axes"])
    df = pd.read_parquet(args.sweep_dir / "summary.parquet")
    for k in axes:  # list-valued axes (model.hidden) as hashable text
        df[k] = df[k].map(lambda v: str(list(v)) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    shape = [k for k in axes if df.groupby("dir")[k].nunique().max() == 1]
    recipe = [k for k in axes if k not in shape]
    g = df.groupby(shape + recipe, dropna=False)
    table = g.agg(seeds=("seed", "size"), reached=("step_val_99", lambda s: int(s.notna().sum())),
                  median_step=("step_val_99", "median"), worst_step=("step_val_99", "max")).reset_index()
    table["all_reached"] = table.reached == table.seeds
    table = table.sort_values(shape + ["all_reached", "worst_step", "median_step"],
                              ascending=[True] * len(shape) + [False, True, True])
    print(f"{len(df)} runs; shape axes {shape}; recipe axes {recipe}\n")
    for key, sub in table.groupby(shape, sort=True):
        print(sub.head(args.top).to_string(index=False))
        print()


if __name__ == "__main__":
    main()
