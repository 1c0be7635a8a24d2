"""The README's report screenshots, and the report of a long run timed and weighed (issue 16).

For a run (nanda2023, 40,000 steps, every measure analysed), a sweep (the toy phase diagram)
and a bench: build the report, time ``groklab report`` (the whole command, interpreter start
included; ``--repeats`` times, median) and ``write_report`` alone, weigh the file, then load
it in headless Chromium with the check the browser test uses
(:func:`groklab.report.browser.check_report`: no console error, no network request, the
figures drawn, the tables filled) and keep its screenshot in ``docs/``. Time it alone.

    .venv/bin/python benchmarks/report_screenshots.py --run benchmarks/out/nanda2023_40k \\
        --sweep benchmarks/out/issue15/liu2022_toy_lr_wd --bench benchmarks/out/bench_report -o docs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from groklab.report.browser import check_report
from groklab.report.html import measure_groups, write_report
from groklab.run import Run


def timed_cli(path: Path, out: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "groklab.cli", "report", str(path), "-o", str(out)], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--sweep", type=Path, required=True)
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run = Run(args.run)
    names = run.metrics["name"].unique().tolist()
    expect = {"run": (args.run, ["curves", *[f"measure-{g}" for g in measure_groups(names)], "fourier"],
                      ["summary", "config"]),
              "sweep": (args.sweep, ["phase-diagram", "heatmap-val-acc", "heatmap-step-val-99"], ["runs"]),
              "bench": (args.bench, ["val-acc-vs-seconds"], ["ranking", "runs"])}
    for kind, (path, figures, tables) in expect.items():
        out = Path("runs") / f"report_{kind}.html"
        cli = timed_cli(path, out, args.repeats)
        t = time.perf_counter()
        write_report(path, out)
        inner = time.perf_counter() - t
        res = check_report(out, figures=figures, tables=tables, screenshot=args.output / f"report_{kind}.png")
        print(f"{kind}: {path}: groklab report {statistics.median(cli):.2f} s (median of {len(cli)}: "
              f"{', '.join(f'{x:.2f}' for x in cli)}), write_report alone {inner:.2f} s, "
              f"{out.stat().st_size / 1e6:.2f} MB; {len(figures)} figures, {len(tables)} tables; "
              f"problems: {res.problems or 'none'}; screenshot {res.screenshot} ({res.ink:.0%} drawn)")
        if kind == "run":
            print(f"  the run: {int(run.metrics['step'].max()):,} steps, {len(run.metrics):,} metric rows, "
                  f"{len(names)} metric names, {len(run.checkpoint_steps)} checkpoints")


if __name__ == "__main__":
    main()
