"""The one training loop: ``train(cfg) -> Run`` and ``resume(run_dir) -> Run``.

Read top to bottom: set-up (task, model, optimizer, run directory), then the loop, whose
research logic sits between the ``ALGO LOGIC`` markers and whose scaffolding (evaluation,
early stop, checkpoints, progress) follows. A killed run resumes from its last checkpoint
and ends with the same numbers, bit for bit on CPU, as one that never stopped.
"""

from __future__ import annotations

import contextlib
import copy

import datetime as _dt
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from groklab import measures
from groklab._runtime import tune_malloc
from groklab.config import ConfigError, RunConfig, apply_overrides
from groklab.detect import member_events
from groklab.export import default_dest, open_sink
from groklab.models import DTYPES, build_model
from groklab.resolve import check
from groklab.run import Run
from groklab.store import RunStore, writer_lock
from groklab.tasks import make_task
from groklab.training.losses import committee_rows, loss_per_member, row_losses
from groklab.training.methods import build_methods
from groklab.training.optim import EnsembleOptimizer
from groklab.training.schedule import eval_steps, log_steps

# --------------------------------------------------------------------------- pieces


class BatchSampler:
    """Minibatches of train rows: shuffled epochs per member, each from its own generator
    (seeded from the member's seed), so a member sees the same batches alone or in an
    ensemble. The last partial batch of an epoch is dropped, or with ``drop_last=False``
    trained on (a smaller batch, as ``torch.split`` of a permutation gives it)."""

    def __init__(self, n_train: int, batch_size: int, seeds: list[int], drop_last: bool = True):
        self.n, self.B, self.drop_last = n_train, min(batch_size, n_train), drop_last
        self.gens = [torch.Generator().manual_seed(1_000_003 * s + 12_345) for s in seeds]
        self.perms = [torch.randperm(self.n, generator=g) for g in self.gens]
        self.cursor = [0] * len(seeds)

    def next(self) -> torch.Tensor:
        out = []
        for e, g in enumerate(self.gens):
            c = self.cursor[e]
            if c >= self.n or (self.drop_last and c + self.B > self.n):
                self.perms[e], c = torch.randperm(self.n, generator=g), 0
            out.append(self.perms[e][c : c + self.B])
            self.cursor[e] = c + self.B
        return torch.stack(out)  # (E, B)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        t = {f"sampler.{e}.gen": g.get_state() for e, g in enumerate(self.gens)}
        t.update({f"sampler.{e}.perm": p for e, p in enumerate(self.perms)})
        return t, {"cursor": list(self.cursor)}

    def load(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        for e, g in enumerate(self.gens):
            g.set_state(tensors[f"sampler.{e}.gen"])
            self.perms[e] = tensors[f"sampler.{e}.perm"]
        self.cursor = list(state["cursor"])


class FreshSampler:
    """Fresh training samples every step (``task.fresh``: sparse parity's infinite-data
    regime), each member from its own generator seeded from its seed and the split seed,
    so a member sees the same data alone or in an ensemble."""

    def __init__(self, task, batch_size: int, seeds: list[int], split_seed: int):
        self.task, self.B = task, batch_size
        self.gens = [torch.Generator().manual_seed(1_000_003 * s + 7_919 * split_seed + 54_321) for s in seeds]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets): (B, ...) for one member, (E, B, ...) for several."""
        pairs = [self.task.sample(self.B, g) for g in self.gens]
        if len(pairs) == 1:
            return pairs[0]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {f"fresh.{e}.gen": g.get_state() for e, g in enumerate(self.gens)}, {}

    def load(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        for e, g in enumerate(self.gens):
            g.set_state(tensors[f"fresh.{e}.gen"])


EVAL_CHUNK = 16_384  # rows per forward pass in evaluation (bounds memory on large data sets)


@torch.no_grad()
def evaluate(model, task, loss_kind: str) -> dict[str, torch.Tensor]:
    """Loss and accuracy on the train and val rows (held-out rows are ``val`` for every
    task kind), and the weight norm; each (E,)."""
    small = len(task.targets) <= EVAL_CHUNK
    every = model(task.inputs) if small else None  # (E, N_all, C): the whole data set in one pass
    out = {}
    for split, idx in (("train", task.train_idx), ("val", task.val_idx)):
        if small:
            lg = every[:, idx]
        else:
            lg = torch.cat([model(task.inputs[idx[i: i + EVAL_CHUNK]]) for i in range(0, len(idx), EVAL_CHUNK)], 1)
        tg = task.targets[idx]
        w = task.row_weights(split)
        if w is None:
            out[f"{split}_loss"] = loss_per_member(lg, tg, loss_kind)
            # count / N in float64, then rounded once: exactly 1.0 when every row is right
            # (CUDA's float32 mean multiplies by 1/N and can land on 0.99999994)
            out[f"{split}_acc"] = (task.correct(lg, tg).sum(1).double() / len(idx)).to(lg.dtype)
        else:  # a weighted mean (sparse parity: sum_i p_i x subtask i's mean)
            w = w.to(lg.dtype)
            out[f"{split}_loss"] = (row_losses(lg, tg, loss_kind) * w).sum(1)
            out[f"{split}_acc"] = (task.correct(lg, tg).to(lg.dtype) * w).sum(1)
    sq = sum(p.detach().square().flatten(1).sum(1) for p in model.parameters())
    out["weight_norm"] = sq.sqrt()
    return out


def upgrade_resume(model, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A resume checkpoint written in an earlier layout of ``model``'s parameters, in today's:
    the weights renamed and reshaped (``model.upgrade_state_dict``), and every per-coordinate
    state (optimizer moments, method buffers: a last axis of the flat size P) reordered
    (``model.upgrade_flat``). A checkpoint in today's layout comes back as it is."""
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    upgraded = model.upgrade_state_dict(weights)
    if upgraded is weights:
        return tensors
    P = sum(p[0].numel() for p in model.parameters())
    out = {f"model.{k}": v for k, v in upgraded.items()}
    for k, v in tensors.items():
        if not k.startswith("model."):
            out[k] = model.upgrade_flat(v) if v.dim() >= 2 and v.shape[-1] == P else v
    return out


def idx_per_member(full_batch: bool, E: int) -> bool:
    """Whether a step's rows are per member, (E, B, ...): minibatches, at every E (a single
    run takes the ensemble's per-member path, so its members equal their single runs)."""
    return not full_batch


@dataclass
class LoopState:
    """Everything besides tensors that the loop needs to continue exactly."""

    step: int = 0
    elapsed: float = 0.0  # training seconds (evaluation included, start-up excluded)
    active: list[bool] = field(default_factory=list)
    diverged: list[bool] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # consecutive evals at >= stop_val_acc
    status: str = "interrupted"


# --------------------------------------------------------------------------- the run


class Trainer:
    """Holds one run's objects; ``run()`` is the loop. Use :func:`train` / :func:`resume`."""

    def __init__(self, cfg: RunConfig, store: RunStore, fresh: bool,
                 on_checkpoint: Callable[[int, bool], Any] | None = None):
        self.cfg, self.store = cfg, store
        self.on_checkpoint = on_checkpoint  # called as (step, final) after each checkpoint is written
        tr = cfg.train
        tune_malloc()
        if tr.threads:
            torch.set_num_threads(tr.threads)
        self.device = torch.device(tr.device)
        if self.device.type == "cuda":
            deterministic_cuda(tr.deterministic)
        self.task = make_task(cfg.task, self.device, DTYPES[cfg.model.dtype])
        self.model = build_model(cfg, self.task, self.device)
        E = self.E = cfg.n_members
        self.K = getattr(self.model, "committee", 1)  # copies per member (model.committee)
        dtype = next(self.model.parameters()).dtype
        as_t = lambda key: torch.tensor(cfg.member_values(key), dtype=dtype, device=self.device)  # noqa: E731
        self.opt = EnsembleOptimizer(dict(self.model.named_parameters()), self.model.param_groups(),
                                     cfg.optim, as_t("optim.lr"), as_t("optim.weight_decay"),
                                     as_t("optim.embed_lr"), specs=self.model.specs)
        self.methods = build_methods(cfg.method, self.opt, specs=self.model.specs)  # before any step
        n_train = len(self.task.train_idx)
        seeds = cfg.member_values("train.seeds")
        self.full_batch = not self.task.fresh and (tr.batch_size is None or tr.batch_size >= n_train)
        if self.task.fresh:
            self.sampler = FreshSampler(self.task, tr.batch_size, seeds, cfg.task.split_seed)
        else:
            self.sampler = None if self.full_batch else BatchSampler(n_train, tr.batch_size, seeds, tr.drop_last)
        self.eval_at = set(eval_steps(tr.steps, tr.eval_every, tr.evals_per_decade, tr.eval_min_gap))
        self.keep_at = set(log_steps(tr.steps, tr.checkpoints_per_decade))
        self.measure_at = set(log_steps(tr.steps, tr.measures_per_decade))
        self.rows: list[tuple[int, int, str, float]] = []
        self.sinks: list = []  # live trackers while run() runs (train.log_to)
        self.logged = 0
        self.st = LoopState(active=[True] * E, diverged=[False] * E, held=[0] * E)
        if not fresh:
            self._restore()

    # ------------------------------------------------------------------ the loop

    def run(self, progress: bool = True) -> LoopState:
        """Train to the end (or an early stop); live trackers (train.log_to) get every metric row
        as it is written to metrics.parquet, and are closed however the loop ends."""
        self.sinks = [open_sink(t, self.store.path.name, default_dest(self.store.path, t), self.cfg, self.E)
                      for t in self.cfg.train.log_to]
        self.logged = len(self.rows)  # rows already in metrics.parquet were logged before
        try:
            return self._run(progress)
        finally:
            for sink in self.sinks:
                sink.close()
            self.sinks = []

    def _run(self, progress: bool) -> LoopState:
        cfg, st, task = self.cfg, self.st, self.task
        tr = cfg.train
        train_inputs, train_targets = task.inputs[task.train_idx], task.targets[task.train_idx]
        active = torch.tensor(st.active, device=self.device)
        live = self._live(st.active)
        bar = _Progress(tr.steps, st.step, enabled=progress and tr.progress)
        t0 = time.perf_counter() - st.elapsed
        if st.step == 0 and not self.rows:
            self._evaluate(0, time.perf_counter() - t0)
            self._checkpoint(0, time.perf_counter() - t0)
        with _StopRequests() as stop:
            while st.step < tr.steps and any(st.active):
                if stop.requested:  # Ctrl-C / SIGTERM: leave at a step boundary, resumable
                    st.status = "interrupted"
                    self._checkpoint(st.step, time.perf_counter() - t0, final=True)
                    bar.close()
                    raise KeyboardInterrupt
                # ---------------------------------------------------------- ALGO LOGIC
                if self.full_batch:
                    inputs, targets = train_inputs, train_targets
                elif self.task.fresh:  # fresh samples every step, (E, B, ...) per member
                    inputs, targets = self.sampler.next()
                else:
                    idx = self.sampler.next().to(self.device)  # (E, B) rows of the train split
                    # (E, B, ...) for every E, one member too: a member computes alone what
                    # it computes in an ensemble (the per-member kernels, bit for bit)
                    inputs, targets = train_inputs[idx], train_targets[idx]
                if live is not None and idx_per_member(self.full_batch, self.E):  # live members' rows
                    inputs, targets = inputs[live], targets[live]
                with self._autocast():  # mixed precision (train.autocast): the step's forward only
                    logits = self._forward(inputs, live)  # (E, N, C), or (A, N, C): live members only
                if tr.autocast:
                    logits = logits.float()  # the loss in full precision
                if self.K > 1:  # model.committee: each copy (E, K, N, C) trains on its own loss
                    logits, targets = committee_rows(logits, targets)
                loss = self.methods.loss(logits, targets, tr.loss) * self.K  # (E,)   [method point: loss]
                loss.sum().backward()  # members are independent: each gets its own gradient
                finite = torch.isfinite(loss)
                if live is not None:
                    finite = torch.ones(self.E, dtype=torch.bool, device=self.device).index_copy(0, live, finite)
                o = cfg.optim
                lr_scale = min(1.0, (st.step + o.warmup_start) / o.warmup_steps) if o.warmup_steps else 1.0
                step_mask = active & finite
                grad = None
                if self.methods.grad_filters:  # [method point: gradient] Grokfast, perp-grad
                    grad = self.methods.filter_grad(self.opt.flat_grad(), self.opt.flat)
                self.opt.step(step_mask, lr_scale, grad=grad)
                self.methods.after_step(self.opt, step_mask, lr_scale)  # [method point: after step]
                self.opt.zero_grad()
                st.step += 1
                # ---------------------------------------------------------- end ALGO LOGIC
                if not bool(finite.all()):
                    for e in torch.nonzero(~finite).flatten().tolist():
                        if st.active[e]:
                            st.active[e], st.diverged[e] = False, True
                    active = torch.tensor(st.active, device=self.device)
                    live = self._live(st.active)
                if st.step in self.eval_at or not any(st.active):
                    ev = self._evaluate(st.step, time.perf_counter() - t0)
                    self.methods.observe(ev)  # [method point: after an evaluation] EGD's switch
                    if self._early_stop(ev):
                        active = torch.tensor(st.active, device=self.device)
                        live = self._live(st.active)
                    bar.update(st.step, ev)
                if st.step % tr.checkpoint_every == 0 or st.step in self.keep_at:
                    self._checkpoint(st.step, time.perf_counter() - t0)
        if all(st.diverged):
            st.status = "diverged"
        elif st.step >= tr.steps:
            st.status = "completed"
        else:
            st.status = "stopped"
        if st.step not in self.eval_at:  # the last step is always evaluated
            self._evaluate(st.step, time.perf_counter() - t0)
        self._checkpoint(st.step, time.perf_counter() - t0, final=True)
        bar.close()
        return st

    def _live(self, active: list[bool]) -> torch.Tensor | None:
        """Indices of the members still training, or None when all are (the usual case)."""
        if all(active) or not any(active):
            return None
        return torch.tensor([e for e, a in enumerate(active) if a], device=self.device)

    def _autocast(self):
        """``train.autocast``: matrix products of the training step's forward (and so its
        backward) in bfloat16/float16, weights and optimizer in float32; evaluation stays
        in float32, so the accuracies reported are the float32 model's."""
        if not self.cfg.train.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.cfg.train.autocast))

    def _forward(self, tokens: torch.Tensor, live: torch.Tensor | None) -> torch.Tensor:
        """The model on every member, or on the ``live`` ones only: finished and diverged
        members stop costing compute. Their rows of each parameter are gathered and the
        model called on them (``torch.func.functional_call``); the gradient flows back to
        the full parameters (zero rows for the others). Every layer is batch-invariant, so
        a member computes the same numbers whichever others run beside it."""
        kw = {"copies": True} if self.K > 1 else {}  # a committee trains its copies' logits
        if live is None:
            return self.model(tokens, **kw)
        params = {n: p.index_select(0, live) for n, p in self.model.named_parameters()}
        return torch.func.functional_call(self.model, params, (tokens,), kw)

    # ------------------------------------------------------------------ scaffolding

    def _evaluate(self, step: int, elapsed: float) -> dict[str, list[float]]:
        ev = {k: v.tolist() for k, v in evaluate(self.model, self.task, self.cfg.train.loss).items()}
        for e in range(self.E):
            for name, vals in ev.items():
                self.rows.append((step, e, name, float(vals[e])))
            self.rows.append((step, e, "time_s", float(elapsed)))
        if self.cfg.measures:  # progress measures: cheap ones every evaluation, costly ones sparser
            names = [n for n in self.cfg.measures
                     if measures.MEASURES[n].cost == "cheap" or step in self.measure_at]
            for name, vals in measures.compute(names, self.model, self.task).items():
                if name in ev:  # weight_norm is already logged
                    continue
                for e, v in enumerate(vals.tolist()):
                    self.rows.append((step, e, name, float(v)))
        return ev

    def _early_stop(self, ev: dict[str, list[float]]) -> bool:
        """Count evaluations at >= stop_val_acc; freeze members that held it long enough."""
        tr, st = self.cfg.train, self.st
        changed = False
        for e in range(self.E):
            if not math.isfinite(ev["train_loss"][e]) and st.active[e]:
                st.active[e], st.diverged[e], changed = False, True, True
        if tr.stop_val_acc is None:
            return changed
        for e in range(self.E):
            st.held[e] = st.held[e] + 1 if ev["val_acc"][e] >= tr.stop_val_acc else 0
            if st.active[e] and st.held[e] >= tr.stop_patience:
                st.active[e], changed = False, True
        return changed

    def _checkpoint(self, step: int, elapsed: float, final: bool = False) -> None:
        """Metrics, weights (log-spaced steps and the last), the resume state, the summary."""
        st = self.st
        st.elapsed = elapsed
        weights = {k: v for k, v in self.model.state_dict().items()}
        self.store.write_metrics(self.rows)
        if self.sinks and len(self.rows) > self.logged:  # what metrics.parquet now holds, and no more
            for sink in self.sinks:
                sink.log(self.rows[self.logged:])
            self.logged = len(self.rows)
        if step in self.keep_at or final:
            self.store.write_weights(step, weights)
        tensors = {f"model.{k}": v for k, v in weights.items()}
        tensors.update(self.opt.state_tensors())
        tensors.update(self.methods.state_tensors())
        sampler_state = {}
        if self.sampler is not None:
            t, sampler_state = self.sampler.state()
            tensors.update(t)
        state = {"loop": st.__dict__, "optim_t": self.opt.t, "sampler": sampler_state}
        self.store.write_resume(tensors, state)
        if final or step % self.cfg.train.checkpoint_every == 0:  # not at every log-spaced save
            self.store.write_summary(self.summary())
        if self.on_checkpoint is not None:  # e.g. ship the run directory to a Ray driver
            self.on_checkpoint(step, final)

    def reopen(self) -> None:
        """Extending a run: members that stopped early go on (diverged ones do not)."""
        st = self.st
        st.active = [not d for d in st.diverged]
        st.held = [0] * self.E
        st.status = "interrupted"

    def _restore(self) -> None:
        self.store.check_split(self.task)  # damaged or changed: stop before anything is written
        df = self.store.metrics()
        tensors, state = self.store.load_resume()
        tensors = upgrade_resume(self.model, tensors)
        self.st = LoopState(**state["loop"])
        self.model.load_state_dict({k[6:]: v.to(self.device) for k, v in tensors.items() if k.startswith("model.")})
        self.opt.load_state_tensors({k: v.to(self.device) for k, v in tensors.items() if k.startswith("optim.")},
                                    state["optim_t"])
        self.methods.load_state_tensors({k: v.to(self.device) for k, v in tensors.items() if k.startswith("method.")})
        if self.sampler is not None:
            self.sampler.load(tensors, state["sampler"])
        df = df[df["step"] <= self.st.step]
        self.rows = list(df.itertuples(index=False, name=None))

    def summary(self) -> dict:
        import pandas as pd

        cfg, st = self.cfg, self.st
        df = pd.DataFrame(self.rows, columns=["step", "member", "name", "value"])
        df = df[df["name"].isin(["train_acc", "val_acc", "train_loss", "val_loss", "time_s"])]
        # one reshape for every member (a pivot per member costs seconds at E = 300)
        wide = df.pivot_table(index=["member", "step"], columns="name", values="value", aggfunc="last")
        per_member = {e: m.droplevel(0) for e, m in wide.groupby(level=0, sort=True)}
        seeds = cfg.member_values("train.seeds")
        lrs, wds = cfg.member_values("optim.lr"), cfg.member_values("optim.weight_decay")
        scales = cfg.member_values("model.init_scale")
        embed_lrs = cfg.member_values("optim.embed_lr")
        budget = cfg.detect.budget
        members = []
        for e in range(self.E):
            m = per_member.get(e, pd.DataFrame())
            last = m.iloc[-1] if len(m) else None
            ev = member_events(m.index.to_numpy(), m["train_acc"].to_numpy(), m["val_acc"].to_numpy(),
                               threshold=cfg.detect.threshold, budget=budget, gap=cfg.detect.gap,
                               seconds=m["time_s"].to_numpy(), steps_run=st.step) if len(m) else {}
            members.append({
                "seed": seeds[e], "lr": lrs[e], "weight_decay": wds[e], "init_scale": scales[e],
                "embed_lr": embed_lrs[e],
                "train_acc": _f(last, "train_acc"), "val_acc": _f(last, "val_acc"),
                "train_loss": _f(last, "train_loss"), "val_loss": _f(last, "val_loss"),
                "step_train_99": ev.get("step_train_99"), "step_val_99": ev.get("step_val_99"),
                "seconds_val_99": ev.get("seconds_val_99"), "phase": ev.get("phase"),
                "diverged": st.diverged[e],
            })
        detect = {"threshold": cfg.detect.threshold, "gap": cfg.detect.gap,
                  "budget": budget if budget is not None else st.step,
                  "budget_from": "detect.budget" if budget is not None else "the run's length"}
        return {"status": st.status, "steps": st.step, "seconds": round(st.elapsed, 3),
                "detect": detect, "members": members}


def _f(row, key):
    if row is None or key not in row or not math.isfinite(float(row[key])):
        return None
    return float(row[key])


class _StopRequests:
    """SIGINT/SIGTERM set a flag that the loop reads between steps, so an interrupted run
    is checkpointed at a consistent point (never half-way through an update)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handler(self, signum, frame):
        self.requested = True

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


class _Progress:
    """A Rich progress bar with live train/val accuracy (mean over members) on a terminal;
    elsewhere (a log file, a cluster job) plain lines, one at most every ``PLAIN_EVERY_S``
    seconds at an evaluation, and one at the end."""

    PLAIN_EVERY_S = 10.0

    def __init__(self, total: int, start: int, enabled: bool):
        self.p, self.plain = None, False
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if not Console().is_terminal:
            self.plain, self.total, self.t0, self.last_print, self.last = True, total, time.monotonic(), 0.0, None
            return
        self.p = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.fields[acc]}"), transient=False)
        self.p.start()
        self.t = self.p.add_task("train", total=total, completed=start, acc="")

    def update(self, step: int, ev: dict[str, list[float]]) -> None:
        if self.p is None and not self.plain:
            return
        tr = sum(ev["train_acc"]) / len(ev["train_acc"])
        va = sum(ev["val_acc"]) / len(ev["val_acc"])
        if self.plain:
            self.last = (step, tr, va)
            now = time.monotonic()
            if now - self.last_print >= self.PLAIN_EVERY_S:
                self._line()
                self.last_print = now
            return
        self.p.update(self.t, completed=step, acc=f"train acc {tr:.3f}  val acc {va:.3f}")

    def _line(self) -> None:
        step, tr, va = self.last
        print(f"step {step}/{self.total}  train acc {tr:.3f}  val acc {va:.3f}  "
              f"{time.monotonic() - self.t0:.0f} s", flush=True)

    def close(self) -> None:
        if self.plain and self.last is not None:
            self._line()
            self.plain = False
        if self.p is not None:
            self.p.stop()
            self.p = None


# --------------------------------------------------------------------------- entry points


def float64_use(cfg: RunConfig) -> str | None:
    """What in ``cfg`` computes in float64 on the training device (None: nothing)."""
    if cfg.model.dtype == "float64":
        return "model.dtype = float64"
    loss = cfg.method.get("loss")
    if isinstance(loss, dict) and loss.get("float64", True):
        return "the float64 loss (method.loss.float64)"
    if cfg.measures:
        return f"the live measures {cfg.measures} (computed in float64)"
    return None


def check_device(device: str, cfg: RunConfig | None = None) -> None:
    """Refuse a device this machine does not have, or one that cannot run ``cfg`` (MPS has
    no float64), before anything is written."""
    if device == "mps" and cfg is not None and (why := float64_use(cfg)):
        raise ConfigError("train.device", device, f"MPS has no float64, which {why} needs; use cpu or cuda")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", device, "CUDA is not available on this machine")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError("train.device", device, f"only {torch.cuda.device_count()} CUDA device(s)")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device", device, "MPS is not available on this machine")


def deterministic_cuda(on: bool = True) -> None:
    """Make CUDA training reproducible (``train.deterministic``, the default), as it is on the
    CPU: the same run twice, or killed and resumed, gives the same bits. Without this, CUDA's atomic-add kernels (the embedding's and
    the gather's backward passes) sum in a varying order, and Adam amplifies the last-bit
    differences within a few thousand steps (measured on an H100: a small nanda2023 run killed
    and resumed logged metrics up to 0.8 apart from the unkilled run's by step 3,000). cuBLAS needs a fixed workspace for it (CUBLAS_WORKSPACE_CONFIG, read when checked);
    an op without a deterministic CUDA kernel warns rather than fails. It costs time (on an
    H100, benchmarks/RESULTS.md); ``train.deterministic = false`` trades the bits for speed.
    Process-wide, like ``torch.use_deterministic_algorithms`` itself."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)


def default_run_name(cfg: RunConfig) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return f"{cfg.preset or 'run'}-{stamp}"


def train(cfg: RunConfig, run_dir: str | Path | None = None, *, runs_dir: str | Path = "runs",
          progress: bool = True, on_checkpoint: Callable[[int, bool], Any] | None = None):
    """Train ``cfg`` (validated here) into ``run_dir`` (default: RUNS_DIR/<preset>-<time>).
    ``on_checkpoint(step, final)`` is called after each checkpoint is complete on disk.
    Returns the :class:`groklab.Run`."""
    check(cfg)
    check_device(cfg.train.device, cfg)
    run_dir = Path(run_dir) if run_dir else Path(runs_dir) / default_run_name(cfg)
    task = make_task(cfg.task)
    if cfg.measures:  # a live measure that does not apply is refused here, not dropped at every evaluation
        why = measures.model_problem(cfg.measures, build_model(cfg, task, torch.device("cpu")), task)
        if why:
            raise ConfigError("measures", cfg.measures, why)
    task_split = task.split_tensors()
    with writer_lock(run_dir, "run directory"):
        store = RunStore.create(run_dir, cfg, task_split)
        Trainer(cfg, store, fresh=True, on_checkpoint=on_checkpoint).run(progress)
    return Run(run_dir)


# what --resume may change: how far and how long a run goes, not what it computes
EXTENDABLE = ("train.steps", "train.stop_val_acc", "train.stop_patience", "train.checkpoint_every",
              "train.progress", "train.threads", "train.device", "train.deterministic", "train.log_to")


def resume(run_dir: str | Path, progress: bool = True,
           on_checkpoint: Callable[[int, bool], Any] | None = None, overrides: list[str] | tuple = ()):
    """Continue a run from its last checkpoint (a finished run is returned as it is).

    ``overrides`` (keys of :data:`EXTENDABLE`, e.g. ``["train.steps=40000",
    "train.stop_val_acc=none"]``) extend it first, also a finished or early-stopped one: its
    members go on from their last checkpoint (a diverged member stays stopped). Extending
    changes no step already taken: the weights at step N are those of a run configured for
    the longer length from the start."""
    store = RunStore(run_dir)
    cfg = check(store.config())
    summary = store.summary()
    extend = bool(overrides)
    if extend:
        for item in overrides:
            key = item.split("=", 1)[0].strip()
            if key not in EXTENDABLE:
                raise ConfigError(key, item, f"--resume changes only {', '.join(EXTENDABLE)}")
        new = check(apply_overrides(copy.deepcopy(cfg), list(overrides)))
        done = summary["steps"] if summary else 0
        if new.train.steps < done:
            raise ConfigError("train.steps", new.train.steps, f"the run has already taken {done} steps")
        cfg = new
    elif summary and summary["status"] in ("completed", "stopped", "diverged"):
        return Run(run_dir)
    check_device(cfg.train.device, cfg)
    with writer_lock(Path(run_dir), "run directory"):
        if extend:
            store.write_config(cfg)
        # killed before its first checkpoint: start again in the same directory
        trainer = Trainer(cfg, store, fresh=not store.has_resume(), on_checkpoint=on_checkpoint)
        if extend:
            trainer.reopen()
        trainer.run(progress)
    return Run(run_dir)
    check_device(cfg.train.device, cfg)
    with writer_lock(Path(run_dir), "run directory"):
        # killed before its first checkpoint: start again in the same directory
        Trainer(cfg, store, fresh=not store.has_resume(), on_checkpoint=on_checkpoint).run(progress)
    return Run(run_dir)
