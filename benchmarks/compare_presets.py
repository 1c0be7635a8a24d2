"""Every algorithmic preset (and the Omnigrok ones) against an older commit: the same few steps with both
versions' code (one thread each), metrics compared exactly (time_s excluded, and the per-tensor
``weight_norm.<parameter>`` rows, whose names follow the transformer's parameter names).

    git worktree add /tmp/oldtree <commit>
    .venv/bin/python benchmarks/compare_presets.py /tmp/oldtree
"""
import os
import shutil
import subprocess
import sys

import pandas as pd

OLD = sys.argv[1] if len(sys.argv) > 1 else "/tmp/oldtree"
NEW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
P = {"demo": 300, "nanda2023": 15, "power2022": 15, "liu2022_toy": 300, "challenge97": 15, "grokfast2024": 15,
     "prieto2025_stablemax": 100, "fastest": 100, "fastest_transformer": 30, "thread_sdr": 60,
     "omnigrok_mnist": 30, "omnigrok_teacher_student": 100, "omnigrok_modadd_constrained": 5}
for name, steps in P.items():
    res = {}
    for tag, src in (("old", f"{OLD}/src"), ("new", f"{NEW}/src")):
        d = f"/tmp/cmp/{tag}"
        shutil.rmtree(f"{d}/{name}", ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": src}
        subprocess.run([sys.executable, "-m", "groklab.cli", "train", "--preset", name, "--runs-dir", d, "--name", name, "-q",
                        "--set", f"train.steps={steps}", "--set", "train.threads=1"], check=True, env=env, stdout=subprocess.DEVNULL)
        m = pd.read_parquet(f"{d}/{name}/metrics.parquet")
        m = m[(m.name != "time_s") & ~m.name.str.startswith("weight_norm.")]
        res[tag] = m.sort_values(["step", "member", "name"]).reset_index(drop=True)
    a, b = res["old"], res["new"]
    same = a.shape == b.shape and (a[["step","member","name"]].values == b[["step","member","name"]].values).all()
    diff = float((a.value - b.value).abs().max()) if same else None
    print(name, steps, "rows", len(a), "identical" if same and diff == 0 else f"DIFF {diff}", flush=True)
