"""Run a sweep: ``run_sweep(spec, sweep_dir, executor)``.

Executors (same runs, same numbers):

* ``ensemble`` (default): runs that differ only in per-member knobs (seed, lr, weight decay,
  embedding lr, init scale, per-member method knobs) train together as one batched model in
  this process; finished members stop costing compute. Layout: ``groups/g0000/`` (a run
  directory whose members are runs of the sweep).
* ``process``: one single-member run per task on a local process pool (``runs/r00000/``).
* ``ray``: the same tasks on Ray, ``ray.init()`` locally or ``address=`` to join a cluster.
  ``ray_storage="object-store"`` (default): no shared file system needed. Each run trains in
  a directory on its worker's own disk and, after every checkpoint, sends the files that
  changed to the driver through Ray's object store; the driver alone writes the sweep
  directory (``groklab.sweep.transfer``). A run whose worker or node dies is started again
  from its last checkpoint that reached the driver (from scratch if none did), at most
  ``retries`` times. ``ray_storage="shared"``: every node sees the sweep directory and
  workers write their run directories in it themselves.

Each layer is batch-invariant, so a member of an ensemble computes exactly what the same run
computes alone (``tests/integration/test_sweep.py`` checks the executors agree).

Resuming: re-running a spec in the same directory skips finished run directories, resumes
interrupted ones from their last checkpoint and starts the missing ones.

    SWEEP_DIR/
      sweep.json          the spec, the executor and the plan: every run's id, axis values,
                          seed and where it lives (directory, member)
      summary.parquet     one row per run (``summarize``)
      groups/ or runs/    run directories
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from groklab.config import ConfigError, RunConfig, set_value
from groklab.rundir import read_json
from groklab.store import RunStore, write_json, writer_lock
from groklab.sweep.spec import RunPoint, SweepSpec
from groklab.sweep.summary import _status, summarize
from groklab.sweep.transfer import FileSet, Outbox, apply_files, read_files
from groklab.resolve import check
from groklab.training.loop import resume, train
from groklab.training.methods import PER_MEMBER_KNOBS

EXECUTORS = ("ensemble", "process", "ray")
RAY_STORAGE = ("object-store", "shared")
MEMBER_KEYS = ("optim.lr", "optim.weight_decay", "optim.embed_lr", "model.init_scale") + PER_MEMBER_KNOBS


@dataclass
class Job:
    """One run directory to produce: a group of runs (ensemble) or one run."""

    id: str
    dir: Path
    cfg: RunConfig
    runs: list[RunPoint]  # member e of the run directory is runs[e]


# --------------------------------------------------------------------------- planning


def plan(spec: SweepSpec, sweep_dir: Path, executor: str, max_members: int = 1024) -> list[Job]:
    """The run directories that make up the sweep, in a fixed order."""
    runs = spec.runs()
    if executor != "ensemble":
        return [Job(r.id, sweep_dir / "runs" / r.id, spec.config_for(r), [r]) for r in runs]
    member_axes = [k for k in spec.axes if k in MEMBER_KEYS]
    groups: dict[tuple, list[RunPoint]] = {}
    for r in runs:
        key = tuple((k, repr(v)) for k, v in r.values.items() if k not in member_axes)
        groups.setdefault(key, []).append(r)
    jobs = []
    for members in groups.values():
        for start in range(0, len(members), max_members):
            chunk = members[start : start + max_members]
            cfg = spec.config_for(chunk[0])
            for k in member_axes:
                set_value(cfg, k, [r.values[k] for r in chunk])
            cfg.train.seeds = [r.seed for r in chunk]
            gid = f"g{len(jobs):04d}"
            jobs.append(Job(gid, sweep_dir / "groups" / gid, check(cfg), chunk))
    return jobs


def _plan_record(spec: SweepSpec, executor: str, jobs: list[Job]) -> dict:
    runs = []
    for job in jobs:
        for e, r in enumerate(job.runs):
            runs.append({"id": r.id, "values": r.values, "seed": r.seed,
                         "dir": str(job.dir.relative_to(job.dir.parent.parent)), "member": e})
    runs.sort(key=lambda r: r["id"])
    return {"spec": spec.to_dict(), "executor": executor, "runs": runs}


# --------------------------------------------------------------------------- one job


def run_job(cfg_dict: dict, run_dir: str, threads: int | None = None, progress: bool = False,
            on_checkpoint: Callable[[int, bool], Any] | None = None) -> str:
    """Train (or resume, or skip) one run directory. Returns the status it found:
    "done" (skipped), "partial" (resumed) or "new" (trained). Runs in worker processes."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    status = _status(run_dir)
    if status == "done":
        return status
    if status == "partial":
        resume(run_dir, progress=progress, on_checkpoint=on_checkpoint)
        return status
    if run_dir.exists():  # a directory killed before its config landed holds nothing of value
        shutil.rmtree(run_dir)
    cfg = RunConfig.from_dict(cfg_dict)
    if threads:
        cfg.train.threads = threads
    train(cfg, run_dir, progress=progress, on_checkpoint=on_checkpoint)
    return status


_DONE = object()


def ray_job(cfg_dict: dict, run_id: str, files: FileSet, threads: int = 1):
    """A Ray task (a generator) for clusters without a shared file system: train or resume one
    run in a node-local directory that starts as the driver's copy (``files``, {} for a new
    run), yielding the files that changed after every checkpoint, and once more at the end."""
    import queue
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="groklab-") as tmp:
        local = Path(tmp) / run_id
        apply_files(local, files)
        outbox = Outbox(local, files)
        sent: queue.Queue = queue.Queue()

        def work():  # in a thread, so that this generator can yield while the run trains
            try:
                run_job(cfg_dict, str(local), threads, on_checkpoint=lambda step, final: sent.put(outbox.changed()))
                sent.put(_DONE)
            except BaseException as e:  # noqa: BLE001 - handed to the generator, which raises it
                sent.put(e)

        threading.Thread(target=work, name=f"groklab-{run_id}", daemon=True).start()
        while (item := sent.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            if item:
                yield item
        if last := outbox.changed():
            yield last


# --------------------------------------------------------------------------- the sweep


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, executor: str = "ensemble", *,
              workers: int | None = None, address: str | None = None, max_members: int = 1024,
              ray_storage: str = "object-store", retries: int = 3,
              progress: bool = True, log: Callable[[str], Any] = print) -> pd.DataFrame:
    """Run (or continue) every run of ``spec`` in ``sweep_dir``; returns the summary."""
    if executor not in EXECUTORS:
        raise ConfigError("--executor", executor, f"choose from {', '.join(EXECUTORS)}")
    if ray_storage not in RAY_STORAGE:
        raise ConfigError("--ray-storage", ray_storage, f"choose from {', '.join(RAY_STORAGE)}")
    if retries < 0:
        raise ConfigError("--retries", retries, "must be 0 or more")
    if workers is not None and workers < 1:
        raise ConfigError("--workers", workers, "must be at least 1")
    if max_members < 1:
        raise ConfigError("--max-members", max_members, "must be at least 1")
    sweep_dir = Path(sweep_dir)
    jobs = plan(spec, sweep_dir, executor, max_members)
    with writer_lock(sweep_dir, "sweep directory"):  # one sweep process per directory
        return _run_locked(spec, sweep_dir, executor, jobs, workers, address, progress, log,
                           ray_storage, retries)


def _run_locked(spec: SweepSpec, sweep_dir: Path, executor: str, jobs: list, workers, address, progress,
                log, ray_storage: str = "object-store", retries: int = 3) -> pd.DataFrame:
    record = _plan_record(spec, executor, jobs)
    record_path = sweep_dir / "sweep.json"
    if record_path.is_file():
        old = read_json(record_path)
        if old.get("executor") != executor:
            raise ConfigError("--executor", executor, f"{str(sweep_dir)!r} was run with the "
                              f"{old.get('executor')!r} executor; use it, or another --runs-dir")
        if _comparable(old["runs"]) != _comparable(record["runs"]):
            raise ConfigError("SPEC", spec.name, f"{str(sweep_dir)!r} holds a different sweep "
                              "(its runs differ from this spec's); use another --runs-dir")
    else:
        write_json(record_path, record)
    status = {j.id: _status(j.dir) for j in jobs}
    todo = [j for j in jobs if status[j.id] != "done"]
    n_runs = sum(len(j.runs) for j in jobs)
    log(f"sweep {spec.name}: {n_runs} runs in {len(jobs)} run directories ({executor}); "
        f"{len(jobs) - len(todo)} finished, "
        f"{sum(status[j.id] == 'partial' for j in todo)} to resume, "
        f"{sum(status[j.id] == 'new' for j in todo)} to start")
    if executor == "ensemble":
        for j in todo:
            log(f"  {j.id}: {len(j.runs)} members ({_describe(j, spec)})")
            run_job(j.cfg.to_dict(), str(j.dir), None, progress)
    elif executor == "process":
        _run_process(todo, workers or os.cpu_count() or 1, progress)
    else:
        _run_ray(todo, workers, address, progress, ray_storage, retries, log)
    return summarize(sweep_dir)


def _comparable(runs: list[dict]) -> list:
    return [(r["id"], repr(sorted(r["values"].items())), r["seed"]) for r in runs]


def _describe(job: Job, spec: SweepSpec) -> str:
    fixed = {k: v for k, v in job.runs[0].values.items() if k not in MEMBER_KEYS}
    return ", ".join(f"{k}={v}" for k, v in fixed.items()) or "one group"


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    p = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 disable=not enabled)
    return p, p.add_task("runs", total=total)


def _run_process(jobs: list[Job], workers: int, progress: bool) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")  # no forked copies of torch's thread pools
    bar, task = _progress(len(jobs), progress)
    with bar, cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_job, j.cfg.to_dict(), str(j.dir), threads) for j in jobs]
        try:
            for f in cf.as_completed(futures):
                f.result()
                bar.advance(task)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_ray(jobs: list[Job], workers: int | None, address: str | None, progress: bool,
             storage: str = "object-store", retries: int = 3, log: Callable[[str], Any] = print) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor", "ray", "Ray is not installed: pip install 'groklab[ray]'") from None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
    bar, task = _progress(len(jobs), progress)
    try:
        with bar:
            if storage == "shared":
                remote = ray.remote(num_cpus=1)(run_job)
                pending = [remote.remote(j.cfg.to_dict(), str(j.dir.resolve()), 1) for j in jobs]
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    ray.get(done)
                    bar.advance(task)
            else:
                _RayDriver(ray, retries, log).run(jobs, lambda: bar.advance(task))
    finally:
        if started:
            ray.shutdown()


class _RayDriver:
    """Runs jobs as :func:`ray_job` tasks and writes what they send into the sweep directory.
    One thread a job in flight consumes its task's stream; a task lost to a dead worker or
    node (any Ray system error, not an error of the run itself) is submitted again with the
    driver's copy of the run directory."""

    def __init__(self, ray, retries: int, log: Callable[[str], Any]):
        self.ray, self.retries, self.log = ray, retries, log
        self.remote = ray.remote(num_cpus=1, max_retries=0)(ray_job)  # retries are ours: from the last checkpoint
        self.live: dict[str, Any] = {}
        self.stopping = False

    def run(self, jobs: list[Job], advance: Callable[[], Any]) -> None:
        pool = cf.ThreadPoolExecutor(max_workers=max(1, min(len(jobs), 64)), thread_name_prefix="groklab-ray")
        futures = [pool.submit(self._drive, j) for j in jobs]
        try:
            for f in cf.as_completed(futures):
                f.result()
                advance()
        except BaseException:
            self.stopping = True
            for f in futures:
                f.cancel()
            for gen in list(self.live.values()):
                self.ray.cancel(gen, force=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _drive(self, job: Job) -> None:
        ray = self.ray
        for attempt in range(self.retries + 1):
            if self.stopping:
                return
            gen = self.remote.remote(job.cfg.to_dict(), job.id, read_files(job.dir), 1)
            self.live[job.id] = gen
            try:
                for ref in gen:
                    apply_files(job.dir, ray.get(ref))
                return
            except ray.exceptions.RayTaskError as e:  # the run itself failed: no retry
                raise (e.cause if isinstance(e.cause, Exception) else e) from None
            except ray.exceptions.RayError as e:  # the worker or node was lost
                if self.stopping or attempt == self.retries:
                    raise
                step = RunStore._resume_step(RunStore(job.dir).resume_path) if job.dir.is_dir() else None
                where = f"its checkpoint at step {step}" if step is not None else "scratch"
                self.log(f"  {job.id}: {type(e).__name__} (worker lost); retrying from {where} "
                         f"(attempt {attempt + 2} of {self.retries + 1})")
            finally:
                self.live.pop(job.id, None)


