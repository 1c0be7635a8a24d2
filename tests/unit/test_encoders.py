"""MLP input encoders: hand-computed codes, SDR properties, buffers (not parameters),
ensemble / per-member shapes, prior-knowledge labels and config validation."""

from __future__ import annotations

import math

import pytest
import torch

from groklab.config import AlgorithmicConfig, ConfigError, RunConfig, apply_overrides
from groklab.models import build_model, uses_prior_knowledge
from groklab.models.mlp import (
    FIXED_EMBEDS,
    MLPModel,
    binarise_top,
    cyclic_code,
    cyclic_dense_code,
    cyclic_sdr_code,
    encoder_table,
    scalar_code,
    scalar_sdr_code,
    sdr_active_bits,
)
from groklab.tasks import make_task
from groklab.resolve import check

P = 97
WIDTH = {"onehot": P, "cyclic": 32, "scalar": 1, "cyclic_sdr": 400, "scalar_sdr": 400, "cyclic_sdr_sum": 400}
D_EMBED = {"onehot": 32, "cyclic": 32, "scalar": 32, "cyclic_sdr": 400, "scalar_sdr": 400, "cyclic_sdr_sum": 400}


def mlp_cfg(embed: str, *extra: str) -> RunConfig:
    cfg = RunConfig()
    apply_overrides(cfg, ["model.kind=mlp", f"model.embed={embed}", f"model.d_embed={D_EMBED.get(embed, 32)}",
                          "model.hidden=[16]", *extra])
    return check(cfg)


# --------------------------------------------------------------------------- values


def test_cyclic_hand_computed():
    x = torch.tensor([0, 2])
    c = cyclic_code(x, 8, 4)  # frequencies 1, 2: [cos 2πx/8, sin 2πx/8, cos 4πx/8, sin 4πx/8]
    assert c.dtype == torch.float64 and c.shape == (2, 4)
    torch.testing.assert_close(c[0], torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(c[1], torch.tensor([0.0, 1.0, -1.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    t = encoder_table("cyclic", P, 32)
    assert t[0].tolist() == [1.0, 0.0] * 16
    k, x0 = 5, 13
    assert t[x0, 2 * (k - 1)].item() == pytest.approx(math.cos(2 * math.pi * k * x0 / P))
    assert t[x0, 2 * (k - 1) + 1].item() == pytest.approx(math.sin(2 * math.pi * k * x0 / P))


def test_scalar_hand_computed():
    s = scalar_code(torch.tensor([0, 48, 96]), P)
    assert s.shape == (3, 1)
    assert s[:, 0].tolist() == [0.0, pytest.approx(0.5), 1.0]


def test_scalar_sdr_hand_computed():
    # p=5, n=9: w = round(9/3) = 3 bits on, start = round(x * 6 / 4) (half up) = 0, 2, 3, 5, 6
    c = scalar_sdr_code(torch.arange(5), 5, 9)
    on = [torch.nonzero(r).flatten().tolist() for r in c]
    assert on == [[0, 1, 2], [2, 3, 4], [3, 4, 5], [5, 6, 7], [6, 7, 8]]


def test_cyclic_sdr_hand_computed():
    # p=5, n=10: R = 2 rings of m = 5 bits, w = round(5/3) = 2 on per ring;
    # ring 1 starts at x, ring 2 (frequency 2) at 2x mod 5, arcs wrap around
    c = cyclic_sdr_code(torch.tensor([0, 1, 3, 4]), 5, 10)
    on = [torch.nonzero(r).flatten().tolist() for r in c]
    assert on == [[0, 1, 5, 6], [1, 2, 7, 8], [3, 4, 6, 7], [0, 4, 8, 9]]


def test_binarise_top_by_hand():
    d = torch.tensor([[0.1, 0.9, -1.0, 0.5], [3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    assert binarise_top(d, 2).tolist() == [[0, 1, 0, 1], [1, 1, 0, 0]]


def test_summed_code_is_the_binarised_sum_of_dense_rings():
    # p=5, n=10: 2 rings of 5 bits, arcs of w=2; the dense ring is cos(2π(i - c)/5) with c the
    # arc's middle: x=0 -> c = 0.5 on ring 1, so bits 0 and 1 are its top 2 (cos(π/5) each)
    d = cyclic_dense_code(torch.tensor([0]), 5, 10)[0]
    torch.testing.assert_close(d[:5], torch.cos(2 * math.pi * (torch.arange(5.0, dtype=torch.float64) - 0.5) / 5))
    assert binarise_top(d[:5], 2).tolist() == cyclic_sdr_code(torch.tensor([0]), 5, 10)[0, :5].tolist()
    # the pair's code depends on a and b only through the sum of their rings: commutative
    cfg = mlp_cfg("cyclic_sdr_sum", "model.dtype=float64")
    model = build_model(cfg, make_task(cfg.task))
    t = torch.tensor([[3, 5, 0], [5, 3, 0]])
    cache = {}
    model(t, cache)
    h = cache["hook_input"][0]
    assert torch.equal(h[0], h[1]) and int(h[0].sum()) == 133  # the thread's 133 of 400 bits
    assert model.uses_prior_knowledge


def test_exclude_diagonal_gives_the_threads_table():
    task = make_task(AlgorithmicConfig(op="add", p=97, dedupe_commutative=True, exclude_diagonal=True))
    assert len(task.c) == 97 * 96 // 2 == 4656  # one of each commutative pair, a != b
    assert bool((task.a < task.b).all())


@pytest.mark.parametrize("embed", FIXED_EMBEDS)
def test_tables_have_stated_widths_and_distinct_codes(embed):
    t = encoder_table(embed, P, D_EMBED[embed])
    assert t.shape == (P, WIDTH[embed]) and t.dtype == torch.float64
    assert len({tuple(r) for r in t.tolist()}) == P  # every symbol its own code


# --------------------------------------------------------------------------- SDR properties


def test_sdr_codes_are_binary_with_the_stated_active_bits():
    s = encoder_table("scalar_sdr", P, 400)
    assert set(s.unique().tolist()) == {0.0, 1.0}
    assert sdr_active_bits(400) == 133  # the thread's 133 of 400
    assert (s.sum(1) == 133).all()
    c = encoder_table("cyclic_sdr", P, 400)  # 4 rings of 100 bits, 33 on in each
    assert set(c.unique().tolist()) == {0.0, 1.0}
    assert (c.sum(1) == 4 * sdr_active_bits(100)).all() and sdr_active_bits(100) == 33
    for r in range(4):
        assert (c[:, 100 * r: 100 * (r + 1)].sum(1) == 33).all()


def test_scalar_sdr_overlap_falls_with_distance():
    c = encoder_table("scalar_sdr", P, 400)
    ov = c @ c.T
    for x in range(P - 2):
        row = ov[x, x + 1:]
        assert (row[:-1] >= row[1:]).all()  # never more shared bits further away
        assert ov[x, x + 1] > ov[x, x + 2]  # and strictly more for a neighbour
        assert ov[x, x + 1] > 100  # neighbours share most of their 133 bits
    assert ov[0, P - 1] == 0  # the ends share nothing


def test_cyclic_sdr_neighbours_share_more_than_any_other_symbol():
    c = encoder_table("cyclic_sdr", P, 400)
    ov = c @ c.T
    for x in range(P):
        near = min(ov[x, (x + 1) % P], ov[x, (x - 1) % P])
        far = max(ov[x, (x + d) % P] for d in range(2, P - 1))
        assert near > far
    # cyclic: 0 and p-1 are neighbours
    assert ov[0, P - 1] == ov[0, 1]


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("embed", FIXED_EMBEDS)
def test_fixed_encoders_are_buffers_not_parameters(embed):
    cfg = mlp_cfg(embed, "train.seeds=[0,1]")
    task = make_task(cfg.task)
    model = build_model(cfg, task)
    names = dict(model.named_parameters())
    assert "W_E" not in names and all(n.startswith("dec_") for n in names)
    assert set(model.specs) == set(names)  # the optimizer's view: declared parameters only
    assert dict(model.named_buffers())["enc_table"].shape == (P, WIDTH[embed])
    assert "enc_table" not in model.state_dict()  # rebuilt from the config, not checkpointed
    d_in = WIDTH[embed] if embed == "cyclic_sdr_sum" else 2 * WIDTH[embed]  # one code a pair, or two
    assert names["dec_0_W"].shape == (2, d_in, 16)
    n_params = sum(p[0].numel() for p in model.parameters())
    assert n_params == d_in * 16 + 16 + 16 * P + P
    loss = model(task.tokens[:10]).square().sum()
    loss.backward()
    assert not model.enc_table.requires_grad and model.enc_table.grad is None


def test_learned_embedding_is_a_parameter():
    cfg = mlp_cfg("learned")
    model = build_model(cfg, make_task(cfg.task))
    assert "W_E" in dict(model.named_parameters()) and model.specs["W_E"].group == "embed"
    assert not model.uses_prior_knowledge


@pytest.mark.parametrize("embed", ["cyclic", "scalar_sdr"])
def test_ensemble_and_per_member_tokens(embed):
    cfg = mlp_cfg(embed, "train.seeds=[0,1,2]", "model.dtype=float64")
    task = make_task(cfg.task)
    model = build_model(cfg, task)
    assert model.enc_table.dtype == torch.float64
    tok = task.tokens[:7]  # (N, T) shared
    out = model(tok)
    assert out.shape == (3, 7, P)
    per = torch.stack([tok, tok.flip(0), tok])  # (E, N, T) per member
    out_pm = model(per)
    assert out_pm.shape == (3, 7, P)
    torch.testing.assert_close(out_pm[0], out[0])
    torch.testing.assert_close(out_pm[1], out[1].flip(0))
    # the encoding itself: member-independent rows of the table
    h = model._encode(tok[:, 0], pm=False)
    assert h.shape == (3, 7, WIDTH[embed])
    torch.testing.assert_close(h[2], model.enc_table[tok[:, 0]])
    # the loop's live-member path: parameters of a subset of members
    live = torch.tensor([1])
    params = {n: p.index_select(0, live) for n, p in model.named_parameters()}
    sub = torch.func.functional_call(model, params, (tok,))
    assert sub.shape == (1, 7, P)
    torch.testing.assert_close(sub[0], out[1])


def test_fixed_encoder_trains_in_the_loop(tmp_path):
    from groklab.training.loop import train

    cfg = mlp_cfg("cyclic_sdr", "train.steps=3", "train.progress=false", "train.batch_size=64")
    run = train(cfg, tmp_path / "r", progress=False)
    assert run.summary["status"] == "completed" and run.summary["steps"] == 3
    model = run.model()  # reloads from a checkpoint without the buffer
    assert model.enc_table.shape == (P, 400)


# --------------------------------------------------------------------------- labels, config


def test_uses_prior_knowledge():
    for embed in ("cyclic", "scalar", "cyclic_sdr", "scalar_sdr"):
        assert uses_prior_knowledge(mlp_cfg(embed))
    for embed in ("learned", "onehot"):
        assert not uses_prior_knowledge(mlp_cfg(embed))
    cfg = RunConfig()
    cfg.model.embed = "cyclic"  # ignored by the transformer
    assert not uses_prior_knowledge(cfg)
    model = MLPModel(1, P, P, 32, [8], embed="cyclic")
    assert model.uses_prior_knowledge


def test_bad_embed_is_named():
    with pytest.raises(ConfigError) as e:
        mlp_cfg("fourier")
    assert e.value.key == "model.embed" and "fourier" in str(e.value)
    assert "cyclic_sdr" in str(e.value)  # the choices are listed


@pytest.mark.parametrize("embed,d,needle", [
    ("cyclic", 31, "even"),
    ("cyclic", 98, "d_embed <= 96"),
    ("scalar_sdr", 143, "d_embed >= 144"),
    ("cyclic_sdr", 96, "d_embed >= p = 97"),
])
def test_too_narrow_codes_are_named(embed, d, needle):
    cfg = RunConfig()
    apply_overrides(cfg, ["model.kind=mlp", f"model.embed={embed}", f"model.d_embed={d}"])
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert e.value.key == "model.d_embed" and e.value.value == d
    assert needle in str(e.value) and embed in str(e.value)
