"""Models, every one with a leading ensemble axis E. ``build_model(cfg, task)`` makes one."""

from __future__ import annotations

from groklab.config import RunConfig
from groklab.models.common import DTYPES, EnsembleModule
from groklab.models.mlp import MLPModel, ParityMLP, ToyModel, VectorMLP, uses_prior_knowledge
from groklab.models.transformer import Transformer


def n_outputs(m, task) -> int:
    """The transformer's logits: one per answer class, or one per token (``model.logits``)."""
    return task.vocab_size if m.logits == "vocab" else task.n_classes


def build_model(cfg: RunConfig, task, device: str = "cpu") -> EnsembleModule:
    """An initialised ensemble for ``cfg`` on ``task`` (member e from ``train.seeds[e]``).
    On feature vectors (``task.input_kind == "features"``) the MLP reads them directly."""
    m = cfg.model
    E = cfg.n_members
    if task.input_kind == "parity":
        model = ParityMLP(E, task.n_tasks, task.n_bits, list(m.hidden), task.n_classes, m.act, m.init, m.first_layer)
    elif task.input_kind == "features":
        model = VectorMLP(E, task.in_dim, task.out_dim, list(m.hidden), m.act, m.init)
    elif m.kind == "transformer":
        model = Transformer(E, task.vocab_size, task.seq_len, n_outputs(m, task), m.n_layers, m.d_model, m.n_heads,
                            m.d_mlp, m.act, m.layer_norm, m.impl, m.init, m.attn_bias, m.residual)
        model.set_row_support(task.inputs)  # members' tables independent of their batches
    elif m.kind == "toy":
        model = ToyModel(E, task.n_symbols, task.n_classes, m.d_embed, list(m.hidden), m.act, m.embed_init_scale,
                         m.init, m.bias, m.committee)
    else:
        model = MLPModel(E, task.n_symbols, task.n_classes, m.d_embed, list(m.hidden), m.act, m.embed,
                         m.embed_init_scale, m.init, m.bias)
    model.initialise(cfg.member_values("train.seeds"), cfg.member_values("model.init_scale"),
                     DTYPES[m.dtype])
    return model.to(device)


__all__ = ["build_model", "Transformer", "ToyModel", "MLPModel", "ParityMLP", "VectorMLP", "EnsembleModule", "uses_prior_knowledge"]
