"""The critical training fraction of Liu et al.'s toy model, the former protocol against the
current one (issue 15, item 5), from the runs table that ``groklab theory --sweep`` writes.

* **before**: the former protocol's resolution — a 0.1 grid of fractions (0.3 ... 0.7) and
  6 splits a fraction, here applied to the subset of the dense sweep's runs that such a
  protocol would have had (split seeds 100-105, both init seeds: 12 runs a fraction), the
  theory on a 0.05 grid. The runs of the former sweep itself (split seeds 0-5, 3 init
  seeds) are no longer at hand, so its own point (difference 0.096) is quoted, not redrawn.
* **after**: all 504 runs of ``sweeps/liu2022_toy_fraction_dense.toml`` (21 fractions,
  12 splits, 2 init seeds), the theory on a 0.025 grid.

Both are bootstrapped over splits (``groklab.theory.compare.bootstrap_critical_fractions``).
Left: share of linear runs and P(lam3 > 0) against the fraction; right: the bootstrap
distributions of the difference (runs - theory) under each protocol.

    .venv/bin/groklab theory --sweep benchmarks/out/issue15/liu2022_toy_fraction_dense --step 0.025 \\
        -o benchmarks/out/issue15/theory_dense
    .venv/bin/python benchmarks/critical_fraction_before_after.py benchmarks/out/issue15/theory_dense/runs.csv \\
        -o docs/critical_fraction_before_after.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from groklab.theory import critical_fraction_of, lambda3_vs_fraction  # noqa: E402
from groklab.theory.compare import bootstrap_critical_fractions, measured_critical_fraction  # noqa: E402


def protocol(tab: pd.DataFrame, step: float, n_splits: int, n_boot: int) -> dict:
    fractions = np.round(np.arange(0.1, 0.95 + step / 2, step), 4)
    res = lambda3_vs_fraction(10, fractions, n_splits)
    measured, share = measured_critical_fraction(tab)
    b = bootstrap_critical_fractions(tab, res["lambda3"], res["fraction"], n_boot)
    return {"theory": res, "share": share, "n": tab.groupby("fraction").size(), "point": measured,
            "predicted_point": critical_fraction_of(res), "ci": b["measured"], "predicted_ci": b["predicted"],
            "difference_ci": b["difference"], "difference": b["samples"]["difference"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs_csv", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("runs/critical_fraction_before_after.png"))
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    tab = pd.read_csv(args.runs_csv)
    coarse = tab[np.isclose(tab["fraction"].to_numpy()[:, None], [0.3, 0.4, 0.5, 0.6, 0.7]).any(1)
                 & tab["split_seed"].between(100, 105)]
    before = protocol(coarse, 0.05, 100, args.n_boot)
    after = protocol(tab, 0.025, 100, args.n_boot)

    fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(11, 3.9), constrained_layout=True)
    for name, r, c, m in (("before: 0.1 grid, 6 splits", before, "#ff7f0e", "s"),
                          ("after: 0.025 grid, 12 splits", after, "#1f77b4", "o")):
        ax.plot(r["share"].index, r["share"].to_numpy(), m, color=c, ms=5, alpha=0.85,
                label=f"{name} ({int(r['n'].median())} runs a fraction)")
        ax.axvspan(*r["ci"], color=c, alpha=0.12, lw=0)
        ax.axvline(r["point"], color=c, ls="--", lw=1)
        d = r["difference"][np.isfinite(r["difference"])]
        dci = r["difference_ci"]
        print(f"{name}: runs {r['point']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}], theory {r['predicted_point']:.3f} "
              f"[{r['predicted_ci'][0]:.3f}, {r['predicted_ci'][1]:.3f}], difference "
              f"{r['point'] - r['predicted_point']:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}]")
        ax_d.hist(d, bins=np.arange(-0.15, 0.3, 0.0125), color=c, alpha=0.5,
                  label=f"{name}: 95% [{dci[0]:+.3f}, {dci[1]:+.3f}]")
    th = after["theory"]
    ax.plot(th["fraction"], th["share_positive"], "-", color="#d62728", label="theory: P(λ3 > 0), 100 splits")
    ax.axvline(after["predicted_point"], color="#d62728", ls=":", lw=1)
    ax.set_xlim(0.2, 0.8)
    ax.set_xlabel("training fraction")
    ax.set_ylabel("share of runs linear (R² ≥ 0.99)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("runs (points; dashed: critical fraction, shaded: 95%) vs theory (red)", fontsize=9)
    ax_d.axvline(0, color="k", lw=0.8)
    ax_d.axvline(0.1, color="#555555", ls=":", lw=1, label="the former 0.1 target")
    ax_d.set_xlabel("critical fraction, runs − theory (bootstrap over splits)")
    ax_d.set_ylabel("resamples")
    ax_d.legend(fontsize=7, loc="upper left")
    ax_d.grid(alpha=0.3)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=130)
    print(f"figure: {args.output}")


if __name__ == "__main__":
    main()
