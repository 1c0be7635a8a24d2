"""Start-up of the command line (issue 16: ``--help``, ``<command> --help``, ``presets`` and
``runs`` in <= 0.3 s): each command run as a user runs it (the installed ``groklab`` script,
a fresh interpreter each time), ``--repeats`` times, median and range. Time it alone.

    .venv/bin/python benchmarks/bench_startup.py --runs benchmarks/out/bench_report_runs \
        --runs benchmarks/out/issue15/liu2022_toy_fraction_dense
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, action="append", default=[],
                    help="a directory for `groklab runs DIR` (repeatable; default: an empty one)")
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("groklab"))
    runs_dirs = args.runs or [Path("runs/_empty")]
    for d in runs_dirs:
        d.mkdir(parents=True, exist_ok=True)
    commands = [["--help"], ["train", "--help"], ["report", "--help"], ["presets"], *(["runs", str(d)] for d in runs_dirs)]
    print(f"| command | median s | min–max s (of {args.repeats}) |\n|---|---|---|")
    for cmd in commands:
        subprocess.run([exe, *cmd], capture_output=True, check=True)  # warm the file cache
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            subprocess.run([exe, *cmd], capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        print(f"| `groklab {' '.join(cmd)}` | {statistics.median(times):.3f} | {min(times):.3f}–{max(times):.3f} |")


if __name__ == "__main__":
    main()
