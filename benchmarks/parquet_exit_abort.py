"""How often a short Python process that read Parquet dies at exit with SIGABRT, by the way it
handed pyarrow the file (CI at 2ca51e3 lost `test_bench_cli_tiny` to this).

Each trial is a fresh ``python -c`` that reads one Parquet file 20 times and exits. Ways:

* ``python_file``: ``pd.read_parquet(open(path, "rb"))``, what ``groklab.store.read_parquet``
  did up to session 18. pyarrow wraps the Python file in a reader that a worker thread may
  release after the read returns; that release takes the GIL, and during interpreter exit a
  thread asking for the GIL is ended by ``pthread_exit``, whose unwinding through a
  ``noexcept`` destructor calls ``std::terminate`` (the core dump's backtrace:
  ``~OwnedRefNoGIL`` <- ``~PyReadableFile`` <- ``~FileReaderImpl`` on an arrow ThreadPool
  worker; apache/arrow#34314).
* ``native_file``: ``pd.read_parquet(pa.OSFile(path, "rb"))``, what it does now: no Python
  object inside pyarrow's reader.

    .venv/bin/python benchmarks/parquet_exit_abort.py --trials 400
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import beta

WAYS = {
    "python_file": "import pandas as pd\nfor _ in range(20):\n    with open(P, 'rb') as f:\n        pd.read_parquet(f)\n",
    "native_file": "import pandas as pd, pyarrow as pa\nfor _ in range(20):\n    with pa.OSFile(P, 'rb') as f:\n"
                   "        pd.read_parquet(f)\n",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.parquet"
        rng = np.random.default_rng(0)
        pd.DataFrame({"step": np.arange(100_000), "value": rng.random(100_000)}).to_parquet(path)
        for way, body in WAYS.items():
            code = f"P = {str(path)!r}\n{body}"
            rcs = [subprocess.run([sys.executable, "-c", code], capture_output=True).returncode
                   for _ in range(args.trials)]
            n = sum(rc != 0 for rc in rcs)
            lo = beta.ppf(0.025, n, args.trials - n + 1) if n else 0.0
            hi = beta.ppf(0.975, n + 1, args.trials - n)
            print(f"{way:12s} {n}/{args.trials} processes aborted (exit codes {sorted(set(rcs))}); "
                  f"95% Clopper-Pearson {lo:.2%}-{hi:.2%}", flush=True)


if __name__ == "__main__":
    main()
