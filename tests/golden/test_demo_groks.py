"""Golden run: the demo preset really groks on this CPU."""

import pytest

import groklab


@pytest.mark.golden
def test_demo_groks(tmp_path):
    run = groklab.train(groklab.resolve("demo"), tmp_path / "demo", progress=False)
    m = run.summary["members"][0]
    assert run.summary["status"] == "stopped"  # early stop: val acc held >= 0.99
    assert m["val_acc"] >= 0.99 and m["train_acc"] >= 0.99
    assert m["step_train_99"] is not None and m["step_val_99"] is not None
    assert m["step_val_99"] >= 5 * m["step_train_99"]  # memorise first, generalise much later
    assert m["phase"] == "grokking"
