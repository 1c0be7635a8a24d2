"""Weight norms, description length and softmax collapse."""

from __future__ import annotations

import lzma
import math

import numpy as np
import torch
import torch.nn.functional as F

from groklab.measures._common import train_logits



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


def model_bits_of(tensors: list[torch.Tensor], steps: list[float], preset: int = 6) -> float:
    """Bits of ``lzma.compress`` (xz container, ``preset``) of the tensors quantised to
    integers round(w / step), one step per tensor, int64 little-endian, concatenated in order."""
    q = [np.rint(t.detach().double().cpu().numpy().ravel() / s).astype("<i8") for t, s in zip(tensors, steps)]
    buf = np.concatenate(q).tobytes() if q else b""
    return 8.0 * len(lzma.compress(buf, preset=preset))


LADDER = [2.0 ** -k for k in range(1, 25)]  # quantisation steps, coarsest first: 1/2 ... 2^-24
LADDER_BITS = math.ceil(math.log2(len(LADDER)))  # to say which step a tensor uses
TOLERANCE = 1e-3  # nats: the mean training cross-entropy may rise by this much


def _quantized(w: torch.Tensor, step: float) -> torch.Tensor:
    return (torch.round(w.double() / step) * step).to(w.dtype)


@torch.no_grad()
def description_length(model, task, tolerance: float = TOLERANCE, preset: int = 6) -> dict[str, torch.Tensor]:
    """A two-part code for the training labels given the architecture (the compression view of
    grokking: DeMoss et al. 2024, "The Complexity Dynamics of Grokking"; Grünwald 2007, MDL).

    The model part: each parameter tensor, in declaration order, is quantised to the coarsest
    step of :data:`LADDER` (1/2 down to 2^-24) that keeps the member's mean training
    cross-entropy within ``tolerance`` nats of the unquantised model's, with the tensors
    before it already quantised (found by bisection on the ladder, which assumes the loss
    grows as the step coarsens). ``model_bits`` = 8 * len(lzma.compress(the integers
    round(w / step), int64)) + :data:`LADDER_BITS` per tensor for its step.
    The data part: ``data_bits`` = sum over the training rows of -log2 p(target) under the
    **dequantised** model, the one the model part encodes. ``description_bits`` is their sum:
    a code length, so that a model simpler to state at the same fit costs fewer bits.
    ``quant_step_log2``: the mean over tensors of log2 of the chosen step."""
    logits, targets = train_logits(model, task)
    E = logits.shape[0]
    named = [(n, p) for n, p in model.named_parameters()]
    inputs = task.inputs[task.train_idx]

    def member_loss(params: dict, e: int) -> tuple[float, torch.Tensor]:
        lg = torch.func.functional_call(model, params, (inputs,))[e].double()
        return F.cross_entropy(lg, targets).item(), lg

    base = [F.cross_entropy(logits[e].double(), targets).item() for e in range(E)]
    data = torch.zeros(E, dtype=torch.float64)
    mbits = torch.zeros(E, dtype=torch.float64)
    step_log2 = torch.zeros(E, dtype=torch.float64)
    for e in range(E):
        params = {n: p.detach().clone() for n, p in named}
        steps = []
        for n, p in named:
            w = p[e].detach()

            def ok(i: int) -> bool:
                params[n][e] = _quantized(w, LADDER[i])
                return member_loss(params, e)[0] <= base[e] + tolerance

            lo, hi = 0, len(LADDER) - 1  # find the coarsest (smallest index) step that is ok
            if not ok(hi):
                i = hi  # even the finest step breaks the tolerance: keep it, the data bits say the cost
            else:
                while lo < hi:
                    mid = (lo + hi) // 2
                    if ok(mid):
                        hi = mid
                    else:
                        lo = mid + 1
                i = hi
            params[n][e] = _quantized(w, LADDER[i])
            steps.append(LADDER[i])
        _, lg = member_loss(params, e)
        data[e] = F.cross_entropy(lg, targets, reduction="sum").item() / math.log(2)
        mbits[e] = model_bits_of([params[n][e] for n, _ in named], steps, preset) + LADDER_BITS * len(steps)
        step_log2[e] = float(np.mean(np.log2(steps)))
    return {"data_bits": data, "model_bits": mbits, "description_bits": data + mbits, "quant_step_log2": step_log2}


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
