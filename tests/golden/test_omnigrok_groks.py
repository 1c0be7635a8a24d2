"""Golden runs of Omnigrok (Liu, Michaud & Tegmark 2023) on this CPU: a large initial
norm makes MNIST memorise first and generalise late; alpha = 1 generalises at once; holding
the norm fixed removes the delay on modular addition."""

import pytest

import groklab


@pytest.mark.golden
def test_mnist_alpha8_memorises_first_and_alpha1_does_not_wait(tmp_path):
    cfg = groklab.resolve("omnigrok_mnist", overrides=["model.init_scale=[8.0,1.0]", "train.steps=3000"])
    run = groklab.train(cfg, tmp_path / "mnist", progress=False)
    a8, a1 = run.summary["members"]
    assert a8["step_train_99"] is not None and a8["step_train_99"] <= 3000
    assert a8["val_acc"] <= 0.5  # train accuracy >= 0.99 while test accuracy is still low
    assert a1["val_acc"] >= 0.85


@pytest.mark.golden
def test_constrained_norm_groks_modular_addition_within_1000_steps(tmp_path):
    # stops once val holds >= 95% (5 evaluations): the claim is met there, and the suite saves the rest
    cfg = groklab.resolve("omnigrok_modadd_constrained", overrides=["train.steps=1000", "train.stop_val_acc=0.95"])
    run = groklab.train(cfg, tmp_path / "modadd", progress=False)
    w = run.wide(0)
    # the delay is gone: val 95% within 1,000 steps (unconstrained nanda2023: ~0% val there,
    # 99% near 7,000). Not 99%: this seed peaks at 98% and then plateaus at 93-97%, as the
    # float64 run does (benchmarks/RESULTS.md), so 99% within 1,000 steps is a knife edge
    assert (w["val_acc"].dropna() >= 0.95).any()
    wn = w["weight_norm"].dropna()
    assert abs(wn.iloc[-1] / wn.iloc[0] - 1) < 1e-5  # the norm held fixed
