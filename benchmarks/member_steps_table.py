"""Steps to 99% val per (lr, weight decay) point of one ensemble run whose members differ in
seed, lr and weight decay (issue 17, session 18: the search for fewer `fastest` steps).

For each member, the first evaluated step with val acc >= 0.99 and its final val acc; per
point, the median and worst of those steps over the seeds that got there, how many did, and
the lowest final val acc.

    .venv/bin/python benchmarks/member_steps_table.py /tmp/fx/b98
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def per_member(run_dir: Path) -> pd.DataFrame:
    cfg = json.loads((run_dir / "config.json").read_text())
    m = pd.read_parquet(run_dir / "metrics.parquet")
    v = m[m.name == "val_acc"]
    n = len(cfg["train"]["seeds"])

    def member_value(key: str, e: int):
        x = cfg["optim"][key]
        return x[e] if isinstance(x, list) else x

    rows = []
    for e in range(n):
        ve = v[v.member == e].sort_values("step")
        hit = ve[ve.value >= 0.99]
        rows.append({"lr": member_value("lr", e), "wd": member_value("weight_decay", e), "seed": cfg["train"]["seeds"][e],
                     "step99": float(hit.step.iloc[0]) if len(hit) else np.nan, "final_val": float(ve.value.iloc[-1])})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    df = per_member(ap.parse_args().run_dir)
    print(df.groupby(["lr", "wd"]).agg(median_steps=("step99", "median"), worst=("step99", "max"),
                                       reached=("step99", "count"), seeds=("seed", "count"),
                                       lowest_final_val=("final_val", "min")).to_string())


if __name__ == "__main__":
    main()
