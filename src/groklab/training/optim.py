"""Elementwise optimizers with per-member hyperparameters.

Every parameter has a leading member axis E; learning rate and weight decay are (E,)
tensors broadcast over the rest, so one step updates a whole row of a phase diagram.
Members marked inactive (done or diverged) keep their weights bit for bit (their moment
buffers still decay; the loop never reactivates a member).

The updates follow ``torch.optim`` (AdamW: Loshchilov & Hutter 2019; Adam with L2 weight
decay; SGD with momentum); ``tests/unit/test_optim.py`` checks them against ``torch.optim``.
"""

from __future__ import annotations

import math

import torch

from groklab.config import OptimConfig


class EnsembleOptimizer:
    """The update runs on one flat (E, P) buffer: on construction every parameter's data
    becomes a view into it, so a step is a handful of large elementwise operations
    whatever the number of parameter tensors."""

    def __init__(self, params: dict[str, torch.nn.Parameter], groups: dict[str, str],
                 cfg: OptimConfig, lr: torch.Tensor, weight_decay: torch.Tensor,
                 embed_lr: torch.Tensor | None = None):
        """lr, weight_decay (E,): per member. ``embed_lr`` (E,): the learning rate of the
        "embed" group (default lr * cfg.embed_lr_mult); its weight decay is
        weight_decay * cfg.embed_wd_mult."""
        self.params, self.cfg = params, cfg
        self.E = E = lr.shape[0]
        self.t = 0  # steps taken
        ps = list(params.values())
        with torch.no_grad():
            self.flat = torch.cat([p.detach().reshape(E, -1) for p in ps], dim=1)  # (E, P)
            off = 0
            for p in ps:
                n = p[0].numel()
                p.data = self.flat[:, off : off + n].view_as(p)
                off += n
        if embed_lr is None:
            embed_lr = lr * cfg.embed_lr_mult
        dt, dev = self.flat.dtype, self.flat.device
        is_embed = torch.cat([torch.full((p[0].numel(),), groups.get(n) == "embed", device=dev)
                              for n, p in params.items()])[None]  # (1, P)
        lr, embed_lr, weight_decay = (t.to(dt).to(dev)[:, None] for t in (lr, embed_lr, weight_decay))
        self.lr = torch.where(is_embed, embed_lr, lr)  # (E, P)
        self.wd = torch.where(is_embed, weight_decay * cfg.embed_wd_mult, weight_decay)  # (E, P)
        zeros = lambda: torch.zeros_like(self.flat)  # noqa: E731
        self.state = {"m": zeros(), "v": zeros()} if cfg.name in ("adamw", "adam") else {"buf": zeros()}

    def flat_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(self.E, -1)
                          for p in self.params.values()], dim=1)

    @torch.no_grad()
    def step(self, active: torch.Tensor, lr_scale: float = 1.0, grad: torch.Tensor | None = None) -> None:
        """One update of every active member (active: (E,) bool). ``lr_scale`` (warm-up)
        multiplies every lr. ``grad`` (E, P) defaults to the parameters' ``.grad``.
        With every member active the update runs in place (fewer passes over memory)."""
        cfg, st, p = self.cfg, self.state, self.flat
        self.t += 1
        if getattr(self, "_scale", None) != lr_scale:  # per-coordinate lr and AdamW decay factor
            self._scale = lr_scale
            self._lr = self.lr * lr_scale
            self._decay = 1 - self._lr * self.wd
        lr = self._lr
        everyone = bool(active.all())
        keep = active.view(self.E, 1)
        g = grad if grad is not None else self.flat_grad()
        if not everyone:
            g = torch.where(keep, g, torch.zeros((), dtype=p.dtype, device=p.device))
        new = p if everyone else p.clone()
        if cfg.name == "adamw":
            new.mul_(self._decay)
        else:  # adam / sgd: L2 weight decay through the gradient
            g = g + self.wd * p
        if cfg.name == "sgd":
            st["buf"].mul_(cfg.momentum).add_(g)
            new.sub_(lr * st["buf"])
        else:
            b1, b2 = cfg.beta1, cfg.beta2
            bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
            st["m"].lerp_(g, 1 - b1)
            st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = st["v"].sqrt().div_(math.sqrt(bc2)).add_(cfg.eps)
            new.sub_(torch.div(st["m"], denom).mul_(lr).div_(bc1))
        if not everyone:
            p.copy_(torch.where(keep, new, p))

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    # checkpointing: tensors only
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"optim.{k}": v for k, v in self.state.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], t: int) -> None:
        for k, v in self.state.items():
            v.copy_(tensors[f"optim.{k}"])
        self.t = t
