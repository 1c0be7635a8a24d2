"""groklab transformers in TransformerLens's layout, and Nanda et al.'s checkpoints in groklab's.

* the layout mapping alone (torch only): Nanda et al.'s forward pass, transliterated from
  their ``transformers.py``, on a synthetic checkpoint in their layout, equals groklab's model
  after ``groklab import-nanda``;
* with TransformerLens 3.x installed: ``Run.to_transformer_lens`` gives logits equal to
  groklab's on the whole table (nanda2023, and power2022 with layer norm and 2 layers), and
  TL's attention-pattern hook at ``=`` equals groklab's cache."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import groklab
from groklab.config import ConfigError, apply_overrides
from groklab.models import build_model
from groklab.presets import get_preset
from groklab.tasks import make_task
from groklab.transformer_lens import import_nanda_checkpoint, tl_state_dict

CMD = [sys.executable, "-m", "groklab.cli"]


def cli(*args, ok=True):
    r = subprocess.run(CMD + list(args), capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


def nanda_forward(sd: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Their Transformer.forward (use_ln=False), einsum for einsum: logits (N, T, V)."""
    x = torch.einsum("dbp->bpd", sd["embed.W_E"][:, tokens])
    x = x + sd["pos_embed.W_pos"][: x.shape[-2]]
    n_ctx = x.shape[1]
    mask = torch.tril(torch.ones(n_ctx, n_ctx, dtype=x.dtype))
    for l in sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}):
        b = f"blocks.{l}."
        W_K, W_Q, W_V, W_O = (sd[b + f"attn.{n}"] for n in ("W_K", "W_Q", "W_V", "W_O"))
        d_head = W_K.shape[1]
        k = torch.einsum("ihd,bpd->biph", W_K, x)
        q = torch.einsum("ihd,bpd->biph", W_Q, x)
        v = torch.einsum("ihd,bpd->biph", W_V, x)
        scores = torch.einsum("biph,biqh->biqp", k, q)
        masked = torch.tril(scores) - 1e10 * (1 - mask[:n_ctx, :n_ctx])
        attn = torch.softmax(masked / math.sqrt(d_head), dim=-1)
        z = torch.einsum("biph,biqp->biqh", v, attn)
        z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], n_ctx, -1)  # 'b i q h -> b q (i h)'
        x = x + torch.einsum("df,bqf->bqd", W_O, z_flat)
        h = torch.relu(torch.einsum("md,bpd->bpm", sd[b + "mlp.W_in"], x) + sd[b + "mlp.b_in"])
        x = x + torch.einsum("dm,bpm->bpd", sd[b + "mlp.W_out"], h) + sd[b + "mlp.b_out"]
    return x @ sd["unembed.W_U"]


def synthetic_nanda_checkpoint(p=23, d=32, H=4, d_mlp=64, n=3, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    dh, V = d // H, p + 1

    def sd():
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(d)  # noqa: E731
        return {"embed.W_E": r(d, V), "pos_embed.W_pos": r(3, d), "blocks.0.attn.W_K": r(H, dh, d),
                "blocks.0.attn.W_Q": r(H, dh, d), "blocks.0.attn.W_V": r(H, dh, d), "blocks.0.attn.W_O": r(d, d),
                "blocks.0.attn.mask": torch.tril(torch.ones(3, 3, dtype=torch.float64)),
                "blocks.0.mlp.W_in": r(d_mlp, d), "blocks.0.mlp.b_in": r(d_mlp), "blocks.0.mlp.W_out": r(d, d_mlp),
                "blocks.0.mlp.b_out": r(d), "unembed.W_U": r(d, V)}

    dicts = [sd() for _ in range(n)]
    return {"model": dicts[-1], "state_dicts": dicts[:-1], "config": {"p": p, "d_model": d, "num_heads": H},
            "train_losses": [4.0 - 0.01 * i for i in range(250)], "test_losses": [4.5 - 0.001 * i for i in range(250)]}


def test_import_nanda_checkpoint_gives_their_logits(tmp_path):
    ckpt = synthetic_nanda_checkpoint()
    torch.save(ckpt, tmp_path / "nanda.pth")
    r = cli("import-nanda", str(tmp_path / "nanda.pth"), str(tmp_path / "run"))
    assert "weights at 3 steps (0–250)" in " ".join(r.stdout.split())  # the console wraps long paths
    run = groklab.load_run(tmp_path / "run")
    assert run.checkpoint_steps == [0, 100, 250]
    m = run.metrics
    assert len(m[m["name"] == "train_loss"]) == 250 and m[m["name"] == "val_loss"]["value"].iloc[3] == 4.5 - 0.003
    tokens = run.task.inputs
    theirs = torch.where(tokens == 24, 23, tokens)  # "=" is p + 1 in groklab, p in their vocabulary
    assert int(tokens[:, -1].unique()) == 24
    for step, sd in zip(run.checkpoint_steps, ckpt["state_dicts"] + [ckpt["model"]]):
        model = run.model(step=step)
        want = nanda_forward(sd, theirs)[:, -1, :23]
        with torch.no_grad():
            got = model(tokens)[0]
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    # their split: random.seed(seed); random.shuffle of the (i, j) pairs; the first 30% train
    import random
    pairs = [(i, j, 23) for i in range(23) for j in range(23)]
    random.seed(0)
    random.shuffle(pairs)
    want_train = sorted(i * 23 + j for i, j, _ in pairs[: int(0.3 * len(pairs))])
    assert run.config.task.split == "python_shuffle" and run.task.train_idx.tolist() == want_train


def test_import_refuses_another_layout(tmp_path):
    torch.save({"weights": {}}, tmp_path / "x.pth")
    with pytest.raises(ConfigError, match="no 'model' key"):
        import_nanda_checkpoint(tmp_path / "x.pth", tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written


def test_parameters_carry_transformer_lens_names_and_per_head_shapes():
    cfg = apply_overrides(get_preset("power2022"), ["task.p=11", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32",
                                        "train.seeds=[0,1]"])
    task = make_task(cfg.task)
    model = build_model(cfg, task, torch.device("cpu"))
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["blocks.1.attn.W_Q"] == (2, 2, 16, 8) and shapes["blocks.0.attn.W_O"] == (2, 2, 8, 16)
    assert shapes["embed.W_E"][1:] == (task.vocab_size, 16) and shapes["unembed.W_U"] == (2, 16, task.n_classes)
    assert {"blocks.1.ln2.b", "ln_final.w", "blocks.0.mlp.W_in"} <= set(shapes)
    sd = tl_state_dict(model, member=1)
    for name, p in model.named_parameters():  # one line per tensor: the member's slice
        assert torch.equal(sd[name], p[1].detach())
    assert float(sd["unembed.b_U"].abs().sum()) == 0 and sd["blocks.0.attn.b_Q"].shape == (2, 8)
    # the products' whole matrices: head h's queries are columns h*dh:(h+1)*dh
    Wq = model.p(1, "W_Q")[1].detach()
    for h in range(2):
        assert torch.equal(Wq[:, h * 8:(h + 1) * 8], model.blocks[1].attn.W_Q[1, h].detach())


LEGACY = Path(__file__).parent.parent / "data" / "transformer_v0"


def test_a_run_written_before_the_transformer_lens_layout_loads_and_resumes(tmp_path):
    """tests/data/transformer_v0: a 2-layer layer-norm transformer with Grokfast, 2 members, 30
    steps, written by the code before this layout (442bbba: flat names, whole (d, d) attention
    matrices, flat optimizer and Grokfast state in that order), with that code's logits."""
    old = tmp_path / "old"
    shutil.copytree(LEGACY, old)
    run = groklab.load_run(old)
    with torch.no_grad():
        logits = run.model()(run.task.tokens)
    assert torch.equal(logits, load_file(LEGACY / "old_code_logits.safetensors")["logits"])  # bit for bit
    assert groklab.load_run(old).to_transformer_lens is not None
    # resumed with today's code for 10 more steps = today's code for 40 steps from scratch
    cli("train", "--resume", str(old), "--set", "train.steps=40", "-q")
    new = groklab.train(apply_overrides(run.config, ["train.steps=40"]), tmp_path / "new", progress=False)
    a, b = groklab.load_run(old).metrics, groklab.load_run(new.path).metrics
    keys = ["step", "member", "name"]
    both = a.merge(b, on=keys, suffixes=("_old", "_new"))
    both = both[~both["name"].str.startswith(("time", "weight_norm."))]  # wall-clock; per-tensor names changed
    assert both["step"].max() == 40 and len(both) > 40
    norm = both["name"] == "weight_norm"  # one sum over every coordinate, now in another order: last bits
    np.testing.assert_allclose(both.loc[norm, "value_old"], both.loc[norm, "value_new"], rtol=1e-6)
    same = both[~norm]  # losses, accuracies, everything else: bit for bit
    assert (same["value_old"] == same["value_new"]).all(), same[same["value_old"] != same["value_new"]]


# ----------------------------------------------------------------------------- with TransformerLens

tl = pytest.importorskip("transformer_lens", reason="TransformerLens 3.x is the optional extra groklab[tl]")


@pytest.mark.parametrize("preset, overrides", [
    ("nanda2023", ["task.p=31", "train.steps=60"]),
    ("power2022", ["task.p=23", "train.steps=30", "train.batch_size=64"]),  # layer norm, 2 layers
])
def test_transformer_lens_logits_and_attention_hook_equal_groklab(tmp_path, preset, overrides):
    args = ["train", "--preset", preset, "--runs-dir", str(tmp_path), "--name", "r", "-q",
            "--set", "train.seeds=[0,1]", "--set", "train.stop_val_acc=none"]
    for o in overrides:
        args += ["--set", o]
    cli(*args)
    run = groklab.load_run(tmp_path / "r")
    tokens = run.task.inputs  # the whole table
    model = run.model()
    model.impl = "reference"
    cache: dict = {}
    with torch.no_grad():
        ours = model(tokens, cache=cache)  # (E, N, C)
    for member in (0, 1):
        tlm = run.to_transformer_lens(member=member)
        with torch.no_grad():
            logits, tl_cache = tlm.run_with_cache(tokens)
        got = logits[:, -1]
        want = ours[member]
        rel = float((got - want).abs().max() / want.abs().max())
        assert rel <= 1e-5, rel
        for l in range(run.config.model.n_layers):
            pat = tl_cache[f"blocks.{l}.attn.hook_pattern"][:, :, -1, :]  # (N, H, T): the query at '='
            np.testing.assert_allclose(pat.numpy(), cache[f"blocks.{l}.attn.hook_pattern"][member][:, :, -1, :].numpy(),
                                       rtol=1e-5, atol=1e-6)


def test_export_transformer_lens_loads_in_transformer_lens(tmp_path):
    groklab.train(apply_overrides(get_preset("nanda2023"), ["task.p=23", "train.steps=20"]), tmp_path / "r",
                  progress=False)
    cli("export", str(tmp_path / "r"), "--to", "transformer-lens", "--dest", str(tmp_path / "tl"))
    import json

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = json.loads((tmp_path / "tl" / "config.json").read_text())
    cfg["dtype"] = getattr(torch, cfg["dtype"])
    m = HookedTransformer(HookedTransformerConfig(**cfg))
    sd = m.state_dict()
    sd.update(torch.load(tmp_path / "tl" / "state_dict.pt"))
    m.load_state_dict(sd)
    run = groklab.load_run(tmp_path / "r")
    with torch.no_grad():
        torch.testing.assert_close(m(run.task.inputs)[:, -1], run.model()(run.task.inputs)[0], rtol=1e-5, atol=1e-6)
