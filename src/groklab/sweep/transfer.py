"""Run directories that travel: from a Ray worker's node-local disk to the driver's sweep directory.

On a cluster without a shared file system, each run trains in a directory on its worker's
own disk. After every checkpoint the worker sends the files that changed since its last
sending (:class:`Outbox`); the driver writes them into the sweep directory with
:func:`apply_files`, each atomically and durably, in the order the training loop itself
writes them (config and split, metrics, weights, the previous and the latest resume
checkpoint, the summary last). So the driver's copy is, at every moment, a run directory that
a crash of the training process could have left: valid, and resumable from the last
checkpoint that reached the driver. :func:`read_files` gives the driver's copy back to a worker
that is to resume it.

Nothing here imports Ray; the files are plain ``{relative path: bytes}`` dicts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from groklab.store import RunDirError, write_bytes

FileSet = dict[str, bytes]

_FIRST = ("config.json", "split.safetensors", "metrics.parquet")
_LAST = ("checkpoints/resume.prev.safetensors", "checkpoints/resume.safetensors", "summary.json")
_IMMUTABLE = "checkpoints/step_"  # weights at a step: written once, never rewritten


def _rank(rel: str) -> tuple:
    if rel in _FIRST:
        return (0, _FIRST.index(rel), rel)
    if rel in _LAST:
        return (2, _LAST.index(rel), rel)
    return (1, 0, rel)


def _files(run_dir: Path):
    """(relative path, path) of a run directory's files; lock and temporary files left out."""
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and not p.name.startswith("."):  # ".lock" and atomic writes' ".name.XXXX"
            yield p.relative_to(run_dir).as_posix(), p


def read_files(run_dir: str | Path) -> FileSet:
    """Every file of a run directory, or {} if it holds no run yet (no config.json)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        return {}
    return {rel: p.read_bytes() for rel, p in _files(run_dir)}


class Outbox:
    """The files of one run directory not yet sent: content digests decide (a file rewritten
    within one timestamp tick, or onto a reused inode, is still seen to change)."""

    def __init__(self, run_dir: str | Path, already_sent: FileSet | None = None):
        self.run_dir = Path(run_dir)
        self.sent = {rel: hashlib.blake2b(b, digest_size=16).digest() for rel, b in (already_sent or {}).items()}

    def changed(self) -> FileSet:
        out = {}
        for rel, p in _files(self.run_dir):
            if rel.startswith(_IMMUTABLE) and rel in self.sent:
                continue
            data = p.read_bytes()
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if self.sent.get(rel) != digest:
                out[rel], self.sent[rel] = data, digest
        return out


def _checked(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") or part.startswith(".") for part in p.parts):
        raise RunDirError(f"refusing to write {rel!r} into a run directory: not a plain relative path")
    return p


def apply_files(run_dir: str | Path, files: FileSet) -> None:
    """Write ``files`` into ``run_dir`` in the training loop's own order, each atomically."""
    run_dir = Path(run_dir)
    checked = {rel: _checked(rel) for rel in files}
    for rel in sorted(files, key=_rank):
        write_bytes(run_dir.joinpath(*checked[rel].parts), files[rel])
