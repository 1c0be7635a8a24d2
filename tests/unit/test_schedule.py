"""Evaluation / checkpoint step schedules."""

from __future__ import annotations

import pytest

from groklab.training.schedule import eval_steps, interval_steps, log_steps


def test_log_steps_hand_computed():
    # round(10 ** (i / 10)): 1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100, ...
    assert log_steps(1000, 10) == [
        0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100,
        126, 158, 200, 251, 316, 398, 501, 631, 794, 1000,
    ]


@pytest.mark.parametrize("total,per_decade", [(1, 60), (7, 3), (999, 10), (12_345, 60), (100_000, 20)])
def test_log_steps_properties(total, per_decade):
    s = log_steps(total, per_decade)
    assert s[0] == 0 and s[-1] == total
    assert all(a < b for a, b in zip(s, s[1:]))  # strictly increasing, no duplicates
    assert all(isinstance(x, int) for x in s)


def test_log_steps_total_not_on_grid_is_included():
    s = log_steps(150, 10)
    assert s[-3:] == [100, 126, 150]


@pytest.mark.parametrize("per_decade", [10, 20, 60])
def test_log_steps_per_decade_density(per_decade):
    s = log_steps(100_000, per_decade)
    # decades far enough from 1 that rounding merges nothing hold exactly per_decade points
    for lo in (1_000, 10_000):
        assert sum(lo <= x < 10 * lo for x in s) == per_decade
    # the first decade can only hold the integers 1..9
    assert sum(1 <= x < 10 for x in s) <= 9


def test_log_steps_tiny_totals():
    assert log_steps(0, 10) == [0]
    assert log_steps(1, 10) == [0, 1]
    assert log_steps(2, 60) == [0, 1, 2]


def test_interval_steps():
    assert interval_steps(10, 3) == [0, 3, 6, 9, 10]
    assert interval_steps(9, 3) == [0, 3, 6, 9]
    assert interval_steps(5, 10) == [0, 5]
    assert interval_steps(4, 1) == [0, 1, 2, 3, 4]


def test_eval_steps_dispatch():
    assert eval_steps(10, 5, 60) == [0, 5, 10]
    assert eval_steps(1000, None, 10) == log_steps(1000, 10)


def test_eval_min_gap_thins_the_log_schedule():
    full = log_steps(1000, 40)
    thinned = eval_steps(1000, None, 40, min_gap=10)
    assert thinned[:9] == [0, 10, 20, 30, 40, 50, 60, 71, 84]  # points of the log grid, >= 10 apart
    assert set(thinned) <= set(full) and thinned[-1] == 1000
    assert all(b - a >= 10 for a, b in zip(thinned[:-2], thinned[1:-1]))
    assert [s for s in full if s >= 200] == [s for s in thinned if s >= 200]  # log gaps > 10 kept as they are
    assert eval_steps(1000, None, 40, min_gap=1) == full
    assert eval_steps(25, None, 40, min_gap=10) == [0, 10, 20, 25]  # the last step is kept
