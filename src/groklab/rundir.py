"""What a run directory says about itself, read without torch: its config, its summary,
whether a process is writing it, and where runs lie under a directory (sweeps included).

The light half of :mod:`groklab.store` (which adds tensors, metrics and every write), so
that ``groklab runs`` answers without importing torch.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from groklab.config import ConfigError, RunConfig

# config.json's format: 1 (no "format" key) had one task kind, the algorithmic table, and
# loads as task.kind = "algorithmic"; 2 adds task.kind and the kinds' own sections.
CONFIG_FORMAT = 2
LOCK = ".lock"  # flock'ed by the one process writing a directory; holds "PID HOST" meanwhile


class RunDirError(RuntimeError):
    pass


def read_json(path: Path) -> Any:
    """A JSON file; RunDirError naming it if it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: damaged, not valid JSON ({e})") from None


def read_config(run_dir: Path) -> RunConfig:
    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise RunDirError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    d = read_json(p)
    if not isinstance(d, dict):
        raise RunDirError(f"{p}: damaged, not a config (a JSON {type(d).__name__})")
    fmt = d.pop("format", 1)
    if not isinstance(fmt, int) or fmt > CONFIG_FORMAT:
        raise RunDirError(f"{str(run_dir)!r} was written by a newer groklab (config format {fmt!r}; "
                          f"this version reads formats 1 to {CONFIG_FORMAT})")
    try:
        return RunConfig.from_dict(d)
    except ConfigError as e:
        raise RunDirError(f"{p}: {e} (config format {fmt}; written by another groklab version?)") from None


def read_summary(run_dir: Path) -> dict | None:
    p = Path(run_dir) / "summary.json"
    if not p.is_file():
        return None
    s = read_json(p)
    if not isinstance(s, dict) or not isinstance(s.get("members", []), list):
        raise RunDirError(f"{p}: damaged, not a run summary")
    return s


def writer_pid(directory: Path) -> int | None:
    """The PID of the live process on this host that is writing ``directory``, or None.
    Read from the lock file's "PID HOST" (written under the lock, cleared on release), so
    that asking never takes the lock itself: a writer starting at that moment is not
    refused. A writer killed by SIGKILL leaves its line, but its PID is no longer alive."""
    try:
        pid_s, host = (Path(directory) / LOCK).read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return pid


def find_runs(root: str | Path) -> list[Path]:
    """Run directories (those with a config.json) at or under ``root``, sweeps' runs
    included, sorted; a run's own subdirectories are not searched."""
    root = Path(root)
    if (root / "config.json").is_file():
        return [root]
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "config.json" in filenames:
            found.append(Path(dirpath))
            dirnames.clear()
        else:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return sorted(found)


__all__ = ["CONFIG_FORMAT", "RunDirError", "read_json", "read_config", "read_summary", "writer_pid", "find_runs"]
