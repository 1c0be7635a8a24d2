"""MLP-family models with a leading ensemble axis E, and the MLP's input encoders.

* :class:`ToyModel` (Liu et al. 2022, "Towards Understanding Grokking", Sec. 2): a learned
  representation E_i per symbol; the pair (a, b) is encoded as E_a + E_b and decoded by an
  MLP. The representation and decoder can have their own learning rates
  (``optim.embed_lr_mult``) and weight decays (``optim.embed_wd_mult``).
* :class:`MLPModel`: concatenated encodings [enc(a), enc(b)], then an MLP. ``model.embed``
  picks the encoder: ``learned`` (a trained table W_E, the default) or one of the fixed
  (never trained) codes below, each a table (p, width) held as a buffer, not a parameter,
  so the optimizer never sees it.

Both read the operands from the token layout: a at position 0, b at position T - 2.

Fixed encoders, symbol x in 0..p-1 (p = the number of symbols, n = ``model.d_embed``)::

    onehot      e_x                                                 width p
    cyclic      [cos(2π·1x/p), sin(2π·1x/p), ..., cos(2π·Kx/p), sin(2π·Kx/p)],  K = n/2
                (frequencies 1..K, interleaved; n even and K <= (p-1)/2)      width n
    scalar      [x / (p-1)]                                          width 1
    scalar_sdr  n bits, w = round(n/3) of them on: the block [s, s+w) with
                s = round(x (n-w) / (p-1))   (needs n - w >= p - 1)   width n
    cyclic_sdr  R = n // p rings of m = n // R bits (spare bits stay 0); ring r = 1..R
                is frequency r: the arc of w_r = round(m/3) bits starting at
                round(m (r·x mod p) / p), wrapping around   (needs n >= p)    width n

The SDR codes follow the grokking-challenge thread (``/work/shared/seeds/004_...``): a dense
"VarCycleEncoder" code (its definition is not in the thread; here: cycles of periods p/r)
"SDR-ified" by setting the highest values to 1, ~1/3 of the bits on (its 133/400). Each
scalar_sdr block / cyclic_sdr arc is the top-w of a dense bump around its own middle
(``-|i - c|``, resp. ``cos`` of the angle from c on the ring). ``cyclic_sdr`` and
``scalar_sdr`` binarise each operand and concatenate the two codes, like every MLPModel
input; ``cyclic_sdr_sum`` does what the thread did: the two operands' dense rings
(:func:`cyclic_dense_code`) are summed and the sum binarised (top round(n/3) bits), one
n-bit code per pair.

Every fixed encoder except onehot carries prior knowledge of the task (the order or the
cyclic structure of Z_p): :func:`uses_prior_knowledge` says so, and ``groklab bench``
ranks such recipes apart.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from groklab.models.common import ACTS, EnsembleModule, ParamSpec, gather_rows, linear

FIXED_EMBEDS = ("onehot", "cyclic", "scalar", "cyclic_sdr", "scalar_sdr", "cyclic_sdr_sum")
PRIOR_KNOWLEDGE_EMBEDS = ("cyclic", "scalar", "cyclic_sdr", "scalar_sdr", "cyclic_sdr_sum")
SUMMED_EMBEDS = ("cyclic_sdr_sum",)  # one code per pair: the operands' dense codes summed, then binarised
BIASES = ("all", "hidden", "off")  # model.bias
SDR_DENSITY = 1 / 3  # share of active bits (the thread's 133 of 400)

# --------------------------------------------------------------------------- encoders


def sdr_active_bits(n: int) -> int:
    """Active bits of an n-bit scalar_sdr code (and of each cyclic_sdr ring of n bits)."""
    return max(1, round(n * SDR_DENSITY))


def cyclic_code(x: torch.Tensor, p: int, d: int) -> torch.Tensor:
    """(N,) ints -> (N, d) float64: [cos(2πkx/p), sin(2πkx/p)] for k = 1..d/2, interleaved."""
    k = torch.arange(1, d // 2 + 1, dtype=torch.float64)
    ang = 2 * math.pi * x.to(torch.float64)[:, None] * k / p  # (N, K)
    return torch.stack([ang.cos(), ang.sin()], dim=-1).reshape(len(x), -1)  # (N, 2K)


def scalar_code(x: torch.Tensor, p: int) -> torch.Tensor:
    """(N,) ints -> (N, 1) float64: x / (p - 1), from 0 to 1."""
    return (x.to(torch.float64) / (p - 1))[:, None]


def _block(start: torch.Tensor, w: int, n: int, wrap: bool) -> torch.Tensor:
    """(N,) first bits -> (N, n) float64 with bits start..start+w-1 on (mod n if wrap)."""
    off = torch.arange(n)[None, :] - start[:, None]  # (N, n)
    if wrap:
        off = off % n
    return ((off >= 0) & (off < w)).to(torch.float64)


def scalar_sdr_code(x: torch.Tensor, p: int, n: int) -> torch.Tensor:
    """(N,) ints -> (N, n) binary: a block of w = round(n/3) bits sliding from bit 0 (x=0)
    to the last bit (x=p-1); start s = round(x (n-w) / (p-1)) (integer arithmetic)."""
    w = sdr_active_bits(n)
    start = (2 * x.long() * (n - w) + (p - 1)) // (2 * (p - 1))  # round half up
    return _block(start, w, n, wrap=False)


def _ring_starts(x: torch.Tensor, p: int, n: int) -> tuple[int, int, list[torch.Tensor]]:
    """The cyclic rings' layout: (m bits a ring, w bits an arc, the arc's first bit on each
    ring r = 1..R, R = n // p): round(m (r x mod p) / p) mod m."""
    R = max(1, n // p)
    m = n // R
    starts = [((2 * m * ((r * x.long()) % p) + p) // (2 * p)) % m for r in range(1, R + 1)]  # round half up
    return m, sdr_active_bits(m), starts


def cyclic_sdr_code(x: torch.Tensor, p: int, n: int) -> torch.Tensor:
    """(N,) ints -> (N, n) binary: R = n // p rings of m = n // R bits; on ring r (frequency
    r = 1..R) the arc of round(m/3) bits starting at round(m (r x mod p) / p), wrapping."""
    m, w, starts = _ring_starts(x, p, n)
    out = torch.cat([_block(start, w, m, wrap=True) for start in starts], dim=1)
    return torch.cat([out, out.new_zeros(len(x), n - out.shape[1])], dim=1)


def cyclic_dense_code(x: torch.Tensor, p: int, n: int) -> torch.Tensor:
    """(N,) ints -> (N, n) float64: the dense rings that :func:`cyclic_sdr_code` binarises.
    On ring r (m bits) bit i holds cos(2π (i - c) / m), c = the middle of x's arc (its start
    + (w - 1) / 2); spare bits hold -2, below any ring value, so they are never among the top."""
    m, w, starts = _ring_starts(x, p, n)
    i = torch.arange(m, dtype=torch.float64)
    mids = [start.to(torch.float64) + (w - 1) / 2 for start in starts]
    out = torch.cat([torch.cos(2 * math.pi * (i[None, :] - c[:, None]) / m) for c in mids], dim=1)
    return torch.cat([out, out.new_full((len(x), n - out.shape[1]), -2.0)], dim=1)


def binarise_top(dense: torch.Tensor, k: int) -> torch.Tensor:
    """(..., n) -> (..., n) with ones at the k largest entries of each row (ties: torch.topk's
    pick), zeros elsewhere: the thread's "SDR-ification"."""
    idx = dense.topk(k, dim=-1).indices
    return torch.zeros_like(dense).scatter_(-1, idx, 1.0)


def encoder_table(embed: str, p: int, d_embed: int) -> torch.Tensor:
    """The fixed code of every symbol 0..p-1: (p, width) float64."""
    x = torch.arange(p)
    if embed == "onehot":
        return torch.eye(p, dtype=torch.float64)
    if embed == "cyclic":
        return cyclic_code(x, p, d_embed)
    if embed == "scalar":
        return scalar_code(x, p)
    if embed == "scalar_sdr":
        return scalar_sdr_code(x, p, d_embed)
    if embed == "cyclic_sdr":
        return cyclic_sdr_code(x, p, d_embed)
    if embed == "cyclic_sdr_sum":  # dense: the pair's code is binarise_top(row a + row b)
        return cyclic_dense_code(x, p, d_embed)
    raise ValueError(f"model.embed={embed!r}: not a fixed encoder; choose from {', '.join(FIXED_EMBEDS)}")


def embed_problem(embed: str, p: int, d_embed: int) -> str | None:
    """Why ``model.d_embed`` cannot serve ``embed`` on p symbols, or None (for validation)."""
    if embed == "cyclic":
        if d_embed % 2:
            return "cyclic needs an even width (a cos and a sin per frequency)"
        if d_embed // 2 > (p - 1) // 2:
            return (f"cyclic uses frequencies 1..d_embed/2, which must not exceed (p-1)//2 = {(p - 1) // 2} "
                    f"for p={p} (higher ones repeat lower ones); use d_embed <= {2 * ((p - 1) // 2)}")
    if embed == "scalar_sdr" and d_embed - sdr_active_bits(d_embed) < p - 1:
        need = next(n for n in range(p, 3 * p + 3) if n - sdr_active_bits(n) >= p - 1)
        return f"scalar_sdr needs d_embed >= {need} bits so that each of the {p} symbols gets its own code"
    if embed in ("cyclic_sdr", "cyclic_sdr_sum") and d_embed < p:
        return f"{embed} needs d_embed >= p = {p} bits (one ring position per symbol)"
    return None


def uses_prior_knowledge(cfg) -> bool:
    """Whether a RunConfig's input encoding builds in knowledge of the task (a fixed
    cyclic or scalar code of the MLP). Learned embeddings and one-hot codes do not."""
    return cfg.model.kind == "mlp" and cfg.model.embed in PRIOR_KNOWLEDGE_EMBEDS


# --------------------------------------------------------------------------- models


class _Decoder(EnsembleModule):
    """An MLP ``d_in -> hidden... -> n_classes`` declared on an ensemble module.

    ``init="fan_in"``: weights N(0, 1/fan_in), biases 0. ``init="torch"``: PyTorch's
    ``nn.Linear`` default, weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (its
    kaiming_uniform(a=sqrt(5)) gives exactly this bound); with ``model.init_scale`` = alpha
    every one of them is multiplied by alpha, biases included: Omnigrok's init."""

    committee = 1  # K copies of every parameter (ToyModel's model.committee); see ToyModel

    def _declare_decoder(self, d_in: int, hidden: list[int], n_classes: int, init: str = "fan_in",
                         bias: str = "all", input_is_onehot: bool = False) -> None:
        """``bias`` (``model.bias``): "all" layers have one, "hidden" all but the output, "off": none.
        Every weight but the output layer's is group "hidden" (Muon's domain), the first one
        too unless ``input_is_onehot``: a first layer on a one-hot code is an embedding table."""
        if bias not in BIASES:
            raise ValueError(f"bias={bias!r}: choose from {', '.join(BIASES)}")
        widths = [d_in, *hidden, n_classes]
        self.n_dec = len(widths) - 1
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            has_b = bias == "all" or (bias == "hidden" and i < self.n_dec - 1)
            bound = 1 / math.sqrt(w_in)
            group = "hidden" if i < self.n_dec - 1 and (i > 0 or not input_is_onehot) else "body"
            k = (self.committee,) if self.committee > 1 else ()
            if init == "torch":
                self.declare(f"dec_{i}_W", ParamSpec((*k, w_in, w_out), init="uniform", std=bound, group=group))
                if has_b:
                    self.declare(f"dec_{i}_b", ParamSpec((*k, w_out), init="uniform", std=bound))
            else:
                self.declare(f"dec_{i}_W", ParamSpec((*k, w_in, w_out), std=bound, group=group))
                if has_b:
                    self.declare(f"dec_{i}_b", ParamSpec((*k, w_out), init="zeros"))

    def _copies(self, name: str) -> torch.Tensor | None:
        """Parameter ``name`` (E, ...), or for a committee its (E, K, ...) as (E·K, ...): the
        copies as members of one batched call."""
        w = getattr(self, name, None)
        return w.flatten(0, 1) if w is not None and self.committee > 1 else w

    def _decode(self, h: torch.Tensor, cache: dict | None = None, start: int = 0) -> torch.Tensor:
        for i in range(start, self.n_dec):
            h = linear(h, self._copies(f"dec_{i}_W"), self._copies(f"dec_{i}_b"))
            if i < self.n_dec - 1:
                h = ACTS[self.act_name](h)
                if cache is not None:
                    cache[f"dec.{i}.hook_post"] = h
        return h


class ParityMLP(_Decoder):
    """Michaud et al. 2023's multitask-sparse-parity network: ``Linear(n_tasks + n_bits,
    width) -> ReLU -> Linear(width, 2)`` (``hidden=[width]``; more widths, more layers), on
    rows ``(task id, bits)`` (``groklab.tasks.sparse_parity``), PyTorch's default init
    (``init="torch"``). Parameters: (n_tasks + n_bits + 1) w + 2 (w + 1), their 603 w + 2
    at 500 tasks and 100 bits.

    The first layer's input is [one-hot(task) ‖ bits]. ``first_layer="gather"`` adds row
    ``task`` of W_0 to ``bits @ W_0[n_tasks:]`` instead of multiplying the one-hot: the
    products it skips are exact zeros, so it is the same function (its sums are taken in
    another order: equal up to rounding, tested) at n_bits / (n_tasks + n_bits) of the
    work; its gradient is the same too (the rows of unseen tasks get zero).
    ``first_layer="dense"`` is the plain matrix product, for comparison."""

    def __init__(self, n_members: int, n_tasks: int, n_bits: int, hidden: list[int], n_classes: int = 2,
                 act: str = "relu", init: str = "torch", first_layer: str = "gather"):
        super().__init__(n_members)
        self.act_name, self.n_tasks, self.first_layer = act, n_tasks, first_layer
        self._declare_decoder(n_tasks + n_bits, hidden, n_classes, init, input_is_onehot=True)

    def first(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (N, 1 + n_bits) or (E, N, 1 + n_bits) -> the first layer's pre-activations (E, N, w)."""
        W, b = self.dec_0_W, self.dec_0_b
        E = W.shape[0]
        pm = rows.dim() == 3
        task, bits = rows[..., 0].long(), rows[..., 1:].to(W.dtype)
        if self.first_layer == "dense":
            x = torch.cat([F.one_hot(task, self.n_tasks).to(W.dtype), bits], -1)
            return linear(x if pm else x.expand(E, *x.shape), W, b)
        data = linear(bits if pm else bits.expand(E, *bits.shape), W[:, self.n_tasks:], b)
        return data + gather_rows(W, task, pm)

    def forward(self, rows: torch.Tensor, cache: dict | None = None, last_only: bool = False) -> torch.Tensor:
        """rows (N, 1 + n_bits) int, or per member (E, N, 1 + n_bits) -> logits (E, N, 2)."""
        h = self.first(rows)
        if self.n_dec == 1:
            return h
        h = ACTS[self.act_name](h)
        if cache is not None:
            cache["dec.0.hook_post"] = h
        return self._decode(h, cache, start=1)


class ToyModel(_Decoder):
    """Liu et al. 2022's toy model: a learned representation E_s per symbol, the pair (a, b)
    as E_a + E_b, decoded by an MLP.

    ``committee`` = K > 1 (``model.committee``): each member is a deep ensemble
    (Lakshminarayanan, Pritzel & Blundell 2017, "Simple and scalable predictive uncertainty
    estimation using deep ensembles") of K toy models, every parameter (E, K, ...), each copy
    drawn on its own from the member's generator. ``forward`` gives the committee's
    prediction, log((1/K) sum_k softmax(z_k)): log-probabilities, so cross-entropy, accuracy
    and every reader of logits take it as they are. Training does not go through it:
    ``forward(..., copies=True)`` gives every copy's logits (E, K, N, C), and the loop trains
    each copy on its own loss (:func:`groklab.training.losses.committee_rows`), so that a
    copy learns what it would alone and the copies' errors stay independent."""

    def __init__(self, n_members: int, n_symbols: int, n_classes: int, d_embed: int,
                 hidden: list[int], act: str = "relu", embed_init_scale: float = 1.0, init: str = "fan_in",
                 bias: str = "all", committee: int = 1):
        super().__init__(n_members)
        self.act_name, self.committee = act, committee
        k = (committee,) if committee > 1 else ()
        self.declare("W_E", ParamSpec((*k, n_symbols, d_embed), std=embed_init_scale / math.sqrt(d_embed),
                                      group="embed"))
        self._declare_decoder(d_embed, hidden, n_classes, init, bias)

    def forward(self, tokens: torch.Tensor, cache: dict | None = None, last_only: bool = False,
                copies: bool = False) -> torch.Tensor:
        """tokens (N, T) or (E, N, T) -> logits (E, N, C); a committee's ``copies=True``:
        (E, K, N, C). ``last_only``: the transformer's flag, here a no-op (one position)."""
        pm = tokens.dim() == 3
        a, b = tokens[..., 0], tokens[..., -2]
        K = self.committee
        if K > 1 and pm:  # member e's rows, for each of its K copies
            a, b = a.repeat_interleave(K, 0), b.repeat_interleave(K, 0)
        W_E = self._copies("W_E")
        h = gather_rows(W_E, a, pm) + gather_rows(W_E, b, pm)
        if cache is not None:
            cache["hook_embed_sum"] = h
        z = self._decode(h, cache)
        if K == 1:
            return z
        z = z.view(-1, K, *z.shape[1:])  # (E, K, N, C)
        if copies:
            return z
        return torch.logsumexp(z.log_softmax(-1), 1) - math.log(K)


class MLPModel(_Decoder):
    """[enc(a), enc(b)] (E, N, 2·width) -> MLP -> logits (E, N, C).

    ``embed="learned"``: enc = W_E (parameter, group "embed", (E, p, d_embed)).
    Otherwise enc is the fixed table ``enc_table`` (p, width), a non-persistent buffer
    shared by every member (checkpoints hold parameters only; the table is rebuilt)."""

    def __init__(self, n_members: int, n_symbols: int, n_classes: int, d_embed: int,
                 hidden: list[int], act: str = "relu", embed: str = "learned", embed_init_scale: float = 1.0,
                 init: str = "fan_in", bias: str = "all"):
        super().__init__(n_members)
        self.act_name, self.embed_kind, self.n_symbols = act, embed, n_symbols
        if embed == "learned":
            self.declare("W_E", ParamSpec((n_symbols, d_embed), std=embed_init_scale / math.sqrt(d_embed),
                                          group="embed"))
            width = d_embed
        else:
            table = encoder_table(embed, n_symbols, d_embed)  # (p, width) float64
            self.register_buffer("enc_table", table, persistent=False)
            width = table.shape[1]
        self.d_code = width  # width of one operand's encoding
        self.summed = embed in SUMMED_EMBEDS  # one code per pair (width), not two concatenated
        self._declare_decoder(width if self.summed else 2 * width, hidden, n_classes, init, bias,
                              input_is_onehot=embed == "onehot")

    @property
    def uses_prior_knowledge(self) -> bool:
        return self.embed_kind in PRIOR_KNOWLEDGE_EMBEDS

    def _encode(self, tok: torch.Tensor, pm: bool) -> torch.Tensor:
        """tok (N,) shared or (E, N) per member -> (E, N, width)."""
        if self.embed_kind == "learned":
            return gather_rows(self.W_E, tok, pm)
        t = self.enc_table
        rows = t.index_select(0, tok.reshape(-1)).view(*tok.shape, t.shape[1])  # (*tok, width)
        if pm:
            return rows
        # members seen by this call (functional_call may pass only the live members' rows)
        return rows.expand(self.dec_0_W.shape[0], *rows.shape)

    def forward(self, tokens: torch.Tensor, cache: dict | None = None, last_only: bool = False) -> torch.Tensor:
        """tokens (N, T) or (E, N, T) -> logits (E, N, C). ``last_only``: the transformer's
        flag, here a no-op (one position)."""
        pm = tokens.dim() == 3
        if self.summed:
            h = binarise_top(self._encode(tokens[..., 0], pm) + self._encode(tokens[..., -2], pm),
                             sdr_active_bits(self.d_code))
        else:
            h = torch.cat([self._encode(tokens[..., 0], pm), self._encode(tokens[..., -2], pm)], dim=-1)
        if cache is not None:
            cache["hook_input"] = h
        return self._decode(h, cache)


class VectorMLP(_Decoder):
    """An MLP on feature vectors (images, regression inputs): x (E or 1, N, d_in) ->
    hidden... -> (E, N, d_out), ``act`` between layers, no output activation (Omnigrok's
    784-200-200-10 ReLU MLP: ``hidden=[200, 200]``, ``init="torch"``).

    The first layer reads x shared by all members (N, d_in) or per member (E, N, d_in)."""

    def __init__(self, n_members: int, d_in: int, d_out: int, hidden: list[int], act: str = "relu",
                 init: str = "torch"):
        super().__init__(n_members)
        self.act_name = act
        self._declare_decoder(d_in, hidden, d_out, init)

    def forward(self, x: torch.Tensor, cache: dict | None = None, last_only: bool = False) -> torch.Tensor:
        """x (N, d_in) or (E, N, d_in) -> outputs (E, N, d_out)."""
        E = self.dec_0_W.shape[0]  # members seen by this call (functional_call may pass fewer)
        if x.dim() == 2:
            x = x.expand(E, *x.shape)
        if cache is not None:
            cache["hook_input"] = x
        return self._decode(x, cache)
