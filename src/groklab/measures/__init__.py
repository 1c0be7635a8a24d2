"""Progress measures: named, pure functions of (model, task) -> {metric name: (E,) tensor}.

>>> from groklab import measures
>>> measures.compute(["weight_norm", "fourier", "rqi"], model, task)
{"weight_norm": tensor([...]), "fourier_key_share": tensor([...]), ...}

Each entry of :data:`MEASURES` is one function; one function may produce several metric
names (``Measure.metrics``). Every function runs under ``torch.no_grad``, touches no global
state and draws no random numbers; every value is per ensemble member, shape (E,), float64,
on the CPU. Measures that do not apply to a (model, task) are skipped by :func:`compute`
unless ``strict=True``.

Each measure also declares what data it needs (``Measure.needs``): ``"any"``, ``"classes"``
(class targets: algorithmic tables and images) or ``"table"`` (a modular table,
``task.kind = "algorithmic"``) or ``"subtasks"`` (multitask sparse parity). :func:`task_kind_problem` says why a measure cannot run on a
task kind; ``groklab.resolve`` refuses such a config, and :func:`compute` refuses to run
such a measure when it is named, with the reason, rather than dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from groklab.measures._common import has_embedding, is_modular_add, is_table, is_zp, one_model
from groklab import phases
from groklab.measures.fourier import (
    ablate_frequencies,
    default_key_frequencies,
    embedding_key_frequencies,
    fourier,
    fourier_basis,
    fourier_logit_measures,
    fourier_neurons,
    frequency_ablation,
    frequency_sq_norms,
    gini,
    ipr,
    key_frequencies,
    neuron_key_frequencies,
    neuron_frequency_fraction,
    restricted_loss,
)
from groklab.measures.numerics import (
    data_bits_from_logits,
    description_length,
    model_bits_of,
    softmax_collapse,
    softmax_collapse_from_logits,
    weight_norm,
)
from groklab.measures.parallelograms import normalized, rqi, rqi_from_embedding
from groklab.phases import NandaPhases, nanda_phases
from groklab.measures.subtasks import subtask_means, subtasks
from groklab.models.mlp import ToyModel


@dataclass(frozen=True)
class Measure:
    name: str
    fn: Callable[..., dict[str, torch.Tensor]]
    unit: str
    cost: str  # "cheap" | "costly"
    applies_to: Callable[[object, object], bool]
    citation: str
    metrics: tuple[str, ...] = field(default=())  # names it always produces (others may be added)
    needs: str = "table"  # any | classes | table | subtasks: the data it needs (see task_kind_problem)
    applies_when: str = ""  # in words, what applies_to checks (for the error when it does not)


def _always(model, task) -> bool:
    return True


def _classes(model, task) -> bool:
    return task.target_kind == "classes"


def _subtasks_ok(model, task) -> bool:
    return task.kind == "sparse_parity"


def _fourier_ok(model, task) -> bool:
    return is_zp(task) and has_embedding(model, task)


def _neurons_ok(model, task) -> bool:
    return is_zp(task) and one_model(model) and ("blocks.0.mlp.W_in" in model.specs or getattr(model, "n_dec", 0) > 1)


def _restricted_ok(model, task) -> bool:
    return is_modular_add(task) and is_zp(task) and has_embedding(model, task)


def _rqi_ok(model, task) -> bool:  # parallelograms mean something where a pair is E_a + E_b
    return isinstance(model, ToyModel) and one_model(model) and is_table(task) and task.cfg.op in ("add", "add_int")


NANDA = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability (ICLR)"
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("weight_norm", weight_norm, "L2 norm", "cheap", _always,
                "Liu et al. 2023, Omnigrok: Grokking beyond algorithmic data (ICLR)", ("weight_norm",), "any"),
        Measure("fourier", fourier, "share / index", "cheap", _fourier_ok, NANDA,
                ("fourier_key_share", "fourier_n_key", "fourier_gini", "fourier_ipr"),
                applies_when="a Z_p table (symbols = classes = residues) and a learned embedding W_E"),
        Measure("fourier_neurons", fourier_neurons, "share of neurons", "costly", _neurons_ok, NANDA,
                ("fourier_neuron_frac",), applies_when="a Z_p table and a transformer or an MLP with 2+ decoder layers (not a committee)"),
        Measure("restricted_loss", restricted_loss, "nats (R^2 unitless)", "costly", _restricted_ok, NANDA,
                ("restricted_loss", "restricted_loss_train", "excluded_loss", "excluded_loss_all",
                 "logit_approx_r2"), applies_when="modular addition (op = add) with a learned embedding W_E"),
        Measure("frequency_ablation", frequency_ablation, "nats / share", "costly", _fourier_ok, NANDA,
                tuple(f"ablate_{m}{s}" for m in ("nonkey_loss", "nonkey_acc", "key_loss_max", "key_acc_min",
                                                 "key_loss_mean") for s in ("", "_all")),
                applies_when="a Z_p table (symbols = classes = residues) and a learned embedding W_E"),
        Measure("rqi", rqi, "share", "costly", _rqi_ok,
                "Liu et al. 2022, Towards Understanding Grokking: An Effective Theory of "
                "Representation Learning (NeurIPS)", ("rqi", "rqi_train", "rqi_pred_acc"),
                applies_when="the toy model (model.kind = toy, input E_a + E_b, not a committee) on op = add or add_int"),
        Measure("description_length", description_length, "bits", "costly", _classes,
                "DeMoss et al. 2024, The Complexity Dynamics of Grokking; MDL (Grünwald 2007)",
                ("data_bits", "model_bits", "description_bits", "quant_step_log2"), "classes"),
        Measure("softmax_collapse", softmax_collapse, "share of train rows", "cheap", _classes,
                "Prieto et al. 2025, Grokking at the edge of numerical stability (ICLR)",
                ("softmax_collapse", "zero_loss_fraction"), "classes"),
        Measure("subtasks", subtasks, "bits / share", "cheap", _subtasks_ok,
                "Michaud et al. 2023, The Quantization Model of Neural Scaling (NeurIPS)",
                ("val_loss_bits",), "subtasks"),
    ]
}


def task_kind_problem(name: str, task_kind: str, target_kind: str) -> str | None:
    """Why measure ``name`` cannot run on a task of this kind, or None."""
    needs = MEASURES[name].needs
    if needs == "table" and task_kind != "algorithmic":
        return (f"measure {name!r} needs a modular table (task.kind='algorithmic'); "
                f"this task.kind is {task_kind!r}")
    if needs == "subtasks" and task_kind != "sparse_parity":
        return f"measure {name!r} needs subtasks (task.kind='sparse_parity'); this task.kind is {task_kind!r}"
    if needs == "classes" and target_kind != "classes":
        return f"measure {name!r} needs class targets; task.kind={task_kind!r} has {target_kind} targets"
    return None


def model_problem(names, model, task) -> str | None:
    """Why one of the measures ``names`` does not apply to this (model, task), or None."""
    for n in names:
        m = MEASURES[n]
        if not m.applies_to(model, task):
            return f"measure {n!r} does not apply here: it needs {m.applies_when or 'another model or task'}"
    return None


def applicable(model, task, cost: str | None = None) -> list[str]:
    """Names of the measures that apply to (model, task), optionally of one cost only."""
    return [n for n, m in MEASURES.items() if m.applies_to(model, task) and (cost is None or m.cost == cost)]


@torch.no_grad()
def compute(names, model, task, options: dict[str, dict] | None = None,
            strict: bool = False) -> dict[str, torch.Tensor]:
    """Evaluate the measures ``names`` (registry keys; None: every applicable one) for every
    member -> {metric name: (E,) float64 CPU tensor}. ``options`` maps a measure name to
    keyword arguments of its function (e.g. ``{"restricted_loss": {"key_freqs": [14, 35]}}``).
    Measures that do not apply are skipped (``strict=True``: ValueError instead); unknown
    names raise KeyError."""
    named = names is not None
    names = applicable(model, task) if names is None else list(names)
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise KeyError(f"unknown measures {unknown}; choose from {', '.join(MEASURES)}")
    for n in names if named else ():
        why = task_kind_problem(n, task.kind, task.target_kind)
        if why:
            raise ValueError(why)
    options = options or {}
    was_training = model.training
    model.eval()
    try:
        out: dict[str, torch.Tensor] = {}
        for n in names:
            m = MEASURES[n]
            if not m.applies_to(model, task):
                if strict:
                    raise ValueError(f"measure {n!r} does not apply to this model and task")
                continue
            for k, v in m.fn(model, task, **options.get(n, {})).items():
                out[k] = v.detach().to("cpu", torch.float64)
        return out
    finally:
        model.train(was_training)


__all__ = [
    "MEASURES", "Measure", "compute", "applicable", "task_kind_problem", "model_problem",
    "weight_norm", "fourier", "fourier_neurons", "restricted_loss", "frequency_ablation", "rqi",
    "description_length", "softmax_collapse", "subtasks", "subtask_means",
    "fourier_basis", "frequency_sq_norms", "key_frequencies", "embedding_key_frequencies",
    "neuron_key_frequencies", "default_key_frequencies", "gini", "ipr",
    "neuron_frequency_fraction", "fourier_logit_measures", "rqi_from_embedding", "normalized",
    "data_bits_from_logits", "model_bits_of", "softmax_collapse_from_logits", "ablate_frequencies",
    "phases", "nanda_phases", "NandaPhases",
]
