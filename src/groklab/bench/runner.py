"""Training bench runs under a wall-clock budget, and reading their results back.

The budget: a run stops once its training seconds (the loop's own clock: steps plus the
periodic evaluations and checkpoints, start-up excluded) exceed ``budget_s``, or when it
reaches 99% val accuracy, or at its recipe's step cap (``train.steps``), whichever comes
first. ``loop.py`` has no time budget and is left as it is: :class:`BudgetTrainer`
subclasses its ``Trainer`` and, once the clock passes the budget, asks the loop for an
evaluation at the next step and then marks every member done, so the run ends through the
loop's own early-stop path (status "stopped", summary and checkpoint written as usual).
A run counts as reaching 99% only if it did so within the budget (``seconds_val_99 <=
budget_s``).

Re-running: a finished run (summary status completed / stopped / diverged) is skipped; an
interrupted one resumes from its checkpoint; a run stopped by a smaller budget without
reaching 99% is continued up to the new budget (bit for bit as if it had never stopped);
a run whose saved config differs from the recipe's current one is trained again.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from groklab.bench.suite import TASKS, BenchRun
from groklab.config import RunConfig
from groklab.store import RunStore
from groklab.models import build_model
from groklab.tasks import make_task
from groklab.training.loop import Trainer, check_device

FINISHED = ("completed", "stopped", "diverged")


class BudgetTrainer(Trainer):
    """The training loop with a wall-clock budget (seconds of training, resumes included)."""

    def __init__(self, cfg: RunConfig, store: RunStore, fresh: bool, budget_s: float):
        super().__init__(cfg, store, fresh)
        self.budget_s = float(budget_s)
        self._clock0 = 0.0
        self._over = False
        if not fresh and self.st.status == "stopped":  # stopped by a smaller budget: reopen
            self.st.active = [not d for d in self.st.diverged]
            self.st.held = [0] * self.E
            self.st.status = "interrupted"

    def run(self, progress: bool = True):
        self._clock0 = time.perf_counter() - self.st.elapsed  # the loop's own t0, to a few µs
        return super().run(progress)

    def _forward(self, tokens, live):
        # once per step, before the step counter moves: past the budget, evaluate next step
        if not self._over and time.perf_counter() - self._clock0 > self.budget_s:
            self._over = True
            self.eval_at.add(self.st.step + 1)
        return super()._forward(tokens, live)

    def _early_stop(self, ev: dict[str, list[float]]) -> bool:
        changed = super()._early_stop(ev)
        if self._over and any(self.st.active):
            self.st.active = [False] * self.E
            changed = True
        return changed


def _status(run_dir: Path) -> str:
    """new | partial | done"""
    if not (run_dir / "config.json").is_file():
        return "new"
    s = RunStore(run_dir).summary()
    return "done" if s and s.get("status") in FINISHED else "partial"


def run_one(cfg: RunConfig, run_dir: str | Path, budget_s: float,
            log: Callable[[str], Any] = lambda s: None) -> str:
    """Train, resume, extend or skip one bench run. Returns what it did: "skipped",
    "resumed", "extended" or "trained"."""
    run_dir = Path(run_dir)
    status = _status(run_dir)
    if status != "new" and RunStore(run_dir).config().to_dict() != cfg.to_dict():
        log(f"{run_dir}: its config differs from the recipe's current one; training it again")
        shutil.rmtree(run_dir)
        status = "new"
    if status == "done":
        s = RunStore(run_dir).summary() or {}
        m = s["members"][0]
        if m["step_val_99"] is not None or s["status"] != "stopped" or s["seconds"] >= budget_s:
            return "skipped"
        BudgetTrainer(cfg, RunStore(run_dir), fresh=False, budget_s=budget_s).run(progress=False)
        return "extended"
    check_device(cfg.train.device, cfg)
    if status == "partial":
        store = RunStore(run_dir)
        BudgetTrainer(cfg, store, fresh=not store.has_resume(), budget_s=budget_s).run(progress=False)
        return "resumed"
    if run_dir.exists():  # killed before its config landed: nothing of value
        shutil.rmtree(run_dir)
    store = RunStore.create(run_dir, cfg, make_task(cfg.task).split_tensors())
    BudgetTrainer(cfg, store, fresh=True, budget_s=budget_s).run(progress=False)
    return "trained"


# --------------------------------------------------------------------------- results

RUN_COLUMNS = ["method", "task", "seed", "prior_knowledge", "status", "reached", "step_val_99",
               "seconds_val_99", "threshold", "step_threshold", "seconds_threshold", "steps", "seconds",
               "ms_per_step", "val_acc", "n_params", "run_dir"]


def first_at(run_dir: Path, threshold: float, budget_s: float) -> tuple[int | None, float | None]:
    """(step, training seconds) of the first evaluation with val acc >= ``threshold`` within
    the budget, from the run's metrics.parquet; (None, None) if there is none."""
    df = RunStore(run_dir).metrics()
    if df.empty:
        return None, None
    w = df[df["member"] == 0].pivot_table(index="step", columns="name", values="value").sort_index()
    if "val_acc" not in w or "time_s" not in w:
        return None, None
    hit = w[(w["val_acc"] >= threshold) & (w["time_s"] <= budget_s)]
    if hit.empty:
        return None, None
    return int(hit.index[0]), float(hit["time_s"].iloc[0])


def n_params(cfg: RunConfig) -> int:
    """Trainable parameters of one member (fixed input codes are buffers, not counted)."""
    one = RunConfig.from_dict(cfg.to_dict())
    one.train.seeds = [0]
    with torch.no_grad():
        model = build_model(one, make_task(one.task))
    return int(sum(p[0].numel() for p in model.parameters()))


def result_row(run: BenchRun, run_dir: Path, budget_s: float, params: int) -> dict:
    """One row of the results table from a run directory's summary.json."""
    s = RunStore(run_dir).summary() or {"status": "new", "steps": 0, "seconds": 0.0, "members": [{}]}
    m = s["members"][0] if s["members"] else {}
    secs = m.get("seconds_val_99")
    reached = secs is not None and secs <= budget_s
    steps, seconds = int(s.get("steps") or 0), float(s.get("seconds") or 0.0)
    thr = TASKS[run.task].threshold
    step_thr, secs_thr = first_at(run_dir, thr, budget_s) if s["status"] != "new" else (None, None)
    return {"method": run.method, "task": run.task, "seed": run.seed,
            "prior_knowledge": run.prior_knowledge, "status": s["status"], "reached": reached,
            "step_val_99": m.get("step_val_99") if reached else None,
            "seconds_val_99": secs if reached else None, "threshold": thr, "step_threshold": step_thr,
            "seconds_threshold": secs_thr, "steps": steps, "seconds": seconds,
            "ms_per_step": 1000 * seconds / steps if steps else None, "val_acc": m.get("val_acc"),
            "n_params": params, "run_dir": str(run_dir)}


def run_bench(runs: list[BenchRun], runs_dir: str | Path, budget_s: float,
              log: Callable[[str], Any] = print) -> pd.DataFrame:
    """Run (or continue) every bench run in ``runs_dir``; one row per run (RUN_COLUMNS)."""
    runs_dir = Path(runs_dir)
    rows, params = [], {}
    for i, r in enumerate(runs):
        d = runs_dir / r.rel_dir
        did = run_one(r.cfg, d, budget_s, log)
        if (r.method, r.task) not in params:
            params[(r.method, r.task)] = n_params(r.cfg)
        row = result_row(r, d, budget_s, params[(r.method, r.task)])
        rows.append(row)
        got = f"99% at step {row['step_val_99']}, {row['seconds_val_99']:.1f} s" if row["reached"] else \
            f"no 99% (val acc {row['val_acc'] or 0:.3f}, {row['steps']} steps, {row['seconds']:.1f} s)"
        log(f"[{i + 1}/{len(runs)}] {r.rel_dir}: {did}; {got}")
    return pd.DataFrame(rows, columns=RUN_COLUMNS)
