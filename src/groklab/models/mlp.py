"""MLP-family models with a leading ensemble axis E.

* :class:`ToyModel` (Liu et al. 2022, "Towards Understanding Grokking", Sec. 2): a learned
  representation E_i per symbol; the pair (a, b) is encoded as E_a + E_b and decoded by an
  MLP. The representation and decoder can have their own learning rates
  (``optim.embed_lr_mult``) and weight decays (``optim.embed_wd_mult``).
* :class:`MLPModel`: concatenated embeddings [E_a, E_b] (learned, or fixed one-hot), then an
  MLP.

Both read the operands from the token layout: a at position 0, b at position T - 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from groklab.models.common import ACTS, EnsembleModule, ParamSpec, gather_rows, linear


class _Decoder(EnsembleModule):
    """An MLP ``d_in -> hidden... -> n_classes`` declared on an ensemble module."""

    def _declare_decoder(self, d_in: int, hidden: list[int], n_classes: int) -> None:
        widths = [d_in, *hidden, n_classes]
        self.n_dec = len(widths) - 1
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.declare(f"dec_{i}_W", ParamSpec((w_in, w_out), std=1 / math.sqrt(w_in)))
            self.declare(f"dec_{i}_b", ParamSpec((w_out,), init="zeros"))

    def _decode(self, h: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        for i in range(self.n_dec):
            h = linear(h, getattr(self, f"dec_{i}_W"), getattr(self, f"dec_{i}_b"))
            if i < self.n_dec - 1:
                h = ACTS[self.act_name](h)
                if cache is not None:
                    cache[f"dec.{i}.hook_post"] = h
        return h


class ToyModel(_Decoder):
    def __init__(self, n_members: int, n_symbols: int, n_classes: int, d_embed: int,
                 hidden: list[int], act: str = "relu", embed_init_scale: float = 1.0):
        super().__init__(n_members)
        self.act_name = act
        self.declare("W_E", ParamSpec((n_symbols, d_embed), std=embed_init_scale / math.sqrt(d_embed),
                                      group="embed"))
        self._declare_decoder(d_embed, hidden, n_classes)

    def forward(self, tokens: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """tokens (N, T) or (E, N, T) -> logits (E, N, C)."""
        pm = tokens.dim() == 3
        h = gather_rows(self.W_E, tokens[..., 0], pm) + gather_rows(self.W_E, tokens[..., -2], pm)
        if cache is not None:
            cache["hook_embed_sum"] = h
        return self._decode(h, cache)


class MLPModel(_Decoder):
    def __init__(self, n_members: int, n_symbols: int, n_classes: int, d_embed: int,
                 hidden: list[int], act: str = "relu", embed: str = "learned", embed_init_scale: float = 1.0):
        super().__init__(n_members)
        self.act_name, self.embed_kind, self.n_symbols = act, embed, n_symbols
        if embed == "learned":
            self.declare("W_E", ParamSpec((n_symbols, d_embed), std=embed_init_scale / math.sqrt(d_embed),
                                          group="embed"))
            d_in = 2 * d_embed
        else:
            d_in = 2 * n_symbols
        self._declare_decoder(d_in, hidden, n_classes)

    def _encode(self, tok: torch.Tensor, pm: bool) -> torch.Tensor:
        if self.embed_kind == "learned":
            return gather_rows(self.W_E, tok, pm)
        dtype = self.dec_0_W.dtype
        onehot = F.one_hot(tok, self.n_symbols).to(dtype)
        return onehot if pm else onehot.expand(self.dec_0_W.shape[0], *onehot.shape)  # (E, N, n)

    def forward(self, tokens: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        pm = tokens.dim() == 3
        h = torch.cat([self._encode(tokens[..., 0], pm), self._encode(tokens[..., -2], pm)], dim=-1)
        return self._decode(h, cache)
