"""groklab transformers to and from TransformerLens's layout, and Nanda et al.'s checkpoints in.

A groklab transformer's parameters carry TransformerLens's names and per-head shapes, the
member axis first (:mod:`groklab.models.transformer`), so member ``e`` in TL's layout is one
line per tensor: ``tl[name] = groklab[name][e]`` (:func:`tl_state_dict`). TL has attention
and unembedding biases that groklab's model has not: they are zeros.

:func:`tl_state_dict` and :func:`tl_config` need only torch (``groklab export RUN --to
transformer-lens`` writes them for users who load the model themselves);
:func:`to_transformer_lens` builds a ``HookedTransformer`` and needs the optional extra
``groklab[tl]``: TransformerLens 3.x, the last line that has ``HookedTransformer`` (4.0
removed it for ``TransformerBridge``, whose native models change init and key names again;
its ``convert_tl_checkpoint`` takes this same layout). 3.x installs beside torch 2.13.

:func:`import_nanda_checkpoint` reads the layout of Nanda et al.'s ``progress-measures-paper``
checkpoints (``transformers.py``: W_E (d, V), W_Q/K/V (H, dh, d), W_O (d, H dh), W_in
(d_mlp, d), W_out (d, d_mlp), W_U (d, V) with one logit more than the answers, no attention
biases) into a groklab run directory of the ``nanda2023`` preset, with their split.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from groklab.config import ConfigError, RunConfig, apply_overrides
from groklab.models import build_model, n_outputs
from groklab.presets import get_preset
from groklab.store import RunStore
from groklab.tasks import make_task

ACT_TO_TL = {"relu": "relu", "gelu": "gelu", "tanh": "tanh"}  # groklab's F.gelu is TL's "gelu" (exact erf)


def _check_transformer(cfg: RunConfig) -> None:
    if cfg.model.kind != "transformer":
        raise ConfigError("model.kind", cfg.model.kind, "TransformerLens holds transformers only")
    if cfg.model.residual != "input":
        raise ConfigError("model.residual", cfg.model.residual, "TransformerLens's block adds to its input only")


def tl_config(cfg: RunConfig, task=None) -> dict:
    """Keyword arguments of TransformerLens's ``HookedTransformerConfig`` for this run's model."""
    _check_transformer(cfg)
    task = task or make_task(cfg.task)
    m = cfg.model
    if m.act not in ACT_TO_TL:
        raise ConfigError("model.act", m.act, f"no TransformerLens equivalent; one of {', '.join(ACT_TO_TL)}")
    return {"n_layers": m.n_layers, "d_model": m.d_model, "n_heads": m.n_heads, "d_head": m.d_model // m.n_heads,
            "d_mlp": m.d_mlp, "act_fn": ACT_TO_TL[m.act], "normalization_type": "LN" if m.layer_norm else None,
            "d_vocab": task.vocab_size, "d_vocab_out": n_outputs(m, task), "n_ctx": task.seq_len, "eps": 1e-5,
            "positional_embedding_type": "standard", "default_prepend_bos": False}


def tl_state_dict(model, member: int = 0) -> dict[str, torch.Tensor]:
    """Member ``member`` of a groklab transformer as TransformerLens's parameters (zero
    attention biases where the model has none, a zero unembedding bias; no buffers, which
    differ between TL versions)."""
    out = {name: p.detach()[member].clone() for name, p in model.named_parameters()}  # the same names and shapes
    dtype = out["embed.W_E"].dtype
    for l in range(model.L):
        for b in ("b_Q", "b_K", "b_V"):
            out.setdefault(f"blocks.{l}.attn.{b}", torch.zeros(model.H, model.dh, dtype=dtype))
        out.setdefault(f"blocks.{l}.attn.b_O", torch.zeros(model.d, dtype=dtype))
    out["unembed.b_U"] = torch.zeros(model.C, dtype=dtype)
    return out


def to_transformer_lens(run, member: int = 0, step: int | None = None, device: str = "cpu"):
    """The run's model (member ``member``, weights of ``step``, default the last) as a
    TransformerLens ``HookedTransformer`` in the run's dtype. Its logits at the last position
    equal groklab's. ``run``: a :class:`groklab.Run` (``Run.to_transformer_lens`` calls this)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as e:
        raise ConfigError("transformer_lens", "missing", "needs TransformerLens 3.x (HookedTransformer): "
                          f"pip install 'groklab[tl]' ({e})") from None
    model = run.model(step=step)
    sd = tl_state_dict(model, member)
    dtype = sd["embed.W_E"].dtype
    with warnings.catch_warnings():  # 3.x warns that 4.0 drops HookedTransformer: the line this extra pins
        warnings.simplefilter("ignore", DeprecationWarning)
        tl = HookedTransformer(HookedTransformerConfig(**tl_config(run.config, run.task), dtype=dtype, device=device))
    full = tl.state_dict()
    missing = set(sd) - set(full)
    if missing:
        raise RuntimeError(f"TransformerLens has no parameters {sorted(missing)}")
    full.update({k: v.to(device) for k, v in sd.items()})
    tl.load_state_dict(full)
    return tl.eval()


def export_transformer_lens(run, dest: str | Path | None = None, member: int = 0,
                            step: int | None = None) -> Path:
    """``state_dict.pt`` (TL's parameter names and shapes) and ``config.json``
    (``HookedTransformerConfig`` keyword arguments) of one member of ``run`` (a
    :class:`groklab.Run`), in ``dest`` (default RUN_DIR/transformer_lens)."""
    dest = Path(dest) if dest else run.path / "transformer_lens"
    dest.mkdir(parents=True, exist_ok=True)
    model = run.model(step=step)
    torch.save(tl_state_dict(model, member), dest / "state_dict.pt")
    cfg = {**tl_config(run.config, run.task), "dtype": str(next(model.parameters()).dtype).replace("torch.", "")}
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return dest


# --------------------------------------------------------------------------- Nanda et al.'s layout


def nanda_to_groklab(sd: dict[str, torch.Tensor], n_classes: int) -> dict[str, torch.Tensor]:
    """One of Nanda et al.'s state dicts as groklab's parameters of one member (no E axis):
    TL's layout, by the transposes of ARENA's ``load_in_state_dict``. Their vocabulary is the
    p symbols and "=" (token p); groklab's puts its operation token at p (a zero row here:
    the "ab=" layout never feeds it) and "=" at p + 1. Their W_U has one column per token;
    the answers are the first ``n_classes``."""
    W_E = sd["embed.W_E"].T  # (p + 1, d): symbols, then "="
    p = W_E.shape[0] - 1
    W_E = torch.cat([W_E[:p], torch.zeros_like(W_E[:1]), W_E[p:]])
    out = {"embed.W_E": W_E, "pos_embed.W_pos": sd["pos_embed.W_pos"], "unembed.W_U": sd["unembed.W_U"][:, :n_classes]}
    layers = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")})
    for l in layers:
        b = f"blocks.{l}."
        H, dh, d = sd[b + "attn.W_Q"].shape
        for name in ("W_Q", "W_K", "W_V"):
            out[b + f"attn.{name}"] = sd[b + f"attn.{name}"].transpose(1, 2)  # (H, dh, d) -> (H, d, dh)
        out[b + "attn.W_O"] = sd[b + "attn.W_O"].T.reshape(H, dh, d)  # (d, H dh) -> (H, dh, d)
        out[b + "mlp.W_in"] = sd[b + "mlp.W_in"].T
        out[b + "mlp.b_in"] = sd[b + "mlp.b_in"]
        out[b + "mlp.W_out"] = sd[b + "mlp.W_out"].T
        out[b + "mlp.b_out"] = sd[b + "mlp.b_out"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def import_nanda_checkpoint(path: str | Path, run_dir: str | Path, checkpoint_every: int = 100) -> Path:
    """A checkpoint in Nanda et al.'s layout (a dict with ``model`` (the final state dict),
    optionally ``state_dicts`` (one every ``checkpoint_every`` epochs), ``train_losses``,
    ``test_losses`` (one a step) and ``config`` with ``p``) as a groklab run directory of the
    ``nanda2023`` preset, its sizes (d_model, heads, d_mlp, layers) and dtype read off the
    weights: the weights at their steps, the losses as ``train_loss``/``val_loss``. The split
    is theirs: ``task.split = "python_shuffle"`` with their ``seed`` and ``frac_train`` (from
    the checkpoint's ``config``; their defaults 0 and 0.3), so groklab's val metrics of the
    imported weights use their held-out pairs. Returns the run directory."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ConfigError("PATH", str(path), "not a checkpoint in Nanda et al.'s layout (no 'model' key)")
    final = ckpt["model"]
    try:
        d, H = final["embed.W_E"].shape[0], final["blocks.0.attn.W_Q"].shape[0]
        d_mlp = final["blocks.0.mlp.W_in"].shape[0]
    except KeyError as e:
        raise ConfigError("PATH", str(path), f"no {e} in its 'model' state dict: not Nanda et al.'s layout") from None
    n_layers = len({k.split(".")[1] for k in final if k.startswith("blocks.")})
    their = ckpt.get("config") or {}
    p = int(their.get("p", 113))
    dtype = str(final["embed.W_E"].dtype).replace("torch.", "")
    cfg = apply_overrides(get_preset("nanda2023"), [f"task.p={p}", "task.split=python_shuffle",
                                                     f"task.split_seed={int(their.get('seed', 0))}",
                                                     f"task.fraction={float(their.get('frac_train', 0.3))}",
                                                     "train.seeds=[0]", f"model.d_model={d}",
                                                     f"model.n_heads={H}", f"model.d_mlp={d_mlp}",
                                                     f"model.n_layers={n_layers}", f"model.dtype={dtype}"])
    task = make_task(cfg.task)
    names = dict(build_model(cfg, task, torch.device("cpu")).named_parameters())
    dicts = list(ckpt.get("state_dicts") or [])
    steps = [i * checkpoint_every for i in range(len(dicts))]
    n_steps = max(len(ckpt.get("train_losses") or []), steps[-1] if steps else 0)
    weights = []
    for step, sd in list(zip(steps, dicts)) + [(n_steps, final)]:
        w = nanda_to_groklab(sd, task.n_classes)
        if set(w) != set(names):
            raise ConfigError("PATH", str(path), f"parameters {sorted(set(w) ^ set(names))} do not match "
                              "a nanda2023 transformer")
        weights.append((step, {k: w[k].to(names[k].dtype)[None] for k in names}))
    store = RunStore.create(run_dir, cfg, task.split_tensors())  # only once the checkpoint has been read
    for step, w in weights:
        store.write_weights(step, w)
    store.write_metrics([(i, 0, n, float(v)) for n, key in (("train_loss", "train_losses"), ("val_loss", "test_losses"))
                         for i, v in enumerate(ckpt.get(key) or [])])
    store.write_summary({"status": "imported", "steps": n_steps, "source": str(path), "members": []})
    return Path(run_dir)


__all__ = ["tl_config", "tl_state_dict", "to_transformer_lens", "export_transformer_lens", "nanda_to_groklab",
           "import_nanda_checkpoint"]
