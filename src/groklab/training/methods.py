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

Methods (config key under ``method.``):

``grokfast``        :class:`GrokfastEMA` / :class:`GrokfastMA`   point "grad"
``perp_grad``       :class:`PerpGrad`                            point "grad"
``loss``            :class:`LossFn` (StableMax, float64 CE)      point "loss"
``norm_constraint`` :class:`NormConstraint`                      point "post_step"
``decay_to_init``   :class:`DecayToInit`                         point "post_step"

Within a point the order is fixed (whatever the order of the config dict): on the
gradient, Grokfast first and then ⊥Grad (so the update that reaches the optimizer is
orthogonal to the weights); after the step, decay-to-init first and then the norm
constraint (so the norm holds exactly at the end of every step).

Gradient filters update their state for every member, active or not: the optimizer
discards the update of inactive members and the loop never reactivates a member, so an
inactive member's filter state never matters. Post-step methods touch active members only
(inactive members keep their weights bit for bit, as the optimizer promises).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from groklab.config import ConfigError

PerMember = float | Sequence[float] | torch.Tensor

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
    """Base class. ``point`` is "loss", "grad" or "post_step"; ``name`` prefixes state keys."""

    name = "method"
    point = ""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


# --------------------------------------------------------------------------- point "grad"


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

    name, point = "grokfast", "grad"

    def __init__(self, opt, alpha: PerMember = 0.98, lamb: PerMember = 2.0):
        E, like = opt.E, opt.flat
        self.alpha = per_member(alpha, E, like, "method.grokfast.alpha")
        self.lamb = per_member(lamb, E, like, "method.grokfast.lamb")
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

    name, point = "grokfast", "grad"

    def __init__(self, opt, window: int | Sequence[int] = 100, lamb: PerMember = 5.0,
                 warmup: bool = True, filter: str = "mean"):
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

    name, point = "perp_grad", "grad"
    EPS = 1e-30

    def __init__(self, opt, per_tensor: bool = False, renorm: bool = False):
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


# --------------------------------------------------------------------------- point "loss"


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0 (both branches finite for every x,
    so the gradient through ``torch.where`` is never NaN)."""
    return torch.where(x >= 0, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax(x)_i = log s(x_i) - log sum_j s(x_j)."""
    s = stablemax_s(x)
    return s.log() - s.sum(dim, keepdim=True).log()


class LossFn(Method):
    """The training loss, per member mean -> (E,).

    ``kind="stablemax"``: StableMax cross-entropy (Prieto et al. 2025, arXiv:2501.04697):
    StableMax(x)_i = s(x_i) / sum_j s(x_j) with s as in :func:`stablemax_s`, loss =
    -log StableMax(x)[target]. ``kind="cross_entropy"`` / ``"mse"``: as
    ``loop.loss_per_member``. ``float64=True`` computes the loss in float64 (the authors'
    StableMax code does) and returns it in the logits' dtype; the gradient reaching the
    logits is computed in float64 and rounded once. Defaults: stablemax, float64=True.
    Stateless.
    """

    name, point = "loss", "loss"

    def __init__(self, kind: str = "stablemax", float64: bool = True):
        self.kind, self.float64 = kind, float64

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        E, N, C = logits.shape
        targets = targets.expand(E, N)
        x = logits.to(torch.float64) if self.float64 else logits
        if self.kind == "stablemax":
            lp = log_stablemax(x, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            loss = -lp.mean(1)
        elif self.kind == "mse":
            onehot = F.one_hot(targets, C).to(x.dtype)
            loss = (x - onehot).square().mean(dim=(1, 2))
        else:
            loss = F.cross_entropy(x.reshape(E * N, C), targets.reshape(-1), reduction="none").view(E, N).mean(1)
        return loss.to(logits.dtype)


# --------------------------------------------------------------------------- point "post_step"


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

    name, point = "norm_constraint", "post_step"

    def __init__(self, opt, factor: PerMember | None = 1.0, target: PerMember | None = None,
                 mask: torch.Tensor | None = None):
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

    name, point = "decay_to_init", "post_step"

    def __init__(self, opt, wd: PerMember):
        self.wd = per_member(wd, opt.E, opt.flat, "method.decay_to_init.wd")
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

    GRAD_ORDER = ("grokfast", "perp_grad")
    POST_ORDER = ("decay_to_init", "norm_constraint")

    def __init__(self, methods: list[Method]):
        names = [m.name for m in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate methods: {names}")
        by = {m.name: m for m in methods}
        self.loss_fn = by.get("loss")
        self.grad_filters = [by[n] for n in self.GRAD_ORDER if n in by]
        self.post_step = [by[n] for n in self.POST_ORDER if n in by]
        self.methods = ([self.loss_fn] if self.loss_fn else []) + self.grad_filters + self.post_step

    def __bool__(self) -> bool:
        return bool(self.methods)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, default_kind: str) -> torch.Tensor:
        """Point "loss": (E,) per-member mean loss."""
        if self.loss_fn is not None:
            return self.loss_fn(logits, targets)
        from groklab.training.loop import loss_per_member

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

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for m in self.methods:
            out.update(m.state_tensors())
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for m in self.methods:
            m.load_state_tensors(tensors)


# --------------------------------------------------------------------------- config


METHODS = ("grokfast", "perp_grad", "loss", "norm_constraint", "decay_to_init")
# knobs that take one value per ensemble member (a sweep over them trains as one ensemble)
PER_MEMBER_KNOBS = ("method.grokfast.alpha", "method.grokfast.lamb", "method.grokfast.window",
                    "method.norm_constraint.factor", "method.norm_constraint.target",
                    "method.decay_to_init.wd")
GROKFAST_KINDS = ("ema", "ma")
LOSS_KINDS = ("stablemax", "cross_entropy", "mse")
INCLUDES = ("all", "weights", "body")


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
    return list(vals) if isinstance(v, (list, tuple)) else v


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(key, v, "expected true or false")
    return v


def _section(key: str, v: Any, allowed: tuple) -> dict:
    if not isinstance(v, dict):
        raise ConfigError(key, v, "expected a table of settings")
    for k in v:
        if k not in allowed:
            raise ConfigError(f"{key}.{k}", v[k], f"unknown key; {key} has {', '.join(allowed)}")
    return v


def validate_methods(cfg: dict | None, E: int) -> dict:
    """Check a ``method`` config dict (no tensors touched); returns it with defaults filled.
    Raises ConfigError naming the dotted key (``method.grokfast.alpha``) and the value."""
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ConfigError("method", cfg, "expected a table of methods")
    out: dict = {}
    for name, v in cfg.items():
        key = f"method.{name}"
        if name not in METHODS:
            raise ConfigError(key, v, f"unknown method; choose from {', '.join(METHODS)}")
        if v is False or v is None:
            continue
        if name == "grokfast":
            v = _section(key, v, ("kind", "alpha", "lamb", "window", "warmup", "filter"))
            kind = v.get("kind", "ema")
            if kind not in GROKFAST_KINDS:
                raise ConfigError(f"{key}.kind", kind, f"choose from {', '.join(GROKFAST_KINDS)}")
            if kind == "ema":
                for k in ("window", "warmup", "filter"):
                    if k in v:
                        raise ConfigError(f"{key}.{k}", v[k], "only for kind='ma'")
                out[name] = {"kind": "ema",
                             "alpha": _pm(f"{key}.alpha", v.get("alpha", 0.98), E, 0.0, 1.0),
                             "lamb": _pm(f"{key}.lamb", v.get("lamb", 2.0), E, 0.0)}
            else:
                if "alpha" in v:
                    raise ConfigError(f"{key}.alpha", v["alpha"], "only for kind='ema'")
                win = v.get("window", 100)
                wins = win if isinstance(win, (list, tuple)) else [win]
                if len(wins) not in (1, E) or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                                      for w in wins):
                    raise ConfigError(f"{key}.window", win, f"must be a positive integer or a list of 1 or {E}")
                filt = v.get("filter", "mean")
                if filt not in ("mean", "sum"):
                    raise ConfigError(f"{key}.filter", filt, "choose from mean, sum")
                out[name] = {"kind": "ma", "window": win,
                             "lamb": _pm(f"{key}.lamb", v.get("lamb", 5.0), E, 0.0),
                             "warmup": _bool(f"{key}.warmup", v.get("warmup", True)), "filter": filt}
        elif name == "perp_grad":
            if v is True:
                v = {}
            v = _section(key, v, ("per_tensor", "renorm"))
            out[name] = {"per_tensor": _bool(f"{key}.per_tensor", v.get("per_tensor", False)),
                         "renorm": _bool(f"{key}.renorm", v.get("renorm", False))}
        elif name == "loss":
            v = _section(key, v, ("kind", "float64"))
            kind = v.get("kind", "stablemax")
            if kind not in LOSS_KINDS:
                raise ConfigError(f"{key}.kind", kind, f"choose from {', '.join(LOSS_KINDS)}")
            out[name] = {"kind": kind, "float64": _bool(f"{key}.float64", v.get("float64", True))}
        elif name == "norm_constraint":
            if v is True:
                v = {}
            v = _section(key, v, ("factor", "target", "include"))
            if "factor" in v and "target" in v:
                raise ConfigError(f"{key}.target", v["target"], "give either factor or target, not both")
            inc = v.get("include", "all")
            if inc not in INCLUDES:
                raise ConfigError(f"{key}.include", inc, f"choose from {', '.join(INCLUDES)}")
            if "target" in v:
                out[name] = {"target": _pm(f"{key}.target", v["target"], E, 0.0, lo_open=True), "include": inc}
            else:
                out[name] = {"factor": _pm(f"{key}.factor", v.get("factor", 1.0), E, 0.0, lo_open=True),
                             "include": inc}
        else:  # decay_to_init
            v = _section(key, v, ("wd",))
            if "wd" not in v:
                raise ConfigError(f"{key}.wd", None, "required (the decay rate towards the initial weights)")
            out[name] = {"wd": _pm(f"{key}.wd", v["wd"], E, 0.0)}
    return out


def build_methods(cfg: dict | None, opt, specs: dict | None = None) -> MethodSet:
    """A :class:`MethodSet` from a plain dict, e.g.
    ``{"grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}, "perp_grad": True}``.
    Build it right after the optimizer, before the first step (NormConstraint and
    DecayToInit record the initial weights). ``specs`` (``model.specs``) is needed only for
    ``norm_constraint.include`` other than "all"."""
    c = validate_methods(cfg, opt.E)
    ms: list[Method] = []
    if "loss" in c:
        ms.append(LossFn(**c["loss"]))
    if "grokfast" in c:
        g = dict(c["grokfast"])
        kind = g.pop("kind")
        ms.append(GrokfastEMA(opt, **g) if kind == "ema" else GrokfastMA(opt, **g))
    if "perp_grad" in c:
        ms.append(PerpGrad(opt, **c["perp_grad"]))
    if "decay_to_init" in c:
        ms.append(DecayToInit(opt, **c["decay_to_init"]))
    if "norm_constraint" in c:
        n = dict(c["norm_constraint"])
        inc = n.pop("include")
        if inc != "all" and specs is None:
            raise ConfigError("method.norm_constraint.include", inc, "needs the model's parameter specs")
        ms.append(NormConstraint(opt, mask=coord_mask(opt, specs, inc), **n))
    return MethodSet(ms)


__all__ = ["GrokfastEMA", "GrokfastMA", "PerpGrad", "LossFn", "NormConstraint", "DecayToInit", "MethodSet",
           "build_methods", "validate_methods", "stablemax_s", "log_stablemax", "per_member",
           "coord_mask"]
