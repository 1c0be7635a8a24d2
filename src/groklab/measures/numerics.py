"""Weight norms, description length and softmax collapse."""

from __future__ import annotations

import lzma
import math

import numpy as np
import torch
import torch.nn.functional as F

from groklab.measures._common import train_logits

QUANT_STEP = 1e-2


@torch.no_grad()
def weight_norm(model, task=None) -> dict[str, torch.Tensor]:
    """L2 norm of each member's weights: ``weight_norm`` over all parameters (as
    ``training.loop.evaluate``), and ``weight_norm.<param name>`` per parameter. Weight norm
    as a grokking measure: Liu et al. 2023, "Omnigrok" (ICLR 2023)."""
    out, total = {}, None
    for name, p in model.named_parameters():
        sq = p.detach().double().square().flatten(1).sum(1)
        total = sq if total is None else total + sq
        out[f"weight_norm.{name}"] = sq.sqrt()
    return {"weight_norm": total.sqrt(), **out}


def data_bits_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum over examples of the cross-entropy, in bits: logits (E, N, C), targets (N,) -> (E,)."""
    E, N, C = logits.shape
    ce = F.cross_entropy(logits.double().reshape(E * N, C), targets.expand(E, N).reshape(-1), reduction="none")
    return ce.view(E, N).sum(1) / math.log(2)


def model_bits_of(tensors: list[torch.Tensor], step: float = QUANT_STEP, preset: int = 6) -> float:
    """Bits of ``lzma.compress`` (xz container, ``preset``) of the weights quantised to
    integers round(w / step), int32 little-endian, concatenated in order."""
    q = [np.rint(t.detach().double().cpu().numpy().ravel() / step).astype("<i4") for t in tensors]
    buf = np.concatenate(q).tobytes() if q else b""
    return 8.0 * len(lzma.compress(buf, preset=preset))


@torch.no_grad()
def description_length(model, task, step: float = QUANT_STEP, preset: int = 6) -> dict[str, torch.Tensor]:
    """Two-part description length (the compression view of grokking; e.g. DeMoss et al.
    2024, "The Complexity Dynamics of Grokking"; Grünwald 2007, MDL).

    ``data_bits`` = sum over training rows of -log2 softmax(logits)[target];
    ``model_bits`` = 8 * len(lzma.compress(round(w / step) as int32, preset)) of the member's
    parameters in declaration order, step = 1e-2 by default; ``description_bits`` = sum."""
    logits, targets = train_logits(model, task)
    data = data_bits_from_logits(logits, targets)
    params = list(model.parameters())
    E = params[0].shape[0]
    mbits = torch.tensor([model_bits_of([p[e] for p in params], step, preset) for e in range(E)],
                         dtype=torch.float64)
    return {"data_bits": data, "model_bits": mbits, "description_bits": data + mbits}


def softmax_collapse_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """logits (E, N, C), targets (N,) -> ``softmax_collapse``: share of rows whose float32
    softmax probability of the target is exactly 1.0 (the cross-entropy gradient
    softmax - onehot is then exactly 0); ``zero_loss_fraction``: share of rows whose float32
    cross-entropy is exactly 0."""
    E, N, C = logits.shape
    lg = logits.float()
    t = targets.expand(E, N)
    prob = lg.softmax(-1).gather(-1, t[..., None])[..., 0]
    ce = F.cross_entropy(lg.reshape(E * N, C), t.reshape(-1), reduction="none").view(E, N)
    return {"softmax_collapse": (prob == 1.0).double().mean(1),
            "zero_loss_fraction": (ce == 0.0).double().mean(1)}


@torch.no_grad()
def softmax_collapse(model, task) -> dict[str, torch.Tensor]:
    """Softmax collapse on the training rows (Prieto et al. 2025, "Grokking at the edge of
    numerical stability", ICLR 2025): see :func:`softmax_collapse_from_logits`. Logits are
    cast to float32 whatever the model's dtype."""
    logits, targets = train_logits(model, task)
    return softmax_collapse_from_logits(logits, targets)
