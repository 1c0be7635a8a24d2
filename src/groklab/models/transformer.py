"""Decoder-only transformer with a leading ensemble axis E, and an exact fast path.

Shapes: E members, N sequences, T positions, d = d_model, H heads of size dh = d / H,
C output classes, V vocabulary. Parameters carry TransformerLens's names and per-head
shapes, the member axis E first (``model.state_dict()`` keys are TL's keys):

    embed.W_E (V, d)   pos_embed.W_pos (T, d)            embeddings (learned positions)
    blocks.{l}.attn.W_Q/W_K/W_V (H, d, dh)  .W_O (H, dh, d)  attention (no biases, as Nanda et al.)
    blocks.{l}.mlp.W_in (d, d_mlp) .b_in  .W_out (d_mlp, d) .b_out      MLP
    blocks.{l}.ln1.w/.b, ln2.w/.b, ln_final.w/.b      pre-LN (only if layer_norm)
    unembed.W_U (d, C)                                untied unembedding

The products use each attention matrix whole, (d, d) with the heads side by side
(:meth:`Transformer.p`); run directories written before this layout (flat names such as
``blocks_0_W_Q``, whole matrices) load through :meth:`Transformer.upgrade_state_dict`.

Init (``init``): every matrix N(0, 1/fan_in) ("fan_in"), or as Nanda et al.'s code
("nanda": W_out N(0, 1/d) and W_U N(0, 1/C) instead).

Two implementations of the same function (``model.impl``):

* ``reference`` computes every position of every layer plainly, logits at every position,
  and returns the last. It can record named activations (``cache=``) for analysis.
* ``fast`` computes only what the readout at the last position needs, exactly:
  1. Prefix positions. Positions ``0..P-1`` whose tokens after position 0 are constant
     (``a op`` in ``a op b =``; just ``a`` in ``a b =``) depend on token 0 alone: every
     layer at those positions is computed once per distinct first token, then gathered.
  2. First-layer projections. The first layer's input ``W_E[tok] + W_pos[pos]`` takes
     one value per (position, token) that occurs: Q, K, V are computed on that small
     table, and each sequence's attention reads its rows of it (``row_attention``: a
     fused Numba kernel on the CPU, gathers elsewhere).
  3. The last layer runs at the last position only (query, attention output, MLP,
     unembed); its attention reads keys and values from the rows of the prefix and free
     positions, as rows again.
  4. Without layer norm after attention, the linear maps after the attention output are
     folded: ``z W_O W_in`` and ``z W_O W_U`` use the products ``W_O W_in``, ``W_O W_U``
     and ``W_out W_U``, computed once per call.
  ``tests/unit/test_transformer.py`` checks logits and gradients of both agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from groklab.models.common import (
    ACTS,
    EnsembleModule,
    ParamSpec,
    drawn_shape,
    gather_rows,
    layer_norm,
    linear,
    to_layout,
)
from groklab.models.row_attention import broadcast_attention, row_attention


class Transformer(EnsembleModule):
    def __init__(
        self,
        n_members: int,
        vocab_size: int,
        n_ctx: int,
        n_classes: int,
        n_layers: int = 1,
        d_model: int = 128,
        n_heads: int = 4,
        d_mlp: int = 512,
        act: str = "relu",
        layer_norm: bool = False,
        impl: str = "fast",
        init: str = "fan_in",
        attn_bias: bool = False,
        residual: str = "input",
    ):
        super().__init__(n_members)
        self.attn_bias, self.residual = attn_bias, residual
        self.V, self.T, self.C = vocab_size, n_ctx, n_classes
        self.L, self.d, self.H, self.d_mlp = n_layers, d_model, n_heads, d_mlp
        self.dh = d_model // n_heads
        self.act_name, self.ln, self.impl = act, layer_norm, impl
        d, H, dh = d_model, n_heads, self.dh
        # init "torch": the PyTorch modules of Grokfast's main.py, as they initialise themselves:
        # nn.Embedding N(0, 1); nn.MultiheadAttention's in_proj xavier-uniform over (3d, d),
        # its biases 0, its out_proj nn.Linear's U(+-1/sqrt(d)); nn.Linear U(+-1/sqrt(fan_in)),
        # weights and biases; the head nn.Linear(d, C, bias=False) U(+-1/sqrt(d))
        torch_init = init == "torch"

        def lin(shape, fan_in, std, **kw):  # a weight: fan-in normal, or nn.Linear's uniform
            if torch_init:
                return ParamSpec(shape, init="uniform", std=1 / math.sqrt(fan_in), **kw)
            return ParamSpec(shape, std=std, **kw)

        def bias(shape, fan_in):  # zeros, or nn.Linear's uniform
            if torch_init:
                return ParamSpec(shape, init="uniform", std=1 / math.sqrt(fan_in))
            return ParamSpec(shape, init="zeros")

        emb_std = 1.0 if torch_init else 1 / math.sqrt(d)
        self.declare("embed.W_E", ParamSpec((vocab_size, d), std=emb_std, group="embed"))
        self.declare("pos_embed.W_pos", ParamSpec((n_ctx, d), std=emb_std))
        self.blocks = nn.ModuleList(nn.Module() for _ in range(n_layers))  # model.blocks[l].attn.W_Q, as TL
        for l in range(n_layers):
            qkv = ParamSpec((H, d, dh), init="uniform" if torch_init else "normal",  # torch: xavier over (3d, d)
                            std=math.sqrt(6 / (4 * d)) if torch_init else 1 / math.sqrt(d), layout="heads_in",
                            group="hidden")
            for name in ("W_Q", "W_K", "W_V"):
                self.declare(f"blocks.{l}.attn.{name}", qkv)
            self.declare(f"blocks.{l}.attn.W_O", lin((H, dh, d), d, 1 / math.sqrt(d), layout="heads_out",
                                                     group="hidden"))
            if attn_bias:  # nn.MultiheadAttention's, zeros at init
                for name in ("b_Q", "b_K", "b_V"):
                    self.declare(f"blocks.{l}.attn.{name}", ParamSpec((H, dh), init="zeros"))
                self.declare(f"blocks.{l}.attn.b_O", ParamSpec((d,), init="zeros"))
            self.declare(f"blocks.{l}.mlp.W_in", lin((d, d_mlp), d, 1 / math.sqrt(d), group="hidden"))
            self.declare(f"blocks.{l}.mlp.b_in", bias((d_mlp,), d))
            # Nanda et al.'s code draws every matrix with std 1/sqrt(d_model) but W_U
            out_std = 1 / math.sqrt(d if init == "nanda" else d_mlp)
            self.declare(f"blocks.{l}.mlp.W_out", lin((d_mlp, d), d_mlp, out_std, group="hidden"))
            self.declare(f"blocks.{l}.mlp.b_out", bias((d,), d_mlp))
            if layer_norm:
                for ln in ("ln1", "ln2"):
                    self.declare(f"blocks.{l}.{ln}.w", ParamSpec((d,), init="ones"))
                    self.declare(f"blocks.{l}.{ln}.b", ParamSpec((d,), init="zeros"))
        if layer_norm:
            self.declare("ln_final.w", ParamSpec((d,), init="ones"))
            self.declare("ln_final.b", ParamSpec((d,), init="zeros"))
        self.declare("unembed.W_U", lin((d, n_classes), d, 1 / math.sqrt(n_classes if init == "nanda" else d)))
        self._legacy = _legacy_names(n_layers, layer_norm)

    # ------------------------------------------------------------------ pieces

    @property
    def needs_reference(self) -> bool:
        """Attention biases and the normed residual exist in the reference path only."""
        return self.attn_bias or self.residual == "normed"

    W_E = property(lambda self: self.embed.W_E)  # (E, V, d)
    W_pos = property(lambda self: self.pos_embed.W_pos)  # (E, T, d)
    W_U = property(lambda self: self.unembed.W_U)  # (E, d, C)
    lnf_w = property(lambda self: self.ln_final.w)
    lnf_b = property(lambda self: self.ln_final.b)

    def p(self, l: int, name: str) -> torch.Tensor:
        """Block l's parameter by its short name (W_Q .. W_O, W_in .. b_out, ln1_w ..). The
        attention weights come as the whole (E, d, d) matrices the products use: W_Q, W_K,
        W_V with the heads side by side in the columns ((E, H, d, dh) -> (E, d, H dh), a
        copy), W_O with the heads stacked in the rows ((E, H, dh, d) -> (E, H dh, d), a view)."""
        sub, leaf = _BLOCK[name].split(".")
        w = getattr(getattr(self.blocks[l], sub), leaf)  # a tensor, under functional_call too
        if name == "W_O":
            return w.reshape(w.shape[0], self.d, self.d)
        if name in ("W_Q", "W_K", "W_V"):
            return w.transpose(1, 2).reshape(w.shape[0], self.d, self.d)
        if name in ("b_Q", "b_K", "b_V"):
            return w.reshape(w.shape[0], self.d)
        return w

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights of runs written before the TransformerLens layout (flat names such as
        ``blocks_0_W_Q``, whole (E, d, d) attention matrices) in today's names and shapes."""
        if not any(k in self._legacy for k in state):
            return state
        out = {}
        for k, v in state.items():
            new = self._legacy.get(k, k)
            out[new] = to_layout(v, self.specs[new]) if new in self.specs else v
        return out

    def upgrade_flat(self, flat: torch.Tensor) -> torch.Tensor:
        """Per-coordinate state (.., P) written in the earlier layout's coordinate order (each
        attention matrix whole, row-major), in today's order (per head)."""
        parts, off = [], 0
        for name, spec in self.specs.items():
            n = math.prod(spec.shape)
            seg = flat[..., off: off + n]
            if spec.layout != "same":
                seg = to_layout(seg.reshape(*seg.shape[:-1], *drawn_shape(spec)), spec).reshape(seg.shape)
            parts.append(seg)
            off += n
        if off != flat.shape[-1]:
            raise ValueError(f"a flat state of {flat.shape[-1]} coordinates for a model of {off}")
        return torch.cat(parts, dim=-1)

    def _ln(self, x: torch.Tensor, l: int | None, which: str) -> torch.Tensor:
        if not self.ln:
            return x
        if l is None:
            return layer_norm(x, self.lnf_w, self.lnf_b)
        return layer_norm(x, self.p(l, f"{which}_w"), self.p(l, f"{which}_b"))

    def _w_qkv(self, l: int) -> torch.Tensor:
        return torch.cat([self.p(l, "W_Q"), self.p(l, "W_K"), self.p(l, "W_V")], dim=-1)  # (E, d, 3d)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(E, N, T, d) -> (E, N, H, T, dh)"""
        E, N, T, _ = x.shape
        return x.view(E, N, T, self.H, self.dh).transpose(2, 3)

    def _attend(self, q, k, v, q_pos, k_pos, cache=None, l=0):
        """q (E, N, Tq, d), k/v (E, N, Tk, d) at absolute positions q_pos/k_pos -> z (E, N, Tq, d)."""
        E, N, Tq, d = q.shape
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(self.dh)  # (E, N, H, Tq, Tk)
        future = k_pos.view(1, -1) > q_pos.view(-1, 1)  # (Tq, Tk)
        if future.any():
            scores = scores.masked_fill(future, float("-inf"))
        pattern = scores.softmax(dim=-1)
        if cache is not None:
            cache[f"blocks.{l}.attn.hook_pattern"] = pattern
        z = pattern @ vh  # (E, N, H, Tq, dh)
        return z.transpose(2, 3).reshape(E, N, Tq, d)

    def _attend_few(self, q, k, v, q_pos, k_pos):
        """As :meth:`_attend` for a few queries, by broadcast products. q (E, N, Tq, d),
        k/v (E, N, Tk, d)."""
        future = k_pos.view(1, -1) > q_pos.view(-1, 1)  # (Tq, Tk)
        return broadcast_attention(q, k, v, self.H, future if future.any() else None)

    def _mlp(self, x: torch.Tensor, l: int, cache=None) -> torch.Tensor:
        h = self._ln(x, l, "ln2")
        pre = linear(h, self.p(l, "W_in"), self.p(l, "b_in"))
        post = ACTS[self.act_name](pre)
        if cache is not None:
            cache[f"blocks.{l}.mlp.hook_pre"] = pre
            cache[f"blocks.{l}.mlp.hook_post"] = post
        return linear(post, self.p(l, "W_out"), self.p(l, "b_out"))

    def _b_qkv(self, l: int) -> torch.Tensor | None:
        if not self.attn_bias:
            return None
        return torch.cat([self.p(l, "b_Q"), self.p(l, "b_K"), self.p(l, "b_V")], dim=-1)  # (E, 3d)

    def _block(self, x: torch.Tensor, l: int, pos: torch.Tensor, cache=None) -> torch.Tensor:
        """A whole block at every position of x (E, N, T, d). ``residual="normed"``: the
        attention's output is added to the normalised input (Grokfast's main.py Block:
        ``x = self.ln_1(x); x = x + attn(x)``), not to the block's input."""
        h = self._ln(x, l, "ln1")
        q, k, v = linear(h, self._w_qkv(l), self._b_qkv(l)).chunk(3, dim=-1)
        z = self._attend(q, k, v, pos, pos, cache, l)
        b_O = self.p(l, "b_O") if self.attn_bias else None
        x = (h if self.residual == "normed" else x) + linear(z, self.p(l, "W_O"), b_O)
        if cache is not None:
            cache[f"blocks.{l}.hook_resid_mid"] = x
        return x + self._mlp(x, l, cache)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        per_member = tokens.dim() == 3
        x = gather_rows(self.W_E, tokens, per_member)  # (E, N, T, d)
        return x + self.W_pos[:, None, : tokens.shape[-1]]

    # ------------------------------------------------------------------ forward

    def forward(self, tokens: torch.Tensor, cache: dict | None = None, last_only: bool = False) -> torch.Tensor:
        """tokens (N, T) shared by all members, or (E, N, T) per member -> logits (E, N, C)
        at the last position. ``cache`` collects named activations: every position's, by
        the reference path; with ``last_only`` the fast path records just the last layer's
        MLP activations at the last position (``blocks.{L-1}.mlp.hook_pre/post``, (E, N, d_mlp))."""
        if self.impl == "reference" or (cache is not None and not last_only) or self.needs_reference:
            return self.forward_reference(tokens, cache)
        return self.forward_fast(tokens, cache)

    def forward_reference(self, tokens: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = self._embed(tokens)  # (E, N, T, d)
        pos = torch.arange(x.shape[2], device=x.device)
        if cache is not None:
            cache["hook_embed"] = x
        for l in range(self.L):
            x = self._block(x, l, pos, cache)
        x = self._ln(x, None, "lnf")
        if cache is not None:
            cache["hook_resid_final"] = x
        logits = linear(x, self.W_U)  # (E, N, T, C): every position, plainly
        return logits[:, :, -1]

    def forward_fast(self, tokens: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        pm = tokens.dim() == 3  # a different batch for each member?
        T, d, dev = tokens.shape[-1], self.d, tokens.device
        k_pos = torch.arange(T, device=dev)

        # The first layer's input W_E[tok] + W_pos[pos] takes one value per (position,
        # token) that occurs: project that small table, gather per sequence.
        rows, row_tok, row_pos, counts = self._rows(tokens)  # rows (.., N, T) into R table rows
        X0 = gather_rows(self.W_E, row_tok, False) + gather_rows(self.W_pos, row_pos, False)  # (E, R, d)
        qkv0 = linear(self._ln(X0, 0, "ln1"), self._w_qkv(0))  # (E, R, 3d)
        if self.L == 1:
            return self._forward_fast_one_layer(X0, qkv0, rows, pm, cache)

        # Prefix positions 0..P-1 (tokens after position 0 constant) depend on the first
        # token alone: every layer there runs once per distinct first token (U of them).
        # The prefix rows (U, P) and the free rows (.., N, F) share each layer's matrix
        # products (one call on both sets of rows), only their attention differs.
        E, P = X0.shape[0], _prefix_len(counts)
        # The table's first U rows are the distinct first tokens, in order: a sequence's row
        # at position 0 is its first token's index. Then the constant positions' rows.
        U, first_idx = counts[0], rows[..., 0]  # (.., N)
        const_rows = rows.reshape(-1, T)[0, 1:P]
        pre_rows = torch.cat([torch.arange(U, device=dev)[:, None], const_rows.expand(U, P - 1)], dim=1)  # (U, P)
        pre_pos, free_pos = k_pos[:P], k_pos[P:]
        F_, N = T - P, rows.shape[-2]

        # Layer 0: queries, keys and values are table rows.
        if not pm and P == F_:
            # One attention call for both sets: U prefix sequences (queries at positions
            # 0..P-1; as keys at positions >= P they take any rows, masked) and N free ones.
            q_all = torch.cat([pre_rows, rows[:, P:]])  # (U + N, P)
            k_all = torch.cat([torch.cat([pre_rows, rows[:1, P:].expand(U, F_)], dim=1), rows])  # (U + N, T)
            q_pos_all = torch.cat([pre_pos.expand(U, P), free_pos.expand(N, F_)])  # (U + N, P)
            z = self._first_attention(qkv0, q_all, k_all, k_pos <= q_pos_all[..., None]).reshape(E, (U + N) * P, d)
            x = gather_rows(X0, q_all, False).reshape(E, (U + N) * P, d)  # (E, U*P + N*F, d)
        else:
            z_pre = self._first_attention(qkv0, pre_rows, pre_rows, pre_pos <= pre_pos[:, None])  # (E, U, P, d)
            z_free = self._first_attention(qkv0, rows[..., P:], rows, k_pos <= free_pos[:, None])  # (E, N, F, d)
            x = torch.cat([gather_rows(X0, pre_rows, False).reshape(E, U * P, d),
                           gather_rows(X0, rows[..., P:], pm).reshape(E, N * F_, d)], dim=1)  # (E, U*P + N*F, d)
            z = torch.cat([z_pre.reshape(E, U * P, d), z_free.reshape(E, N * F_, d)], dim=1)
        x = x + linear(z, self.p(0, "W_O"))
        x = x + self._mlp(x, 0)
        for l in range(1, self.L):
            h = self._ln(x, l, "ln1")
            if l < self.L - 1:
                q, k, v = linear(h, self._w_qkv(l)).chunk(3, dim=-1)  # (E, U*P + N*F, d) each
                pre = lambda t: t[:, : U * P].reshape(E, U, P, d)  # noqa: E731
                free = lambda t: t[:, U * P :].reshape(E, N, F_, d)  # noqa: E731
                z_pre = self._attend_few(pre(q), pre(k), pre(v), pre_pos, pre_pos)
                k_all = torch.cat([gather_rows(pre(k), first_idx, pm), free(k)], dim=2)  # (E, N, T, d)
                v_all = torch.cat([gather_rows(pre(v), first_idx, pm), free(v)], dim=2)
                z_free = self._attend_few(free(q), k_all, v_all, free_pos, k_pos)
                z = torch.cat([z_pre.reshape(E, U * P, d), z_free.reshape(E, N * F_, d)], dim=1)
                x = x + linear(z, self.p(l, "W_O"))
                x = x + self._mlp(x, l)
            else:  # the last layer: the last position only
                w_kv = torch.cat([self.p(l, "W_K"), self.p(l, "W_V")], dim=-1)  # (E, d, 2d)
                kv = linear(h, w_kv)  # (E, U*P + N*F, 2d): keys and values of every row
                h_last = h[:, U * P :].reshape(E, N, F_, d)[:, :, -1]  # (E, N, d)
                q = linear(h_last, self.p(l, "W_Q"))
                # Sequence n's keys: its first token's P prefix rows, then its own F rows.
                k_pre = first_idx[..., None] * P + pre_pos  # (.., N, P)
                k_free = U * P + torch.arange(N, device=dev)[:, None] * F_ + torch.arange(F_, device=dev)  # (N, F)
                k_rows = torch.cat([k_pre, k_free.expand(*k_pre.shape[:-1], F_)], dim=-1)  # (.., N, T)
                q_rows = torch.arange(N, device=dev)[:, None]  # (N, 1): row n of q
                z = row_attention(q, kv, q_rows, k_rows, None, self.H, (d, 0, 0, d))[:, :, 0]  # (E, N, d)
                x_last = x[:, U * P :].reshape(E, N, F_, d)[:, :, -1]
                return self._readout(x_last, z, l, cache=cache)
        raise AssertionError("unreachable")

    def _forward_fast_one_layer(self, X0, qkv0, rows, pm, cache=None) -> torch.Tensor:
        """One layer: attention at the last position straight from the table, then the
        folded readout."""
        z = self._first_attention(qkv0, rows[..., -1:], rows, None)[:, :, 0]  # (E, N, d): the last query sees every key
        return self._readout(X0, z, 0, rows[..., -1], pm, cache)

    def _first_attention(self, qkv0, q_rows, k_rows, allowed) -> torch.Tensor:
        """First-layer attention, its queries, keys and values rows of the (E, R, 3d) table:
        q_rows (.., N, Tq), k_rows (.., N, Tk), allowed (.., Tq, Tk) or None -> z (E, N, Tq, d),
        before W_O."""
        return row_attention(qkv0, qkv0, q_rows, k_rows, allowed, self.H, (self.d, 0, self.d, 2 * self.d))

    def set_row_support(self, sequences: torch.Tensor) -> None:
        """Give the fast path's table a row for every (position, token) of ``sequences`` (the
        task's whole table), whether a batch holds it or not. Its size and order then no
        longer depend on the batch, so neither does the contraction length of any weight
        gradient: a member of an ensemble, whose table would otherwise hold the rows of every
        member's batch, computes bit for bit what its single run computes. Rows absent from
        a batch get exact zero gradients. (Not a buffer: saved weights are unchanged.)"""
        T = sequences.shape[-1]
        key = sequences.reshape(-1, T).cpu() + self.V * torch.arange(T)
        self._row_support = torch.zeros(T * self.V, dtype=torch.long).index_fill_(0, key.reshape(-1), 1)
        self._rows_cache = None

    def _rows(self, tokens: torch.Tensor):
        """:func:`_row_table`, cached while the same unchanged tokens tensor comes back
        (full-batch training passes one tensor every step)."""
        c = getattr(self, "_rows_cache", None)
        if c is not None and c[0] is tokens and c[1] == tokens._version:
            return c[2]
        support = getattr(self, "_row_support", None)
        if support is not None and support.device != tokens.device:
            support = self._row_support = support.to(tokens.device)
        out = _row_table(tokens, self.V, support)
        self._rows_cache = (tokens, tokens._version, out)
        return out

    def _readout(self, x_last, z, l, rows_last=None, per_member=False, cache=None) -> torch.Tensor:
        """Last block after attention, at the last position only -> logits (E, N, C).

        z (E, N, d) is the attention output before W_O. x_last is the residual at the last
        position, (E, N, d); or, with ``rows_last``, a table (E, R, d) to gather it from.
        """
        W_O, W_U = self.p(l, "W_O"), self.W_U
        if self.ln:
            if rows_last is not None:
                x_last = gather_rows(x_last, rows_last, per_member)
            x = x_last + linear(z, W_O)
            x = x + self._mlp(x, l, cache)
            return linear(self._ln(x, None, "lnf"), W_U)

        # No layer norm: fold the linear maps that follow the attention output, and add the
        # residual's own terms (x_last W_in + b_in, x_last W_U + b_out W_U) as GEMM inputs.
        W_in, b_in = self.p(l, "W_in"), self.p(l, "b_in")
        W_out, b_out = self.p(l, "W_out"), self.p(l, "b_out")
        x_in = linear(x_last, W_in, b_in)  # (E, N or R, d_mlp)
        # (x + b_out) W_U in one product: a separate b_out W_U is a batched matrix-vector
        # product whose rounding depends on the number of members (E = 1 vs E > 1)
        x_u = linear(x_last + b_out[:, None], W_U)  # (E, N or R, C)
        if rows_last is not None:
            x_in, x_u = _rows_or_broadcast(x_in, rows_last, per_member), _rows_or_broadcast(x_u, rows_last, per_member)
        pre = torch.baddbmm(x_in, z, W_O @ W_in)  # (E, N, d_mlp)
        post = ACTS[self.act_name](pre)
        if cache is not None:
            cache[f"blocks.{l}.mlp.hook_pre"], cache[f"blocks.{l}.mlp.hook_post"] = pre, post
        return torch.baddbmm(torch.baddbmm(x_u, z, W_O @ W_U), post, W_out @ W_U)  # (E, N, C)


# A block's parameters: short name -> TransformerLens's name under ``blocks.{l}``.
_BLOCK = {"W_Q": "attn.W_Q", "W_K": "attn.W_K", "W_V": "attn.W_V", "W_O": "attn.W_O",
          "b_Q": "attn.b_Q", "b_K": "attn.b_K", "b_V": "attn.b_V", "b_O": "attn.b_O",
          "W_in": "mlp.W_in", "b_in": "mlp.b_in", "W_out": "mlp.W_out", "b_out": "mlp.b_out",
          "ln1_w": "ln1.w", "ln1_b": "ln1.b", "ln2_w": "ln2.w", "ln2_b": "ln2.b"}


def _legacy_names(n_layers: int, layer_norm: bool) -> dict[str, str]:
    """The flat parameter names of earlier versions (run directories before the
    TransformerLens layout) -> today's."""
    names = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U"}
    for l in range(n_layers):
        names.update({f"blocks_{l}_{k}": f"blocks.{l}.{v}" for k, v in _BLOCK.items()
                      if layer_norm or not k.startswith("ln")})
    if layer_norm:
        names.update({"lnf_w": "ln_final.w", "lnf_b": "ln_final.b"})
    return names


def _rows_or_broadcast(table: torch.Tensor, rows: torch.Tensor, per_member: bool) -> torch.Tensor:
    """Gather rows of table (E, R, k); when every index is the same row, a broadcastable
    (E, 1, k) view instead of N copies."""
    flat = rows.reshape(-1)
    if bool((flat == flat[0]).all()):
        return table[:, flat[0]].unsqueeze(1)
    return gather_rows(table, rows, per_member)


def _prefix_len(counts: list[int]) -> int:
    """Leading positions whose tokens after position 0 are the same in every sequence (one
    distinct token each, by ``counts`` from :func:`_row_table`): at least 1, at most T - 1."""
    P = 1
    while P < len(counts) - 1 and counts[P] == 1:
        P += 1
    return P


def _row_table(tokens: torch.Tensor, vocab: int, support: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """One table row per (position, token) that occurs in ``tokens`` (.., N, T) or is marked
    in ``support`` (T * vocab,), ordered by position, then token.

    Returns rows (.., N, T) indexing the table, each row's token and position, and the
    number of distinct tokens at each position. Without a sort: the (position, token) pairs
    that occur are marked in a T x vocab table, whose running count numbers them.
    """
    T = tokens.shape[-1]
    key = tokens + vocab * torch.arange(T, device=tokens.device)  # (.., N, T): position * vocab + token
    seen = torch.zeros(T * vocab, dtype=torch.long, device=tokens.device).index_fill_(0, key.reshape(-1), 1)
    if support is not None:
        seen = seen.bitwise_or_(support)
    rows = (seen.cumsum(0) - 1).index_select(0, key.reshape(-1)).view_as(key)
    occurring = seen.nonzero().squeeze(1)  # (R,)
    return rows, occurring % vocab, occurring // vocab, seen.view(T, vocab).sum(1).tolist()
