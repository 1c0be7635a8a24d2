"""Grokking events and the phases of Liu et al. 2022, Table 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from groklab.detect import PHASES, events_from_metrics, first_step_at_least, first_step_held, member_events, phase


def test_phases_are_the_four_of_table_1():
    assert PHASES == ("comprehension", "grokking", "memorization", "confusion")


@pytest.mark.parametrize(
    "step_train,step_val,budget,gap,expected",
    [
        (100, 500, None, 1000, "comprehension"),  # val 400 steps after train
        (100, 1099, None, 1000, "comprehension"),  # 999 < 1000
        (100, 1100, None, 1000, "grokking"),  # exactly the gap is not "fewer than"
        (100, 20_000, None, 1000, "grokking"),
        (100, 20_000, None, 50_000, "comprehension"),  # a bigger gap
        (300, 300, None, 1000, "comprehension"),  # both at once
        (100, None, None, 1000, "memorization"),  # val never crosses
        (100, 20_000, 10_000, 1000, "memorization"),  # val crosses after the budget
        (100, 10_000, 10_000, 1000, "grokking"),  # at the budget counts as within
        (None, None, None, 1000, "confusion"),
        (20_000, 30_000, 10_000, 1000, "confusion"),  # train only after the budget
        (None, 500, None, 1000, "confusion"),  # val without train: counted as confusion
        (0, 0, 0, 1, "comprehension"),
    ],
)
def test_phase(step_train, step_val, budget, gap, expected):
    assert phase(step_train, step_val, budget, gap) == expected


@pytest.mark.parametrize(
    "step_train,step_val,budget,gap,steps_run,expected",
    [
        ((1, 100), (1101, 1500), None, 1000, None, "grokking"),  # apart by 1001..1499
        ((1, 100), (201, 1500), None, 1000, None, "undetermined"),  # 101..1499: the gap falls inside
        ((1, 100), (201, 1000), None, 1000, None, "comprehension"),  # at most 999 apart
        ((1, 100), (9_001, 12_000), 10_000, 1000, None, "undetermined"),  # the budget falls inside
        ((1, 100), (10_001, 12_000), 10_000, 1000, None, "memorization"),
        ((9_001, 12_000), None, 10_000, 1000, None, "undetermined"),
        (100, None, 100_000, 1000, 20_000, "undetermined"),  # stopped short of the budget
        (None, None, 100_000, 1000, 20_000, "undetermined"),
        (None, None, 100_000, 1000, 100_000, "confusion"),
        (100, 500, 100_000, 1000, 20_000, "comprehension"),  # decided within the run
    ],
)
def test_phase_from_crossing_intervals(step_train, step_val, budget, gap, steps_run, expected):
    assert phase(step_train, step_val, budget, gap, steps_run) == expected


def test_coarse_evaluations_leave_the_phase_undetermined():
    ev = member_events([0, 100, 200, 1500], [0.1, 0.95, 1.0, 1.0], [0.0, 0.1, 0.5, 0.95], threshold=0.9,
                       budget=None, gap=1000)
    assert ev["phase"] == "undetermined"  # val crossed 101 to 1,499 steps after train


def test_first_step_held_ignores_a_dip_before_the_run_settles():
    steps = np.array([0, 10, 20, 30, 40, 50])
    assert first_step_held(steps, [0.1, 0.995, 0.98, 0.99, 1.0, 1.0], 0.99) == 30  # first crossing: 10
    assert first_step_held(steps, [0.1, 0.5, 0.99, 1.0, 1.0, 0.9], 0.99) is None  # ends below
    assert first_step_held(steps, [1.0] * 6, 0.99) == 0
    assert first_step_held(steps, [0.1, np.nan, 0.99, 1.0, 1.0, 1.0], 0.99) == 20  # NaN counts as below
    ev = member_events(steps, [1.0] * 6, [0.1, 0.995, 0.98, 0.99, 1.0, 1.0], threshold=0.9, budget=None, gap=5)
    assert ev["step_val_99"] == 10 and ev["step_val_99_held"] == 30


def test_first_step_at_least():
    steps = np.array([0, 10, 100, 1000])
    assert first_step_at_least(steps, np.array([0.1, 0.95, 0.5, 0.99]), 0.9) == 10
    assert first_step_at_least(steps, np.array([0.1, 0.5, 0.9, 1.0]), 0.9) == 100  # equality counts
    assert first_step_at_least(steps, np.array([0.1, 0.5, 0.89, 0.899]), 0.9) is None
    assert first_step_at_least([5, 7], [1.0, 1.0], 0.99) == 5
    assert type(first_step_at_least(steps, np.array([1.0, 1.0, 1.0, 1.0]), 0.5)) is int


STEPS = [0, 100, 200, 1100, 1500, 3000]
TRAIN = [0.1, 0.95, 1.0, 1.0, 1.0, 1.0]
VAL = [0.0, 0.1, 0.5, 0.6, 0.92, 0.995]
SECS = [0.0, 1.5, 3.0, 15.0, 20.0, 40.0]


def test_member_events_grokking_with_seconds():
    ev = member_events(STEPS, TRAIN, VAL, threshold=0.9, budget=None, gap=1000, seconds=SECS)
    assert ev == {
        "step_train_99": 200,
        "step_val_99": 3000,
        "step_val_99_held": 3000,
        "step_train_thr": 100,
        "step_val_thr": 1500,
        "phase": "grokking",  # val crossed in [1101, 1500], train in [1, 100]: >= 1000 apart either way
        "seconds_val_99": 40.0,
    }


def test_member_events_other_settings():
    ev = member_events(STEPS, TRAIN, VAL, threshold=0.9, budget=None, gap=2000, seconds=None)
    assert ev["phase"] == "comprehension" and ev["seconds_val_99"] is None
    ev = member_events(STEPS, TRAIN, VAL, threshold=0.9, budget=1000, gap=1000)
    assert ev["phase"] == "memorization"
    ev = member_events(STEPS, TRAIN, VAL, threshold=0.4, budget=None, gap=1000, seconds=SECS)
    assert (ev["step_train_thr"], ev["step_val_thr"], ev["phase"]) == (100, 200, "comprehension")
    assert ev["seconds_val_99"] == 40.0  # the 99% events do not depend on the threshold


def test_member_events_never_generalises():
    ev = member_events(STEPS, TRAIN, [0.0, 0.1, 0.2, 0.3, 0.3, 0.3], threshold=0.9, budget=None, gap=1000,
                       seconds=SECS)
    assert ev["step_val_99"] is None and ev["step_val_thr"] is None
    assert ev["seconds_val_99"] is None
    assert ev["phase"] == "memorization"
    ev = member_events(STEPS, [0.1] * 6, [0.1] * 6, threshold=0.9, budget=None, gap=1000)
    assert ev["phase"] == "confusion" and ev["step_train_99"] is None


def test_events_from_metrics_long_format():
    rows = []
    for s, tr, va, t in zip(STEPS, TRAIN, VAL, SECS):
        rows += [(s, 0, "train_acc", tr), (s, 0, "val_acc", va), (s, 0, "time_s", t)]
        rows += [(s, 1, "train_acc", 0.2), (s, 1, "val_acc", 0.1), (s, 1, "time_s", t)]
    df = pd.DataFrame(rows, columns=["step", "member", "name", "value"])
    ev0 = events_from_metrics(df, 0)
    assert ev0["phase"] == "grokking" and ev0["step_val_99"] == 3000 and ev0["seconds_val_99"] == 40.0
    ev1 = events_from_metrics(df, 1)
    assert ev1["phase"] == "confusion" and ev1["step_train_thr"] is None


def test_phase_diagram_cells_make_ties_explicit():
    from groklab.report.sweep_plots import modal_phase

    assert modal_phase(["grokking", "grokking", "comprehension"]) == "grokking"
    assert modal_phase(["comprehension", "grokking"]) == "tie"  # formerly "comprehension", silently
    assert modal_phase(["undetermined", "undetermined", "grokking"]) == "undetermined"
    assert modal_phase([None, "memorization"]) == "memorization"
    assert modal_phase([]) is None
