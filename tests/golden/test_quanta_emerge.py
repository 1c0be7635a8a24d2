"""Golden run of the quantization model (Michaud et al. 2023) on this CPU: on multitask
sparse parity the subtasks are learned one at a time, abruptly, in order of frequency; the
trained model's mean loss is far below the untrained 1 bit."""

import pytest

import groklab
from groklab.quanta import emergence, subtask_curves


@pytest.mark.golden
def test_subtasks_emerge_in_frequency_order(tmp_path):
    cfg = groklab.resolve("michaud2023_parity_laptop", overrides=["train.steps=4000", "task.test_per_task=200"])
    run = groklab.train(cfg, tmp_path / "parity", progress=False)
    res = emergence(subtask_curves(run.metrics))
    assert res["n_learned"] >= 5
    assert res["spearman_rho"] >= 0.8
    t = res["table"]
    assert t["initial_bits"].between(0.9, 1.1).all()  # chance: 1 bit
    assert t["emergence_step"].iloc[0] < t["emergence_step"].iloc[4]
    assert run.wide(0)["val_loss_bits"].iloc[-1] < 0.5
