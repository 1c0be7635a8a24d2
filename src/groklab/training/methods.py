"""Acceleration methods: drop-in pieces acting at one named point of the training loop.

Each method is a small class that works on the optimizer's flat (E, P) views (see
:class:`groklab.training.optim.EnsembleOptimizer`), member by member: every knob is a
scalar or a per-member list/tensor of length E, no operation mixes members, and any state
is a set of tensors (``state_tensors()`` / ``load_state_tensors()``) so that a resumed run
continues bit for bit. Nothing here is CPU-specific: state lives on ``opt.flat``'s device
and dtype.

The points of one training step, in order (see :func:`train_step`)::

    logits = model(tokens)
    loss = methods.loss(logits, targets, train.loss)          # point "loss"   (E,)
    loss.sum().backward()
    grad = methods.filter_grad(opt.flat_grad(), opt.flat)     # point "grad"   (E, P)
    opt.step(active & finite, lr_scale, grad=grad)
    methods.after_step(opt, active & finite, lr_scale)        # point "post_step"
    opt.zero_grad()

Methods are a registry (:data:`REGISTRY`): each is one class with a typed ``Config``
dataclass, the one place its knobs and defaults are declared, and one ``@register``. The
resolved config holds every knob filled in (``validate_methods``), and that is what
``config.json`` records. Methods (config key under ``method.``):

``grokfast``        :class:`GrokfastEMA` / :class:`GrokfastMA`   point "grad"
``perp_grad``       :class:`PerpGrad`                            point "grad"
``egd``             :class:`EGD`                                 point "grad" (and after evaluations)
``loss``            :class:`LossFn` (StableMax, float64 CE)      point "loss"
``norm_constraint`` :class:`NormConstraint`                      point "post_step"
``decay_to_init``   :class:`DecayToInit`                         point "post_step"

Within a point the order is fixed (whatever the order of the config dict): on the
gradient, Grokfast first, then EGD, then ⊥Grad (so the update that reaches the optimizer is
orthogonal to the weights); after the step, decay-to-init first and then the norm
constraint (so the norm holds exactly at the end of every step). Each class says where it goes by
``order`` (lower first; a new method defaults to 50, between those).

Gradient filters update their state for every member, active or not: the optimizer
discards the update of inactive members and the loop never reactivates a member, so an
inactive member's filter state never matters. Post-step methods touch active members only
(inactive members keep their weights bit for bit, as the optimizer promises).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Union

import torch

from groklab.config import ConfigError, check_field_types
from groklab.training.losses import LOSSES, log_stablemax, loss_per_member, stablemax_s

PerMember = Union[float, list]  # a knob with one value per ensemble member (a sweep trains as one ensemble)
PerMemberInt = Union[int, list]  # the same, integers
INCLUDES = ("all", "weights", "body")

# --------------------------------------------------------------------------- helpers


def per_member(value: PerMember, E: int, like: torch.Tensor, key: str = "value") -> torch.Tensor:
    """A scalar, length-1 or length-E list/tensor -> an (E, 1) tensor like ``like``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(E)
    if t.numel() != E:
        raise ConfigError(key, value if not torch.is_tensor(value) else value.tolist(),
                          f"has {t.numel()} values; the ensemble has {E} members")
    return t.reshape(E, 1).clone()


def _segments(opt) -> list[tuple[int, int]]:
    """(start, stop) of every parameter tensor in the flat (E, P) buffer."""
    out, off = [], 0
    for p in opt.params.values():
        n = p[0].numel()
        out.append((off, off + n))
        off += n
    return out


def coord_mask(opt, specs: dict | None, include: str) -> torch.Tensor | None:
    """(1, P) bool mask of the coordinates a method acts on, or None for all of them.

    ``include``: "all" (every parameter); "weights" (parameters initialised from a normal
    distribution: weight matrices and embeddings, not biases or LayerNorm gains); "body"
    (everything except the "embed" group). "weights" and "body" need the model's
    ``specs`` (name -> ParamSpec)."""
    if include == "all":
        return None
    if specs is None:
        raise ValueError(f"include={include!r} needs the model's parameter specs")
    parts = []
    for name, p in opt.params.items():
        spec = specs[name]
        keep = spec.init == "normal" if include == "weights" else spec.group != "embed"
        parts.append(torch.full((p[0].numel(),), keep, dtype=torch.bool, device=opt.flat.device))
    return torch.cat(parts)[None]


class Method:
    """Base class. ``point`` is "loss", "grad" or "post_step"; ``name`` is the config key
    (and prefixes state keys); ``kind`` tells apart variants under one name (grokfast ema |
    ma), "" when there is one. ``Config`` declares the knobs and their defaults; its
    ``check(key, E)`` checks their values. Constructors take ``(opt, **knobs)`` (knobs
    missing take the Config's defaults) and, where they need them, ``specs``."""

    name = "method"
    kind = ""
    point = ""
    order = 50  # within a point, lower runs first (ties: construction order)

    @dataclass
    class Config:  # knobs and their defaults; optionally check(self, key, E) for their values
        pass

    @classmethod
    def knobs(cls, given: dict) -> "Method.Config":
        """The Config of ``given`` knobs, the rest at their defaults (no checks)."""
        return cls.Config(**given)

    def observe(self, ev: dict[str, list[float]]) -> None:
        """After each of the loop's evaluations (metric -> per-member values); most methods ignore it."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


REGISTRY: dict[str, dict[str, type[Method]]] = {}  # name -> kind ("" if one) -> class


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available as ``method.<cls.name>``."""
    REGISTRY.setdefault(cls.name, {})[cls.kind] = cls
    return cls


# --------------------------------------------------------------------------- point "grad"


@register
class GrokfastEMA(Method):
    """Grokfast-EMA (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow
    Gradients", arXiv:2405.20233; reference ``gradfilter_ema`` in ironjr/grokfast).

    Per member e, on the flat gradient g (E, P), with the EMA ``mu`` initialised to the
    first gradient::

        mu <- mu * alpha_e + g * (1 - alpha_e)
        g  <- g + mu * lamb_e

    (so the first filtered gradient is g + lamb * g, as in the reference code).
    Defaults from the reference: alpha = 0.98, lamb = 2.0. State: ``mu`` (E, P) and the
    number of gradients seen.
    """

    name, kind, point, order = "grokfast", "ema", "grad", 10

    @dataclass
    class Config:
        kind: str = "ema"
        alpha: PerMember = 0.98  # EMA momentum
        lamb: PerMember = 2.0  # amplification of the slow gradient

        def check(self, key: str, E: int) -> None:
            _pm(f"{key}.alpha", self.alpha, E, 0.0, 1.0)
            _pm(f"{key}.lamb", self.lamb, E, 0.0)

    def __init__(self, opt, **knobs):
        c = self.knobs(knobs)
        E, like = opt.E, opt.flat
        self.alpha = per_member(c.alpha, E, like, "method.grokfast.alpha")
        self.lamb = per_member(c.lamb, E, like, "method.grokfast.lamb")
        self.mu = torch.zeros_like(like)
        self.t = 0

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.t == 0:
            self.mu.copy_(grad)
        self.t += 1
        self.mu = self.mu * self.alpha + grad * (1 - self.alpha)
        return grad + self.mu * self.lamb

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"method.grokfast.mu": self.mu, "method.grokfast.t": torch.tensor(self.t)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.mu = tensors["method.grokfast.mu"].to(self.mu).clone()
        self.t = int(tensors["method.grokfast.t"])


@register
class GrokfastMA(Method):
    """Grokfast-MA (Lee et al. 2024, arXiv:2405.20233; reference ``gradfilter_ma`` in
    ironjr/grokfast).

    Per member e, keep the last ``window_e`` gradients (the current one included). With
    ``warmup`` (the default) nothing is filtered until the window is full; then::

        g <- g + lamb_e * mean(window)        (filter="mean"; "sum" uses the sum)

    Without warmup the mean runs over the gradients seen so far. The window sum is taken
    oldest first, like the reference's ``sum(deque)``, so a member's result does not
    depend on the other members' window sizes. Defaults from the reference: window = 100,
    lamb = 5.0, warmup = True, filter = "mean". State: a ring buffer (W, E, P) with
    W = max window (memory: W copies of the parameters) and the number of gradients seen.
    """

    name, kind, point, order = "grokfast", "ma", "grad", 10

    @dataclass
    class Config:
        kind: str = "ma"
        window: PerMemberInt = 100  # gradients averaged (per member)
        lamb: PerMember = 5.0
        warmup: bool = True  # no filtering until the window is full
        filter: str = "mean"  # mean | sum

        def check(self, key: str, E: int) -> None:
            wins = self.window if isinstance(self.window, list) else [self.window]
            if len(wins) not in (1, E) or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                                  for w in wins):
                raise ConfigError(f"{key}.window", self.window, f"must be a positive integer or a list of 1 or {E}")
            _pm(f"{key}.lamb", self.lamb, E, 0.0)
            if self.filter not in ("mean", "sum"):
                raise ConfigError(f"{key}.filter", self.filter, "choose from mean, sum")

    def __init__(self, opt, **knobs):
        c = self.knobs(knobs)
        window, lamb, warmup, filter = c.window, c.lamb, c.warmup, c.filter
        E, like = opt.E, opt.flat
        w = torch.as_tensor(window).reshape(-1)
        if w.numel() == 1:
            w = w.expand(E)
        if w.numel() != E:
            raise ConfigError("method.grokfast.window", window, f"has {w.numel()} values; the ensemble has {E} members")
        self.window = [int(x) for x in w.tolist()]
        self.W = max(self.window)
        self.win = torch.tensor(self.window, device=like.device).view(E, 1)
        self.lamb = per_member(lamb, E, like, "method.grokfast.lamb")
        self.warmup, self.filter = bool(warmup), filter
        self.buf = torch.zeros((self.W, *like.shape), dtype=like.dtype, device=like.device)
        self.t = 0  # gradients seen; the newest sits in slot (t - 1) % W

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        self.buf[self.t % self.W].copy_(grad)
        self.t += 1
        n_seen = min(self.t, self.W)
        zero = torch.zeros((), dtype=grad.dtype, device=grad.device)
        acc = None
        for age in range(n_seen - 1, -1, -1):  # oldest first
            slot = (self.t - 1 - age) % self.W
            x = self.buf[slot]
            if age >= min(self.window):  # some members' windows end before this gradient
                x = torch.where(self.win > age, x, zero)
            acc = x.clone() if acc is None else acc + x
        count = self.win.clamp(max=self.t).to(grad.dtype)  # gradients in each member's window
        avg = acc / count if self.filter == "mean" else acc
        out = grad + avg * self.lamb
        if self.warmup:
            out = torch.where(self.win <= self.t, out, grad)
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"method.grokfast.buf": self.buf, "method.grokfast.t": torch.tensor(self.t)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.buf = tensors["method.grokfast.buf"].to(self.buf).clone()
        self.t = int(tensors["method.grokfast.t"])


@register
class PerpGrad(Method):
    """⊥Grad (Prieto, Barsbey, Mediano & Birdal 2025, "Grokking at the Edge of Numerical
    Stability", arXiv:2501.04697; ⊥AdamW applies it before the AdamW update).

    Per member e, with w the member's weights before the step::

        g <- g - (<g, w> / (<w, w> + 1e-30)) * w

    Default (``per_tensor=False``): over the member's whole flat parameter vector, as the
    brief's formula. ``per_tensor=True`` projects each parameter tensor separately (a
    tensor of zeros, e.g. a bias at init, keeps its gradient), and ``renorm=True`` then
    rescales the projected gradient back to the norm of the original one,
    g_perp * ||g|| / (||g_perp|| + 1e-30); the authors' reference ``orthograd.py`` does both.
    Stateless.
    """

    name, point, order = "perp_grad", "grad", 100  # last: the update that leaves is orthogonal to w
    EPS = 1e-30

    @dataclass
    class Config:
        per_tensor: bool = False  # project each parameter tensor on its own
        renorm: bool = False  # rescale the projected gradient to the original's norm

    def __init__(self, opt, **knobs):
        c = self.knobs(knobs)
        per_tensor, renorm = c.per_tensor, c.renorm
        self.segments = _segments(opt) if per_tensor else [(0, opt.flat.shape[1])]
        self.per_tensor, self.renorm = per_tensor, renorm

    def _project(self, g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        coef = (g * w).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + self.EPS)
        out = g - coef * w
        if self.renorm:
            out = out * (g.norm(dim=1, keepdim=True) / (out.norm(dim=1, keepdim=True) + self.EPS))
        return out

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if len(self.segments) == 1:
            return self._project(grad, weights)
        return torch.cat([self._project(grad[:, a:b], weights[:, a:b]) for a, b in self.segments], dim=1)


@register
class EGD(Method):
    """Egalitarian gradient descent (Saheb Pasand & Dohmatob 2026, "Egalitarian Gradient
    Descent: A Simple Approach to Accelerated Grokking", ICLR, arXiv:2510.04930; reference
    ``egd_update`` in asahebpa/Egalitarian-Gradient-Descent, main-results/mod_add.py).

    Per member e and per named weight matrix (``params``; default the MLP's first layer,
    ``dec_0_W``, the matrix the reference preconditions), with its gradient G = U S Vᵀ (thin
    SVD)::

        G <- U diag(s / max(s, eps)) Vᵀ      (= U S⁻¹ Uᵀ G with s clamped at eps, as the reference;
                                               computed in float64 by :meth:`polar`)

    so every direction of the gradient moves at the same speed (the polar factor of G; what
    Muon's Newton-Schulz iteration approximates). Other parameters keep their gradient.

    The reference switches to the plain gradient once the test accuracy of its latest
    evaluation exceeds 0.95 (it evaluates every epoch) and back if it falls below:
    ``until_val_acc`` (default 0.95; None: never switch) does the same at the loop's
    evaluations (:meth:`observe`), member by member.

    The reference puts its L2 term into the loss, so the G it preconditions is the loss
    gradient *plus* wd·W. Once the training loss is small that term dominates G, and its
    polar factor shrinks every direction of W at the full step size: it matters. With
    ``optim.name = "sgd"`` (L2 through the gradient, as the reference) EGD therefore takes
    the optimizer's weight decay of its matrices over: it adds wd·W to their gradient
    before preconditioning, also while switched off, and sets the optimizer's decay of
    those coordinates to zero so that it is not applied twice. (With Adam/AdamW the decay
    stays the optimizer's.) Quirks of the reference kept by the preset ``egd2025``: plain
    SGD (no momentum), lr 0.7, L2 1e-4, batch 512, no output bias. Deviation: groklab's SGD
    also decays the hidden bias, the reference does not. State: which members still
    precondition (E,).
    """

    name, point, order = "egd", "grad", 20  # after Grokfast, before ⊥Grad

    @dataclass
    class Config:
        params: list = dataclasses.field(default_factory=lambda: ["dec_0_W"])  # weight matrices preconditioned
        eps: float = 1e-6  # singular values are clamped at this (the reference's 1e-6)
        until_val_acc: Union[float, None] = 0.95  # plain gradient while the latest val acc is above this

        def check(self, key: str, E: int) -> None:
            if not self.params or not all(isinstance(n, str) for n in self.params):
                raise ConfigError(f"{key}.params", self.params, "a list of parameter names, e.g. [\"dec_0_W\"]")
            _pm(f"{key}.eps", self.eps, 1, 0.0, lo_open=True)
            if self.until_val_acc is not None:
                _pm(f"{key}.until_val_acc", self.until_val_acc, 1, 0.0, 1.0, hi_open=False)

    def __init__(self, opt, **knobs):
        c = self.knobs(knobs)
        c.check("method.egd", opt.E)
        offsets = {n: (a, tuple(p.shape[1:])) for (n, p), (a, _) in zip(opt.params.items(), _segments(opt))}
        self.blocks = []
        for n in c.params:
            if n not in offsets:
                raise ConfigError("method.egd.params", n, f"no such parameter; the model has {', '.join(offsets)}")
            start, shape = offsets[n]
            if len(shape) != 2:
                raise ConfigError("method.egd.params", n, f"is not a matrix (shape {list(shape)})")
            self.blocks.append((start, shape))
        self.eps, self.until = c.eps, c.until_val_acc
        # the L2 term of the preconditioned matrices moves from the optimizer into G (SGD only)
        self.l2 = [None] * len(self.blocks)
        if opt.cfg.name == "sgd":
            for i, (start, (r, k)) in enumerate(self.blocks):
                self.l2[i] = opt.wd[:, start : start + r * k].clone()
                opt.wd[:, start : start + r * k] = 0
        self.on = torch.ones(opt.E, dtype=torch.bool, device=opt.flat.device)

    @staticmethod
    def polar(G: torch.Tensor, eps: float) -> torch.Tensor:
        """(E, r, c) -> U diag(s / max(s, eps)) Vᵀ per member, in float64.

        As the reference writes it, U S⁻¹ Uᵀ G, with U and s² the eigenvectors and
        eigenvalues of the smaller Gram matrix (G Gᵀ, or Gᵀ G and then G V S⁻¹ Vᵀ): one
        symmetric eigendecomposition of min(r, c)² entries instead of an SVD (LAPACK's SVD
        took 0.1-3 s for 254 x 512 on 2 cores; this takes ~30 ms)."""
        G = G.double()
        wide = G.shape[-2] <= G.shape[-1]
        A = G @ G.mT if wide else G.mT @ G
        lam, Q = torch.linalg.eigh(A)
        inv = 1.0 / lam.clamp(min=0).sqrt().clamp(min=eps)  # 1 / max(s, eps)
        M = (Q * inv[..., None, :]) @ Q.mT
        return M @ G if wide else G @ M

    def observe(self, ev: dict[str, list[float]]) -> None:
        """After an evaluation: precondition only members whose val acc is not above the switch."""
        if self.until is not None:
            acc = torch.tensor(ev["val_acc"], device=self.on.device)
            self.on = ~(acc > self.until)

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        any_on = bool(self.on.any())
        if not any_on and all(x is None for x in self.l2):
            return grad
        out = grad.clone()
        E = grad.shape[0]
        for (start, (r, c)), l2 in zip(self.blocks, self.l2):
            sl = slice(start, start + r * c)
            G = (grad[:, sl] if l2 is None else grad[:, sl] + l2 * weights[:, sl]).reshape(E, r, c)
            if any_on:
                G = torch.where(self.on.view(E, 1, 1), self.polar(G, self.eps).to(G.dtype), G)
            out[:, sl] = G.reshape(E, r * c)
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"method.egd.on": self.on}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.on = tensors["method.egd.on"].to(self.on.device).bool().clone()


# --------------------------------------------------------------------------- point "loss"


@register
class LossFn(Method):
    """The training loss, per member mean -> (E,).

    ``kind="stablemax"``: StableMax cross-entropy (Prieto et al. 2025, arXiv:2501.04697):
    StableMax(x)_i = s(x_i) / sum_j s(x_j) with s as in :func:`stablemax_s`, loss =
    -log StableMax(x)[target]. ``kind="cross_entropy"`` / ``"mse"``: as
    :func:`groklab.training.losses.loss_per_member`. ``float64=True`` computes the loss in float64 (the authors'
    StableMax code does) and returns it in the logits' dtype; the gradient reaching the
    logits is computed in float64 and rounded once. Defaults: stablemax, float64=True.
    Stateless.
    """

    name, point = "loss", "loss"

    @dataclass
    class Config:
        kind: str = "stablemax"  # stablemax | cross_entropy | mse
        float64: bool = True  # compute the loss in float64

        def check(self, key: str, E: int) -> None:
            if self.kind not in LOSSES:
                raise ConfigError(f"{key}.kind", self.kind, f"choose from {', '.join(LOSSES)}")

    def __init__(self, **knobs):
        c = self.knobs(knobs)
        self.kind, self.float64 = c.kind, c.float64

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = logits.to(torch.float64) if self.float64 else logits
        if self.float64 and targets.is_floating_point():
            targets = targets.to(torch.float64)
        return loss_per_member(x, targets, self.kind).to(logits.dtype)


# --------------------------------------------------------------------------- point "post_step"


@register
class NormConstraint(Method):
    """Weight-norm-constrained training (Liu, Michaud & Tegmark 2023, "Omnigrok: Grokking
    Beyond Algorithmic Data", ICLR: training on the sphere of fixed weight norm, projecting
    back onto it after every optimizer step).

    After each step, per active member e with ||w|| > 0::

        w <- w * (target_e / ||w||)

    target_e = ``factor_e`` * ||w_e at construction|| (default factor = 1.0), or an
    absolute ``target_e``. The norm runs over the coordinates selected by ``include``:
    "all" (default, as Omnigrok: every parameter, embeddings, biases and LayerNorm gains
    included), "weights" (normal-initialised tensors: matrices and embeddings, no biases or
    gains) or "body" (all but the embedding group); unselected coordinates are untouched.
    Construct it before the first step. State: the targets (E,).
    """

    name, point, order = "norm_constraint", "post_step", 100  # last: the norm holds at the end of a step

    @dataclass
    class Config:
        factor: Union[PerMember, None] = 1.0  # target norm = factor * initial norm ...
        target: Union[PerMember, None] = None  # ... or this absolute norm (give one of the two)
        include: str = "all"  # all | weights | body

        def check(self, key: str, E: int) -> None:
            if self.include not in INCLUDES:
                raise ConfigError(f"{key}.include", self.include, f"choose from {', '.join(INCLUDES)}")
            if self.factor is not None:
                _pm(f"{key}.factor", self.factor, E, 0.0, lo_open=True)
            if self.target is not None:
                _pm(f"{key}.target", self.target, E, 0.0, lo_open=True)

    def __init__(self, opt, specs: dict | None = None, mask: torch.Tensor | None = None, **knobs):
        c = self.knobs(knobs)
        factor, target = c.factor, c.target
        if mask is None and c.include != "all":
            if specs is None:
                raise ConfigError("method.norm_constraint.include", c.include, "needs the model's parameter specs")
            mask = coord_mask(opt, specs, c.include)
        self.mask = mask
        if target is not None:
            self.target = per_member(target, opt.E, opt.flat, "method.norm_constraint.target")
        else:
            self.target = self.norm(opt.flat) * per_member(factor, opt.E, opt.flat, "method.norm_constraint.factor")

    def norm(self, w: torch.Tensor) -> torch.Tensor:
        sq = w.square() if self.mask is None else torch.where(self.mask, w.square(), 0.0)
        return sq.sum(1, keepdim=True).sqrt()  # (E, 1)

    @torch.no_grad()
    def __call__(self, opt, active: torch.Tensor, lr_scale: float = 1.0) -> None:
        w = opt.flat
        n = self.norm(w)
        ok = active.view(-1, 1) & (n > 0)
        scale = torch.where(ok, self.target / torch.where(n > 0, n, 1.0), 1.0)  # (E, 1)
        if self.mask is not None:
            scale = torch.where(self.mask, scale, 1.0)
        w.mul_(scale)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"method.norm_constraint.target": self.target}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.target = tensors["method.norm_constraint.target"].to(self.target).clone()


@register
class DecayToInit(Method):
    """Weight decay towards the initial weights instead of towards zero (L2-SP style
    decay, Li, Grandvalet & Davoine 2018, "Explicit inductive bias for transfer learning
    with convolutional networks", ICML; here as the brief's acceleration method).

    After each step, per active member e::

        w <- w - (lr * wd_e) * (w - w0)

    lr is the optimizer's per-coordinate learning rate times the warm-up scale (so
    ``optim.embed_lr_mult`` applies; ``optim.embed_wd_mult`` does not). wd_e has no
    default: it must be given. Acts on every parameter. Typically used with
    ``optim.weight_decay = 0``. Construct it before the first step. State: w0 (E, P).
    """

    name, point, order = "decay_to_init", "post_step", 10

    @dataclass
    class Config:
        wd: Union[PerMember, None] = None  # the decay rate towards the initial weights (required)

        def check(self, key: str, E: int) -> None:
            if self.wd is None:
                raise ConfigError(f"{key}.wd", None, "required (the decay rate towards the initial weights)")
            _pm(f"{key}.wd", self.wd, E, 0.0)

    def __init__(self, opt, **knobs):
        c = self.knobs(knobs)
        c.check("method.decay_to_init", opt.E)
        self.wd = per_member(c.wd, opt.E, opt.flat, "method.decay_to_init.wd")
        self.w0 = opt.flat.detach().clone()

    @torch.no_grad()
    def __call__(self, opt, active: torch.Tensor, lr_scale: float = 1.0) -> None:
        w = opt.flat
        new = w - (opt.lr * lr_scale * self.wd) * (w - self.w0)
        w.copy_(torch.where(active.view(-1, 1), new, w))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"method.decay_to_init.w0": self.w0}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.w0 = tensors["method.decay_to_init.w0"].to(self.w0).clone()


# --------------------------------------------------------------------------- the set


class MethodSet:
    """The methods of one run, grouped by point, in the fixed order described above."""


    def __init__(self, methods: list[Method]):
        names = [m.name for m in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate methods: {names}")
        by = {m.name: m for m in methods}
        at = lambda point: sorted((m for m in methods if m.point == point), key=lambda m: m.order)  # noqa: E731
        losses = at("loss")
        if len(losses) > 1:
            raise ValueError(f"more than one loss method: {[m.name for m in losses]}")
        self.loss_fn = losses[0] if losses else None
        self.grad_filters = at("grad")
        self.post_step = at("post_step")
        self.methods = ([self.loss_fn] if self.loss_fn else []) + self.grad_filters + self.post_step

    def __bool__(self) -> bool:
        return bool(self.methods)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, default_kind: str) -> torch.Tensor:
        """Point "loss": (E,) per-member mean loss."""
        if self.loss_fn is not None:
            return self.loss_fn(logits, targets)
        return loss_per_member(logits, targets, default_kind)

    def filter_grad(self, grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Point "grad": the (E, P) gradient handed to ``opt.step(..., grad=)``."""
        for m in self.grad_filters:
            grad = m(grad, weights)
        return grad

    def after_step(self, opt, active: torch.Tensor, lr_scale: float = 1.0) -> None:
        """Point "post_step": in place on ``opt.flat``, active members only."""
        for m in self.post_step:
            m(opt, active, lr_scale)

    def observe(self, ev: dict[str, list[float]]) -> None:
        """After each evaluation of the loop (``ev``: metric -> per-member values), for the
        methods that switch on what they see (EGD)."""
        for m in self.methods:
            m.observe(ev)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for m in self.methods:
            out.update(m.state_tensors())
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for m in self.methods:
            m.load_state_tensors(tensors)


# --------------------------------------------------------------------------- config


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _pm(key: str, v: Any, E: int, lo: float, hi: float = math.inf, lo_open=False, hi_open=True) -> Any:
    """Validate a per-member number (scalar or list of length 1 or E) within [lo, hi)."""
    vals = v if isinstance(v, (list, tuple)) else [v]
    if len(vals) == 0:
        raise ConfigError(key, v, "needs at least one value")
    if len(vals) not in (1, E):
        raise ConfigError(key, v, f"has {len(vals)} values; the ensemble has {E} members")
    for x in vals:
        if not _is_num(x):
            raise ConfigError(key, x, "must be a finite number")
        if (x <= lo if lo_open else x < lo) or (x >= hi if hi_open else x > hi):
            lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
            raise ConfigError(key, x, f"must lie in {lb}{lo}, {hi}{rb}")
    return v


def method_class(name: str, given: Any) -> type[Method]:
    """The registered class for ``method.<name>`` with knobs ``given`` (its ``kind`` picks a
    variant; the first registered is the default)."""
    key = f"method.{name}"
    if name not in REGISTRY:
        raise ConfigError(key, given, f"unknown method; choose from {', '.join(REGISTRY)}")
    variants = REGISTRY[name]
    if len(variants) == 1:
        return next(iter(variants.values()))
    kind = given.get("kind", next(iter(variants))) if isinstance(given, dict) else next(iter(variants))
    if kind not in variants:
        raise ConfigError(f"{key}.kind", kind, f"choose from {', '.join(variants)}")
    return variants[kind]


def validate_methods(cfg: dict | None, E: int) -> dict:
    """Check a ``method`` table (no tensors touched) and return it with every knob filled in
    from its method's ``Config``. ``true`` switches a method on with its defaults; ``false``
    or None leaves it off. Raises ConfigError naming the dotted key
    (``method.grokfast.alpha``) and the value."""
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ConfigError("method", cfg, "expected a table of methods")
    out: dict = {}
    for name, v in cfg.items():
        key = f"method.{name}"
        cls = method_class(name, v)
        if v is False or v is None:
            continue
        if v is True:
            v = {}
        if not isinstance(v, dict):
            raise ConfigError(key, v, "expected a table of settings (or true)")
        fields = [f.name for f in dataclasses.fields(cls.Config)]
        for k in v:
            if k not in fields:
                other = [kd for kd, c in REGISTRY[name].items()
                         if kd != cls.kind and k in {f.name for f in dataclasses.fields(c.Config)}]
                why = f"only for kind={other[0]!r}" if other else f"unknown key; {key} has {', '.join(fields)}"
                raise ConfigError(f"{key}.{k}", v[k], why)
        if name == "norm_constraint" and v.get("target") is not None:  # an absolute norm replaces the factor
            if v.get("factor") is not None:
                raise ConfigError(f"{key}.target", v["target"], "give either factor or target, not both")
            v = {**v, "factor": None}
        conf = cls.knobs(dict(v))
        check_field_types(conf, key)
        if hasattr(conf, "check"):  # value checks beyond the types, if the method has any
            conf.check(key, E)
        out[name] = dataclasses.asdict(conf)
    return out


def per_member_knobs() -> tuple[str, ...]:
    """``method.<name>.<knob>`` of every knob that takes one value per ensemble member."""
    keys = []
    for name, variants in REGISTRY.items():
        for cls in variants.values():
            for f in dataclasses.fields(cls.Config):
                k = f"method.{name}.{f.name}"
                if "PerMember" in str(f.type) and k not in keys:
                    keys.append(k)
    return tuple(keys)


METHODS = tuple(REGISTRY)
PER_MEMBER_KNOBS = per_member_knobs()


def build_methods(cfg: dict | None, opt, specs: dict | None = None) -> MethodSet:
    """A :class:`MethodSet` from a plain dict, e.g.
    ``{"grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}, "perp_grad": True}``.
    Build it right after the optimizer, before the first step (NormConstraint and
    DecayToInit record the initial weights). ``specs`` (``model.specs``) is needed only for
    ``norm_constraint.include`` other than "all"."""
    ms: list[Method] = []
    for name, knobs in validate_methods(cfg, opt.E).items():
        cls = method_class(name, knobs)
        knobs = {k: v for k, v in knobs.items() if k != "kind"} if cls.kind else knobs
        if cls.point == "loss":
            ms.append(cls(**knobs))
        elif cls is NormConstraint:
            ms.append(cls(opt, specs=specs, **knobs))
        else:
            ms.append(cls(opt, **knobs))
    return MethodSet(ms)


__all__ = ["GrokfastEMA", "GrokfastMA", "PerpGrad", "EGD", "LossFn", "NormConstraint", "DecayToInit", "MethodSet",
           "REGISTRY", "register", "build_methods", "validate_methods", "stablemax_s", "log_stablemax",
           "per_member", "coord_mask", "PER_MEMBER_KNOBS"]
