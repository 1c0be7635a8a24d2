"""The grokfast2024 baselines' model and loop quirks against a plain-PyTorch copy of the
architecture of Grokfast's main.py (ironjr/grokfast 93b2248: ``Block``, ``Decoder``), written
here from that code's structure: nn.MultiheadAttention, nn.LayerNorm, nn.Linear, nn.Embedding."""

from __future__ import annotations

import torch
from torch import nn

from groklab.config import apply_overrides
from groklab.models import build_model
from groklab.models.common import to_matrix
from groklab.presets import get_preset
from groklab.resolve import check
from groklab.tasks import make_task
from groklab.training.loop import BatchSampler


class PlainBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # x (T, N, d), sequence first as nn.MultiheadAttention's default
        mask = torch.triu(torch.full((len(x), len(x)), -float("inf")), diagonal=1)
        x = self.ln_1(x)  # the quirk: the residual stream becomes the normed input
        a, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln_2(x))


class PlainDecoder(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, tokens: int, seq_len: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(tokens, dim), nn.Embedding(seq_len, dim)
        self.layers = nn.ModuleList(PlainBlock(dim, heads) for _ in range(layers))
        self.ln_f, self.head = nn.LayerNorm(dim), nn.Linear(dim, tokens, bias=False)

    def forward(self, x):  # x (T, N) -> logits at the last position (N, tokens)
        h = self.tok(x) + self.pos(torch.arange(x.shape[0])[:, None])
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln_f(h))[-1]


def small_grokfast_config(p: int = 11, d: int = 32):
    cfg = get_preset("grokfast2024")
    apply_overrides(cfg, [f"task.p={p}", f"model.d_model={d}", f"model.d_mlp={4 * d}", "model.dtype=float64"])
    return check(cfg)


def copy_into_plain(model, plain: PlainDecoder) -> None:
    sd = {n: p.detach()[0] for n, p in model.named_parameters()}
    spec = model.specs
    whole = lambda n: to_matrix(sd[n], spec[n]).T  # noqa: E731  (out, in), nn.Linear's orientation
    with torch.no_grad():
        plain.tok.weight.copy_(sd["embed.W_E"])
        plain.pos.weight.copy_(sd["pos_embed.W_pos"])
        for l, blk in enumerate(plain.layers):
            a = f"blocks.{l}.attn."
            blk.attn.in_proj_weight.copy_(torch.cat([whole(a + w) for w in ("W_Q", "W_K", "W_V")]))
            blk.attn.in_proj_bias.copy_(torch.cat([sd[a + b].reshape(-1) for b in ("b_Q", "b_K", "b_V")]))
            blk.attn.out_proj.weight.copy_(whole(a + "W_O"))
            blk.attn.out_proj.bias.copy_(sd[a + "b_O"])
            m = f"blocks.{l}.mlp."
            blk.mlp[0].weight.copy_(sd[m + "W_in"].T), blk.mlp[0].bias.copy_(sd[m + "b_in"])
            blk.mlp[2].weight.copy_(sd[m + "W_out"].T), blk.mlp[2].bias.copy_(sd[m + "b_out"])
            for ln in ("ln1", "ln2"):
                mod = blk.ln_1 if ln == "ln1" else blk.ln_2
                mod.weight.copy_(sd[f"blocks.{l}.{ln}.w"]), mod.bias.copy_(sd[f"blocks.{l}.{ln}.b"])
        plain.ln_f.weight.copy_(sd["ln_final.w"]), plain.ln_f.bias.copy_(sd["ln_final.b"])
        plain.head.weight.copy_(sd["unembed.W_U"].T)


def test_grokfast_model_equals_their_architecture():
    cfg = small_grokfast_config()
    task = make_task(cfg.task)
    model = build_model(cfg, task, "cpu")
    with torch.no_grad():  # biases are zero at init: make them count
        for n, p in model.named_parameters():
            if ".b_" in n or n.endswith(".b") or n.endswith(".w"):
                p.add_(0.1 * torch.randn_like(p))
    plain = PlainDecoder(32, 2, 4, task.vocab_size, task.seq_len).double()
    copy_into_plain(model, plain)
    tokens = task.inputs  # (N, T): a op b =, all 11 * 10 pairs (b != 0)
    ours = model(tokens)[0]  # (N, p + 2): one logit per token
    assert ours.shape == (110, task.vocab_size) == (110, 11 + 2)
    torch.testing.assert_close(ours, plain(tokens.T), rtol=1e-10, atol=1e-10)
    # without the quirk (the standard pre-LN block) the logits differ: the test can fail
    model.residual = "input"
    assert not torch.allclose(model(tokens)[0], plain(tokens.T), atol=1e-3)


def test_grokfast_init_is_pytorchs():
    """nn.Embedding N(0, 1); in_proj xavier-uniform bound sqrt(6 / (d + 3d)); biases 0 in
    attention; nn.Linear U(+-1/sqrt(fan_in)) with its bias; the head U(+-1/sqrt(d))."""
    cfg = get_preset("grokfast2024")
    model = build_model(cfg, make_task(cfg.task), "cpu")
    d = 128
    assert abs(model.W_E.std().item() - 1.0) < 0.03
    bound = lambda n: getattr_path(model, n).abs().max().item()  # noqa: E731
    assert 0.95 * (6 / (4 * d)) ** 0.5 < bound("blocks.0.attn.W_Q") <= (6 / (4 * d)) ** 0.5
    assert 0.95 / d ** 0.5 < bound("blocks.0.attn.W_O") <= 1 / d ** 0.5
    assert bound("blocks.0.attn.b_Q") == 0 and bound("blocks.1.attn.b_O") == 0
    assert 0.95 / d ** 0.5 < bound("blocks.0.mlp.b_in") <= 1 / d ** 0.5
    assert 0.95 / 512 ** 0.5 < bound("blocks.1.mlp.W_out") <= 1 / 512 ** 0.5
    assert 0.95 / d ** 0.5 < bound("unembed.W_U") <= 1 / d ** 0.5 and model.W_U.shape[-1] == 99


def getattr_path(obj, name: str):
    for part in name.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def test_last_partial_batch_is_kept_with_drop_last_false():
    kept = BatchSampler(10, 4, [0], drop_last=False)
    sizes = [kept.next().shape[1] for _ in range(6)]
    assert sizes == [4, 4, 2, 4, 4, 2]
    dropped = BatchSampler(10, 4, [0])
    assert [dropped.next().shape[1] for _ in range(4)] == [4, 4, 4, 4]


def test_one_epoch_covers_every_train_row_once():
    s = BatchSampler(10, 4, [3], drop_last=False)
    rows = torch.cat([s.next()[0] for _ in range(3)])
    assert sorted(rows.tolist()) == list(range(10))


def test_warmup_start_zero_makes_the_first_update_at_lr_zero(tmp_path):
    """torch's LambdaLR(lambda u: u / 10) starts at factor 0: the first Adam update moves no
    weight; the second moves them at lr / 10. warmup_start = 1 moves them at the first."""
    from groklab.training.loop import train
    moved = {}
    for start in (0, 1):
        cfg = small_grokfast_config(p=7, d=16)
        apply_overrides(cfg, [f"optim.warmup_start={start}", "train.steps=2", "train.checkpoints_per_decade=10",
                              "train.eval_every=1", "train.progress=false", "train.batch_size=16"])
        run = train(cfg, tmp_path / f"start{start}", progress=False)
        w = [run.store.load_weights(s)[1]["embed.W_E"] for s in (0, 1, 2)]
        moved[start] = [not torch.equal(w[i], w[i + 1]) for i in range(2)]
    assert moved == {0: [False, True], 1: [True, True]}


def test_transformer_lens_state_dict_keeps_real_attention_biases_and_refuses_the_normed_residual():
    import pytest
    from groklab.config import ConfigError
    from groklab.transformer_lens import tl_config, tl_state_dict
    cfg = small_grokfast_config()
    task = make_task(cfg.task)
    model = build_model(cfg, task, "cpu")
    with torch.no_grad():
        model.blocks[0].attn.b_Q.add_(1.0)
    sd = tl_state_dict(model)
    assert torch.equal(sd["blocks.0.attn.b_Q"], model.blocks[0].attn.b_Q[0])  # not replaced by zeros
    assert sd["unembed.W_U"].shape[-1] == sd["unembed.b_U"].shape[0] == task.vocab_size
    with pytest.raises(ConfigError, match="model.residual"):
        tl_config(cfg, task)
