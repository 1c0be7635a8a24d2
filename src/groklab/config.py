"""Typed run configuration: the single source of defaults, derived and validated in one place.

A run is fully described by a :class:`RunConfig`. Presets, TOML files and ``--set key=value``
overrides only *override* these defaults; the resolved config is saved with every run.

Validation (:meth:`RunConfig.validate`) has no side effects: no seeding, no device work, no
files. Every error is a :class:`ConfigError` naming the dotted field and the bad value.

Per-member hyperparameters: ``optim.lr``, ``optim.weight_decay``, ``model.init_scale`` and
``train.seeds`` accept a list; the ensemble size E is the longest such list and every list
must have length 1 or E (length-1 lists and scalars broadcast).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

# --------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A bad config value. ``str(err)`` is one line naming the field and the value."""

    def __init__(self, key: str, value: Any, why: str):
        self.key, self.value, self.why = key, value, why
        super().__init__(f"{key}={value!r}: {why}")


# --------------------------------------------------------------------------- sections

PerMember = Union[float, list]  # a scalar or a list over ensemble members

OPTIMIZERS = ("adamw", "adam", "sgd")
LOSSES = ("cross_entropy", "mse")
DTYPES = ("float32", "float64")
AUTOCAST_DTYPES = ("bfloat16", "float16")
ACTIVATIONS = ("relu", "gelu", "tanh")
MODEL_KINDS = ("transformer", "toy", "mlp")
IMPLS = ("fast", "reference")
TRANSFORMER_INITS = ("fan_in", "nanda")
SPLITS = ("random", "prefix")
LAYOUTS = ("ab=", "aopb=")
EMBEDS = ("learned", "onehot", "cyclic", "scalar", "cyclic_sdr", "scalar_sdr")


@dataclass
class TaskConfig:
    op: str = "add"  # an id from groklab.tasks.OPS (`groklab tasks` lists them)
    p: int = 97  # modulus (or number of symbols for non-modular ops)
    fraction: float = 0.5  # share of the table used for training, in (0, 1)
    split: str = "random"  # random | prefix (first `fraction` of the table in (a, b) order)
    split_seed: int = 0  # the split's own seed, independent of the init seed
    layout: str = "ab="  # token layout: "ab=" (Nanda et al.) or "aopb=" (Power et al.)
    dedupe_commutative: bool = False  # keep only a <= b (Liu et al.); commutative ops only


@dataclass
class ModelConfig:
    kind: str = "transformer"  # transformer | toy | mlp
    impl: str = "fast"  # transformer only: fast (exact, readout-only) | reference
    # transformer
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    act: str = "relu"
    layer_norm: bool = False
    init: str = "fan_in"  # transformer: fan_in (every matrix N(0, 1/fan_in)) | nanda (Nanda et al.'s
    #   code: W_out N(0, 1/d_model), W_U N(0, 1/n_classes), the rest as fan_in)
    # toy (Liu et al. 2022) and mlp
    d_embed: int = 32  # embedding width of toy / mlp
    hidden: list = field(default_factory=lambda: [200, 200])  # decoder MLP widths
    embed: str = "learned"  # mlp only: learned | onehot | cyclic | scalar | cyclic_sdr | scalar_sdr
    #   (fixed codes, not trained; d_embed is their width; groklab.models.mlp defines them)
    embed_init_scale: float = 1.0  # toy / mlp: multiplies the learned embedding's initial std
    # every model
    init_scale: PerMember = 1.0  # alpha multiplying the initial weights (Omnigrok)
    dtype: str = "float32"


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | adam | sgd
    lr: PerMember = 1e-3
    weight_decay: PerMember = 0.0
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    momentum: float = 0.9  # sgd only
    warmup_steps: int = 0  # linear warm-up of the learning rate
    embed_lr_mult: float = 1.0  # lr multiplier of the embedding (Liu et al. representation lr)
    embed_lr: Union[PerMember, None] = None  # absolute embedding lr; None: lr * embed_lr_mult
    embed_wd_mult: float = 1.0  # weight-decay multiplier of the embedding


@dataclass
class TrainConfig:
    steps: int = 10_000
    batch_size: Union[int, None] = None  # None: full batch
    seeds: list = field(default_factory=lambda: [0])  # init seeds, one per ensemble member
    loss: str = "cross_entropy"  # cross_entropy | mse
    eval_every: Union[int, None] = None  # None: log-spaced schedule
    evals_per_decade: int = 60  # density of the log-spaced schedule
    eval_min_gap: int = 1  # ... thinned to at least this many steps between evaluations
    checkpoint_every: int = 1000  # steps between resume checkpoints
    checkpoints_per_decade: int = 10  # weights kept on a log-spaced schedule for analysis
    stop_val_acc: Union[float, None] = 0.99  # early stop once every member holds this ...
    stop_patience: int = 5  # ... for this many evaluations; None turns early stop off
    measures_per_decade: int = 5  # schedule of the costly live measures (cheap ones: every eval)
    device: str = "cpu"
    autocast: Union[str, None] = None  # mixed precision of the training step: bfloat16 | float16 | None
    threads: Union[int, None] = None  # torch intra-op threads (None: torch's default)
    progress: bool = True


@dataclass
class DetectConfig:
    """Liu et al. 2022, Table 1: thresholds of the four phases."""

    threshold: float = 0.9  # accuracy that counts as "learned"
    budget: Union[int, None] = None  # steps within which it must happen (None: the run's)
    gap: int = 1000  # val later than train by fewer steps than this: comprehension


@dataclass
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    measures: list = field(default_factory=list)  # progress measures computed live (`groklab measures`)
    method: dict = field(default_factory=dict)  # acceleration methods, e.g. {"grokfast": {"kind": "ema"}}
    preset: Union[str, None] = None  # the preset it started from, for the record

    # ------------------------------------------------------------------ derived

    @property
    def n_members(self) -> int:
        lens = [len(v) for v in self._per_member_values().values() if isinstance(v, list)]
        return max(lens, default=1)

    def _per_member_values(self) -> dict[str, Any]:
        return {
            "train.seeds": self.train.seeds,
            "optim.lr": self.optim.lr,
            "optim.weight_decay": self.optim.weight_decay,
            "model.init_scale": self.model.init_scale,
            "optim.embed_lr": self.optim.embed_lr,
        }

    def member_values(self, key: str) -> list:
        """The per-member list of ``key`` (e.g. ``"optim.lr"``), broadcast to E."""
        v = self._per_member_values()[key]
        if key == "optim.embed_lr" and v is None:  # the default: lr * embed_lr_mult
            return [lr * self.optim.embed_lr_mult for lr in self.member_values("optim.lr")]
        v = v if isinstance(v, list) else [v]
        return v * self.n_members if len(v) == 1 else list(v)

    # ------------------------------------------------------------------ validation

    def validate(self) -> "RunConfig":
        """Check every field; raise :class:`ConfigError` on the first bad one. Returns self."""
        from groklab.tasks import OPS  # local: tasks import nothing from here at import time

        t, m, o, tr, d = self.task, self.model, self.optim, self.train, self.detect
        _check_types(self)
        if t.op not in OPS:
            raise ConfigError("task.op", t.op, f"unknown op; choose from {', '.join(OPS)}")
        op = OPS[t.op]
        if t.p < 2:
            raise ConfigError("task.p", t.p, "must be at least 2")
        if op.group == "S5" and t.p != 120:
            raise ConfigError("task.p", t.p, f"op {t.op!r} acts on S5, whose order is 120")
        if op.needs_prime and not _is_prime(t.p):
            raise ConfigError("task.p", t.p, f"op {t.op!r} needs a prime modulus")
        if not (0.0 < t.fraction < 1.0):
            raise ConfigError("task.fraction", t.fraction, "must lie in (0, 1)")
        _choice("task.split", t.split, SPLITS)
        _choice("task.layout", t.layout, LAYOUTS)
        if t.dedupe_commutative and not op.commutative:
            raise ConfigError(
                "task.dedupe_commutative", True, f"op {t.op!r} is not commutative"
            )
        _choice("model.kind", m.kind, MODEL_KINDS)
        _choice("model.impl", m.impl, IMPLS)
        _choice("model.init", m.init, TRANSFORMER_INITS)
        _choice("model.act", m.act, ACTIVATIONS)
        _choice("model.dtype", m.dtype, DTYPES)
        _choice("model.embed", m.embed, EMBEDS)
        if m.kind == "mlp" and m.embed not in ("learned", "onehot"):
            from groklab.models.mlp import embed_problem

            why = embed_problem(m.embed, 120 if op.group == "S5" else t.p, m.d_embed)
            if why:
                raise ConfigError("model.d_embed", m.d_embed, f"model.embed={m.embed!r}: {why}")
        for k in ("n_layers", "d_model", "n_heads", "d_mlp", "d_embed"):
            _positive(f"model.{k}", getattr(m, k))
        if m.d_model % m.n_heads:
            raise ConfigError("model.d_model", m.d_model, f"not divisible by n_heads={m.n_heads}")
        for w in m.hidden:
            if not isinstance(w, int) or isinstance(w, bool) or w < 1:
                raise ConfigError("model.hidden", m.hidden, "widths must be positive integers")
        _choice("optim.name", o.name, OPTIMIZERS)
        for k in ("beta1", "beta2"):
            if not (0.0 <= getattr(o, k) < 1.0):
                raise ConfigError(f"optim.{k}", getattr(o, k), "must lie in [0, 1)")
        if o.eps <= 0:
            raise ConfigError("optim.eps", o.eps, "must be positive")
        if o.warmup_steps < 0:
            raise ConfigError("optim.warmup_steps", o.warmup_steps, "must be >= 0")
        _positive("train.steps", tr.steps)
        if tr.batch_size is not None:
            _positive("train.batch_size", tr.batch_size)
        if tr.eval_every is not None:
            _positive("train.eval_every", tr.eval_every)
        _positive("train.evals_per_decade", tr.evals_per_decade)
        _positive("train.eval_min_gap", tr.eval_min_gap)
        _positive("train.checkpoint_every", tr.checkpoint_every)
        _positive("train.checkpoints_per_decade", tr.checkpoints_per_decade)
        _choice("train.loss", tr.loss, LOSSES)
        if tr.stop_val_acc is not None and not (0.0 < tr.stop_val_acc <= 1.0):
            raise ConfigError("train.stop_val_acc", tr.stop_val_acc, "must lie in (0, 1]")
        _positive("train.stop_patience", tr.stop_patience)
        _positive("train.measures_per_decade", tr.measures_per_decade)
        if not isinstance(self.method, dict):
            raise ConfigError("method", self.method, "expected a table of methods")
        from groklab.training.methods import validate_methods

        validate_methods(self.method, self.n_members)
        if not isinstance(self.measures, list):
            raise ConfigError("measures", self.measures, "expected a list of measure names")
        if self.measures:
            from groklab.measures import MEASURES

            for name in self.measures:
                if name not in MEASURES:
                    raise ConfigError("measures", name, f"unknown measure; choose from {', '.join(MEASURES)}")
        if not (tr.device == "cpu" or tr.device.startswith("cuda") or tr.device == "mps"):
            raise ConfigError("train.device", tr.device, "use cpu, cuda, cuda:N or mps")
        if not (0.0 < d.threshold <= 1.0):
            raise ConfigError("detect.threshold", d.threshold, "must lie in (0, 1]")
        if d.budget is not None:
            _positive("detect.budget", d.budget)
        if d.gap < 0:
            raise ConfigError("detect.gap", d.gap, "must be >= 0")
        if tr.threads is not None:
            _positive("train.threads", tr.threads)
        if tr.autocast is not None:
            _choice("train.autocast", tr.autocast, AUTOCAST_DTYPES)
            if self.model.dtype != "float32":
                raise ConfigError("train.autocast", tr.autocast, "mixed precision needs model.dtype float32")
        if not (0.0 <= o.momentum < 1.0):
            raise ConfigError("optim.momentum", o.momentum, "must lie in [0, 1)")
        if not m.embed_init_scale > 0:
            raise ConfigError("model.embed_init_scale", m.embed_init_scale, "must be positive")
        for k in ("embed_lr_mult", "embed_wd_mult"):
            if getattr(o, k) < 0:
                raise ConfigError(f"optim.{k}", getattr(o, k), "must be >= 0")
        # per-member lists
        E = self.n_members
        for key, v in self._per_member_values().items():
            if v is None and key == "optim.embed_lr":
                continue
            vals = v if isinstance(v, list) else [v]
            if len(vals) == 0:
                raise ConfigError(key, v, "needs at least one value")
            if len(vals) not in (1, E):
                raise ConfigError(key, v, f"has {len(vals)} values; other lists have {E}")
            for x in vals:
                if key == "train.seeds":
                    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
                        raise ConfigError(key, v, "seeds must be non-negative integers")
                    continue
                if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
                    raise ConfigError(key, x, "must be a finite number")
                if key == "optim.lr" and x <= 0:
                    raise ConfigError(key, x, "must be positive")
                if key == "optim.embed_lr" and x < 0:
                    raise ConfigError(key, x, "must be >= 0")
                if key in ("optim.weight_decay",) and x < 0:
                    raise ConfigError(key, x, "must be >= 0")
                if key == "model.init_scale" and x <= 0:
                    raise ConfigError(key, x, "must be positive")
        return self

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        cfg = cls()
        apply_dict(cfg, d)
        return cfg


# --------------------------------------------------------------------------- helpers


def _choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(key, value, f"choose from {', '.join(choices)}")


def _positive(key: str, value: Any) -> None:
    if value < 1:
        raise ConfigError(key, value, "must be a positive integer")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(math.isqrt(n)) + 1))


def _accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (the subset of typing used above)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is list or origin is list:
        return isinstance(value, list)
    return True


def _describe(tp: Any) -> str:
    """'int', 'float or list', 'int or None' ... for error messages."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _check_types(cfg: RunConfig) -> None:
    for section in dataclasses.fields(cfg):
        obj = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(obj):
            continue
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not _accepts(hints[f.name], value):
                want = _describe(hints[f.name])
                raise ConfigError(f"{section.name}.{f.name}", value, f"expected {want}")


def _section_and_field(cfg: RunConfig, key: str, value: Any) -> tuple[Any, str]:
    parts = key.split(".")
    if len(parts) != 2:
        if len(parts) == 1 and key in {f.name for f in dataclasses.fields(cfg)}:
            return cfg, key
        raise ConfigError(key, value, "unknown key; keys look like section.name, e.g. optim.lr")
    section, name = parts
    sections = {f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    if section not in sections:
        raise ConfigError(key, value, f"unknown section {section!r}; choose from {', '.join(sorted(sections))}")
    obj = getattr(cfg, section)
    if name not in {f.name for f in dataclasses.fields(obj)}:
        known = ", ".join(f.name for f in dataclasses.fields(obj))
        raise ConfigError(key, value, f"unknown key; {section} has {known}")
    return obj, name


def _coerce(value: Any) -> Any:
    """"none"/"null" strings mean None; everything else is kept as given (TOML-faithful)."""
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    return value


def set_value(cfg: RunConfig, key: str, value: Any) -> None:
    """Set one dotted key, e.g. ``set_value(cfg, "optim.lr", 3e-3)``; checks the key exists.
    Method knobs nest: ``method.grokfast.alpha``, ``method.perp_grad=true``."""
    parts = key.split(".")
    if parts[0] == "method" and len(parts) in (2, 3):
        if len(parts) == 2:
            cfg.method[parts[1]] = value
        else:
            sub = cfg.method.get(parts[1])
            cfg.method[parts[1]] = sub = dict(sub) if isinstance(sub, dict) else {}
            sub[parts[2]] = value
        return
    obj, name = _section_and_field(cfg, key, value)
    setattr(obj, name, _coerce(value))


def apply_dict(cfg: RunConfig, d: dict, prefix: str = "") -> RunConfig:
    """Apply a nested dict (as from TOML or config.json) onto ``cfg``."""
    for k, v in d.items():
        if not prefix and k == "method" and isinstance(v, dict):
            for name, knobs in v.items():  # [method.grokfast] tables
                if isinstance(knobs, dict):
                    for kk, vv in knobs.items():
                        set_value(cfg, f"method.{name}.{kk}", vv)
                else:
                    set_value(cfg, f"method.{name}", knobs)
            continue
        if isinstance(v, dict):
            if prefix:
                raise ConfigError(f"{prefix}{k}", v, "sections do not nest")
            apply_dict(cfg, v, prefix=f"{k}.")
        else:
            set_value(cfg, f"{prefix}{k}", v)
    return cfg


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value``: a TOML literal, else a bare string."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``["optim.lr=3e-3", "train.seeds=[0,1,2]"]``."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, None, "an override looks like key=value")
        key, text = item.split("=", 1)
        set_value(cfg, key.strip(), parse_value(text.strip()))
    return cfg


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--config", str(path), "no such file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("--config", str(path), f"not valid TOML: {e}") from None


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Defaults <- preset <- TOML file <- ``--set`` overrides, then validated."""
    from groklab.presets import get_preset

    cfg = get_preset(preset) if preset else RunConfig()
    if config_file:
        apply_dict(cfg, load_toml(config_file))
    apply_overrides(cfg, overrides or [])
    return cfg.validate()
