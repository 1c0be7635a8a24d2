"""Muon through the real loop: a small transformer trains, and a run stopped at step 20 and
resumed to 40 equals a 40-step run in every logged value (the momentum buffer is in the
checkpoint)."""

from __future__ import annotations

from groklab.config import apply_overrides
from groklab.presets import get_preset
from groklab.resolve import check
from groklab.training.loop import resume, train

SMALL = ["task.p=13", "model.d_model=32", "model.d_mlp=64", "train.batch_size=32", "train.eval_every=5",
         "train.progress=false", "train.stop_val_acc=none", 'measures=[]', "train.checkpoint_every=10"]


def cfg(steps: int):
    c = get_preset("tveit2025_muon")
    apply_overrides(c, SMALL + [f"train.steps={steps}", "train.seeds=[0,1]"])
    return check(c)


def test_muon_run_learns_and_resumes_bit_for_bit(tmp_path):
    full = train(cfg(40), tmp_path / "full", progress=False)
    part = train(cfg(20), tmp_path / "part", progress=False)
    assert part.summary["steps"] == 20
    resumed = resume(tmp_path / "part", progress=False, overrides=["train.steps=40"])
    a = full.metrics.query("name != 'time_s'").reset_index(drop=True)
    b = resumed.metrics.query("name != 'time_s'").reset_index(drop=True)
    assert a[["step", "member", "name"]].equals(b[["step", "member", "name"]])
    assert (a.value == b.value).all()
    loss = a.query("name == 'train_loss'").groupby("step").value.mean()
    assert loss.iloc[-1] < loss.iloc[0]  # it trains
