"""EnsembleOptimizer against torch.optim, per-member hyperparameters, masks, multipliers, state."""

from __future__ import annotations

import pytest
import torch

from groklab.config import OptimConfig
from groklab.training.optim import EnsembleOptimizer
from groklab.resolve import check

SHAPES = {"W_E": (5, 3), "W": (3, 4), "b": (4,)}  # per-member shapes
GROUPS = {"W_E": "embed", "W": "body", "b": "body"}
F64 = torch.float64


def tensors(E: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn((E, *s), generator=g, dtype=F64) for n, s in SHAPES.items()}


def grad_seq(E: int, steps: int, seed: int = 100) -> list[dict[str, torch.Tensor]]:
    return [tensors(E, seed + i) for i in range(steps)]


def params_from(init: dict[str, torch.Tensor]) -> dict[str, torch.nn.Parameter]:
    return {n: torch.nn.Parameter(v.clone()) for n, v in init.items()}


def ensemble(init, cfg: OptimConfig, lr, wd):
    params = params_from(init)
    opt = EnsembleOptimizer(params, GROUPS, cfg, torch.tensor(lr, dtype=F64), torch.tensor(wd, dtype=F64))
    return params, opt


def set_grads(params, grads):
    for n, p in params.items():
        p.grad = grads[n].clone()


def run(params, opt, grads, active=None, lr_scale=1.0):
    E = opt.E
    active = torch.ones(E, dtype=torch.bool) if active is None else active
    for g in grads:
        set_grads(params, g)
        opt.step(active, lr_scale)
        opt.zero_grad()


def close(a, b, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- vs torch.optim

LR, WD = 1e-2, 0.3


def torch_reference(name, params):
    ps = list(params.values())
    if name == "adamw":
        return torch.optim.AdamW(ps, lr=LR, betas=(0.9, 0.98), eps=1e-8, weight_decay=WD)
    if name == "adam":
        return torch.optim.Adam(ps, lr=LR, betas=(0.9, 0.98), eps=1e-8, weight_decay=WD)
    return torch.optim.SGD(ps, lr=LR, momentum=0.9, weight_decay=WD)


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("wd", [0.0, WD])
def test_matches_torch_optim(name, wd):
    init, grads = tensors(1, 0), grad_seq(1, 5)
    cfg = OptimConfig(name=name, beta1=0.9, beta2=0.98, eps=1e-8, momentum=0.9)
    ours, opt = ensemble(init, cfg, [LR], [wd])
    ref = params_from(init)
    topt = torch_reference(name, ref)
    for group in topt.param_groups:
        group["weight_decay"] = wd
    for g in grads:
        set_grads(ours, g)
        set_grads(ref, g)
        opt.step(torch.tensor([True]))
        topt.step()
    for n in SHAPES:
        close(ours[n].detach(), ref[n].detach())
        assert (ours[n] - init[n]).abs().max() > 1e-3  # it really moved
    assert opt.t == 5


def test_adamw_first_step_by_hand():
    """Step 1 of AdamW: m/(1-b1) = g, sqrt(v/(1-b2)) = |g|, so p <- p(1 - lr wd) - lr g/(|g| + eps)."""
    init = {"W_E": torch.tensor([[[1.0, -2.0]]], dtype=F64), "W": torch.tensor([[[0.5]]], dtype=F64),
            "b": torch.tensor([[3.0]], dtype=F64)}
    grads = {"W_E": torch.tensor([[[0.2, -4.0]]], dtype=F64), "W": torch.tensor([[[1e-3]]], dtype=F64),
             "b": torch.tensor([[-1.0]], dtype=F64)}
    params = params_from(init)
    cfg = OptimConfig(name="adamw", beta1=0.9, beta2=0.99, eps=1e-8)
    opt = EnsembleOptimizer(params, {"W_E": "embed"}, cfg, torch.tensor([0.1], dtype=F64),
                            torch.tensor([0.5], dtype=F64))
    set_grads(params, grads)
    opt.step(torch.tensor([True]))
    for n in init:
        g = grads[n]
        expected = init[n] * (1 - 0.1 * 0.5) - 0.1 * g / (g.abs() + 1e-8)
        close(params[n].detach(), expected, rtol=1e-12, atol=1e-14)
    close(params["W_E"].detach(), torch.tensor([[[0.95 - 0.1, -1.9 + 0.1]]], dtype=F64), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- flat buffer


def test_params_become_views_of_the_flat_buffer():
    init = tensors(2, 0)
    params, opt = ensemble(init, OptimConfig(name="sgd"), [1e-2, 1e-2], [0.0, 0.0])
    P = sum(torch.Size(s).numel() for s in SHAPES.values())
    assert opt.flat.shape == (2, P)
    for n in SHAPES:
        assert torch.equal(params[n].detach(), init[n])  # values kept
    with torch.no_grad():
        opt.flat[1, 0] = 42.0
    assert float(params["W_E"].detach()[1, 0, 0]) == 42.0  # declaration order: W_E first
    with torch.no_grad():
        params["b"][0, -1] = -7.0
    assert float(opt.flat[0, -1]) == -7.0


def test_missing_grad_counts_as_zero():
    init, grads = tensors(1, 0), grad_seq(1, 1)[0]
    params, opt = ensemble(init, OptimConfig(name="sgd", momentum=0.0), [0.1], [0.0])
    params["W_E"].grad = grads["W_E"].clone()
    opt.step(torch.tensor([True]))
    close(params["W_E"].detach(), init["W_E"] - 0.1 * grads["W_E"], rtol=1e-14, atol=1e-15)
    assert torch.equal(params["W"].detach(), init["W"])
    assert torch.equal(params["b"].detach(), init["b"])


def test_explicit_grad_argument_equals_param_grads():
    init, grads = tensors(2, 0), grad_seq(2, 3)
    cfg = OptimConfig(name="adamw")
    p1, o1 = ensemble(init, cfg, [1e-2, 2e-2], [0.1, 0.2])
    p2, o2 = ensemble(init, cfg, [1e-2, 2e-2], [0.1, 0.2])
    for g in grads:
        set_grads(p1, g)
        o1.step(torch.tensor([True, True]))
        flat = torch.cat([g[n].reshape(2, -1) for n in SHAPES], dim=1)
        o2.step(torch.tensor([True, True]), grad=flat)
    assert torch.equal(o1.flat, o2.flat)


# --------------------------------------------------------------------------- per member


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_per_member_lr_and_wd_equal_separate_optimizers(name):
    init, grads = tensors(2, 0), grad_seq(2, 5)
    cfg = OptimConfig(name=name)
    lrs, wds = [1e-3, 1e-2], [0.1, 0.5]
    ens, opt = ensemble(init, cfg, lrs, wds)
    run(ens, opt, grads)
    for e in range(2):
        solo_init = {n: v[e : e + 1] for n, v in init.items()}
        solo_grads = [{n: v[e : e + 1] for n, v in g.items()} for g in grads]
        solo, sopt = ensemble(solo_init, cfg, [lrs[e]], [wds[e]])
        run(solo, sopt, solo_grads)
        for n in SHAPES:
            close(ens[n][e : e + 1].detach(), solo[n].detach(), rtol=1e-12, atol=1e-14)
    # the two members really were updated differently
    d0 = (ens["W"][0] - init["W"][0]).abs().max()
    d1 = (ens["W"][1] - init["W"][1]).abs().max()
    assert d1 > 3 * d0


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("explicit_grad", [False, True])
def test_members_with_shared_hyperparameters_equal_their_solo_runs_bit_for_bit(name, explicit_grad):
    """One lr and wd for all: a member of an ensemble must get the bits of its solo run
    (Adam(W)'s fused kernel rounds a tensor's tail differently from its vector blocks), and
    no member's update may spill into another's or into the next parameter."""
    E, steps = 3, 4
    init, grads = tensors(E, 0), grad_seq(E, steps)
    cfg = OptimConfig(name=name)

    def go(params, opt, gs):
        for g in gs:
            set_grads(params, g)
            flat = opt.flat_grad() if explicit_grad else None
            opt.step(torch.ones(opt.E, dtype=torch.bool), 0.5, grad=flat)
            opt.zero_grad()

    ens, opt = ensemble(init, cfg, [1e-2] * E, [0.3] * E)
    go(ens, opt, grads)
    for e in range(E):
        solo, sopt = ensemble({n: v[e : e + 1] for n, v in init.items()}, cfg, [1e-2], [0.3])
        go(solo, sopt, [{n: v[e : e + 1] for n, v in g.items()} for g in grads])
        for n in SHAPES:
            assert torch.equal(ens[n][e : e + 1].detach(), solo[n].detach()), (e, n)
        for k in opt.state:
            assert torch.equal(opt.state[k][e : e + 1], sopt.state[k]), (e, k)


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_inactive_member_is_left_bit_identical(name):
    init, grads = tensors(2, 0), grad_seq(2, 4)
    for g in grads:  # a diverged member: its gradient is NaN
        for v in g.values():
            v[1] = float("nan")
    cfg = OptimConfig(name=name)
    ens, opt = ensemble(init, cfg, [1e-2, 1e-2], [0.3, 0.3])
    run(ens, opt, grads, active=torch.tensor([True, False]))
    for n in SHAPES:
        assert torch.equal(ens[n][1].detach(), init[n][1]), n
        assert not torch.equal(ens[n][0].detach(), init[n][0]), n
    for v in opt.state.values():
        assert torch.isfinite(v).all()  # the NaN gradient did not reach the state
    # the active member is unaffected by its neighbour
    solo, sopt = ensemble({n: v[:1] for n, v in init.items()}, cfg, [1e-2], [0.3])
    run(solo, sopt, [{n: v[:1] for n, v in g.items()} for g in grads])
    for n in SHAPES:
        close(ens[n][:1].detach(), solo[n].detach(), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- multipliers


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_lr_scale_multiplies_lr(name):
    init, grads = tensors(1, 0), grad_seq(1, 3)
    cfg = OptimConfig(name=name)
    a, oa = ensemble(init, cfg, [2e-2], [0.3])
    run(a, oa, grads, lr_scale=0.5)
    b, ob = ensemble(init, cfg, [1e-2], [0.3])
    run(b, ob, grads)
    c, oc = ensemble(init, cfg, [2e-2], [0.3])
    run(c, oc, grads)
    for n in SHAPES:
        close(a[n].detach(), b[n].detach(), rtol=1e-13, atol=1e-15)
        assert not torch.allclose(a[n], c[n])


def test_lr_scale_zero_freezes_adamw():
    init, grads = tensors(1, 0), grad_seq(1, 2)
    p, o = ensemble(init, OptimConfig(name="adamw"), [1e-2], [0.5])
    run(p, o, grads, lr_scale=0.0)
    for n in SHAPES:
        assert torch.equal(p[n].detach(), init[n])


def test_embed_lr_mult_applies_only_to_embed_group():
    init, g = tensors(1, 0), grad_seq(1, 1)[0]
    cfg = OptimConfig(name="sgd", momentum=0.0, embed_lr_mult=10.0)
    p, o = ensemble(init, cfg, [0.1], [0.0])
    run(p, o, [g])
    close(p["W_E"].detach(), init["W_E"] - 1.0 * g["W_E"], rtol=1e-14, atol=1e-15)
    close(p["W"].detach(), init["W"] - 0.1 * g["W"], rtol=1e-14, atol=1e-15)
    close(p["b"].detach(), init["b"] - 0.1 * g["b"], rtol=1e-14, atol=1e-15)


def test_embed_wd_mult_applies_only_to_embed_group():
    init = tensors(1, 0)
    zero = {n: torch.zeros_like(v) for n, v in init.items()}  # Adam update of a zero gradient is 0
    cfg = OptimConfig(name="adamw", embed_wd_mult=3.0)
    p, o = ensemble(init, cfg, [0.1], [0.5])
    run(p, o, [zero])
    close(p["W_E"].detach(), init["W_E"] * (1 - 0.1 * 0.5 * 3.0), rtol=1e-14, atol=0)
    close(p["W"].detach(), init["W"] * (1 - 0.1 * 0.5), rtol=1e-14, atol=0)
    close(p["b"].detach(), init["b"] * (1 - 0.1 * 0.5), rtol=1e-14, atol=0)


def test_groups_from_a_real_model():
    from groklab.config import RunConfig, apply_overrides
    from groklab.models import build_model
    from groklab.tasks import make_task

    cfg = RunConfig()
    apply_overrides(cfg, ["task.p=7", "model.d_model=16", "model.n_heads=2", "model.d_mlp=16",
                          "model.dtype=float64", "optim.name=sgd", "optim.momentum=0.0",
                          "optim.embed_lr_mult=0.0"])
    check(cfg)
    model = build_model(cfg, make_task(cfg.task))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = EnsembleOptimizer(dict(model.named_parameters()), model.param_groups(), cfg.optim,
                            torch.tensor([0.1], dtype=F64), torch.tensor([0.0], dtype=F64))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step(torch.tensor([True]))
    assert torch.equal(model.W_E.detach(), before["embed.W_E"])  # embed lr x 0
    close(model.W_U.detach(), before["unembed.W_U"] - 0.1, rtol=1e-14, atol=1e-15)
    close(model.W_pos.detach(), before["pos_embed.W_pos"] - 0.1, rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_state_round_trip_reproduces_next_step(name):
    init, grads = tensors(2, 0), grad_seq(2, 4)
    cfg = OptimConfig(name=name)
    a, oa = ensemble(init, cfg, [1e-2, 3e-2], [0.1, 0.2])
    run(a, oa, grads[:3])
    saved = {k: v.clone() for k, v in oa.state_tensors().items()}
    assert set(saved) == ({"optim.m", "optim.v"} if name != "sgd" else {"optim.buf"})
    assert all(v.abs().max() > 0 for v in saved.values())
    weights = {n: p.detach().clone() for n, p in a.items()}
    t = oa.t
    run(a, oa, grads[3:])  # the step to reproduce

    b, ob = ensemble(weights, cfg, [1e-2, 3e-2], [0.1, 0.2])
    ob.load_state_tensors(saved, t)
    assert ob.t == 3
    run(b, ob, grads[3:])
    for n in SHAPES:
        assert torch.equal(a[n].detach(), b[n].detach()), n

    c, oc = ensemble(weights, cfg, [1e-2, 3e-2], [0.1, 0.2])  # without the state: different
    run(c, oc, grads[3:])
    assert not torch.allclose(a["W"], c["W"])


# --------------------------------------------------------------------------- Muon

from groklab.models.common import ParamSpec, to_layout  # noqa: E402

MUON_SPECS = {"W_E": ParamSpec((5, 3), group="embed"), "Wq": ParamSpec((2, 6, 3), layout="heads_in", group="hidden"),
              "W": ParamSpec((6, 4), group="hidden"), "b": ParamSpec((4,))}
MUON_GROUPS = {n: s.group for n, s in MUON_SPECS.items()}


def muon_tensors(E: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn((E, *s.shape), generator=g, dtype=torch.float32) for n, s in MUON_SPECS.items()}


def whole(w: torch.Tensor, spec: ParamSpec) -> torch.Tensor:
    """A per-member tensor as torch's (out, in) matrix."""
    if spec.layout == "heads_in":
        H, d, dh = spec.shape
        return w.transpose(0, 1).reshape(d, H * dh).T
    return w.T


@pytest.mark.parametrize("E,nesterov", [(1, True), (2, True), (2, False)])
def test_muon_matches_torch_muon_and_adamw(E, nesterov):
    """Hidden matrices: torch.optim.Muon on the whole (out, in) matrix (the per-head W_Q as
    the one (H*dh, d) matrix it is); every other parameter: torch.optim.AdamW at lr * 0.1."""
    cfg = OptimConfig(name="muon", lr=0.02, weight_decay=0.1, beta1=0.9, beta2=0.98, ns_dtype="bfloat16",
                      nesterov=nesterov)
    init = muon_tensors(E, 0)
    params = params_from(init)
    opt = EnsembleOptimizer(params, MUON_GROUPS, cfg, torch.full((E,), 0.02), torch.full((E,), 0.1),
                            specs=MUON_SPECS)
    grads = [muon_tensors(E, 10 + i) for i in range(3)]
    run(params, opt, grads)
    for e in range(E):
        ref = {n: torch.nn.Parameter(whole(init[n][e], s).clone() if s.group == "hidden" else init[n][e].clone())
               for n, s in MUON_SPECS.items()}
        muon = torch.optim.Muon([ref["Wq"], ref["W"]], lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=nesterov)
        adam = torch.optim.AdamW([ref["W_E"], ref["b"]], lr=0.002, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
        for g in grads:
            for n, s in MUON_SPECS.items():
                ref[n].grad = whole(g[n][e], s).clone() if s.group == "hidden" else g[n][e].clone()
            muon.step(), adam.step()
        for n, s in MUON_SPECS.items():
            got = whole(params[n].data[e], s) if s.group == "hidden" else params[n].data[e]
            torch.testing.assert_close(got, ref[n].data, rtol=1e-6, atol=1e-6)


def test_newton_schulz_is_torchs_in_bfloat16_and_close_in_float32():
    from torch.optim._muon import _zeropower_via_newtonschulz
    from groklab.training.optim import NS_COEFFICIENTS, newton_schulz
    G = torch.randn(3, 12, 5, generator=torch.Generator().manual_seed(4))  # tall: transposed inside
    for e in range(3):
        want = _zeropower_via_newtonschulz(G[e], NS_COEFFICIENTS, 5, 1e-7)
        assert torch.equal(newton_schulz(G, 5, torch.bfloat16)[e], want)
        torch.testing.assert_close(newton_schulz(G, 5, torch.float32)[e], want.float(), rtol=0, atol=3e-2)


def test_muon_first_step_by_hand():
    """A rank-one gradient u v^T has one singular value; normalised to 1, five steps of
    f(x) = 3.4445 x - 4.7750 x^3 + 2.0315 x^5 give s5, so the update is
    lr * sqrt(max(1, out/in)) * s5 * u v^T / (|u| |v|), after the decay W (1 - lr wd)."""
    x = 1.0
    for _ in range(5):
        x = 3.4445 * x - 4.7750 * x ** 3 + 2.0315 * x ** 5
    s5 = x  # about 0.70 ... 1.2: Muon does not converge to 1, by design
    lr, wd = 0.05, 0.5
    spec = {"W": ParamSpec((3, 8), group="hidden"), "b": ParamSpec((8,))}  # stored (in, out): out/in = 8/3
    w0 = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(1))
    params = {"W": torch.nn.Parameter(w0.clone()), "b": torch.nn.Parameter(torch.zeros(1, 8))}
    opt = EnsembleOptimizer(params, {"W": "hidden", "b": "body"}, OptimConfig(name="muon", lr=lr, weight_decay=wd),
                            torch.tensor([lr]), torch.tensor([wd]), specs=spec)
    u, v = torch.tensor([1.0, -2.0, 2.0]), torch.linspace(-1, 1, 8)
    params["W"].grad = torch.outer(u, v)[None].clone()
    params["b"].grad = torch.zeros(1, 8)
    opt.step(torch.tensor([True]))
    # Nesterov on the first step: U = (1 - mu) G + mu (1 - mu) G, G's direction
    expect = w0[0] * (1 - lr * wd) - lr * (8 / 3) ** 0.5 * s5 * torch.outer(u, v) / (u.norm() * v.norm())
    torch.testing.assert_close(params["W"].data[0], expect, rtol=0, atol=1e-5 * lr)  # float32 iteration


def test_muon_needs_a_hidden_matrix():
    params = {"W_E": torch.nn.Parameter(torch.zeros(1, 5, 3))}
    with pytest.raises(ValueError, match="no hidden weight matrix"):
        EnsembleOptimizer(params, {"W_E": "embed"}, OptimConfig(name="muon"), torch.tensor([0.1]),
                          torch.tensor([0.0]), specs={"W_E": ParamSpec((5, 3), group="embed")})


def test_muon_leaves_inactive_members_and_round_trips_state():
    cfg = OptimConfig(name="muon", lr=0.02, weight_decay=0.1)
    init = muon_tensors(2, 0)
    grads = [muon_tensors(2, 20 + i) for i in range(4)]
    params = params_from(init)
    opt = EnsembleOptimizer(params, MUON_GROUPS, cfg, torch.full((2,), 0.02), torch.full((2,), 0.1), specs=MUON_SPECS)
    run(params, opt, grads[:2], active=torch.tensor([True, False]))
    for n in MUON_SPECS:
        assert torch.equal(params[n].data[1], init[n][1])
    saved = {k: v.clone() for k, v in opt.state_tensors().items()}
    assert set(saved) == {"optim.m", "optim.v", "optim.buf"}
    w_mid = {n: p.data.clone() for n, p in params.items()}
    run(params, opt, grads[2:])
    params2 = params_from(w_mid)
    opt2 = EnsembleOptimizer(params2, MUON_GROUPS, cfg, torch.full((2,), 0.02), torch.full((2,), 0.1), specs=MUON_SPECS)
    opt2.load_state_tensors(saved, t=2)
    run(params2, opt2, grads[2:])
    for n in MUON_SPECS:
        assert torch.equal(params[n].data, params2[n].data)


def test_hidden_groups_of_real_models():
    """Muon's domain: the transformer's Q, K, V, O and MLP matrices; an MLP's matrices but the
    output layer's, and its first layer only on a learned (not one-hot) input."""
    from groklab.models import build_model
    from groklab.tasks import make_task
    from groklab.config import RunConfig
    tf = check(RunConfig.from_dict({"model": {"kind": "transformer", "n_layers": 2}, "task": {"p": 7}}))
    model = build_model(tf, make_task(tf.task, "cpu"), "cpu")
    hidden = sorted(n for n, g in model.param_groups().items() if g == "hidden")
    assert hidden == sorted(f"blocks.{l}.{m}" for l in range(2) for m in
                            ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.W_out"))
    for embed, first in (("learned", "hidden"), ("onehot", "body")):
        cfg = check(RunConfig.from_dict({"model": {"kind": "mlp", "embed": embed, "hidden": [8, 8], "d_embed": 4},
                                         "task": {"p": 7}}))
        groups = build_model(cfg, make_task(cfg.task, "cpu"), "cpu").param_groups()
        assert (groups["dec_0_W"], groups["dec_1_W"], groups["dec_2_W"]) == (first, "hidden", "body")
