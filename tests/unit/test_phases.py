"""Known-answer tests for groklab.phases (Nanda et al. 2023 phase boundaries) and its
figure, `groklab plot RUN --phases`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

import groklab
from groklab.cli import app
from groklab.phases import NandaPhases, nanda_phases
from groklab.store import RunStore

EPS = 0.01 * math.log(2)  # the 99% level of the rules

# A hand-made grokking run. Train loss reaches the 99% level at 300; the excluded loss is
# lowest at 1000 and then rises (memorization ends 1000); the restricted loss is below the
# excluded loss from 5000 on (circuit formation ends 5000); val and restricted loss are both
# below EPS first at 8000 (cleanup ends 8000).
TABLE = {
    #            0     10    100   300   1000  2000  3000  4000  5000  6000  7000  8000  10000
    "steps": [0, 10, 100, 300, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000],
    "train_loss": [4.7, 4.6, 0.5, 1e-3, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6],
    "val_loss": [4.7, 4.8, 10, 20, 25, 25, 24, 20, 10, 1.0, 0.1, 1e-3, 1e-4],
    "restricted_loss": [4.7, 4.7, 4.8, 4.5, 4.0, 3.5, 3.0, 2.0, 0.5, 0.05, 0.01, 1e-3, 1e-4],
    "excluded_loss": [4.7, 4.6, 0.5, 1e-3, 1e-5, 1e-3, 0.1, 1.0, 3.0, 5.0, 8.0, 10.0, 10.0],
}
EXPECTED = NandaPhases(1000, 5000, 8000)


def table(**changes) -> dict[str, np.ndarray]:
    t = {k: np.array(v, dtype=np.float64) for k, v in TABLE.items()}
    for name, edits in changes.items():
        for step, value in edits.items():
            t[name][TABLE["steps"].index(step)] = value
    return t


def phases(t: dict, **kw) -> NandaPhases:
    return nanda_phases(t["steps"], t["train_loss"], t["val_loss"], t["restricted_loss"], t["excluded_loss"], **kw)


def test_hand_table():
    assert phases(table()) == EXPECTED
    assert phases(table()).as_dict() == {"memorization_end": 1000, "circuit_formation_end": 5000, "cleanup_end": 8000}


def test_excluded_floor_is_contiguous_and_within_a_factor_2():
    # 2000 within 2x of the minimum: the floor lasts to 2000; 4000 low again but not contiguous
    t = table(excluded_loss={2000: 1.9e-5, 3000: 1e-3, 4000: 1.5e-5}, restricted_loss={4000: 1.0})
    assert phases(t).memorization_end == 2000
    # just above 2x: the floor ends at the minimum
    assert phases(table(excluded_loss={2000: 2.1e-5})).memorization_end == 1000
    assert phases(table(excluded_loss={2000: 2.1e-5}), tol=3.0).memorization_end == 2000


def test_transient_crossing_is_ignored():
    # a spike: restricted below excluded at 3000 only, then above again at 4000
    t = table(restricted_loss={3000: 0.05}, excluded_loss={3000: 0.1})
    assert phases(t) == EXPECTED
    # ... but a crossing that holds to the end counts
    assert phases(table(restricted_loss={4000: 0.5})).circuit_formation_end == 4000


def test_not_reached():
    never_memorized = table(train_loss={s: 0.1 for s in TABLE["steps"][3:]})
    assert phases(never_memorized) == NandaPhases(None, None, None)
    no_circuit = table(restricted_loss={10000: 20.0})  # above the excluded loss at the last step
    ph = phases(no_circuit)
    assert (ph.circuit_formation_end, ph.cleanup_end) == (None, None)
    assert ph.memorization_end == 1000
    semi = table(val_loss={8000: 0.5, 10000: 0.5})  # the circuit forms, the test loss stays up
    assert phases(semi) == NandaPhases(1000, 5000, None)
    # cleanup needs the restricted loss at the 99% level too
    assert phases(table(restricted_loss={8000: 0.01})).cleanup_end == 10000


def test_circuit_before_memorization_is_clamped():
    # restricted below excluded at every step after 0: the circuit cannot form before the
    # training set is memorized (300), and memorization ends no later than that
    t = table(restricted_loss={s: 1e-7 for s in TABLE["steps"][1:]})
    ph = phases(t)
    assert ph.circuit_formation_end == 300 and ph.memorization_end == 300 and ph.cleanup_end == 8000


def test_non_finite_rows_are_ignored():
    t = table()
    extra = {k: np.insert(v, [2, 6], np.nan if k != "steps" else 0) for k, v in t.items()}
    extra["steps"][[2, 7]] = [50, 2500]  # the inserted rows sit at steps 50 and 2500
    extra["train_loss"][[2, 7]] = [1.0, 1e-6]
    extra["val_loss"][[2, 7]] = [6.0, 25.0]
    assert phases(extra) == EXPECTED


def test_smooth_noisy_curves_on_a_log_grid():
    """Log-spaced checkpoints (20 per decade, as groklab saves them) and independent
    multiplicative noise of up to 20% on every curve: each boundary lands within 0.06 decade
    (about one checkpoint) of the planted one."""
    rng = np.random.default_rng(0)
    s = np.unique(np.round(np.logspace(0, 4.2, 85)).astype(int))
    u = np.log10(s)
    lg = lambda xs, ys: 10 ** np.interp(u, np.log10(xs), np.log10(ys))  # noqa: E731  log-log lines
    M, C, G = 1500, 4500, 7000  # planted: excluded minimum, restricted = excluded, val at 0.5%
    train = lg([1, 30, M, 15849], [4.7, 4.7, 1e-6, 1e-6])
    excluded = lg([1, 30, M, 2 * M, C, 15849], [4.7, 4.7, 1e-4, 1e-1, 2.0, 15])
    restricted = lg([1, 300, C, G, 15849], [4.7, 4.0, 2.0, 1e-3, 1e-4])
    val = lg([1, 300, 3000, C, G, 15849], [4.7, 20, 25, 15, 5e-3, 1e-3])
    noisy = [x * rng.uniform(0.8, 1.2, len(s)) for x in (train, val, restricted, excluded)]
    ph = nanda_phases(s, *noisy)
    for got, want in ((ph.memorization_end, M), (ph.circuit_formation_end, C), (ph.cleanup_end, G)):
        assert abs(math.log10(got) - math.log10(want)) <= 0.06, (got, want)
    # without noise: the first checkpoint after each planted boundary
    assert nanda_phases(s, train, val, restricted, excluded) == NandaPhases(1585, 5012, 7079)


@pytest.mark.parametrize("bad, match", [
    (dict(steps=[0, 1]), "different lengths"),
    (dict(steps=TABLE["steps"][::-1]), "steps must increase"),
    (dict(acc_level=1.0), "acc_level"),
    (dict(tol=1.0), "tol"),
])
def test_bad_input(bad, match):
    t = table()
    kw = {k: v for k, v in bad.items() if k in ("acc_level", "tol")}
    t.update({k: np.array(v) for k, v in bad.items() if k == "steps"})
    with pytest.raises(ValueError, match=match):
        phases(t, **kw)


# --------------------------------------------------------------------------- figure and CLI


def fake_run(path, with_restricted=True):
    """A run directory holding only a config, a split and metrics (the hand table)."""
    cfg = groklab.resolve("demo", overrides=["task.p=11"])
    task = groklab.tasks.make_task(cfg.task)
    store = RunStore.create(path, cfg, task.split_tensors())
    names = ["train_loss", "val_loss"] + (["restricted_loss", "excluded_loss"] if with_restricted else [])
    rows = [(s, 0, n, float(TABLE[n][i])) for n in names for i, s in enumerate(TABLE["steps"])]
    for i, s in enumerate(TABLE["steps"]):
        rows += [(s, 0, "train_acc", 1.0 if s >= 300 else 0.1), (s, 0, "val_acc", 1.0 if s >= 8000 else 0.05),
                 (s, 0, "weight_norm", 40.0 - s / 1000)]
    store.write_metrics(rows)
    return path


def test_plot_phases_cli(tmp_path):
    runner = CliRunner()
    run = fake_run(tmp_path / "r")
    png = tmp_path / "phases.png"
    result = runner.invoke(app, ["plot", str(run), "--phases", "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    bare = fake_run(tmp_path / "bare", with_restricted=False)
    result = runner.invoke(app, ["plot", str(bare), "--phases"])
    assert result.exit_code == 2
    assert "groklab analyze" in result.output.replace("\n", "") and "restricted_loss" in result.output
    result = runner.invoke(app, ["plot", str(run), "--phases", "-m", "val_acc"])
    assert result.exit_code == 2
