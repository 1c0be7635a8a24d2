"""Sweeps: a spec (TOML) -> many runs, locally as one ensemble, on a process pool, or on Ray.

The package's names load on first use (PEP 562): ``summarize`` (results, read without
torch) does not import the executors, which import the training loop."""

from importlib import import_module

_LAZY = {"EXECUTORS": "executors", "MEMBER_KEYS": "executors", "plan": "executors", "run_sweep": "executors",
         "summarize": "summary", "RunPoint": "spec", "SweepSpec": "spec"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f"groklab.sweep.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'groklab.sweep' has no attribute {name!r}")


__all__ = ["EXECUTORS", "MEMBER_KEYS", "RunPoint", "SweepSpec", "plan", "run_sweep", "summarize"]
