"""Acceleration methods: each defining update on hand-computed numbers, per-member knobs,
state round trips, config errors, and a tiny end-to-end step through the driver."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

import groklab
from groklab.config import ConfigError, OptimConfig
from groklab.models.common import ParamSpec
from groklab.training.methods import (DecayToInit, GrokfastEMA, GrokfastMA, LossFn, MethodSet, NormConstraint,
                                      PerpGrad, build_methods, stablemax_s)
from groklab.training import methods as M
from groklab.training.optim import EnsembleOptimizer

F64 = torch.float64
SHAPES = {"W_E": (3, 2), "W": (2, 2), "b": (2,)}  # P = 6 + 4 + 2 = 12
SPECS = {"W_E": ParamSpec((3, 2), group="embed"), "W": ParamSpec((2, 2)), "b": ParamSpec((2,), init="zeros")}


def make_opt(E: int, seed: int = 0, lr=0.1, wd=0.0, name="sgd", rows=None):
    """A real EnsembleOptimizer over tiny float64 params; ``rows`` picks seeds per member so
    that member e of an ensemble equals a lone run with seed rows[e]."""
    rows = rows or [seed + e for e in range(E)]
    params = {}
    for n, s in SHAPES.items():
        vals = [torch.randn(s, generator=torch.Generator().manual_seed(1000 * r + len(params)), dtype=F64)
                for r in rows]
        params[n] = torch.nn.Parameter(torch.stack(vals))
    lr_t = torch.tensor(lr if isinstance(lr, list) else [lr] * E, dtype=F64)
    wd_t = torch.tensor(wd if isinstance(wd, list) else [wd] * E, dtype=F64)
    cfg = OptimConfig(name=name, momentum=0.0)
    return EnsembleOptimizer(params, {"W_E": "embed"}, cfg, lr_t, wd_t)


def grads(E: int, steps: int, rows=None, seed: int = 7) -> list[torch.Tensor]:
    rows = rows or list(range(E))
    return [torch.stack([torch.randn(12, generator=torch.Generator().manual_seed(seed + 100 * r + t), dtype=F64)
                         for r in rows]) for t in range(steps)]


def run(opt, methods: MethodSet, gs, active=None, lr_scale=1.0):
    active = torch.ones(opt.E, dtype=torch.bool) if active is None else active
    for g in gs:
        opt.step(active, lr_scale, grad=methods.filter_grad(g, opt.flat))
        methods.after_step(opt, active, lr_scale)


def exact(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# --------------------------------------------------------------------------- Grokfast


def test_grokfast_ema_two_gradients_by_hand():
    opt = make_opt(1)
    f = GrokfastEMA(opt, alpha=0.5, lamb=2.0)
    g1 = torch.zeros(1, 12, dtype=F64); g1[0, :2] = torch.tensor([1.0, 2.0])
    g2 = torch.zeros(1, 12, dtype=F64); g2[0, :2] = torch.tensor([3.0, 0.0])
    out1 = f(g1, opt.flat)  # ema starts at g1: mu = g1; g1 + 2 g1
    exact(out1[0, :2], torch.tensor([3.0, 6.0], dtype=F64))
    out2 = f(g2, opt.flat)  # mu = 0.5 [1,2] + 0.5 [3,0] = [2,1]; [3,0] + 2 [2,1]
    exact(out2[0, :2], torch.tensor([7.0, 2.0], dtype=F64))
    exact(f.mu[0, :2], torch.tensor([2.0, 1.0], dtype=F64))


def test_grokfast_ma_window_by_hand():
    def seq(**kw):
        opt = make_opt(1)
        f = GrokfastMA(opt, window=2, lamb=1.0, **kw)
        return [float(f(torch.full((1, 12), x, dtype=F64), opt.flat)[0, 0]) for x in (1.0, 3.0, 5.0)]

    assert seq() == [1.0, 3.0 + 2.0, 5.0 + 4.0]  # warm-up: unfiltered until the window is full
    assert seq(warmup=False) == [1.0 + 1.0, 3.0 + 2.0, 5.0 + 4.0]  # mean over what is there
    assert seq(filter="sum") == [1.0, 3.0 + 4.0, 5.0 + 8.0]


@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_grokfast_per_member_knobs_equal_lone_runs(kind):
    knobs = ({"alpha": [0.9, 0.5], "lamb": [2.0, 0.5]} if kind == "ema"
             else {"window": [2, 3], "lamb": [5.0, 1.0], "warmup": True})
    opt2 = make_opt(2, rows=[0, 1])
    ms2 = build_methods({"grokfast": {"kind": kind, **knobs}}, opt2)
    run(opt2, ms2, grads(2, 5, rows=[0, 1]))
    for e in range(2):
        opt1 = make_opt(1, rows=[e])
        one = {k: (v[e] if isinstance(v, list) else v) for k, v in knobs.items()}
        run(opt1, build_methods({"grokfast": {"kind": kind, **one}}, opt1), grads(1, 5, rows=[e]))
        exact(opt2.flat[e], opt1.flat[0])


# --------------------------------------------------------------------------- StableMax


def test_stablemax_by_hand():
    x = torch.tensor([0.0, 1.0, -1.0], dtype=F64)
    exact(stablemax_s(x), torch.tensor([1.0, 2.0, 0.5], dtype=F64))  # sum 3.5 -> [2/7, 4/7, 1/7]
    logits = x.view(1, 1, 3).expand(1, 2, 3)
    loss = LossFn(kind="stablemax", float64=True)(logits, torch.tensor([1, 2]))
    torch.testing.assert_close(loss, torch.tensor([(math.log(7 / 4) + math.log(7)) / 2], dtype=F64))
    # float32 logits: computed in float64, returned in float32, finite gradient at x = 1
    x32 = torch.tensor([[[1.0, 0.0, -3.0], [1.0, 1.0, 1.0]]], requires_grad=True)
    out = LossFn(kind="stablemax", float64=True)(x32, torch.tensor([0, 2]))
    assert out.dtype == torch.float32 and out.shape == (1,)
    out.sum().backward()
    assert torch.isfinite(x32.grad).all()


def test_float64_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits, t = torch.randn(2, 5, 4, generator=g), torch.randint(0, 4, (5,), generator=g)
    got = LossFn(kind="cross_entropy", float64=True)(logits, t)
    want = torch.stack([torch.nn.functional.cross_entropy(logits[e].double(), t) for e in range(2)])
    torch.testing.assert_close(got, want.float())


# --------------------------------------------------------------------------- ⊥Grad


def test_perp_grad_by_hand_and_orthogonal():
    opt = make_opt(2)
    w = torch.zeros(2, 12, dtype=F64)
    w[0, :4] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    w[1, :4] = torch.tensor([0.0, 2.0, 0.0, 0.0])
    g = torch.zeros(2, 12, dtype=F64)
    g[0, :4] = torch.tensor([2.0, 0.0, 1.0, 0.0])  # <g,w>/<w,w> = 2/2 = 1 -> g - w
    g[1, :4] = torch.tensor([1.0, 3.0, 0.0, 5.0])  # 6/4 = 1.5 -> [1, 0, 0, 5]
    out = PerpGrad(opt)(g, w)
    exact(out[0, :4], torch.tensor([1.0, -1.0, 1.0, 0.0], dtype=F64))
    exact(out[1, :4], torch.tensor([1.0, 0.0, 0.0, 5.0], dtype=F64))
    # random case: orthogonal to w and equal to the formula, member by member
    gr, wr = grads(2, 1)[0], opt.flat
    out = PerpGrad(opt)(gr, wr)
    assert (out * wr).sum(1).abs().max() < 1e-12
    for e in range(2):
        want = gr[e] - (gr[e] @ wr[e]) / (wr[e] @ wr[e]) * wr[e]
        torch.testing.assert_close(out[e], want, rtol=1e-14, atol=1e-14)


def test_perp_grad_per_tensor_renorm():
    opt = make_opt(2)
    g, w = grads(2, 1)[0], opt.flat.clone()
    out = PerpGrad(opt, per_tensor=True, renorm=True)(g, w)
    for a, b in ((0, 6), (6, 10), (10, 12)):
        assert (out[:, a:b] * w[:, a:b]).sum(1).abs().max() < 1e-12
        torch.testing.assert_close(out[:, a:b].norm(dim=1), g[:, a:b].norm(dim=1))


# --------------------------------------------------------------------------- post-step


def test_norm_constraint_restores_norm_and_spares_inactive():
    opt = make_opt(2)
    n0 = opt.flat.norm(dim=1)
    ms = build_methods({"norm_constraint": {"factor": [1.0, 2.0]}}, opt)
    run(opt, ms, grads(2, 1))  # first call: member 1 jumps to twice its initial norm
    torch.testing.assert_close(opt.flat.norm(dim=1), n0 * torch.tensor([1.0, 2.0], dtype=F64), rtol=1e-14, atol=0)
    frozen = opt.flat[1].clone()
    run(opt, ms, grads(2, 2, seed=50), active=torch.tensor([True, False]))
    torch.testing.assert_close(opt.flat[0].norm(), n0[0], rtol=1e-14, atol=0)
    exact(opt.flat[1], frozen)  # inactive: untouched


def test_norm_constraint_target_and_include_weights():
    opt = make_opt(1)
    opt.flat[:, 10:] = 0.5  # the bias "b"
    ms = build_methods({"norm_constraint": {"target": 3.0, "include": "weights"}}, opt, specs=SPECS)
    run(opt, ms, grads(1, 1))
    torch.testing.assert_close(opt.flat[0, :10].norm(), torch.tensor(3.0, dtype=F64), rtol=1e-14, atol=0)
    b_before = opt.flat[0, 10:].clone()
    ms.after_step(opt, torch.ones(1, dtype=torch.bool))
    exact(opt.flat[0, 10:], b_before)  # biases are not rescaled


def test_decay_to_init_by_hand():
    opt = make_opt(2, lr=[0.1, 0.2])
    w0 = opt.flat.clone()
    d = DecayToInit(opt, wd=[0.5, 1.0])
    opt.flat.add_(1.0)  # w - w0 = 1 everywhere
    w = opt.flat.clone()
    d(opt, torch.tensor([True, True]), lr_scale=0.5)
    # lr * lr_scale * wd: 0.1*0.5*0.5 = 0.025 ; 0.2*0.5*1.0 = 0.1
    torch.testing.assert_close(opt.flat - w, torch.tensor([[-0.025], [-0.1]], dtype=F64).expand(2, 12))
    exact(d.w0, w0)


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("cfg", [
    {"grokfast": {"kind": "ema", "alpha": [0.9, 0.7]}, "perp_grad": True,
     "decay_to_init": {"wd": [0.5, 1.0]}, "norm_constraint": {"factor": 1.5}},
    {"grokfast": {"kind": "ma", "window": [2, 3], "lamb": 2.0}, "perp_grad": {"per_tensor": True, "renorm": True}},
])
def test_state_round_trip_continues_identically(cfg):
    gs = grads(2, 6)
    ref_opt = make_opt(2, name="adamw", wd=0.1)
    ref = build_methods(cfg, ref_opt)
    run(ref_opt, ref, gs)

    opt = make_opt(2, name="adamw", wd=0.1)
    ms = build_methods(cfg, opt)
    run(opt, ms, gs[:3])
    saved = {k: v.clone() for k, v in {**ms.state_tensors(), **opt.state_tensors()}.items()}
    weights, t = opt.flat.clone(), opt.t

    opt2 = make_opt(2, name="adamw", wd=0.1, seed=99)  # different weights: all comes from the checkpoint
    opt2.flat.copy_(weights)
    ms2 = build_methods(cfg, opt2)  # captures the wrong "initial" weights until loaded
    opt2.load_state_tensors({k: v for k, v in saved.items() if k.startswith("optim.")}, t)
    ms2.load_state_tensors(saved)
    run(opt2, ms2, gs[3:])
    exact(opt2.flat, ref_opt.flat)


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize("cfg,key,value", [
    ({"grokfast": {"kind": "ema", "alpha": 1.5}}, "method.grokfast.alpha", 1.5),
    ({"grokfast": {"kind": "ema", "alpha": [0.9, 0.8, 0.7]}}, "method.grokfast.alpha", [0.9, 0.8, 0.7]),
    ({"grokfast": {"kind": "ema", "lamb": -1.0}}, "method.grokfast.lamb", -1.0),
    ({"grokfast": {"kind": "median"}}, "method.grokfast.kind", "median"),
    ({"grokfast": {"kind": "ma", "window": 0}}, "method.grokfast.window", 0),
    ({"grokfast": {"kind": "ma", "alpha": 0.9}}, "method.grokfast.alpha", 0.9),
    ({"grokfast": {"kind": "ema", "beta": 1}}, "method.grokfast.beta", 1),
    ({"norm_constraint": {"factor": 0.0}}, "method.norm_constraint.factor", 0.0),
    ({"norm_constraint": {"include": "some"}}, "method.norm_constraint.include", "some"),
    ({"decay_to_init": {"wd": float("nan")}}, "method.decay_to_init.wd", None),
    ({"loss": {"kind": "softmax"}}, "method.loss.kind", "softmax"),
    ({"perp_grad": {"renorm": "yes"}}, "method.perp_grad.renorm", "yes"),
    ({"lookahead": True}, "method.lookahead", True),
])
def test_bad_knobs_raise_config_error(cfg, key, value):
    with pytest.raises(ConfigError) as err:
        build_methods(cfg, make_opt(2))
    assert err.value.key == key
    if value is not None:
        assert err.value.value == value
        assert repr(value) in str(err.value)


# --------------------------------------------------------------------------- end to end


def _run(tmp_path, name, sets):
    import groklab

    cfg = groklab.resolve("demo", overrides=["task.p=11", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32",
                                             "train.steps=6", "train.stop_val_acc=none", "train.seeds=[0,1]"] + sets)
    run = groklab.train(cfg, tmp_path / name, progress=False)
    return run.model().state_dict(), run


def test_end_to_end_through_the_loop(tmp_path):
    """The real loop: an empty method table changes nothing; Grokfast changes the trajectory;
    every method together trains without error."""
    base, _ = _run(tmp_path, "base", [])
    again, _ = _run(tmp_path, "again", [])
    for k in base:
        exact(base[k], again[k])
    ema, run = _run(tmp_path, "ema", ["method.grokfast.kind=ema", "method.grokfast.alpha=0.98",
                                      "method.grokfast.lamb=2.0"])
    assert run.config.method == {"grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}}
    assert any(not torch.equal(ema[k], base[k]) for k in base)
    every, run = _run(tmp_path, "every", ["method.grokfast.kind=ma", "method.grokfast.window=2",
                                          "method.perp_grad=true", "method.loss.kind=stablemax",
                                          "method.norm_constraint.include=body", "method.decay_to_init.wd=0.5"])
    assert all(torch.isfinite(v).all() for v in every.values())
    assert run.summary["status"] == "completed"


def test_autocast_bfloat16_trains_in_low_precision_and_evaluates_in_float32(tmp_path):
    """train.autocast: the step's matrix products run in bfloat16 (the trajectory differs
    from float32), the weights stay float32, and evaluation is float32 (step 0, before any
    update, logs the same numbers as the float32 run)."""
    base, run32 = _run(tmp_path, "fp32", [])
    bf, run16 = _run(tmp_path, "bf16", ["train.autocast=bfloat16"])
    assert all(v.dtype == torch.float32 for v in bf.values())
    assert any(not torch.equal(bf[k], base[k]) for k in base)
    assert all((bf[k] - base[k]).abs().max() < 0.05 for k in base)  # close, but not equal
    m32, m16 = run32.metrics, run16.metrics
    first = lambda m: m[(m.step == 0) & (m.name != "time_s")].sort_values(["member", "name"]).value.tolist()  # noqa: E731
    assert first(m32) == first(m16)


# --------------------------------------------------------------------------- the registry


def test_a_new_method_is_one_class_and_one_registration():
    @dataclass
    class Knobs:
        scale: M.PerMember = 0.5
        on: bool = True

        def check(self, key, E):
            M._pm(f"{key}.scale", self.scale, E, 0.0, lo_open=True)

    class Shrink(M.Method):
        name, point, Config = "shrink_test", "post_step", Knobs

        def __init__(self, opt, **knobs):
            self.scale = M.per_member(self.knobs(knobs).scale, opt.E, opt.flat)

        def __call__(self, opt, active, lr_scale=1.0):
            opt.flat.mul_(torch.where(active.view(-1, 1), self.scale, 1.0))

    M.register(Shrink)
    try:
        assert M.validate_methods({"shrink_test": True}, 2) == {"shrink_test": {"scale": 0.5, "on": True}}
        with pytest.raises(ConfigError) as err:
            M.validate_methods({"shrink_test": {"scale": 0.0}}, 2)
        assert err.value.key == "method.shrink_test.scale"
        with pytest.raises(ConfigError) as err:
            M.validate_methods({"shrink_test": {"on": "yes"}}, 2)
        assert err.value.key == "method.shrink_test.on"
        opt = make_opt(2)
        w = opt.flat.clone()
        ms = build_methods({"shrink_test": {"scale": [0.5, 0.25]}}, opt)
        ms.after_step(opt, torch.tensor([True, True]))
        exact(opt.flat, w * torch.tensor([[0.5], [0.25]], dtype=F64))
    finally:
        del M.REGISTRY["shrink_test"]


def test_config_json_records_every_knob_filled_in(tmp_path):
    run = groklab.train(groklab.resolve("demo", overrides=[
        "task.p=7", "model.d_model=8", "model.n_heads=2", "model.d_mlp=8", "train.steps=2",
        "method.perp_grad=true", "method.grokfast.kind=ma"]), tmp_path / "r", progress=False)
    import json

    saved = json.loads((tmp_path / "r" / "config.json").read_text())["method"]
    assert saved == {"perp_grad": {"per_tensor": False, "renorm": False},
                     "grokfast": {"kind": "ma", "window": 100, "lamb": 5.0, "warmup": True, "filter": "mean"}}
    assert run.config.method == saved


# --------------------------------------------------------------------------- EGD


def test_egd_polar_factor_by_hand():
    # G = R diag(3, 0.5) with R a rotation by 90 degrees: U = R, V = I, so U Vᵀ = R
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)
    G = (R @ torch.diag(torch.tensor([3.0, 0.5], dtype=F64)))[None]
    exact_ish = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    exact_ish(M.EGD.polar(G, 1e-6)[0], R)
    # a singular value below eps is scaled by s / eps, not to 1 (the reference's clamp)
    G2 = torch.diag(torch.tensor([2.0, 1e-8], dtype=F64))[None]
    exact_ish(M.EGD.polar(G2, 1e-6)[0], torch.diag(torch.tensor([1.0, 1e-2], dtype=F64)))
    # wide and tall matrices agree with the SVD formula U diag(s/max(s, eps)) Vᵀ
    for shape in ((3, 5), (5, 3)):
        A = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1), dtype=F64)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        torch.testing.assert_close(M.EGD.polar(A, 1e-6), U @ Vh, rtol=0, atol=1e-10)


def test_egd_acts_on_its_matrix_only_and_switches_off_per_member():
    opt = make_opt(2)
    egd = M.EGD(opt, params=["W"], until_val_acc=0.95)
    g = grads(2, 1)[0]
    out = egd(g, opt.flat)
    # W_E and b untouched
    exact(out[:, :6], g[:, :6])
    exact(out[:, 10:], g[:, 10:])
    for e in range(2):
        torch.testing.assert_close(out[e, 6:10].view(2, 2), M.EGD.polar(g[e, 6:10].view(1, 2, 2), 1e-6)[0])
    # member 1's latest evaluation is above 0.95: it gets the plain gradient; member 0 is not
    egd.observe({"val_acc": [0.95, 0.96]})
    out = egd(g, opt.flat)
    exact(out[1], g[1])
    torch.testing.assert_close(out[0, 6:10].view(2, 2), M.EGD.polar(g[0, 6:10].view(1, 2, 2), 1e-6)[0])
    # ... and back on when it falls again (the reference re-reads its test accuracy every epoch)
    egd.observe({"val_acc": [0.2, 0.5]})
    assert egd.on.tolist() == [True, True]
    # state round trip
    egd.observe({"val_acc": [0.99, 0.1]})
    other = M.EGD(opt, params=["W"])
    other.load_state_tensors(egd.state_tensors())
    assert other.on.tolist() == [False, True]


@pytest.mark.parametrize("knobs,key", [
    ({"params": ["nope"]}, "method.egd.params"),
    ({"params": ["b"]}, "method.egd.params"),
    ({"eps": 0.0}, "method.egd.eps"),
    ({"until_val_acc": 1.5}, "method.egd.until_val_acc"),
])
def test_egd_bad_knobs(knobs, key):
    with pytest.raises(ConfigError) as e:
        M.EGD(make_opt(1), **knobs)
    assert e.value.key == key


def test_egd_takes_the_l2_term_into_what_it_preconditions():
    # the reference's L2 lives in its loss: G = grad + wd * W, then the polar factor; the
    # optimizer must then not decay those coordinates again
    opt = make_opt(1, wd=0.1, name="sgd")
    W = opt.flat[:, 6:10].clone()
    egd = M.EGD(opt, params=["W"])
    assert bool((opt.wd[:, 6:10] == 0).all()) and bool((opt.wd[:, :6] == 0.1).all())
    g = grads(1, 1)[0]
    out = egd(g, opt.flat)
    want = M.EGD.polar((g[:, 6:10] + 0.1 * W).view(1, 2, 2), 1e-6).reshape(1, 4)
    torch.testing.assert_close(out[:, 6:10], want)
    egd.observe({"val_acc": [1.0]})  # switched off: plain gradient with its L2 term
    torch.testing.assert_close(egd(g, opt.flat)[:, 6:10], g[:, 6:10] + 0.1 * W)
    exact(egd(g, opt.flat)[:, :6], g[:, :6])
