"""From presets, TOML files and ``--set`` overrides to one checked :class:`RunConfig`.

``config.py`` checks each field on its own; the checks that need the layers above it, the
task kinds, models, methods and measures, happen here, in one place:

* the task section's own cross-checks (an op's modulus, ...: ``groklab.tasks.check_task``)
* model and task fit: a task that gives feature vectors or parity rows takes ``model.kind =
  "mlp"``; fresh samples (sparse parity without ``train_size``) need a batch size; vector
  targets take the ``mse`` loss; ``model.init`` fits the model; a fixed MLP encoder fits
  the number of symbols
* ``model.committee`` > 1: the toy model, not Muon, the cross-entropy loss
* the ``method`` table: every knob checked and filled in from its method's typed config
* ``measures``: each one exists and applies to the task kind (refused, not dropped)
"""

from __future__ import annotations

from pathlib import Path

from groklab.config import ConfigError, RunConfig, apply_dict, apply_overrides, load_toml
from groklab.measures import MEASURES, task_kind_problem
from groklab.models.mlp import BIASES, embed_problem
from groklab.presets import get_preset
from groklab.tasks import OPS, TASK_CLASSES, check_task
from groklab.training.methods import validate_methods

FEATURE_MODELS = ("mlp",)


def check(cfg: RunConfig) -> RunConfig:
    """Validate ``cfg`` completely (fields, then cross-checks); fill in the method knobs.
    Raises :class:`ConfigError` naming the bad key and value. Returns ``cfg``."""
    cfg.validate()
    t, m, tr = cfg.task, cfg.model, cfg.train
    check_task(t)
    task_cls = TASK_CLASSES[t.kind]
    if task_cls.input_kind in ("features", "parity"):
        if m.kind not in FEATURE_MODELS:
            what = "feature vectors" if task_cls.input_kind == "features" else "parity rows"
            raise ConfigError("model.kind", m.kind, f"task.kind={t.kind!r} gives {what}; use model.kind=mlp")
        if m.embed != "learned":
            raise ConfigError("model.embed", m.embed, f"encodes tokens; task.kind={t.kind!r} has no tokens")
        if t.kind == "sparse_parity" and t.train_size is None and tr.batch_size is None:
            raise ConfigError("train.batch_size", tr.batch_size,
                              "fresh samples (task.train_size = None) need a batch size")
    elif m.kind == "mlp" and m.embed not in ("learned", "onehot"):
        op = OPS[t.op]
        why = embed_problem(m.embed, 120 if op.group == "S5" else t.p, m.d_embed)
        if why:
            raise ConfigError("model.d_embed", m.d_embed, f"model.embed={m.embed!r}: {why}")
    if m.bias not in BIASES:
        raise ConfigError("model.bias", m.bias, f"choose from {', '.join(BIASES)}")
    if m.bias != "all" and (m.kind not in ("mlp", "toy") or task_cls.input_kind in ("features", "parity")):
        raise ConfigError("model.bias", m.bias, "only the token MLPs (model.kind = mlp or toy) can drop biases")
    if m.init == "nanda" and m.kind != "transformer":
        raise ConfigError("model.init", m.init, "Nanda et al.'s init is for model.kind=transformer")
    if m.kind != "transformer":
        for key, value, default in (("attn_bias", m.attn_bias, False), ("residual", m.residual, "input"),
                                    ("logits", m.logits, "classes")):
            if value != default:
                raise ConfigError(f"model.{key}", value, "is a transformer option (model.kind = transformer)")
    elif m.residual == "normed" and not m.layer_norm:
        raise ConfigError("model.residual", m.residual, "adds the layer-normed input: needs model.layer_norm = true")
    if m.committee > 1:
        if m.kind != "toy" or task_cls.input_kind != "tokens":
            raise ConfigError("model.committee", m.committee, "committees are of the toy model (model.kind = toy)")
        if cfg.optim.name == "muon":
            raise ConfigError("model.committee", m.committee,
                              "optim.name = 'muon' orthogonalises single matrices; a committee stacks K of them")
        if tr.loss != "cross_entropy" or "loss" in cfg.method:
            raise ConfigError("model.committee", m.committee, "a committee's output is a mean of probabilities: "
                              "it trains with train.loss = 'cross_entropy' and no method.loss")
    cfg.method = validate_methods(cfg.method, cfg.n_members)
    if task_cls.target_kind == "vectors":
        if tr.loss != "mse":
            raise ConfigError("train.loss", tr.loss, f"task.kind={t.kind!r} has vector targets; use mse")
        loss = cfg.method.get("loss")
        if loss and loss["kind"] != "mse":
            raise ConfigError("method.loss.kind", loss["kind"], f"task.kind={t.kind!r} has vector targets; use mse")
    for name in cfg.measures:
        if name not in MEASURES:
            raise ConfigError("measures", name, f"unknown measure; choose from {', '.join(MEASURES)}")
        why = task_kind_problem(name, t.kind, task_cls.target_kind)
        if why:
            raise ConfigError("measures", name, why)
    return cfg


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Defaults <- preset <- TOML file <- ``--set`` overrides, then :func:`check`."""
    cfg = get_preset(preset) if preset else RunConfig()
    if config_file:
        apply_dict(cfg, load_toml(config_file))
    apply_overrides(cfg, overrides or [])
    return check(cfg)


__all__ = ["check", "resolve"]
