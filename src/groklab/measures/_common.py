"""Helpers shared by the measures: the full (a, b) grid, per-member logits, embeddings."""

from __future__ import annotations

import torch


def is_table(task) -> bool:
    """The table of a binary operation (task.kind = "algorithmic")."""
    return task.kind == "algorithmic"


def is_modular_add(task) -> bool:
    return is_table(task) and task.cfg.op == "add"


def is_zp(task) -> bool:
    """A Z_p operation whose symbols and classes are the residues 0..p-1."""
    return is_table(task) and task.op.group == "Zp" and task.n_symbols == task.cfg.p == task.n_classes


def one_model(model) -> bool:
    """Not a committee (``model.committee``): the measures that read weights take one model a member."""
    return getattr(model, "committee", 1) == 1


def has_embedding(model, task) -> bool:
    if not is_table(task) or not one_model(model):
        return False
    W = getattr(model, "W_E", None)
    return isinstance(W, torch.Tensor) and W.dim() == 3 and W.shape[1] >= task.n_symbols


def embedding_name(model) -> str:
    """The embedding's parameter name: TransformerLens's ``embed.W_E`` on the transformer,
    ``W_E`` on the MLP models."""
    return "embed.W_E" if "embed.W_E" in model.specs else "W_E"


def embedding(model, task) -> torch.Tensor:
    """The symbols' embedding rows, (E, n_symbols, d), float64."""
    return model.W_E.detach()[:, : task.n_symbols].double()


def unembedding(model) -> torch.Tensor | None:
    """The readout, one row per output class, (E, C, d), float64: ``W_U`` transposed for the
    transformer; the last decoder layer's weight transposed for MLP models."""
    if hasattr(model, "W_U"):
        return model.W_U.detach().transpose(1, 2).double()
    n_dec = getattr(model, "n_dec", 0)
    if n_dec:
        return getattr(model, f"dec_{n_dec - 1}_W").detach().transpose(1, 2).double()
    return None


def grid_tokens(task, n: int | None = None) -> torch.Tensor:
    """Token sequences for every (a, b) in 0..n-1 (a major), (n*n, T), built from the task's
    own layout: row 0 of ``task.tokens`` with its operands replaced."""
    n = task.cfg.p if n is None else n
    dev = task.tokens.device
    a, b = torch.meshgrid(torch.arange(n, device=dev), torch.arange(n, device=dev), indexing="ij")
    tok = task.tokens[0].repeat(n * n, 1).clone()
    tok[:, 0] = a.reshape(-1)
    tok[:, task.b_pos] = b.reshape(-1)
    return tok


def grid_logits(model, task) -> torch.Tensor:
    """Logits at the last position on the full p x p grid, (E, p, p, C), float64."""
    p = task.cfg.p
    logits = model(grid_tokens(task, p))
    return logits.double().reshape(logits.shape[0], p, p, logits.shape[-1])


def train_logits(model, task, idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (E, N, C) in the model's dtype and targets (N,) for the rows ``idx``
    (default: the training rows)."""
    idx = task.train_idx if idx is None else idx
    return model(task.inputs[idx]), task.targets[idx]
