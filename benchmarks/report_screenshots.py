"""The README's report screenshots, and the report of a long run timed and weighed (issue 16).

For a run (nanda2023, 40,000 steps, every measure analysed), a sweep (the toy phase diagram)
and a bench: build the report, time ``groklab report`` (the whole command, interpreter start
included; ``--repeats`` times, median) and ``write_report`` alone, and weigh the file. Then
the browser test takes the screenshots: ``tests/integration/test_report_browser.py::
test_docs_screenshot`` on these three directories loads each report in headless Chromium
(no console error, no network request, the figures drawn, the tables filled) and keeps its
screenshot in ``docs/``. Time it alone.

    .venv/bin/python benchmarks/report_screenshots.py --run benchmarks/out/nanda2023_40k \\
        --sweep benchmarks/out/issue15/liu2022_toy_lr_wd --bench benchmarks/out/bench_report -o docs
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from groklab.report.html import write_report
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
    for kind, path in {"run": args.run, "sweep": args.sweep, "bench": args.bench}.items():
        out = Path("runs") / f"report_{kind}.html"
        cli = timed_cli(path, out, args.repeats)
        t = time.perf_counter()
        write_report(path, out)
        inner = time.perf_counter() - t
        print(f"{kind}: {path}: groklab report {statistics.median(cli):.2f} s (median of {len(cli)}: "
              f"{', '.join(f'{x:.2f}' for x in cli)}), write_report alone {inner:.2f} s, "
              f"{out.stat().st_size / 1e6:.2f} MB")
        if kind == "run":
            names = run.metrics["name"].unique()
            print(f"  the run: {int(run.metrics['step'].max()):,} steps, {len(run.metrics):,} metric rows, "
                  f"{len(names)} metric names, {len(run.checkpoint_steps)} checkpoints")
    env = {**os.environ, "GROKLAB_DOCS_RUN": str(args.run), "GROKLAB_DOCS_SWEEP": str(args.sweep),
           "GROKLAB_DOCS_BENCH": str(args.bench), "GROKLAB_SCREENSHOTS": str(args.output)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs",
                        "tests/integration/test_report_browser.py::test_docs_screenshot"], env=env)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
