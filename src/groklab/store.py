"""Run directories: the unit of truth.

    RUN_DIR/
      config.json            the resolved RunConfig
      split.safetensors      train_idx, val_idx (rows of the task's table)
      metrics.parquet        long format: step, member, name, value
      summary.json           status, steps, per-member results (see ``summary`` below)
      checkpoints/
        step_00001234.safetensors   weights at log-spaced steps (kept, for analysis)
        resume.safetensors          weights + optimizer/RNG state + loop state (latest)
        resume.prev.safetensors     the one before it (the fallback if the latest is damaged)
      .lock                  flock'ed by the one process writing the directory

Every write goes to a temporary file in the same directory, which is flushed to disk
(``fsync``) before ``os.replace`` puts it in place, and the directory is flushed after: a
killed process or a power cut leaves either the old file or the new one, never half of one
or an empty one. Every safetensors file carries a SHA-256 of its tensors in its metadata,
checked when it is read; a damaged latest resume checkpoint is passed over for the previous
one, with one line saying so; any other damaged file raises :class:`RunDirError` naming it
before anything is written. A write that finds the disk full raises :class:`DiskFullError`
naming the file, the previous complete files still in place. Loading never unpickles:
safetensors, JSON and Parquet only.

This module does not import torch: tensors are written through numpy and read by
safetensors (which imports torch itself when asked for torch tensors), so that reading a
run's config, summary, metrics and weights as arrays (:class:`RunFiles`: ``groklab report``)
starts without it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from safetensors import safe_open
from safetensors.numpy import save_file

from groklab.config import RunConfig
from groklab.rundir import CONFIG_FORMAT, LOCK, RunDirError, read_config, read_summary

if TYPE_CHECKING:
    import torch

METRIC_COLUMNS = ["step", "member", "name", "value"]


class DiskFullError(RunDirError):
    """A write failed for want of space (or over a file-size limit); the run directory
    still holds the previous complete files, and ``--resume`` continues once there is room."""


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_TEXTS = ("No space left on device", "os error 28", "File too large", "os error 27", "Disk quota exceeded")


def _is_disk_full(e: BaseException) -> bool:
    """An out-of-space error, whichever library raised it (OSError's errno; pyarrow's and
    safetensors' errors carry the OS message in their text)."""
    if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
        return True
    return any(t in str(e) for t in _FULL_TEXTS)


# --------------------------------------------------------------------------- atomic writes


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if _is_disk_full(e):
            raise DiskFullError(f"{path}: no space left to write it ({type(e).__name__}: {e}); the run directory "
                                f"keeps its last complete files: free space, then continue with --resume") from None
        raise


def _fsync(path: str | Path) -> None:
    """Flush a file's (or a directory's) data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes (torch's names: "torch.float32"), shapes and
    bytes, in sorted name order."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = arrays[k]
        h.update(f"{k}|torch.{a.dtype.name}|{tuple(a.shape)}|".encode())
        h.update(a.tobytes())  # C order, whatever the strides (np.ascontiguousarray would make a 0-d array 1-d)
    return h.hexdigest()


def _numpy(tensors: dict[str, "torch.Tensor"]) -> dict[str, np.ndarray]:
    return {k: v.detach().contiguous().cpu().numpy() for k, v in tensors.items()}


def tensors_sha256(tensors: dict[str, "torch.Tensor"]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in sorted name order."""
    return _sha256(_numpy(tensors))


def write_json(path: Path, obj: Any) -> None:
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    _atomic(Path(path), w)


def write_tensors(path: Path, tensors: dict[str, "torch.Tensor"], metadata: dict[str, str] | None = None) -> None:
    arrays = _numpy(tensors)
    metadata = {**(metadata or {}), "sha256": _sha256(arrays)}
    _atomic(Path(path), lambda tmp: save_file(arrays, tmp, metadata=metadata))


def _read(path: Path, framework: str) -> tuple[dict, dict[str, str]]:
    """Tensors ("pt") or arrays ("np") and metadata of a safetensors file, its checksum
    checked (files written before checksums carry none and are read as they are).
    RunDirError naming the file if it cannot be read or does not match."""
    try:
        with safe_open(path, framework=framework) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a bad header or short file
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    want = meta.get("sha256")
    if want is not None and _sha256(_numpy(tensors) if framework == "pt" else tensors) != want:
        raise RunDirError(f"{path}: checksum mismatch (the file is damaged)")
    return tensors, meta


def read_tensors(path: Path) -> tuple[dict[str, "torch.Tensor"], dict[str, str]]:
    """Torch tensors and metadata of a safetensors file, checksum checked (:func:`_read`)."""
    return _read(path, "pt")


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The same file's tensors as numpy arrays (no torch), checksum checked."""
    return _read(path, "np")[0]


def write_bytes(path: Path, data: bytes) -> None:
    """A file's bytes, written atomically and durably like every other file of a run."""
    def w(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    _atomic(Path(path), w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic(Path(path), lambda tmp: df.to_parquet(tmp, index=False))


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file; RunDirError naming it if it cannot be read. Read through one open file:
    pyarrow given a path may open it more than once (footer, then pages), and a writer's
    atomic replace in between would pair one file's footer with the next one's pages. The file
    is pyarrow's own (``pa.OSFile``), not a Python file object: pyarrow wraps a Python file in
    a reader that one of its worker threads may release after the read returns, and that
    release takes the GIL; at interpreter exit it killed the process with SIGABRT ("terminate
    called without an active exception"; 14 of 400 short processes here,
    benchmarks/parquet_exit_abort.py; apache/arrow#34314)."""
    try:
        with pa.OSFile(str(path), "rb") as f:
            return pd.read_parquet(f)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a damaged file
        raise RunDirError(f"{path}: damaged, not a readable Parquet file ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------- writer locks


@contextlib.contextmanager
def writer_lock(directory: Path, what: str):
    """Hold an exclusive ``flock`` on ``directory/.lock`` while writing it: a second writer
    (another ``groklab train --resume``, another ``groklab sweep``) is refused with one line
    instead of writing the same files. The kernel drops the lock when its process dies, even
    by SIGKILL, so a killed run never leaves a stale lock."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"{what} {str(directory)!r} is being written by another groklab process; "
                              "wait for it to finish (or stop it) and run this again") from None
        locked = True
        os.ftruncate(fd, 0)  # who holds it, for groklab.rundir.writer_pid (`groklab runs`: running)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        if locked:
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the lock


# --------------------------------------------------------------------------- run directory


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # paths
    @property
    def ckpt_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def resume_path(self) -> Path:
        return self.ckpt_dir / "resume.safetensors"

    @property
    def prev_resume_path(self) -> Path:
        return self.ckpt_dir / "resume.prev.safetensors"

    def has_resume(self) -> bool:
        return self.resume_path.is_file() or self.prev_resume_path.is_file()

    def weights_path(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:08d}.safetensors"

    # creation
    @classmethod
    def create(cls, path: str | Path, cfg: RunConfig, split: dict[str, "torch.Tensor"]) -> "RunStore":
        path = Path(path)
        if path.exists() and any(p.name != ".lock" for p in path.iterdir()):
            raise RunDirError(f"run directory {str(path)!r} already exists; use --resume or another --name")
        store = cls(path)
        store.ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_json(path / "config.json", {"format": CONFIG_FORMAT, **cfg.to_dict()})
        write_tensors(path / "split.safetensors", split)
        return store

    def write_config(self, cfg: RunConfig) -> None:
        """Replace config.json (extending a run: more steps, early stop off)."""
        write_json(self.path / "config.json", {"format": CONFIG_FORMAT, **cfg.to_dict()})

    # reads
    def config(self) -> RunConfig:
        return read_config(self.path)

    def summary(self) -> dict | None:
        return read_summary(self.path)

    def metrics(self) -> pd.DataFrame:
        p = self.path / "metrics.parquet"
        if not p.is_file():
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                                 zip(METRIC_COLUMNS, ["int64", "int64", "str", "float64"])})
        df = read_parquet(p)
        if list(df.columns) != METRIC_COLUMNS:
            raise RunDirError(f"{p}: damaged, its columns are {list(df.columns)}, not {METRIC_COLUMNS}")
        return df

    def split(self) -> dict[str, "torch.Tensor"]:
        return read_tensors(self.path / "split.safetensors")[0]

    def check_split(self, task) -> None:
        """RunDirError unless the saved split (read and checksummed) is the one ``task`` makes."""
        saved = self.split()
        if any(not saved[k].equal(v.cpu()) for k, v in task.split_tensors().items()):
            raise RunDirError(f"{self.path / 'split.safetensors'}: differs from the split the config makes")

    def weight_steps(self) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in self.ckpt_dir.glob("step_*.safetensors"))

    def saved_step(self, step: int | None = None) -> int:
        """``step`` if weights were saved there (default: the last saved step); else RunDirError."""
        steps = self.weight_steps()
        if not steps:
            raise RunDirError(f"{str(self.path)!r} has no saved weights")
        if step is None:
            step = steps[-1]
        if step not in steps:
            raise RunDirError(f"no weights at step {step} in {str(self.path)!r}; saved steps: {steps}")
        return step

    def load_weights(self, step: int | None = None) -> tuple[int, dict[str, "torch.Tensor"]]:
        step = self.saved_step(step)
        return step, read_tensors(self.weights_path(step))[0]

    def load_resume(self) -> tuple[dict[str, "torch.Tensor"], dict]:
        """The latest good resume checkpoint: the latest, or, if it is missing or damaged,
        the one before it (one line on stderr says so)."""
        if not self.has_resume():
            raise RunDirError(f"{str(self.path)!r} has no resume checkpoint")
        problem = f"{self.resume_path}: missing"
        if self.resume_path.is_file():
            try:
                return self._read_resume(self.resume_path)
            except RunDirError as e:
                problem = str(e)
        if not self.prev_resume_path.is_file():
            raise RunDirError(f"{problem}; no earlier resume checkpoint to fall back on")
        try:
            tensors, state = self._read_resume(self.prev_resume_path)
        except RunDirError as e:
            raise RunDirError(f"{problem}; the previous checkpoint too: {e}") from None
        print(f"groklab: {problem}; resuming from the previous checkpoint (step {state['loop']['step']})",
              file=sys.stderr)
        return tensors, state

    @staticmethod
    def _read_resume(path: Path) -> tuple[dict[str, "torch.Tensor"], dict]:
        """One resume checkpoint's tensors and loop state; RunDirError if either is damaged."""
        tensors, meta = read_tensors(path)
        try:
            return tensors, json.loads(meta["state"])
        except (KeyError, json.JSONDecodeError) as e:
            raise RunDirError(f"{path}: damaged loop state ({type(e).__name__}: {e})") from None

    @staticmethod
    def _resume_step(path: Path) -> int | None:
        """The step a resume checkpoint was written at, from its header alone (None if unreadable)."""
        try:
            with safe_open(path, framework="pt") as f:
                return json.loads(f.metadata()["state"])["loop"]["step"]
        except Exception:
            return None

    # writes
    def write_metrics(self, rows: list[tuple[int, int, str, float]]) -> None:
        df = pd.DataFrame(rows, columns=METRIC_COLUMNS)
        df = df.astype({"step": "int64", "member": "int64", "name": "str", "value": "float64"})
        write_parquet(self.path / "metrics.parquet", df)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)

    def write_weights(self, step: int, weights: dict[str, "torch.Tensor"]) -> None:
        write_tensors(self.weights_path(step), weights)

    def write_resume(self, tensors: dict[str, "torch.Tensor"], state: dict) -> None:
        """The new latest resume checkpoint; the old latest becomes the previous one (unless
        it is of the same step, as when a run's last step is checkpointed twice)."""
        if self.resume_path.is_file() and self._resume_step(self.resume_path) != state["loop"]["step"]:
            os.replace(self.resume_path, self.prev_resume_path)
        write_tensors(self.resume_path, tensors, metadata={"state": json.dumps(state)})


class RunFiles:
    """A run directory's files as Python objects, read without torch: config, summary,
    metrics, checkpoint steps and the weights as numpy arrays. :class:`groklab.run.Run` adds
    the task and the model on top; ``groklab report`` needs only this."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store = RunStore(self.path)
        self.config  # fail early on a directory that is not a run

    def __repr__(self) -> str:
        s = self.summary or {}
        return f"{type(self).__name__}({str(self.path)!r}, status={s.get('status')!r}, steps={s.get('steps')})"

    @functools.cached_property
    def config(self) -> RunConfig:
        return self.store.config()

    @property
    def summary(self) -> dict | None:
        return self.store.summary()

    @property
    def metrics(self) -> pd.DataFrame:
        """Long format: step, member, name, value."""
        return self.store.metrics()

    def wide(self, member: int = 0) -> pd.DataFrame:
        """One member's metrics, one column per name, indexed by step."""
        df = self.metrics
        return df[df["member"] == member].pivot_table(index="step", columns="name", values="value")

    @property
    def checkpoint_steps(self) -> list[int]:
        return self.store.weight_steps()

    def arrays(self, step: int | None = None) -> tuple[int, dict[str, np.ndarray]]:
        """The weights saved at ``step`` (default: the last) as numpy arrays, as saved (the
        names of the version that wrote them)."""
        step = self.store.saved_step(step)
        return step, read_arrays(self.store.weights_path(step))


def list_runs(runs_dir: str | Path) -> list[Path]:
    """Run directories directly under ``runs_dir`` (those with a config.json), sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if (p / "config.json").is_file())
