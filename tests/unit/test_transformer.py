"""Models: the fast transformer path equals the reference (logits and gradients), ensemble
initialisation matches single runs, init_scale, and the MLP-family models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from groklab.config import RunConfig, AlgorithmicConfig, apply_overrides
from groklab.models import MLPModel, ToyModel, Transformer, build_model
from groklab.tasks import make_task
from groklab.resolve import check


def make(*overrides: str, p: int = 11):
    cfg = RunConfig()
    apply_overrides(cfg, [f"task.p={p}", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32",
                          "model.d_embed=8", "model.hidden=[16]", *overrides])
    check(cfg)
    task = make_task(cfg.task)
    return cfg, task, build_model(cfg, task)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def logits_and_grads(model: Transformer, forward, tokens, targets, weights):
    model.zero_grad(set_to_none=True)
    logits = forward(tokens)
    E, N, C = logits.shape
    loss = F.cross_entropy(logits.reshape(E * N, C), targets.expand(E, N).reshape(-1)) + (logits * weights).sum()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach().clone(), grads


ARCHS = {
    "1L-noLN-ab": ["model.n_layers=1"],
    "2L-LN-aopb": ["model.n_layers=2", "model.layer_norm=true", "task.layout=aopb="],
    "2L-noLN-ab": ["model.n_layers=2"],
    "1L-LN-aopb": ["model.n_layers=1", "model.layer_norm=true", "task.layout=aopb="],
    "1L-noLN-aopb": ["model.n_layers=1", "task.layout=aopb="],
    "3L-noLN-ab": ["model.n_layers=3"],
    "3L-LN-aopb": ["model.n_layers=3", "model.layer_norm=true", "task.layout=aopb="],
    "2L-gelu": ["model.n_layers=2", "model.act=gelu"],
    "1L-gelu-LN": ["model.n_layers=1", "model.act=gelu", "model.layer_norm=true"],
}


def batch(task, E: int, per_member: bool, n: int = 40):
    g = torch.Generator().manual_seed(1234)
    if not per_member:
        return task.tokens, task.c
    idx = torch.stack([torch.randperm(len(task.tokens), generator=g)[:n] for _ in range(E)])  # (E, n)
    return task.tokens[idx], task.c[idx]


def compare_fast_reference(overrides, E, per_member, dtype):
    seeds = "[" + ",".join(str(10 + e) for e in range(E)) + "]"
    cfg, task, model = make(*overrides, f"train.seeds={seeds}", f"model.dtype={dtype}")
    assert model.impl == "fast"
    tokens, targets = batch(task, E, per_member)
    N = tokens.shape[-2]
    w = torch.randn(E, N, task.n_classes, generator=torch.Generator().manual_seed(7),
                    dtype=torch.float64).to(getattr(torch, dtype))
    lf, gf = logits_and_grads(model, model.forward_fast, tokens, targets, w)
    lr, gr = logits_and_grads(model, model.forward_reference, tokens, targets, w)
    assert lf.shape == lr.shape == (E, N, task.n_classes)
    assert lf.dtype == getattr(torch, dtype)
    return lf, lr, gf, gr


@pytest.mark.parametrize("per_member", [False, True], ids=["shared-tokens", "per-member-tokens"])
@pytest.mark.parametrize("E", [1, 3])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_fast_equals_reference_float64(arch, E, per_member):
    lf, lr, gf, gr = compare_fast_reference(ARCHS[arch], E, per_member, "float64")
    assert rel(lf, lr) < 1e-10
    assert set(gf) == set(gr)
    for name in gr:
        assert gr[name].norm() > 0, name  # the loss reaches every parameter
        assert rel(gf[name], gr[name]) < 1e-10, name


@pytest.mark.parametrize("per_member", [False, True], ids=["shared-tokens", "per-member-tokens"])
@pytest.mark.parametrize("arch", ["1L-noLN-ab", "2L-LN-aopb", "3L-LN-aopb"])
def test_fast_equals_reference_with_the_eager_attention(arch, per_member, monkeypatch):
    """Where the Numba kernel does not apply (CUDA, autocast dtypes) the fast path's row
    attention is eager; it must give the reference's numbers too."""
    from groklab.models import row_attention

    monkeypatch.setattr(row_attention, "_kernel_applies", lambda *tables: False)
    lf, lr, gf, gr = compare_fast_reference(ARCHS[arch], 3, per_member, "float64")
    assert rel(lf, lr) < 1e-10
    for name in gr:
        assert rel(gf[name], gr[name]) < 1e-10, name


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_fast_equals_reference_float32(arch):
    lf, lr, gf, gr = compare_fast_reference(ARCHS[arch], 3, False, "float32")
    assert rel(lf, lr) < 1e-5
    for name in gr:
        assert rel(gf[name], gr[name]) < 1e-5, name


def test_fast_equals_reference_s5_two_layers():
    _, task, model = make("task.op=s5_mul", "model.n_layers=2", "model.dtype=float64", p=120)
    tokens = task.tokens[::37]  # a few hundred rows of the 14400
    assert torch.allclose(model.forward_fast(tokens), model.forward_reference(tokens), rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", ["1L-noLN-ab", "2L-noLN-ab", "2L-LN-aopb", "3L-LN-aopb"])
def test_fast_path_edge_batches(arch):
    """Batches where the fast path's shortcuts trigger: one row, a constant second operand
    (the shared prefix grows), a constant first operand, per-member constant columns."""
    _, task, model = make(*ARCHS[arch], "train.seeds=[0,1]", "model.dtype=float64", p=7)
    T = task.tokens
    cases = [T[:1], T[task.b == 3], T[task.a == 2], torch.stack([T[task.b == 3], T[task.b == 4]]),
             torch.stack([T[task.b == 5], T[task.b == 5]]), T[torch.tensor([4, 4, 4, 9])]]
    for tok in cases:
        assert rel(model.forward_fast(tok), model.forward_reference(tok)) < 1e-10, tok.shape


@pytest.mark.parametrize("per_member", [False, True])
def test_row_table_numbers_each_position_token_pair_once(per_member):
    """_row_table: one row per (position, token) that occurs, ordered by position then
    token; each sequence's rows point at its own pairs; counts per position."""
    from groklab.models.transformer import _prefix_len, _row_table

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 9, (2, 6, 4) if per_member else (6, 4), generator=g)
    tokens[..., 1] = 9  # a constant position, as `op` in `a op b =`
    rows, row_tok, row_pos, counts = _row_table(tokens, vocab=10)
    pairs = sorted({(s, int(t)) for s in range(4) for t in tokens[..., s].reshape(-1)})
    assert list(zip(row_pos.tolist(), row_tok.tolist())) == pairs
    assert counts == [len({int(t) for t in tokens[..., s].reshape(-1)}) for s in range(4)]
    assert counts[1] == 1 and _prefix_len(counts) == 2
    assert torch.equal(row_tok[rows], tokens)
    assert torch.equal(row_pos[rows], torch.arange(4).expand_as(tokens))


def test_fast_path_sees_in_place_token_changes():
    _, task, model = make("model.n_layers=1", "model.dtype=float64", p=7)
    tok = task.tokens.clone()
    before = model(tok)
    tok[:, 0] = (tok[:, 0] + 1) % 7  # same tensor object, new contents
    after = model(tok)
    assert not torch.allclose(before, after)
    assert rel(after, model.forward_reference(tok)) < 1e-10


def test_impl_config_selects_forward():
    _, task, fast = make("model.impl=fast", "model.dtype=float64", "model.n_layers=2")
    _, _, ref = make("model.impl=reference", "model.dtype=float64", "model.n_layers=2")
    assert fast.impl == "fast" and ref.impl == "reference"
    for a, b in zip(fast.parameters(), ref.parameters()):
        assert torch.equal(a, b)  # same seed, same weights
    assert rel(fast(task.tokens), ref(task.tokens)) < 1e-10


def test_cache_records_activations():
    _, task, model = make("model.n_layers=2", "model.dtype=float64", "train.seeds=[0,1]")
    cache = {}
    logits = model(task.tokens, cache=cache)
    N, T = task.tokens.shape
    assert cache["blocks.0.attn.hook_pattern"].shape == (2, N, 2, T, T)  # (E, N, H, T, T)
    assert cache["blocks.1.mlp.hook_post"].shape == (2, N, T, 32)
    assert torch.allclose(logits, model.forward_fast(task.tokens), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("kind", ["transformer", "toy", "mlp"])
def test_ensemble_member_equals_single_run(kind):
    _, _, ens = make(f"model.kind={kind}", "train.seeds=[3,5]")
    _, _, five = make(f"model.kind={kind}", "train.seeds=[5]")
    _, _, three = make(f"model.kind={kind}", "train.seeds=[3]")
    for (name, pe), p5, p3 in zip(ens.named_parameters(), five.parameters(), three.parameters()):
        assert pe.shape[0] == 2 and p5.shape[0] == 1
        assert torch.equal(pe[1], p5[0]), name
        assert torch.equal(pe[0], p3[0]), name
    assert not torch.equal(ens.W_E[0], ens.W_E[1])


def test_ensemble_member_equals_single_run_float64_with_layer_norm():
    ov = ["model.n_layers=2", "model.layer_norm=true", "model.dtype=float64"]
    _, _, ens = make(*ov, "train.seeds=[3,5]", "model.init_scale=[1.0,0.5]")
    _, _, five = make(*ov, "train.seeds=[5]", "model.init_scale=0.5")
    for (name, pe), p5 in zip(ens.named_parameters(), five.parameters()):
        assert pe.dtype == torch.float64
        assert torch.equal(pe[1], p5[0]), name


@pytest.mark.parametrize("kind", ["transformer", "toy", "mlp"])
def test_init_scale_multiplies_normal_weights(kind):
    ov = [f"model.kind={kind}", "model.layer_norm=true", "train.seeds=[4]"]
    _, _, one = make(*ov, "model.init_scale=1.0")
    _, _, two = make(*ov, "model.init_scale=2.0")
    _, _, three = make(*ov, "model.init_scale=3.0")
    kinds = {s.init for s in one.specs.values()}
    assert "normal" in kinds and "zeros" in kinds
    for name, spec in one.specs.items():
        p1, p2, p3 = (m.get_parameter(name) for m in (one, two, three))
        if spec.init == "normal":
            assert torch.equal(p2, 2 * p1), name  # x2 is exact in floating point
            assert torch.allclose(p3, 3 * p1, rtol=1e-6, atol=0), name
            assert p1.abs().max() > 0
        else:  # zeros / ones are not scaled
            assert torch.equal(p2, p1) and torch.equal(p3, p1), name


def test_per_member_init_scale():
    _, _, m = make("train.seeds=[7,7]", "model.init_scale=[1.0,0.5]")
    assert torch.equal(m.W_E[1], 0.5 * m.W_E[0])
    b_in = m.get_parameter("blocks.0.mlp.b_in")
    assert torch.equal(b_in[1], b_in[0])


def test_normal_init_std_is_fan_in():
    _, _, m = make("model.d_model=32", "model.d_mlp=128", "model.dtype=float64")
    w_in, w_out = m.blocks[0].mlp.W_in.detach()[0], m.blocks[0].mlp.W_out.detach()[0]  # (32, 128), (128, 32)
    assert abs(float(w_in.std()) - 1 / math.sqrt(32)) < 0.05 / math.sqrt(32)
    assert abs(float(w_out.std()) - 1 / math.sqrt(128)) < 0.05 / math.sqrt(128)
    assert torch.equal(m.blocks[0].mlp.b_in, torch.zeros_like(m.blocks[0].mlp.b_in))


def test_param_groups_embed():
    _, _, m = make()
    groups = m.param_groups()
    assert groups["embed.W_E"] == "embed"
    assert {n for n, g in groups.items() if g == "embed"} == {"embed.W_E"}
    assert set(groups) == {n for n, _ in m.named_parameters()}


# --------------------------------------------------------------------------- toy and MLP


def _decode_by_hand(model, e, h):
    for i in range(model.n_dec):
        h = h @ getattr(model, f"dec_{i}_W")[e] + getattr(model, f"dec_{i}_b")[e]
        if i < model.n_dec - 1:
            h = torch.tanh(h)
    return h


def test_toy_model_shapes_and_values():
    torch.manual_seed(0)
    m = ToyModel(2, 10, 19, d_embed=3, hidden=[8, 6], act="tanh")
    m.initialise([0, 1], [1.0, 1.0], torch.float64)
    with torch.no_grad():
        for n in ("dec_0_b", "dec_1_b", "dec_2_b"):
            getattr(m, n).normal_()
    task = make_task(AlgorithmicConfig(op="add_int", p=10))
    out = m(task.tokens)
    assert out.shape == (2, 100, 19)
    for e in range(2):
        for row in (0, 37, 99):
            a, b = int(task.a[row]), int(task.b[row])
            h = m.W_E[e, a] + m.W_E[e, b]
            assert torch.allclose(out[e, row], _decode_by_hand(m, e, h), rtol=1e-12, atol=1e-12)
    # E_a + E_b is symmetric in a and b
    swapped = task.tokens[:, [1, 0, 2]]
    assert torch.allclose(m(swapped), out, rtol=0, atol=1e-12)


def test_toy_model_reads_b_before_equals_in_aopb_layout():
    m = ToyModel(1, 7, 13, d_embed=4, hidden=[8])
    m.initialise([0], [1.0], torch.float64)
    ab = torch.tensor([[2, 5, 8], [6, 1, 8]])
    aopb = torch.tensor([[2, 7, 5, 8], [6, 7, 1, 8]])
    assert torch.equal(m(ab), m(aopb))


@pytest.mark.parametrize("embed", ["learned", "onehot"])
def test_mlp_model_shapes_and_per_member_tokens(embed):
    m = MLPModel(3, 7, 7, d_embed=4, hidden=[8], act="relu", embed=embed)
    m.initialise([0, 1, 2], [1.0, 1.0, 1.0], torch.float64)
    task = make_task(AlgorithmicConfig(op="sub", p=7))
    shared = m(task.tokens)
    assert shared.shape == (3, 49, 7)
    idx = torch.stack([torch.arange(0, 10), torch.arange(20, 30), torch.arange(39, 49)])  # (E, 10)
    pm = m(task.tokens[idx])
    assert pm.shape == (3, 10, 7)
    for e in range(3):
        assert torch.allclose(pm[e], shared[e, idx[e]], rtol=0, atol=1e-12)
    assert ("W_E" in dict(m.named_parameters())) == (embed == "learned")


def test_mlp_onehot_first_layer_by_hand():
    m = MLPModel(1, 5, 5, d_embed=4, hidden=[6], act="relu", embed="onehot")
    m.initialise([3], [1.0], torch.float64)
    with torch.no_grad():
        m.dec_0_b.normal_()
        m.dec_1_b.normal_()
    tok = torch.tensor([[1, 4, 6], [3, 0, 6]])
    out = m(tok)
    W0, b0, W1, b1 = m.dec_0_W[0], m.dec_0_b[0], m.dec_1_W[0], m.dec_1_b[0]
    assert W0.shape == (10, 6)
    for r, (a, b) in enumerate([(1, 4), (3, 0)]):
        h = torch.relu(W0[a] + W0[5 + b] + b0)
        assert torch.allclose(out[0, r], h @ W1 + b1, rtol=1e-12, atol=1e-12)


def test_mlp_learned_concatenates_embeddings():
    m = MLPModel(1, 5, 5, d_embed=3, hidden=[4], act="relu", embed="learned")
    m.initialise([1], [1.0], torch.float64)
    tok = torch.tensor([[2, 4, 6]])
    h = torch.relu(torch.cat([m.W_E[0, 2], m.W_E[0, 4]]) @ m.dec_0_W[0] + m.dec_0_b[0])
    assert torch.allclose(m(tok)[0, 0], h @ m.dec_1_W[0] + m.dec_1_b[0], rtol=1e-12, atol=1e-12)
    # not symmetric: [E_a, E_b] differs from [E_b, E_a]
    assert not torch.allclose(m(tok), m(torch.tensor([[4, 2, 6]])))


def test_build_model_kinds_and_dtype():
    _, task, toy = make("model.kind=toy", "model.dtype=float64", "train.seeds=[0,1]")
    assert isinstance(toy, ToyModel) and toy.E == 2
    assert all(p.dtype == torch.float64 for p in toy.parameters())
    assert toy(task.tokens).shape == (2, 121, 11)
    _, _, mlp = make("model.kind=mlp", "model.embed=onehot")
    assert isinstance(mlp, MLPModel) and mlp.dec_0_W.shape == (1, 22, 16)
    _, _, tf = make("model.n_layers=2")
    assert isinstance(tf, Transformer) and tf.W_E.shape == (1, 13, 16) and tf.W_U.shape == (1, 16, 11)


@pytest.mark.parametrize("extra", [[], ["model.layer_norm=false"], ["model.n_layers=1", "model.layer_norm=false"]])
def test_last_only_cache_matches_reference(extra):
    """The fast path's last-position MLP activations equal the reference cache's."""
    _, task, model = make("model.n_layers=2", "model.dtype=float64", "train.seeds=[0,1]", *extra)
    full, last = {}, {}
    ref = model(task.tokens, cache=full)
    fast = model(task.tokens, cache=last, last_only=True)
    name = f"blocks.{model.L - 1}.mlp.hook_post"
    assert last[name].shape == full[name][:, :, -1].shape
    assert rel(last[name], full[name][:, :, -1]) < 1e-10
    assert rel(fast, ref) < 1e-10


def test_nanda_init_scales_w_out_and_w_u_only():
    """model.init = "nanda": W_out ~ N(0, 1/d_model) and W_U ~ N(0, 1/n_classes), as Nanda et
    al.'s code; every other parameter is drawn exactly as with fan_in (same generator draws)."""
    ov = ("model.n_layers=1", "model.d_model=16", "model.d_mlp=64", "model.dtype=float64")
    _, task, fan = make(*ov, p=31)
    _, _, nanda = make(*ov, "model.init=nanda", p=31)
    pf, pn = dict(fan.named_parameters()), dict(nanda.named_parameters())
    d, d_mlp, C = 16, 64, task.n_classes
    for name in pf:
        if name == "blocks.0.mlp.W_out":
            ratio = math.sqrt(d_mlp / d)
        elif name == "unembed.W_U":
            ratio = math.sqrt(d / C)
        else:
            assert torch.equal(pf[name], pn[name]), name
            continue
        assert torch.allclose(pn[name], pf[name] * ratio, rtol=1e-6), name  # draws stored in float32 first
