"""Ensemble building blocks shared by every model.

Every parameter carries a leading member axis E. Member ``e`` is initialised from its own
``torch.Generator(seed_e)`` on the CPU, parameter by parameter in declaration order, so a
member of an ensemble starts exactly where a single run with the same seed starts, whatever
the device and whatever the other members are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ParamSpec:
    shape: tuple[int, ...]  # per-member shape (without E)
    init: str = "normal"  # normal (N(0, std^2)) | uniform (U(-std, std)) | zeros | ones
    std: float = 1.0  # the normal's std, or the uniform's bound
    # "embed" params get optim.embed_lr_mult / embed_wd_mult; "hidden" marks a weight matrix
    # between hidden representations (not an embedding, not the output layer), the matrices
    # optim.name = "muon" orthogonalises; otherwise "hidden" is "body"
    group: str = "body"
    # How the init's draw becomes the stored layout: "same", or per head as TransformerLens
    # keeps attention ("heads_in": a (d, H*dh) draw stored (H, d, dh); "heads_out": a
    # (H*dh, d) draw stored (H, dh, d)), so a per-head parameter starts where the whole
    # (d, d) matrix of earlier versions started, number for number.
    layout: str = "same"


def drawn_shape(spec: ParamSpec) -> tuple[int, ...]:
    """The shape the init draws for ``spec`` (see ``ParamSpec.layout``)."""
    if spec.layout == "heads_in":
        H, d, dh = spec.shape
        return (d, H * dh)
    if spec.layout == "heads_out":
        H, dh, d = spec.shape
        return (H * dh, d)
    return spec.shape


def to_matrix(w: torch.Tensor, spec: ParamSpec) -> torch.Tensor:
    """A stored tensor (leading axes kept) as the whole (in, out) matrix it holds: the
    inverse of :func:`to_layout` (a view where the layout allows, else a copy)."""
    lead = w.shape[: w.dim() - len(spec.shape)]
    if spec.layout == "heads_in":
        H, d, dh = spec.shape
        return w.transpose(-3, -2).reshape(*lead, d, H * dh)
    return w.reshape(*lead, *drawn_shape(spec))


def to_layout(w: torch.Tensor, spec: ParamSpec) -> torch.Tensor:
    """A drawn (or a whole-matrix) tensor, leading axes kept, in ``spec``'s stored layout."""
    lead = w.shape[: w.dim() - 2]
    if spec.layout == "heads_in":
        H, d, dh = spec.shape
        return w.reshape(*lead, d, H, dh).transpose(-3, -2)
    if spec.layout == "heads_out":
        return w.reshape(*lead, *spec.shape)
    return w


class EnsembleModule(nn.Module):
    """Base class: declare parameters with :meth:`declare`, then :meth:`initialise`."""

    def __init__(self, n_members: int):
        super().__init__()
        self.E = n_members
        self.specs: dict[str, ParamSpec] = {}

    def declare(self, name: str, spec: ParamSpec) -> None:
        """A parameter; a dotted name ("blocks.0.attn.W_Q") nests it in plain submodules,
        made on first use, so that state-dict keys are that name."""
        self.specs[name] = spec
        *path, leaf = name.split(".")
        mod: nn.Module = self
        for part in path:
            if part not in mod._modules:
                mod.add_module(part, nn.Module())
            mod = mod._modules[part]
        mod.register_parameter(leaf, nn.Parameter(torch.empty(self.E, *spec.shape)))

    @torch.no_grad()
    def initialise(self, seeds: list[int], init_scales: list[float], dtype: torch.dtype) -> None:
        """Member e, parameter by parameter from Generator(seeds[e]): N(0, std^2) or
        U(-std, std), times init_scale[e]; zeros and ones (biases, gains) as they are."""
        assert len(seeds) == len(init_scales) == self.E
        for e, (seed, alpha) in enumerate(zip(seeds, init_scales)):
            g = torch.Generator().manual_seed(int(seed))
            for name, spec in self.specs.items():
                shape = drawn_shape(spec)
                if spec.init == "normal":
                    w = torch.randn(shape, generator=g, dtype=torch.float64) * (spec.std * alpha)
                elif spec.init == "uniform":
                    u = torch.rand(shape, generator=g, dtype=torch.float64)
                    w = (u * 2 - 1) * (spec.std * alpha)
                elif spec.init == "zeros":
                    w = torch.zeros(shape, dtype=torch.float64)
                else:
                    w = torch.ones(shape, dtype=torch.float64)
                param = self.get_parameter(name)
                param.data[e] = to_layout(w, spec).to(param.dtype)
        self.to(dtype)

    def param_groups(self) -> dict[str, str]:
        """name -> group ("embed" | "body" | "hidden")."""
        return {n: s.group for n, s in self.specs.items()}

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights saved by an earlier layout of this model, in the current one (a model
        whose layout never changed returns them as they are)."""
        return state

    def upgrade_flat(self, flat: torch.Tensor) -> torch.Tensor:
        """A per-coordinate state (.., P) of an earlier layout (optimizer moments, method
        buffers), in the current coordinate order."""
        return flat

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return super().load_state_dict(self.upgrade_state_dict(dict(state_dict)), strict=strict, assign=assign)


def gather_rows(table: torch.Tensor, idx: torch.Tensor, per_member: bool) -> torch.Tensor:
    """Rows of a per-member table: table (E, R, *k).

    ``per_member=False``: idx (*s) is shared by all members -> (E, *s, *k).
    ``per_member=True``:  idx (E, *s) holds each member's own rows -> (E, *s, *k).
    One ``index_select`` along dim 0 of the (E * R, *k) view: its backward (an index_add
    along dim 0) is several times faster on CPU than advanced indexing or a gather along
    dim 1.
    """
    E, R = table.shape[:2]
    k = table.shape[2:]
    flat = table.reshape(E * R, *k)
    if not per_member:
        if E == 1:
            return flat.index_select(0, idx.reshape(-1)).view(1, *idx.shape, *k)
        idx = idx.expand(E, *idx.shape)
    offsets = (torch.arange(E, device=idx.device) * R).view(E, *([1] * (idx.dim() - 1)))
    return flat.index_select(0, (idx + offsets).reshape(-1)).view(*idx.shape, *k)


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-member LayerNorm: x (E, ..., d), w/b (E, d). One path for every E (the fused
    kernel's own affine map would reduce the gradients of w and b in another order when
    E = 1, and a member would no longer equal its single run bit for bit)."""
    shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[1],)
    return torch.addcmul(b.view(shape), F.layer_norm(x, x.shape[-1:], eps=eps), w.view(shape))


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Per-member affine map: x (E, ..., i), w (E, i, o), b (E, o) -> (E, ..., o).

    Batch invariance: member e gets the same bits whatever E is. The one exception BLAS
    makes is a lone matrix-vector product (E = 1 with a side of length 1: PyTorch sends it
    to gemv, whose rounding differs from the batched kernel's); such calls are padded to
    two members so that they take the batched kernel too.
    """
    E, i = x.shape[0], x.shape[-1]
    x3 = x.reshape(E, -1, i)
    pad = E == 1 and min(x3.shape[1], i, w.shape[-1]) == 1
    if pad:
        x3, w = x3.expand(2, *x3.shape[1:]), w.expand(2, *w.shape[1:])
        b = None if b is None else b.expand(2, *b.shape[1:])
    y = torch.bmm(x3, w) if b is None else torch.baddbmm(b.unsqueeze(1), x3, w)
    if pad:
        y = y[:1]
    return y.view(*x.shape[:-1], w.shape[-1])


ACTS = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}
