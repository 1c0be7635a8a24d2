"""Sweeps: a spec (TOML) -> many runs, locally as one ensemble, on a process pool, or on Ray."""

from groklab.sweep.executors import EXECUTORS, MEMBER_KEYS, plan, run_sweep, summarize
from groklab.sweep.spec import RunPoint, SweepSpec

__all__ = ["EXECUTORS", "MEMBER_KEYS", "RunPoint", "SweepSpec", "plan", "run_sweep", "summarize"]
