"""The current claims of benchmarks/RESULTS.md, each re-derived from its command's output files.

Every claim names the command that makes its output, the commit whose code made the files
that back the quoted number, the seeds, and the interval where seeds vary. This script reads
those files, derives each number again with groklab's own functions, and compares it with the
number quoted here. It also checks that the claims table at the top of RESULTS.md is exactly
the table made from this list. A quoted number that no longer follows from its files fails
loudly (exit 1).

    .venv/bin/python benchmarks/claims.py            # check every claim whose output exists
    .venv/bin/python benchmarks/claims.py --run      # make missing outputs first (hours: see each command)
    .venv/bin/python benchmarks/claims.py --strict   # a missing output is a failure too
    .venv/bin/python benchmarks/claims.py --write    # rewrite the table in RESULTS.md from this list

Outputs live under benchmarks/out/ (git-ignored). A fresh clone has none, so the plain check
skips every claim and says so; `--run` makes them with the current code.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from groklab import load_run
from groklab.phases import nanda_phases
from groklab.rundir import read_summary
from groklab.sweep import summarize

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- claims:begin (benchmarks/claims.py --write) -->", "<!-- claims:end -->"
GROKLAB = ".venv/bin/groklab"


@dataclass
class Claim:
    claim: str
    value: str  # as quoted
    commands: list[str]  # run from the repository root, in order
    output: str  # relative to the root; exists once the commands ran
    commit: str  # the code that made the output files
    seeds: str
    interval: str  # where seeds vary; "" if one seed or deterministic
    derive: Callable[[Path], str]  # output path -> the value, formatted as quoted


def _member(run_dir: Path, key: str, member: int = 0) -> int | float | None:
    return read_summary(run_dir)["members"][member][key]


def _n(x) -> str:
    return "never" if x is None else f"{int(x):,}"


def _nanda_phases(run_dir: Path) -> str:
    w = load_run(run_dir).wide(0).dropna(subset=["train_loss", "val_loss", "restricted_loss", "excluded_loss"])
    ph = nanda_phases(w.index.to_numpy(), w["train_loss"], w["val_loss"], w["restricted_loss"], w["excluded_loss"])
    return " / ".join(_n(x) for x in (ph.memorization_end, ph.circuit_formation_end, ph.cleanup_end))


def _bits_at(run_dir: Path, step: int) -> str:
    m = load_run(run_dir).metrics
    v = m[(m.name == "description_bits") & (m.step == step) & (m.member == 0)]["value"]
    if v.empty:
        raise KeyError(f"{run_dir}: no description_bits at step {step} (run `groklab analyze -m description_length`)")
    return f"{float(v.iloc[0]) / 1e6:.2f}M"


def _phase_counts(sweep_dir: Path) -> str:
    c = summarize(sweep_dir)["phase"].value_counts()
    order = ["comprehension", "confusion", "memorization", "grokking", "undetermined"]
    return " / ".join(f"{int(c.get(k, 0))} {k[:4]}." for k in order)


def _val_at(run_dir: Path, member: int, step: int) -> str:
    w = load_run(run_dir).wide(member)
    return f"{float(w.loc[w.index <= step, 'val_acc'].iloc[-1]):.3f}"


def _first_val(run_dir: Path, level: float) -> str:
    w = load_run(run_dir).wide(0)
    return _n(w.index[(w["val_acc"] >= level).to_numpy()][0])


def _critical(theory_dir: Path) -> str:
    r = json.loads((theory_dir / "critical_fraction.json").read_text())
    m, p = r["measured_ci95"], r["predicted_ci95"]
    return (f"measured {r['measured']:.3f} [{m[0]:.3f}, {m[1]:.3f}]; "
            f"theory {r['predicted']:.3f} [{p[0]:.3f}, {p[1]:.3f}]")


def _tveit(folder: Path) -> str:
    """Muon's reached / median epoch of those reached (CI) and AdamW's reached by its cutoff, from
    benchmarks/fidelity_ensembles.py's per-member rows."""
    rows = json.loads((folder / "fidelity_ensembles.json").read_text())
    out = []
    for method in ("tveit2025_muon", "tveit2025_adamw"):
        g = [r for r in rows if r["method"] == method]
        ep = sorted(r["epoch"] for r in g if r["epoch"] is not None)
        cut = min(r["last_step"] / r["steps_per_epoch"] for r in g)
        med = f", median epoch {pd.Series(ep).median():.0f}" if ep else ""
        out.append(f"{len(ep)}/{len(g)} by epoch {cut:.0f}{med}")
    return " / ".join(out)


def _qdg_seeds(path: Path) -> str:
    """QDG variant's median ARI [range] and how many held-out models reach 0.8; the paper's median."""
    rows = [r for r in json.loads(path.read_text()) if r["held_out"]]
    v = pd.Series([r["ari_variant"] for r in rows])
    p = pd.Series([r["ari_paper"] for r in rows])
    return (f"variant {v.median():.3f} [{v.min():.3f}–{v.max():.3f}], ≥ 0.8 in {(v >= 0.8).sum()}/{len(v)}; "
            f"paper {p.median():.3f}")


def _qdg_average(path: Path) -> str:
    """The average-linkage variant's median ARI [range] on the held-out models, and how many reach 0.8."""
    v = pd.Series([r["ari_average"] for r in json.loads(path.read_text()) if r["held_out"]])
    return f"{v.median():.3f} [{v.min():.3f}–{v.max():.3f}], ≥ 0.8 in {(v >= 0.8).sum()}/{len(v)}"


def _qdg_tensor(path: Path) -> str:
    """The per-tensor-normalised average-linkage variant's median ARI [range] on the held-out models."""
    v = pd.Series([r["ari_tensor"] for r in json.loads(path.read_text()) if r["held_out"]])
    return f"{v.median():.3f} [{v.min():.3f}–{v.max():.3f}], ≥ 0.8 in {(v >= 0.8).sum()}/{len(v)}"


def _bench_row(folder: Path, method: str, task: str) -> str:
    s = pd.read_parquet(folder / "bench.parquet").set_index(["method", "task"]).loc[(method, task)]
    return (f"{int(s['reached'])}/{int(s['seeds'])}; {s['steps_median']:.0f} steps "
            f"[{s['steps_q25']:.0f}–{s['steps_q75']:.0f}]; {s['seconds_median']:.2f} s "
            f"[{s['seconds_q25']:.2f}–{s['seconds_q75']:.2f}]")


def _reached(folder: Path, method: str, task: str) -> str:
    s = pd.read_parquet(folder / "bench.parquet").set_index(["method", "task"]).loc[(method, task)]
    return f"{int(s['reached'])}/{int(s['seeds'])}"


def _fidelity(folder: Path, methods: list[str]) -> str:
    f = pd.read_parquet(folder / "fidelity.parquet").set_index("method")
    return " / ".join(f"{f.loc[m, 'steps_median']:,.0f}" for m in methods)


SUITE17 = [f"{GROKLAB} bench --suite challenge --runs-dir benchmarks/out/bench_suite17/runs "
           "--output benchmarks/out/bench_suite17"]


NANDA = [f"{GROKLAB} train --preset nanda2023 --set train.steps=20000 --set train.stop_val_acc=none "
         "--runs-dir benchmarks/out --name nanda2023_20k -q",
         f"{GROKLAB} analyze benchmarks/out/nanda2023_20k -m fourier,restricted_loss,description_length"]

MNIST = [f"{GROKLAB} train --preset omnigrok_mnist --set model.init_scale=[8.0,1.0] "
         "--runs-dir benchmarks/out --name omnigrok_mnist_f32 -q"]
TS = [f"{GROKLAB} train --preset omnigrok_teacher_student --set train.threads=1 "
      "--runs-dir benchmarks/out --name omnigrok_teacher_student -q"]

CLAIMS = [
    Claim("demo: a+b mod 59, 40%, 1-layer transformer (`make demo`): step of val acc ≥ 99%",
          "1,585", [f"{GROKLAB} train --preset demo --runs-dir benchmarks/out/claims --name demo -q"],
          "benchmarks/out/claims/demo", "2534bba", "0",
          "1,468–1,647 across CPUs (a dip before the first crossing moves it)",
          lambda d: _n(_member(d, "step_val_99"))),
    Claim("nanda2023 (a+b mod 113, 30%): steps of train / val acc ≥ 99%", "136 / 6,813", NANDA,
          "benchmarks/out/nanda2023_20k", "0328088", "0", "",
          lambda d: f"{_n(_member(d, 'step_train_99'))} / {_n(_member(d, 'step_val_99'))}"),
    Claim("nanda2023: ends of memorization / circuit formation / cleanup (Nanda et al.'s phases)",
          "1,585 / 5,012 / 7,943", NANDA, "benchmarks/out/nanda2023_20k", "0328088", "0", "", _nanda_phases),
    Claim("nanda2023: description length (two-part code) while memorizing (step 158)", "2.12M",
          NANDA, "benchmarks/out/nanda2023_20k", "bfb4634", "0", "", lambda d: _bits_at(d, 158)),
    Claim("nanda2023: description length after cleanup (step 20,000)", "0.44M",
          NANDA, "benchmarks/out/nanda2023_20k", "bfb4634", "0", "", lambda d: _bits_at(d, 20000)),
    Claim("Omnigrok MNIST, α = 8: step of train acc ≥ 99% / test acc at step 100,000 (the notebook: 0.893)",
          "2,154 / 0.905", MNIST, "benchmarks/out/omnigrok_mnist_f32", "f5bdabe", "0", "",
          lambda d: f"{_n(_member(d, 'step_train_99'))} / {_val_at(d, 0, 100000)}"),
    Claim("Omnigrok MNIST, α = 1: test acc at step 1,000 (no delay)", "0.919", MNIST,
          "benchmarks/out/omnigrok_mnist_f32", "f5bdabe", "0", "", lambda d: _val_at(d, 1, 1000)),
    Claim("Omnigrok teacher–student: steps of train acc ≥ 99% / test acc ≥ 90%", "736 / 26,102", TS,
          "benchmarks/out/omnigrok_teacher_student", "f5bdabe", "1", "",
          lambda d: f"{_n(_member(d, 'step_train_99'))} / {_first_val(d, 0.9)}"),
    Claim("Liu et al. toy model, lr x weight decay (10 x 10 x 3 runs): phases of the runs",
          "159 comp. / 94 conf. / 22 memo. / 17 grok. / 8 unde.",
          [f"{GROKLAB} sweep sweeps/liu2022_toy_lr_wd.toml --runs-dir benchmarks/out/issue15"],
          "benchmarks/out/issue15/liu2022_toy_lr_wd", "b3428fc", "0-2", "", _phase_counts),
    Claim("Liu et al. toy model: critical training fraction, runs (half the plateau of linear "
          "representations) vs effective theory (P(λ3 > 0) = 1/2), 95% bootstrap over splits",
          "measured 0.525 [0.475, 0.555]; theory 0.403 [0.396, 0.418]",
          [f"{GROKLAB} sweep sweeps/liu2022_toy_fraction_dense.toml --runs-dir benchmarks/out/issue15",
           f"{GROKLAB} theory --sweep benchmarks/out/issue15/liu2022_toy_fraction_dense --step 0.025 "
           "-o benchmarks/out/issue15/theory_dense"],
          "benchmarks/out/issue15/theory_dense", "a491878", "init 0-1, split seeds 100-111 (held out)",
          "95% bootstrap over splits (in the value); difference +0.122 [+0.065, +0.153]",
          _critical),
    Claim("challenge: `fastest` on a+b mod 97, random 50%, learned embeddings: reached / steps / training "
          "seconds to 99% val, median [IQR]", "10/10; 78 steps [71–92]; 0.71 s [0.60–0.78]", SUITE17,
          "benchmarks/out/bench_suite17", "a7579a2", "held-out 100-109 (init and split); tuned on 0-4",
          "95% bootstrap of the median: steps 71–94, s 0.60–0.81",
          lambda d: _bench_row(d, "fastest", "add97_random")),
    Claim("challenge: the thread's own split (first 50% of a+b mod 97 in (a, b) order), `fastest_prefix` (a "
          "committee of 32 toy models): reached / steps / training seconds to 99% val, median [IQR]",
          "10/10; 1122 steps [860–1225]; 87.06 s [73.37–93.15]",
          [f"{GROKLAB} bench --tasks add97_prefix --methods fastest_prefix --budget-s 300 "
           "--runs-dir benchmarks/out/bench_prefix_committee/runs --output benchmarks/out/bench_prefix_committee"],
          "benchmarks/out/bench_prefix_committee", "8fe88ce", "held-out 100-109; K = 32 chosen on dev 0-4",
          "95% bootstrap of the median: steps 794–1,259, s 70.4–94.6; the single toy model before: 2/10",
          lambda d: _bench_row(d, "fastest_prefix", "add97_prefix")),
    Claim("fidelity: Grokfast-EMA / Grokfast-MA with their main.py's quirks, x·y mod 97 (y ≠ 0): median steps to "
          "95% val (README: 910 / 790; their main.py on this CPU, EMA, seeds 100/101: 1,530 / 1,390)",
          "1,175 / 1,095",
          [f"{GROKLAB} bench --suite fidelity --tasks grokfast_mul97 --budget-s 1200 "
           "--runs-dir /tmp/gf/runs --output benchmarks/out/fidelity_grokfast_quirks"],
          "benchmarks/out/fidelity_grokfast_quirks", "63d1fa9", "held-out 100-109 (CPU)",
          "95% bootstrap of the median: 1,070–1,470 / 930–1,460",
          lambda d: _fidelity(d, ["grokfast2024", "grokfast2024_ma"])),
    Claim("fidelity: ⊥AdamW (Prieto Fig. 1a, a+b mod 113, 40%) median steps to 99% val (their plot: ~120) / "
          "EGD (a+b mod 127) to 95%", "120 / 1,005",
          [f"{GROKLAB} bench --suite fidelity --device cuda --tasks prieto113,egd_add127 --budget-s 60 "
           "--runs-dir /tmp/fid2/runs --output benchmarks/out/fidelity_h200_b"],
          "benchmarks/out/fidelity_h200_b", "6bc0d7a", "held-out 100-109 (an H200)",
          "95% bootstrap of the median: 110–130 / 982–1,028",
          lambda d: f"{pd.read_parquet(d / 'bench.parquet').set_index('method').loc['prieto2025_fig1a', 'steps_median']:.0f}"
                    f" / {_fidelity(d, ['egd2025'])}"),
    Claim("fidelity: Muon / AdamW (Tveit et al. 2025's settings, Power et al.'s transformer), x/y mod 97, 50%, "
          "batch 32: members at 95% val by the cutoff, median grokking epoch of those (paper: 102.89 / 153.09, "
          "their own transformer, mean over 7 tasks)", "8/10 by epoch 101, median epoch 67 / 0/10 by epoch 179",
          ["python3 benchmarks/fidelity_ensembles.py --task tveit_div97 --splits 100,105 --members 5 --device cuda "
           "--nondeterministic --deadline-s 420 --out benchmarks/out/fidelity_tveit_h100"],
          "benchmarks/out/fidelity_tveit_h100", "87a6fe5", "init 100-109 on splits 100 and 105 (held out; an H100)",
          "95% bootstrap of Muon's median (of those reached): 59–84 epochs",
          _tveit),
    Claim("QDG on sparse-parity models (laptop preset, AdamW wd 0.1): adjusted Rand index of the clusters against "
          "the true subtasks, held-out models, median [range]; groklab's variant (logit-difference gradients, RBF "
          "affinity, tau 0.03) and the paper's method",
          "variant 0.685 [0.647–0.949], ≥ 0.8 in 1/6; paper 0.226",
          [".venv/bin/python benchmarks/qdg_seeds.py --seeds 0-4,100-105 --runs-dir /tmp/qdev "
           "--out benchmarks/out/qdg_seeds.json"],
          "benchmarks/out/qdg_seeds.json", "e347a2f", "held-out 100-105 (init and split); wd and tau chosen on 0",
          "dev 0-4: variant median 0.804 [0.497–0.863], paper 0.254", _qdg_seeds),
    Claim("QDG variant with average-linkage clustering of 1 - cos (logit-difference gradients), the same models: "
          "adjusted Rand index against the true subtasks, held-out models, median [range]",
          "0.819 [0.690–0.955], ≥ 0.8 in 4/6",
          [".venv/bin/python benchmarks/qdg_seeds.py --seeds 0-4,100-105 --runs-dir /tmp/qdev "
           "--out benchmarks/out/qdg_seeds.json"],
          "benchmarks/out/qdg_seeds.json", "1982158", "held-out 100-105; average linkage chosen on dev 0-4",
          "dev 0-4: 0.890 [0.867–0.931], 5/5 ≥ 0.8", _qdg_average),
    Claim("QDG variant as above with each parameter tensor's gradient normalised on its own (`--norm tensor`), "
          "the same models: adjusted Rand index against the true subtasks, held-out models, median [range]",
          "0.971 [0.775–0.990], ≥ 0.8 in 5/6",
          [".venv/bin/python benchmarks/qdg_seeds.py --seeds 0-4,100-105 --runs-dir /tmp/qdev "
           "--out benchmarks/out/qdg_seeds.json"],
          "benchmarks/out/qdg_seeds.json", "9570711", "held-out 100-105; per-tensor norm chosen on dev 0-4 at 40 bits",
          "dev 0-4: 0.982 [0.907–0.990], 5/5; at 40 data bits, held out: 0.931 [0.621–0.993], 5/6", _qdg_tensor),
]


def table() -> str:
    rows = ["| claim | value | command | commit | seeds | interval / spread |", "|---|---|---|---|---|---|"]
    for c in CLAIMS:
        cmd = "<br>".join(f"`{x}`" for x in c.commands)
        rows.append(f"| {c.claim} | **{c.value}** | {cmd} | {c.commit} | {c.seeds} | {c.interval or '—'} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="store_true", help="make missing outputs with the current code first")
    ap.add_argument("--strict", action="store_true", help="a missing output fails")
    ap.add_argument("--write", action="store_true", help="rewrite the claims table in RESULTS.md")
    args = ap.parse_args()

    text = RESULTS.read_text()
    if BEGIN not in text or END not in text:
        print(f"FAIL {RESULTS}: no claims table between {BEGIN!r} and {END!r}")
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    if args.write:
        RESULTS.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")
        print(f"wrote the claims table in {RESULTS}")
    failures, missing = 0, 0
    if rest.split(END, 1)[0].strip() != table() and not args.write:
        print(f"FAIL the claims table in {RESULTS} is not this list's (run with --write after updating CLAIMS)")
        failures += 1
    for c in CLAIMS:
        out = ROOT / c.output
        if not out.exists() and args.run:
            for cmd in c.commands:
                print(f"running: {cmd}", flush=True)
                subprocess.run(shlex.split(cmd), cwd=ROOT, check=True)
        if not out.exists():
            missing += 1
            print(f"MISSING {c.claim}\n    make it with: {' && '.join(c.commands)}")
            continue
        try:
            got = c.derive(out)
        except Exception as e:  # a damaged or incomplete output is a failure, not a skip
            print(f"FAIL {c.claim}: cannot derive it from {c.output}: {type(e).__name__}: {e}")
            failures += 1
            continue
        if got == c.value:
            print(f"ok   {c.claim}: {got}")
        else:
            print(f"FAIL {c.claim}: quoted {c.value!r}, its files give {got!r}")
            failures += 1
    print(f"{len(CLAIMS) - failures - missing} ok, {failures} failed, {missing} missing")
    return 1 if failures or (missing and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
