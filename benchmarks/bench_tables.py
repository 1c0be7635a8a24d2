"""Markdown tables of a `groklab bench` output folder, for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_tables.py benchmarks/out/bench_suite17 [--per-seed METHOD:TASK ...]

Prints the summary (every method and task: share reaching 99%, median [IQR] and the 95%
bootstrap interval of the median, of steps and of training seconds), the fidelity table
when the folder has one, and, for each METHOD:TASK asked for, the per-seed steps and seconds.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd


def _iqr(r, key: str, nd: int) -> str:
    med = r[f"{key}_median"]
    if med is None or (isinstance(med, float) and math.isnan(med)):
        return "–"
    ci = "" if math.isnan(r[f"{key}_ci_lo"]) else f" ({r[f'{key}_ci_lo']:,.{nd}f}–{r[f'{key}_ci_hi']:,.{nd}f})"
    return f"{med:,.{nd}f} [{r[f'{key}_q25']:,.{nd}f}–{r[f'{key}_q75']:,.{nd}f}]{ci}"


def summary_table(s: pd.DataFrame) -> str:
    lines = ["| task | rank | method | prior knowledge | reached | steps to 99%: median [IQR] (95% CI) | "
             "s to 99%: median [IQR] (95% CI) | params | ms/step |", "|---|---|---|---|---|---|---|---|---|"]
    s = s.sort_values(["task", "prior_knowledge", "rank"], kind="stable")
    for _, r in s.iterrows():
        ms = "–" if math.isnan(r["ms_per_step"]) else f"{r['ms_per_step']:.1f}"
        lines.append(f"| {r['task']} | {r['rank']} | {r['method']} | {'yes' if r['prior_knowledge'] else ''} | "
                     f"{r['reached']}/{r['seeds']} | {_iqr(r, 'steps', 0)} | {_iqr(r, 'seconds', 2)} | "
                     f"{r['n_params']:,} | {ms} |")
    return "\n".join(lines)


def fidelity_table(f: pd.DataFrame) -> str:
    lines = ["| method | task | threshold | reached | our steps to it: median [IQR] (95% CI) | the paper | "
             "ours / paper | source |", "|---|---|---|---|---|---|---|---|"]
    for _, r in f.iterrows():
        ratio = "–" if r["ratio"] is None or math.isnan(r["ratio"]) else f"{r['ratio']:.2f}"
        lines.append(f"| {r['method']} | {r['task']} | {r['threshold']:.0%} | {r['reached']}/{r['seeds']} | "
                     f"{_iqr(r, 'steps', 0)} | {r['published']} | {ratio} | {r['source']} |")
    return "\n".join(lines)


def per_seed(runs: pd.DataFrame, method: str, task: str) -> str:
    g = runs[(runs["method"] == method) & (runs["task"] == task)]
    fmt = lambda v, nd: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{nd}f}"  # noqa: E731
    head = "| seed | " + " | ".join(str(s) for s in g["seed"]) + " |"
    sep = "|---|" + "---|" * len(g)
    steps = "| steps to 99% | " + " | ".join(fmt(v, 0) for v in g["step_val_99"]) + " |"
    secs = "| training s to 99% | " + " | ".join(fmt(v, 2) for v in g["seconds_val_99"]) + " |"
    return f"{method} on {task}:\n\n" + "\n".join([head, sep, steps, secs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--per-seed", nargs="*", default=[], metavar="METHOD:TASK")
    a = ap.parse_args()
    record = json.loads((a.folder / "bench.json").read_text())
    print(f"suite {record['suite']}, budget {record['budget_s']:g} s, seeds {record['seeds']}, "
          f"device {record.get('device', 'cpu')}\n")
    print(summary_table(pd.read_parquet(a.folder / "bench.parquet")))
    f = a.folder / "fidelity.parquet"
    if f.is_file() and len(pd.read_parquet(f)):
        print()
        print(fidelity_table(pd.read_parquet(f)))
    runs = pd.read_parquet(a.folder / "runs.parquet")
    for mt in a.per_seed:
        method, task = mt.split(":")
        print()
        print(per_seed(runs, method, task))


if __name__ == "__main__":
    main()
