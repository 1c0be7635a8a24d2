"""groklab.bench: aggregation against hand-computed values, method x task expansion, bad
names, and the wall-clock budget (skip / extend / retrain)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from groklab.bench import (ANCHORS, DEV_SEEDS, HELDOUT_SEEDS, METHODS, SUITE_DEFAULTS, SUITES, expand, fidelity,
                           parse_seeds, summarize)
from groklab.bench.aggregate import median_ci
from groklab.report.bench_curves import median_curve
from groklab.bench.runner import first_at, result_row, run_one
from groklab.bench.suite import Anchor
from groklab.config import ConfigError
from groklab.store import RunStore


def _runs() -> pd.DataFrame:
    rows = []
    # A: 4 seeds, 3 reach 99% at steps 100, 200, 300 (1, 2, 4 s); one does not
    for seed, step, secs in [(0, 100, 1.0), (1, 200, 2.0), (2, 300, 4.0), (3, None, None)]:
        rows.append(dict(method="A", task="t", seed=seed, prior_knowledge=False, reached=step is not None,
                         step_val_99=step, seconds_val_99=secs, n_params=1000, ms_per_step=[5.0, 6.0, 7.0, 9.0][seed]))
    # B: never reaches
    for seed in range(2):
        rows.append(dict(method="B", task="t", seed=seed, prior_knowledge=False, reached=False,
                         step_val_99=None, seconds_val_99=None, n_params=50, ms_per_step=1.0))
    # C: prior knowledge, both seeds reach, slower than A
    for seed, step, secs in [(0, 50, 10.0), (1, 70, 30.0)]:
        rows.append(dict(method="C", task="t", seed=seed, prior_knowledge=True, reached=True,
                         step_val_99=step, seconds_val_99=secs, n_params=7, ms_per_step=2.0))
    # A on a second task: one seed, reached
    rows.append(dict(method="A", task="u", seed=0, prior_knowledge=False, reached=True,
                     step_val_99=10, seconds_val_99=0.5, n_params=1000, ms_per_step=5.0))
    return pd.DataFrame(rows)


def test_summary_median_iqr_share():
    s = summarize(_runs()).set_index(["task", "method"])
    a = s.loc[("t", "A")]
    assert (a["seeds"], a["reached"], a["share"]) == (4, 3, 0.75)
    # numpy's linear percentiles of [100, 200, 300]: q25 = 150, median = 200, q75 = 250
    assert (a["steps_q25"], a["steps_median"], a["steps_q75"]) == (150.0, 200.0, 250.0)
    # of [1, 2, 4] s: q25 = 1.5, median = 2, q75 = 3
    assert (a["seconds_q25"], a["seconds_median"], a["seconds_q75"]) == (1.5, 2.0, 3.0)
    assert a["ms_per_step"] == 6.5 and a["n_params"] == 1000
    b = s.loc[("t", "B")]
    assert b["share"] == 0.0 and math.isnan(b["steps_median"]) and math.isnan(b["seconds_q75"])
    c = s.loc[("t", "C")]
    assert c["share"] == 1.0 and c["seconds_median"] == 20.0 and c["steps_median"] == 60.0
    assert s.loc[("u", "A")]["steps_median"] == 10.0


def test_rank_keeps_prior_knowledge_apart():
    s = summarize(_runs()).set_index(["task", "method"])
    # C (share 1.0) would beat A (0.75) overall, but prior-knowledge recipes rank apart
    assert s.loc[("t", "A"), "rank"] == 1 and s.loc[("t", "B"), "rank"] == 2
    assert s.loc[("t", "C"), "rank"] == 1 and bool(s.loc[("t", "C"), "prior_knowledge"])
    assert s.loc[("u", "A"), "rank"] == 1


def test_rank_breaks_equal_share_by_median_seconds():
    runs = _runs()
    runs = runs[runs["method"] == "A"].assign(method="D", ms_per_step=1.0)
    runs.loc[runs["seed"] == 0, "seconds_val_99"] = 0.1  # D: seconds 0.1, 2, 4 -> median 2 = A's
    runs.loc[runs["seed"] == 1, "seconds_val_99"] = 1.5  # now 0.1, 1.5, 4 -> median 1.5 < 2
    both = pd.concat([_runs(), runs[runs["task"] == "t"]], ignore_index=True)
    s = summarize(both).set_index(["task", "method"])
    assert s.loc[("t", "D"), "rank"] == 1 and s.loc[("t", "A"), "rank"] == 2


def test_expand_method_task_seed():
    runs = expand("challenge", "fastest,power2022", "add97_prefix,mul97", "0,1")
    assert [(r.method, r.task, r.seed) for r in runs] == [
        ("fastest", "add97_prefix", 0), ("fastest", "add97_prefix", 1), ("fastest", "mul97", 0),
        ("fastest", "mul97", 1), ("power2022", "add97_prefix", 0), ("power2022", "add97_prefix", 1),
        ("power2022", "mul97", 0), ("power2022", "mul97", 1)]
    f, p = runs[0].cfg, runs[6].cfg
    assert (f.task.op, f.task.p, f.task.fraction, f.task.split) == ("add", 97, 0.5, "prefix")
    assert (p.task.op, p.task.split) == ("mul", "random")
    assert p.task.layout == "aopb=" and p.model.n_layers == 2  # the recipe keeps its own model
    assert runs[1].cfg.train.seeds == [1] and f.train.stop_val_acc == 0.99 and f.train.stop_patience == 1
    assert runs[1].cfg.task.split_seed == 1 and runs[0].cfg.task.split_seed == 0  # a seed is init and split
    assert not f.train.progress and f.model.kind == "mlp" and f.model.embed == "learned"
    assert runs[0].rel_dir == "fastest/add97_prefix/seed0"


def test_default_expansion_covers_suite_and_methods():
    runs = expand("challenge", None, None, 1)
    assert len(runs) == len(SUITE_DEFAULTS["challenge"]["methods"]) * len(SUITES["challenge"])
    assert {r.task for r in runs} == {"add97_random", "add97_prefix", "mul97", "div97", "quad97"}
    assert not any(r.prior_knowledge for r in runs)
    ops = {r.task: r.cfg.task.op for r in runs}
    assert ops == {"add97_random": "add", "add97_prefix": "add", "mul97": "mul", "div97": "div", "quad97": "quad"}
    # every method can be named, prior knowledge or not
    every = expand("challenge", "all", "add97_random", 1)
    assert len(every) == len(SUITE_DEFAULTS["challenge"]["methods"])
    named = expand("challenge", ",".join(METHODS), "add97_random", 1)
    assert {r.method for r in named} == set(METHODS)
    assert {r.method for r in named if r.prior_knowledge} == {
        "fastest_cyclic", "fastest_scalar", "fastest_cyclic_sdr", "fastest_scalar_sdr", "thread_sdr"}


def test_fidelity_suite_pairs_each_baseline_with_its_paper():
    runs = expand("fidelity", None, None, "0-0")
    pairs = [(r.method, r.task) for r in runs]
    assert pairs == [("prieto2025_fig1a", "prieto113"), ("grokfast2024", "grokfast_mul97"),
                     ("grokfast2024_ma", "grokfast_mul97"), ("egd2025", "egd_add127"),
                     ("tveit2025_muon", "tveit_div97"), ("tveit2025_adamw", "tveit_div97"), ("thread_sdr", "thread_add97")]
    assert all(pair in ANCHORS for pair in pairs)
    by = {r.method: r.cfg for r in runs}
    pr = by["prieto2025_fig1a"]
    assert (pr.task.op, pr.task.p, pr.task.fraction, pr.train.stop_val_acc) == ("add", 113, 0.4, 1.0)
    assert (pr.optim.beta2, pr.optim.eps, pr.model.bias, pr.train.batch_size) == (0.999, 1e-8, "off", None)
    gf = by["grokfast2024"]
    assert gf.task.op == "mul_nz" and gf.train.stop_val_acc == 0.99  # 95% is read off the curve
    m = gf.model  # their main.py's quirks
    assert (m.init, m.attn_bias, m.residual, m.logits) == ("torch", True, "normed", "vocab")
    assert (gf.optim.warmup_start, gf.train.drop_last) == (0, False)
    mu = by["tveit2025_muon"]
    assert (mu.optim.name, mu.optim.lr, mu.optim.aux_lr_mult, mu.train.batch_size, mu.train.eval_every) == \
        ("muon", 5e-3, 0.1, 32, 145)
    assert by["egd2025"].task.p == 127 and by["egd2025"].method["egd"]["until_val_acc"] == 0.95
    th = by["thread_sdr"]
    assert th.task.dedupe_commutative and th.task.exclude_diagonal and th.model.embed == "cyclic_sdr_sum"


def test_fidelity_table_by_hand(tmp_path):
    runs = pd.DataFrame({"method": ["M"] * 3 + ["N"], "task": ["T"] * 4, "threshold": [0.95] * 4,
                         "step_threshold": [100, 120, None, 50]})
    anchors = {("M", "T"): Anchor("M", "T", "about 100", 100, "a paper")}
    f = fidelity(runs, anchors)
    assert len(f) == 1  # N has no published number
    r = f.iloc[0]
    assert (r["seeds"], r["reached"], r["steps_median"], r["published_steps"]) == (3, 2, 110.0, 100)
    assert r["ratio"] == 1.1 and (r["steps_ci_lo"], r["steps_ci_hi"]) == (100.0, 120.0)


def test_first_at_reads_the_curve(tmp_path):
    run = expand("challenge", "fastest", "add97_random", "0-0", max_steps=5)[0]
    d = tmp_path / "r"
    run_one(run.cfg, d, budget_s=60)
    store = RunStore(d)
    store.write_metrics([(s, 0, n, v) for s, acc, t in [(10, 0.5, 1.0), (20, 0.96, 2.0), (30, 0.99, 3.0)]
                         for n, v in (("val_acc", acc), ("time_s", t))])
    assert first_at(d, 0.95, 60) == (20, 2.0) and first_at(d, 0.99, 60) == (30, 3.0)
    assert first_at(d, 0.99, 2.5) == (None, None) and first_at(d, 1.0, 60) == (None, None)


@pytest.mark.parametrize("kwargs,key,value", [
    (dict(methods="fastest,nope"), "--methods", "nope"),
    (dict(tasks="add97_random,sub97"), "--tasks", "sub97"),
    (dict(seeds=0), "--seeds", 0),
    (dict(seeds="three"), "--seeds", "three"),
    (dict(seeds="5-2"), "--seeds", "5-2"),
    (dict(seeds="1,,x"), "--seeds", "1,,x"),
    (dict(seeds=[1, -2]), "--seeds", -2),
    (dict(suite="olympics"), "--suite", "olympics"),
    (dict(max_steps=0), "--max-steps", 0),
])
def test_bad_names_raise_config_error(kwargs, key, value):
    args = dict(suite="challenge", methods="fastest", tasks="add97_random", seeds=1) | kwargs
    with pytest.raises(ConfigError) as e:
        expand(**args)
    assert e.value.key == key and e.value.value == value and repr(value) in str(e.value)


def test_parse_seeds():
    assert parse_seeds(None) == list(HELDOUT_SEEDS) == list(range(100, 110))
    assert parse_seeds("heldout") == list(range(100, 110)) and parse_seeds("dev") == [0, 1, 2, 3, 4]
    assert parse_seeds(3) == parse_seeds("3") == [100, 101, 102]  # N: the first N held-out seeds
    assert parse_seeds("7-9") == [7, 8, 9] and parse_seeds("0-1,100,1") == [0, 1, 100]
    assert parse_seeds(range(2)) == [0, 1]
    assert not set(DEV_SEEDS) & set(HELDOUT_SEEDS)


def test_default_bench_scores_heldout_seeds_and_splits():
    runs = expand("challenge", "fastest", "add97_random")
    assert [r.seed for r in runs] == list(range(100, 110))
    assert [r.cfg.task.split_seed for r in runs] == list(range(100, 110))
    assert [r.cfg.train.seeds for r in runs] == [[s] for s in range(100, 110)]


def test_median_ci_by_hand():
    # 2 values: every resample's median is a, b or (a+b)/2; with 2,000 resamples the 2.5% and
    # 97.5% percentiles are the extremes a and b
    assert median_ci([10, 20]) == (10.0, 20.0)
    assert median_ci([7, 7, 7]) == (7.0, 7.0)
    assert all(math.isnan(x) for x in median_ci([5])) and all(math.isnan(x) for x in median_ci([]))
    # 11 values 0..10: the interval holds the median 5 and lies within [0, 10], and is
    # reproducible (fixed random state)
    lo, hi = median_ci(range(11))
    assert 0 <= lo < 5 < hi <= 10 and median_ci(range(11)) == (lo, hi)
    # a known case: the bootstrap median of n = 11 lies in [x_(3), x_(9)] with probability
    # about 0.96 (binomial order-statistic bound), so the 95% interval is within [2, 8]
    assert 2 <= lo and hi <= 8


def test_summary_has_median_intervals():
    s = summarize(_runs()).set_index(["task", "method"])
    a = s.loc[("t", "A")]
    assert a["steps_ci_lo"] >= 100 and a["steps_ci_hi"] <= 300 and a["steps_ci_lo"] <= 200 <= a["steps_ci_hi"]
    assert math.isnan(s.loc[("u", "A"), "steps_ci_lo"])  # one seed: no interval


def test_median_curve_holds_last_value():
    c = pd.DataFrame({"seed": [0, 0, 0, 1, 1], "time_s": [0.0, 1.0, 2.0, 0.0, 4.0],
                      "val_acc": [0.0, 0.5, 1.0, 0.0, 0.2]})
    grid = np.array([0.5, 1.5, 3.0, 4.0, 5.0])
    # seed 0: 0, .5, 1 (held), 1, -- ; seed 1: 0, 0, 0, .2, -- ; past the longest seed: NaN
    got = median_curve(c, grid)
    np.testing.assert_allclose(got[:4], [0.0, 0.25, 0.5, 0.6])
    assert np.isnan(got[4])


def test_median_curve_is_the_best_so_far_as_the_table_scores_it():
    # both seeds cross 99% and then dip: the table says both reached it, so does the curve
    c = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "time_s": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0],
                      "val_acc": [0.0, 0.995, 0.97, 0.0, 0.992, 0.98]})
    got = median_curve(c, np.array([0.5, 1.5, 2.0]))
    np.testing.assert_allclose(got, [0.0, 0.9935, 0.9935])


# --------------------------------------------------------------------------- the budget


def test_budget_stop_skip_extend_retrain(tmp_path):
    run = expand("challenge", "fastest", "add97_random", 1, max_steps=40)[0]
    d = tmp_path / "r"
    assert run_one(run.cfg, d, budget_s=1e-9) == "trained"  # over budget at the first step
    s = RunStore(d).summary()
    assert s["status"] == "stopped" and s["steps"] == 1
    row = result_row(run, d, 1e-9, 123)
    assert not row["reached"] and row["steps"] == 1 and row["n_params"] == 123
    assert run_one(run.cfg, d, budget_s=1e-9) == "skipped"
    assert run_one(run.cfg, d, budget_s=600.0) == "extended"  # a larger budget continues it
    s = RunStore(d).summary()
    assert s["steps"] == 40 and s["status"] == "completed"
    assert run_one(run.cfg, d, budget_s=600.0) == "skipped"
    changed = expand("challenge", "fastest", "add97_random", 1, max_steps=30)[0].cfg
    assert run_one(changed, d, budget_s=600.0) == "trained"  # the recipe changed: trained again
    assert RunStore(d).summary()["steps"] == 30


def test_result_row_needs_99_within_budget(tmp_path):
    run = expand("challenge", "fastest", "add97_random", 1, max_steps=5)[0]
    d = tmp_path / "r"
    run_one(run.cfg, d, budget_s=600.0)
    summary = RunStore(d).summary()
    summary["members"][0].update(step_val_99=5, seconds_val_99=2.0)
    RunStore(d).write_summary(summary)
    assert result_row(run, d, 3.0, 1)["reached"] and result_row(run, d, 3.0, 1)["step_val_99"] == 5
    late = result_row(run, d, 1.0, 1)
    assert not late["reached"] and late["seconds_val_99"] is None
