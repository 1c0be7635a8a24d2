"""Elementwise optimizers with per-member hyperparameters.

Every parameter has a leading member axis E; learning rate and weight decay are (E,)
tensors broadcast over the rest, so one step updates a whole row of a phase diagram.
Members marked inactive (done or diverged) keep their weights bit for bit (with Adam(W)
their moments too; SGD's momentum buffer still decays; the loop never reactivates a member).
Adam and AdamW run torch's fused kernel (``torch._fused_adam(w)_``, as
``torch.optim.AdamW(fused=True)``): one pass over memory instead of about ten.

The updates follow ``torch.optim`` (AdamW: Loshchilov & Hutter 2019; Adam with L2 weight
decay; SGD with momentum; Muon: Jordan et al. 2024, as ``torch.optim.Muon``);
``tests/unit/test_optim.py`` checks them against ``torch.optim``.

Muon ("MomentUm Orthogonalized by Newton-Schulz", K. Jordan et al. 2024,
kellerjordan.github.io/posts/muon; the optimizer of Tveit, Remseth & Skogvold 2025, "Muon
optimizer accelerates grokking", arXiv 2504.16041) updates each hidden weight matrix W
(group "hidden": see ``groklab.models.common.ParamSpec``) by

    B <- mu B + (1 - mu) G;   U = (1 - mu) G + mu B (Nesterov) or B;   O = NS5(U / |U|_F)
    W <- W (1 - lr wd) - lr sqrt(max(1, out/in)) O

with the Newton-Schulz iteration of ``torch.optim._muon`` (5 quintic steps with Jordan's
coefficients) on the whole (out, in) matrix (an attention weight kept per head is
orthogonalised as the one matrix it is), all members at once. torch runs it in bfloat16; on a
CPU without bfloat16 arithmetic that costs 41 ms for one 128 x 128 matrix (measured on the
2-core AMD EPYC), so ``optim.ns_dtype`` (default float32) chooses; in bfloat16 the iteration
is torch's, operation for operation (tested). Every other parameter (embeddings,
output layer, biases, norms) takes AdamW at ``lr * optim.aux_lr_mult``, as Jordan's
``MuonWithAuxAdam`` and the reproduction of Tveit et al. (bangyen/muon,
``scripts/train_tasks.py``: Muon lr 5e-3, AdamW 5e-4, both weight decay 1e-2).
"""

from __future__ import annotations

import torch
from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, EPS, _adjust_lr

from groklab.config import OptimConfig
from groklab.models.common import ParamSpec, to_layout, to_matrix

NS_COEFFICIENTS = (DEFAULT_A, DEFAULT_B, DEFAULT_C)  # Jordan's quintic (3.4445, -4.7750, 2.0315)
NS_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """``torch.optim._muon._zeropower_via_newtonschulz`` for a stack (E, A, B) of matrices,
    in ``dtype``: X = G / |G|_F (per matrix; transposed when A > B), then ``steps`` times
    X <- a X + (b X X^T + c (X X^T)^2) X, with torch's addmm order of operations."""
    a, b, c = NS_COEFFICIENTS
    X = G.to(dtype)
    tall = G.size(-2) > G.size(-1)
    if tall:
        X = X.mT
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=EPS)
    for _ in range(steps):
        gram = X @ X.mT
        X = torch.baddbmm(X, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), X, beta=a)
    return X.mT if tall else X


class EnsembleOptimizer:
    """Parameters, gradients' destination and optimizer state live in flat (E, P) buffers:
    on construction every parameter's data becomes a view into one. SGD updates the whole
    buffer in a few elementwise passes; Adam(W) runs torch's fused kernel on per-parameter
    views of it."""

    def __init__(self, params: dict[str, torch.nn.Parameter], groups: dict[str, str],
                 cfg: OptimConfig, lr: torch.Tensor, weight_decay: torch.Tensor,
                 embed_lr: torch.Tensor | None = None, specs: dict[str, ParamSpec] | None = None):
        """lr, weight_decay (E,): per member. ``embed_lr`` (E,): the learning rate of the
        "embed" group (default lr * cfg.embed_lr_mult); its weight decay is
        weight_decay * cfg.embed_wd_mult. ``specs`` (Muon only): the parameters' specs, whose
        layouts give the whole matrices."""
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
        self.state = {"m": zeros(), "v": zeros()} if cfg.name in ("adamw", "adam", "muon") else {"buf": zeros()}
        # Adam(W): torch's fused kernel (one pass over memory instead of about ten) on views
        # of the flat buffers shaped like the parameters, so the gradients go in as autograd
        # left them (no concatenation): one call per (lr, weight decay) that occurs.
        self._fused = None
        self.muon: dict[str, tuple[int, ParamSpec]] = {}  # name -> (offset in flat, spec)
        if cfg.name == "muon":
            self.muon = self._muon_params(groups, specs)
            self.state["buf"] = zeros()
            self._muon_lr, self._muon_wd = lr.flatten(), weight_decay.flatten()  # (E,)
            lr, embed_lr = lr * cfg.aux_lr_mult, embed_lr * cfg.aux_lr_mult  # AdamW for the rest
        if cfg.name in ("adamw", "adam", "muon"):
            self._fused = torch._fused_adam_ if cfg.name == "adam" else torch._fused_adamw_
            self._step_t = torch.zeros((), dtype=torch.float32, device=dev)
            self._units = self._fused_units(groups, lr, embed_lr, weight_decay)

    def _muon_params(self, groups: dict[str, str], specs: dict[str, ParamSpec] | None) -> dict:
        hidden = {n for n in self.params if groups.get(n) == "hidden"}
        if not hidden:
            raise ValueError("optim.name='muon': this model has no hidden weight matrix to orthogonalise "
                             f"(parameters: {', '.join(self.params)})")
        if specs is None:
            raise ValueError("optim.name='muon' needs the parameters' specs (their layouts)")
        out, off = {}, 0
        for n, p in self.params.items():
            if n in hidden:
                out[n] = (off, specs[n])
            off += p[0].numel()
        return out

    def _fused_units(self, groups, lr, embed_lr, weight_decay) -> dict[tuple[float, float], list]:
        """The fused kernel's work, as {(lr, wd): [(member, name, offset, param, m, v)]}: one
        entry per (member, parameter), member None when E = 1, with views of the flat buffers
        made once. The kernel splits each tensor into vector blocks and a remainder that it
        rounds differently, so a member's update is computed on the same blocks (its own
        parameters, one by one) whatever E is: members of an ensemble keep the bits of their
        single runs."""
        E, cfg, st = self.E, self.cfg, self.state
        lr, embed_lr, wd = (t.double().flatten().tolist() for t in (lr, embed_lr, weight_decay))
        units: dict[tuple[float, float], list] = {}
        off = 0
        for n, p in self.params.items():
            k, emb = p[0].numel(), groups.get(n) == "embed"
            if n in self.muon:  # Muon's, not Adam's
                off += k
                continue
            for e in range(E):
                key = (embed_lr[e] if emb else lr[e], wd[e] * (cfg.embed_wd_mult if emb else 1.0))
                member, rows, shape = (None, slice(None), p.shape) if E == 1 else (e, e, p.shape[1:])
                views = [x[rows, off : off + k].view(shape) for x in (self.flat, st["m"], st["v"])]
                units.setdefault(key, []).append((member, n, off, *views))
            off += k
        return units

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
        if self.muon:
            self._muon_step(active, lr_scale, grad)
        if self._fused is not None:
            return self._fused_step(active, lr_scale, grad)
        # SGD with momentum, L2 weight decay through the gradient
        if getattr(self, "_scale", None) != lr_scale:  # per-coordinate lr
            self._scale, self._lr = lr_scale, self.lr * lr_scale
        everyone = bool(active.all())
        keep = active.view(self.E, 1)
        g = grad if grad is not None else self.flat_grad()
        if not everyone:
            g = torch.where(keep, g, torch.zeros((), dtype=p.dtype, device=p.device))
        new = p if everyone else p.clone()
        st["buf"].mul_(cfg.momentum).add_(g + self.wd * p)
        new.sub_(self._lr * st["buf"])
        if not everyone:
            p.copy_(torch.where(keep, new, p))

    def _muon_step(self, active: torch.Tensor, lr_scale: float, grad: torch.Tensor | None) -> None:
        """Muon on each hidden matrix of the active members (module docstring)."""
        cfg, buf = self.cfg, self.state["buf"]
        live = torch.nonzero(active).flatten()
        if len(live) == 0:
            return
        everyone = len(live) == self.E
        lr_all, wd_all = self._muon_lr[live] * lr_scale, self._muon_wd[live]  # (A,) the active members'
        for n, (off, spec) in self.muon.items():
            lr, wd = (t.view(-1, *(1,) * len(spec.shape)) for t in (lr_all, wd_all))
            p = self.params[n]
            k = p[0].numel()
            if grad is not None:
                g = grad[:, off : off + k]
            else:
                g = p.grad.reshape(self.E, k) if p.grad is not None else torch.zeros_like(buf[:, off : off + k])
            b = buf[:, off : off + k]
            if not everyone:
                g, b_live = g[live], b[live]
            else:
                b_live = b
            b_live.lerp_(g, 1 - cfg.muon_momentum)  # as torch.optim.Muon (and Jordan's code) do
            if not everyone:
                b[live] = b_live
            u = g.lerp(b_live, cfg.muon_momentum) if cfg.nesterov else b_live
            u = to_matrix(u.reshape(len(u), *spec.shape), spec).mT  # (A, out, in), torch's orientation
            o = newton_schulz(u, cfg.ns_steps, NS_DTYPES[cfg.ns_dtype]).to(p.dtype).mT  # (A, in, out)
            scale = _adjust_lr(1.0, None, u.shape[1:])  # sqrt(max(1, out/in))
            w = p.data if everyone else p.data[live]
            w.mul_(1 - lr * wd)
            w.sub_(to_layout(o, spec).reshape(w.shape) * (lr * scale))
            if not everyone:
                p.data[live] = w

    def _fused_step(self, active: torch.Tensor, lr_scale: float, grad: torch.Tensor | None) -> None:
        """Adam(W) by torch's fused kernel, as torch.optim.Adam(W)(fused=True). Inactive
        members are left out: their weights and moments stay as they are."""
        cfg = self.cfg
        units = self._units
        if not bool(active.all()):
            live = active.tolist()
            units = {key: [u for u in us if live[0 if u[0] is None else u[0]]] for key, us in units.items()}
        self._step_t.fill_(float(self.t))
        for (lr, wd), us in units.items():
            if not us:
                continue
            ps, gs, ms, vs = [], [], [], []
            for e, n, off, p, m, v in us:
                if grad is not None:
                    g = grad[slice(None) if e is None else e, off : off + p.numel()].reshape(p.shape)
                else:
                    g = self.params[n].grad
                    g = torch.zeros_like(p) if g is None else (g if e is None else g[e]).contiguous()
                ps.append(p), gs.append(g), ms.append(m), vs.append(v)
            self._fused(ps, gs, ms, vs, [], [self._step_t] * len(us), lr=lr * lr_scale, beta1=cfg.beta1,
                        beta2=cfg.beta2, weight_decay=wd, eps=cfg.eps, amsgrad=False, maximize=False)

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
