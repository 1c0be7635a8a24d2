"""Sweep specs: a base config, axes over config keys, seeds -> a list of runs.

A spec is a TOML file::

    name = "liu2022_toy_lr_wd"          # the sweep directory's name (default: the file's stem)
    preset = "liu2022_toy"              # a base preset (optional) ...
    config = "base.toml"                # ... and/or a TOML of overrides, relative to the spec
    seeds = [0, 1, 2]                   # init seeds of every point (or: seeds = 3 -> 0, 1, 2)
    mode = "grid"                       # grid (every combination) | random (``samples`` draws)
    samples = 20                        # random mode only
    sample_seed = 0                     # random mode only

    [base]                              # overrides of the preset, dotted keys or tables
    "train.steps" = 10000

    [axes]                              # config keys swept
    "optim.lr" = { log = [1e-4, 1e-1], n = 10 }        # 10 log-spaced values
    "optim.weight_decay" = { linear = [0, 10], n = 11 } # 11 evenly spaced values
    "task.fraction" = [0.3, 0.5, 0.7]                   # explicit values

In random mode ``{log = [lo, hi]}`` draws log-uniformly, ``{linear = [lo, hi]}`` uniformly
and a list uniformly among its items (``n`` is not used). Every run is one point (a value
per axis) and one seed; its id ``r00000`` is its index in this fixed order (points in grid
order, seeds innermost), so re-running a spec finds its earlier runs.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groklab.config import ConfigError, RunConfig, apply_dict, load_toml, set_value
from groklab.presets import get_preset
from groklab.resolve import check

MAX_RUNS = 100_000  # runs one spec may expand to (an untrusted spec cannot ask for millions)
MAX_AXIS_VALUES = 10_000  # values of one {log|linear, n} axis

SPEC_KEYS = ("name", "preset", "config", "seeds", "mode", "samples", "sample_seed", "base", "axes")


@dataclass(frozen=True)
class RunPoint:
    """One run of a sweep: an id, the value of every axis, and a seed."""

    id: str
    values: dict
    seed: int


@dataclass
class SweepSpec:
    name: str
    axes: dict[str, list]  # key -> the values (already expanded; random mode: the draws' pool)
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str | None = None
    config: str | None = None  # path of a TOML of overrides (resolved to absolute)
    base: dict = field(default_factory=dict)
    mode: str = "grid"
    samples: int = 0
    sample_seed: int = 0
    raw_axes: dict = field(default_factory=dict)  # as written, for random draws and the record

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path) -> "SweepSpec":
        path = Path(path)
        if not path.is_file():
            raise ConfigError("SPEC", str(path), "no such sweep spec file")
        d = load_toml(path)
        spec = cls.from_dict(d, default_name=path.stem, base_dir=path.parent)
        return spec

    @classmethod
    def from_dict(cls, d: dict, default_name: str = "sweep", base_dir: Path | None = None) -> "SweepSpec":
        for k in d:
            if k not in SPEC_KEYS:
                raise ConfigError(f"sweep.{k}", d[k], f"unknown key; a sweep spec has {', '.join(SPEC_KEYS)}")
        seeds = d.get("seeds", [0])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ConfigError("sweep.seeds", seeds, "must be at least 1")
            if seeds > MAX_RUNS:
                raise ConfigError("sweep.seeds", seeds, f"more than the {MAX_RUNS:,} runs a spec may hold")
            seeds = list(range(seeds))
        if (not isinstance(seeds, list) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
            raise ConfigError("sweep.seeds", seeds, "expected a count or a list of non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise ConfigError("sweep.seeds", seeds, "seeds repeat")
        mode = d.get("mode", "grid")
        if mode not in ("grid", "random"):
            raise ConfigError("sweep.mode", mode, "choose from grid, random")
        samples = d.get("samples", 0)
        if mode == "random" and (not isinstance(samples, int) or samples < 1):
            raise ConfigError("sweep.samples", samples, "random mode needs samples >= 1")
        if mode == "random" and samples > MAX_RUNS:
            raise ConfigError("sweep.samples", samples, f"more than the {MAX_RUNS:,} runs a spec may hold")
        raw_axes = d.get("axes", {})
        if not isinstance(raw_axes, dict):
            raise ConfigError("sweep.axes", raw_axes, "expected a table of key = values")
        axes = {k: _axis_values(k, v, mode) for k, v in _flatten(raw_axes).items()}
        points = samples if mode == "random" else math.prod(len(v) for v in axes.values())
        if points * len(seeds) > MAX_RUNS:
            raise ConfigError("sweep.axes", f"{points:,} points x {len(seeds)} seeds",
                              f"expands to {points * len(seeds):,} runs; a spec may hold {MAX_RUNS:,}")
        config = d.get("config")
        if config is not None:
            cpath = Path(config)
            if not cpath.is_absolute() and base_dir is not None:
                cpath = base_dir / cpath
            if not cpath.is_file():
                raise ConfigError("sweep.config", config, "no such file")
            config = str(cpath.resolve())
        base = d.get("base", {})
        if not isinstance(base, dict):
            raise ConfigError("sweep.base", base, "expected a table of overrides")
        name = d.get("name", default_name)
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError("sweep.name", name, "expected a non-empty name without '/'")
        spec = cls(name=name, axes=axes, seeds=seeds, preset=d.get("preset"), config=config,
                   base=base, mode=mode, samples=samples, sample_seed=int(d.get("sample_seed", 0)),
                   raw_axes=_flatten(raw_axes))
        spec.check()
        return spec

    def check(self) -> None:
        """Build the base config and one config per distinct axis value: every key and
        value is checked before anything runs."""
        if "train.seeds" in self.axes:
            raise ConfigError("sweep.axes.train.seeds", self.axes["train.seeds"], "use the spec's `seeds`")
        base = self.base_config()
        for key, values in self.axes.items():
            for v in values:
                cfg = copy.deepcopy(base)
                set_value(cfg, key, v)  # unknown keys and bad values fail here
                list_valued = isinstance(getattr_dotted(base, key), list)  # e.g. model.hidden
                if isinstance(getattr_dotted(cfg, key), list) and not list_valued:
                    raise ConfigError(f"sweep.axes.{key}", v, "an axis value must be a single value")
                check(cfg)

    # ------------------------------------------------------------------ expansion

    def base_config(self) -> RunConfig:
        cfg = get_preset(self.preset) if self.preset else RunConfig()
        if self.config:
            apply_dict(cfg, load_toml(self.config))
        for k, v in _flatten(self.base).items():
            set_value(cfg, k, v)
        cfg.train.seeds = [self.seeds[0]]
        return check(cfg)

    def points(self) -> list[dict]:
        keys = list(self.axes)
        if self.mode == "grid":
            return [dict(zip(keys, combo)) for combo in itertools.product(*(self.axes[k] for k in keys))]
        rng = random.Random(self.sample_seed)
        return [{k: _draw(rng, self.raw_axes[k]) for k in keys} for _ in range(self.samples)]

    def runs(self) -> list[RunPoint]:
        out = []
        for point in self.points():
            for seed in self.seeds:
                out.append(RunPoint(f"r{len(out):05d}", point, seed))
        return out

    def config_for(self, run: RunPoint) -> RunConfig:
        """The single-member config of one run."""
        cfg = self.base_config()
        for k, v in run.values.items():
            set_value(cfg, k, v)
        cfg.train.seeds = [run.seed]
        return check(cfg)

    def to_dict(self) -> dict:
        return {"name": self.name, "preset": self.preset, "config": self.config, "seeds": self.seeds,
                "mode": self.mode, "samples": self.samples, "sample_seed": self.sample_seed,
                "base": self.base, "axes": self.raw_axes}


# --------------------------------------------------------------------------- helpers


def getattr_dotted(cfg: RunConfig, key: str) -> Any:
    parts = key.split(".")
    if parts[0] == "method":
        v: Any = cfg.method
        for p in parts[1:]:
            v = v.get(p) if isinstance(v, dict) else None
        return v
    obj: Any = cfg
    for p in parts:
        obj = getattr(obj, p)
    return obj


def _flatten(d: dict, prefix: str = "") -> dict:
    """{"optim": {"lr": x}} and {"optim.lr": x} -> {"optim.lr": x}; a table holding an
    axis form ({log=..}, {linear=..}) is a value, not a section."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not ({"log", "linear"} & set(v)):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _axis_values(key: str, v: Any, mode: str) -> list:
    where = f"sweep.axes.{key}"
    if isinstance(v, list):
        if not v:
            raise ConfigError(where, v, "needs at least one value")
        return list(v)
    if not isinstance(v, dict):
        return [v]
    kinds = {"log", "linear"} & set(v)
    extra = set(v) - {"log", "linear", "n"}
    if len(kinds) != 1 or extra:
        raise ConfigError(where, v, "write {log = [lo, hi], n = N}, {linear = [lo, hi], n = N} or a list")
    kind = kinds.pop()
    lo_hi = v[kind]
    if (not isinstance(lo_hi, list) or len(lo_hi) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in lo_hi)):
        raise ConfigError(where, lo_hi, f"{kind} needs [lo, hi]")
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    if kind == "log" and (lo <= 0 or hi <= 0):
        raise ConfigError(where, lo_hi, "a log axis needs positive ends")
    if mode == "random":
        return [lo, hi]  # the range; draws come from raw_axes
    n = v.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{where}.n", n, "a grid axis needs n >= 1 values")
    if n > MAX_AXIS_VALUES:
        raise ConfigError(f"{where}.n", n, f"more than the {MAX_AXIS_VALUES:,} values an axis may hold")
    if kind == "log":
        vals = np.logspace(math.log10(lo), math.log10(hi), n)
    else:
        vals = np.linspace(lo, hi, n)
    return [float(f"{x:.6g}") for x in vals]


def _draw(rng: random.Random, raw: Any) -> Any:
    if isinstance(raw, list):
        return rng.choice(raw)
    if not isinstance(raw, dict):
        return raw
    if "log" in raw:
        lo, hi = raw["log"]
        return float(f"{10 ** rng.uniform(math.log10(lo), math.log10(hi)):.6g}")
    lo, hi = raw["linear"]
    return float(f"{rng.uniform(lo, hi):.6g}")
