"""model.committee: a member that is a deep ensemble of K toy models (groklab.models.mlp.ToyModel)."""

import math

import pytest
import torch

import groklab
from groklab.config import ConfigError
from groklab.measures import model_problem
from groklab.models import build_model
from groklab.resolve import resolve
from groklab.tasks import make_task
from groklab.training.losses import committee_rows, loss_per_member

SMALL = ["task.p=13", "task.fraction=0.5", "model.kind=toy", "model.d_embed=4", "model.hidden=[16]",
         "train.stop_val_acc=none", "train.checkpoint_every=10"]


def _model(K, seeds="[0,1]"):
    cfg = resolve(None, overrides=SMALL + [f"model.committee={K}", f"train.seeds={seeds}"])
    task = make_task(cfg.task)
    return cfg, task, build_model(cfg, task)


def _copy_as_toy(model, e, k):
    """Member e's copy k as a lone toy model (a K = 1 model with that copy's weights)."""
    _, _, one = _model(1, "[0]")
    one.load_state_dict({n: p[e:e + 1, k] for n, p in model.state_dict().items()})
    return one


def test_copies_are_toy_models_and_the_output_is_their_mean_probability():
    _, task, m = _model(3)
    assert m.W_E.shape == (2, 3, 13, 4) and m.dec_0_W.shape == (2, 3, 4, 16)
    x = task.inputs
    z = m(x, copies=True)  # (E, K, N, C)
    assert z.shape == (2, 3, len(x), 13)
    for e in range(2):
        for k in range(3):
            torch.testing.assert_close(_copy_as_toy(m, e, k)(x)[0], z[e, k])
    assert not torch.allclose(z[0, 0], z[0, 1])  # each copy drawn on its own
    out = m(x)
    torch.testing.assert_close(out.exp(), z.softmax(-1).mean(1))
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, len(x)))


@pytest.mark.parametrize("per_member_rows", [False, True])
def test_each_copy_gets_the_gradient_it_would_get_alone(per_member_rows):
    _, task, m = _model(3)
    idx = task.train_idx[:20]
    x, y = task.inputs[idx], task.targets[idx]
    if per_member_rows:  # minibatches: (E, B, T), member 1 on other rows
        idx2 = task.train_idx[20:40]
        x, y = torch.stack([x, task.inputs[idx2]]), torch.stack([y, task.targets[idx2]])
    rows, tg = committee_rows(m(x, copies=True), y)
    (loss_per_member(rows, tg, "cross_entropy") * 3).sum().backward()
    for e in range(2):
        xe, ye = (x[e], y[e]) if per_member_rows else (x, y)
        for k in range(3):
            one = _copy_as_toy(m, e, k)
            loss_per_member(one(xe), ye, "cross_entropy").sum().backward()
            for n, p in one.named_parameters():
                torch.testing.assert_close(getattr(m, n).grad[e, k], p.grad[0], msg=f"{n} e={e} k={k}")


def test_a_committee_trains_each_copy_as_adamw_alone(tmp_path):
    """20 full-batch steps of a K = 2 committee against torch.optim.AdamW on each copy alone."""
    sets = SMALL + ["model.committee=2", "train.seeds=[5]", "train.steps=20", "optim.lr=1e-2",
                    "optim.weight_decay=0.5", "optim.beta2=0.98"]
    run = groklab.train(resolve(None, overrides=sets), tmp_path / "c", progress=False)
    start, end = run.model(step=0), run.model()
    task = run.task
    x, y = task.inputs[task.train_idx], task.targets[task.train_idx]
    for k in range(2):
        one = _copy_as_toy(start, 0, k).train()
        opt = torch.optim.AdamW(one.parameters(), lr=1e-2, weight_decay=0.5, betas=(0.9, 0.98), eps=1e-8)
        for _ in range(20):
            opt.zero_grad()
            loss_per_member(one(x), y, "cross_entropy").sum().backward()
            opt.step()
        for n, p in one.named_parameters():
            torch.testing.assert_close(getattr(end, n)[0, k], p[0].detach(), atol=1e-5, rtol=1e-4, msg=n)


def test_a_committee_resumes_bit_for_bit(tmp_path):
    sets = SMALL + ["model.committee=2", "train.seeds=[0,1]", "train.batch_size=16", "train.steps=40"]
    whole = groklab.train(resolve(None, overrides=sets), tmp_path / "whole", progress=False)
    half = resolve(None, overrides=sets + ["train.steps=20"])
    groklab.train(half, tmp_path / "half", progress=False)
    resumed = groklab.resume(tmp_path / "half", progress=False, overrides=["train.steps=40"])
    for n, p in whole.model().state_dict().items():
        assert torch.equal(p, resumed.model().state_dict()[n]), n
    a, b = whole.metrics, resumed.metrics
    keep = lambda d: d[d.name != "time_s"].sort_values(["step", "member", "name"]).reset_index(drop=True)  # noqa: E731
    assert keep(a).equals(keep(b))


@pytest.mark.parametrize("sets, why", [
    (["model.kind=transformer"], "toy model"),
    (["optim.name=muon"], "muon"),
    (["train.loss=mse"], "cross_entropy"),
])
def test_a_committee_refuses_what_it_cannot_be(sets, why):
    with pytest.raises(ConfigError) as err:
        resolve(None, overrides=SMALL + ["model.committee=4"] + sets)
    assert err.value.key == "model.committee" and why in str(err.value)


def test_committee_must_be_positive():
    with pytest.raises(ConfigError) as err:
        resolve(None, overrides=SMALL + ["model.committee=0"])
    assert err.value.key == "model.committee"


def test_weight_reading_measures_do_not_apply_to_a_committee():
    _, task, m = _model(2)
    for name in ("rqi", "fourier", "fourier_neurons", "restricted_loss"):
        assert model_problem([name], m, task), name
    _, task1, m1 = _model(1)
    assert model_problem(["rqi", "fourier_neurons"], m1, task1) is None
    assert model_problem(["weight_norm", "softmax_collapse"], m, task) is None
    assert math.isfinite(float(groklab.measures.compute(["softmax_collapse"], m, task)["softmax_collapse"][0]))
