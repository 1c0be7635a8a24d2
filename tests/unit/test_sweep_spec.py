"""Sweep specs: expansion, ids, grouping into ensembles, and errors that name the bad value."""

import math
from pathlib import Path

import pytest

from groklab.config import ConfigError
from groklab.sweep import SweepSpec, plan

BASE = {"preset": "liu2022_toy", "base": {"train.steps": 10, "model.hidden": [8]}}


def spec(**kw) -> SweepSpec:
    d = {**BASE, **kw}
    return SweepSpec.from_dict(d)


def test_grid_order_ids_and_seeds():
    s = spec(seeds=2, axes={"optim.lr": [1e-3, 1e-2], "task.fraction": [0.5, 0.7]})
    runs = s.runs()
    assert len(runs) == 2 * 2 * 2
    assert [r.id for r in runs] == [f"r{i:05d}" for i in range(8)]
    # points in grid order (last axis fastest), seeds innermost
    assert [(r.values["optim.lr"], r.values["task.fraction"], r.seed) for r in runs[:4]] == [
        (1e-3, 0.5, 0), (1e-3, 0.5, 1), (1e-3, 0.7, 0), (1e-3, 0.7, 1)]


def test_log_and_linear_axes():
    s = spec(axes={"optim.lr": {"log": [1e-4, 1e-1], "n": 4}, "optim.weight_decay": {"linear": [0, 3], "n": 4}})
    assert s.axes["optim.lr"] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert s.axes["optim.weight_decay"] == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_nested_axis_tables_flatten():
    s = spec(axes={"optim": {"lr": [1e-3, 2e-3]}})
    assert list(s.axes) == ["optim.lr"]


def test_list_valued_key_takes_lists_as_axis_values():
    s = spec(axes={"model.hidden": [[8], [16, 16]], "optim.lr": [1e-3]})
    assert [s.config_for(r).model.hidden for r in s.runs()] == [[8], [16, 16]]
    assert len(plan(s, Path("/tmp/x"), "ensemble")) == 2  # width changes the model: one group each
    with pytest.raises(ConfigError, match=r"^sweep\.axes\.optim\.lr=\[0\.001, 0\.002\]: "):
        spec(axes={"optim.lr": [[1e-3, 2e-3]]})  # a per-member list is not one axis value


def test_random_mode_is_reproducible_and_in_range():
    d = {"mode": "random", "samples": 20, "sample_seed": 3,
         "axes": {"optim.lr": {"log": [1e-4, 1e-2]}, "task.fraction": [0.3, 0.5]}}
    a, b = spec(**d).points(), spec(**d).points()
    assert a == b and len(a) == 20
    assert all(1e-4 <= p["optim.lr"] <= 1e-2 for p in a)
    assert {p["task.fraction"] for p in a} <= {0.3, 0.5}
    assert spec(**{**d, "sample_seed": 4}).points() != a


def test_config_for_a_run_applies_axes_and_seed():
    s = spec(seeds=[5, 7], axes={"optim.lr": [0.02]})
    cfg = s.config_for(s.runs()[1])
    assert cfg.optim.lr == 0.02 and cfg.train.seeds == [7] and cfg.train.steps == 10


def test_ensemble_plan_groups_member_axes_only():
    s = spec(seeds=3, axes={"optim.lr": [1e-3, 1e-2], "optim.weight_decay": [0.0, 1.0],
                            "task.fraction": [0.5, 0.7]})
    jobs = plan(s, Path("/tmp/x"), "ensemble")
    assert len(jobs) == 2  # one per fraction; lr, wd and seeds ride as members
    j = jobs[0]
    assert j.cfg.n_members == 12 and j.cfg.task.fraction == 0.5
    assert j.cfg.optim.lr == [r.values["optim.lr"] for r in j.runs]
    assert j.cfg.optim.weight_decay == [r.values["optim.weight_decay"] for r in j.runs]
    assert j.cfg.train.seeds == [r.seed for r in j.runs]
    assert sorted(r.id for jj in jobs for r in jj.runs) == [r.id for r in s.runs()]
    chunks = plan(s, Path("/tmp/x"), "ensemble", max_members=5)
    assert [len(c.runs) for c in chunks] == [5, 5, 2, 5, 5, 2]
    singles = plan(s, Path("/tmp/x"), "process")
    assert len(singles) == 24 and all(j.cfg.n_members == 1 for j in singles)


def test_method_knobs_are_member_axes():
    s = spec(base={**BASE["base"], "method": {"grokfast": {"kind": "ema"}}},
             axes={"method.grokfast.lamb": [0.5, 2.0]})
    jobs = plan(s, Path("/tmp/x"), "ensemble")
    assert len(jobs) == 1 and jobs[0].cfg.method["grokfast"]["lamb"] == [0.5, 2.0]


@pytest.mark.parametrize("d, key, value", [
    ({"axes": {"optim.lrr": [1e-3]}}, "optim.lrr", None),
    ({"axes": {"optim.lr": [-1.0]}}, "optim.lr", -1.0),
    ({"axes": {"optim.lr": {"log": [0, 1], "n": 3}}}, "sweep.axes.optim.lr", [0, 1]),
    ({"axes": {"optim.lr": {"log": [1e-3, 1e-1]}}}, "sweep.axes.optim.lr.n", None),
    ({"axes": {"optim.lr": []}}, "sweep.axes.optim.lr", []),
    ({"axes": {"train.seeds": [1, 2]}}, "sweep.axes.train.seeds", None),
    ({"seeds": 0}, "sweep.seeds", 0),
    ({"seeds": [1, 1]}, "sweep.seeds", [1, 1]),
    ({"mode": "sobol"}, "sweep.mode", "sobol"),
    ({"mode": "random"}, "sweep.samples", 0),
    ({"axis": {}}, "sweep.axis", {}),
    ({"preset": "nope"}, "--preset", "nope"),
])
def test_bad_specs_name_the_value(d, key, value):
    with pytest.raises(ConfigError) as e:
        spec(**d)
    assert key in str(e.value)
    if value is not None:
        assert str(value) in str(e.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such sweep spec"):
        SweepSpec.load(tmp_path / "nope.toml")


def test_committed_specs_load():
    root = Path(__file__).resolve().parents[2] / "sweeps"
    specs = sorted(root.glob("*.toml"))
    assert specs, "sweeps/ holds the specs of the reproduced figures"
    for p in specs:
        s = SweepSpec.load(p)
        assert s.axes and all(len(v) >= 1 for v in s.axes.values()), p.name
        assert len(s.runs()) == len(s.seeds) * math.prod(len(v) for v in s.axes.values()), p.name
        for r in s.runs()[:: max(1, len(s.runs()) // 5)]:  # a few runs' configs resolve and validate
            s.config_for(r)


def test_sweep_curve_draws_a_second_axis_as_curves_and_refuses_a_third(tmp_path):
    import pandas as pd
    import pytest

    from groklab.config import ConfigError
    from groklab.report.sweep_plots import plot_sweep_curve

    rows = [{"run": f"r{i}", "seed": s, "status": "done", "optim.lr": lr, "optim.weight_decay": wd,
             "step_val_99": 100 * (i + 1) if s else None}
            for i, (lr, wd, s) in enumerate((lr, wd, s) for lr in (1e-3, 3e-3) for wd in (0.1, 1.0) for s in (0, 1))]
    df = pd.DataFrame(rows)
    assert plot_sweep_curve(df, "optim.lr", tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    three = df.assign(**{"model.init_scale": [1.0, 2.0] * 4})
    with pytest.raises(ConfigError, match="optim.weight_decay, model.init_scale"):
        plot_sweep_curve(three, "optim.lr", tmp_path / "d.png")
