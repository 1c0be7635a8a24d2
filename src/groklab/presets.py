"""Named, cited recipes. Each is a set of overrides of the RunConfig defaults."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from groklab.config import ConfigError, RunConfig, apply_dict


@dataclass(frozen=True)
class Preset:
    name: str
    citation: str  # one line: source and what the recipe reproduces
    overrides: dict  # {section: {field: value}} of the RunConfig dataclasses
    method: dict = field(default_factory=dict)  # acceleration methods (RunConfig.method), if any


# Power et al.'s 2-layer transformer (also the challenge's transformer entry), and the
# stopping rule of the challenge entries: shared so that the recipes cannot drift apart.
_POWER_TRANSFORMER = {"kind": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4,
                      "d_mlp": 512, "act": "relu", "layer_norm": True}
_CHALLENGE_TRAIN = {"steps": 3000, "batch_size": 512, "stop_val_acc": 0.99, "stop_patience": 1}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "demo",
            "groklab demo: a+b mod 59, 40% of pairs, 1-layer transformer; groks on a CPU in seconds",
            {
                "task": {"op": "add", "p": 59, "fraction": 0.4, "split_seed": 0},
                "model": {"kind": "transformer", "n_layers": 1, "d_model": 64, "n_heads": 4, "d_mlp": 256},
                "optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 1.0, "beta2": 0.98},
                "train": {"steps": 5000, "stop_val_acc": 0.99, "stop_patience": 10},
            },
        ),
        Preset(
            "nanda2023",
            "Nanda et al. 2023, Progress measures for grokking: a+b mod 113, 30%, 1-layer transformer",
            {
                "task": {"op": "add", "p": 113, "fraction": 0.3, "layout": "ab="},
                "model": {"kind": "transformer", "n_layers": 1, "d_model": 128, "n_heads": 4,
                          "d_mlp": 512, "act": "relu", "layer_norm": False, "init": "nanda"},
                "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9,
                          "beta2": 0.98, "warmup_steps": 10},
                "train": {"steps": 40_000, "batch_size": None},
            },
            # their code takes the cross-entropy of the logits cast to float64; in float32 the
            # loss spikes once train loss nears 1e-7 and the final circuit is less clean. Their
            # init (model.init = "nanda") keeps the logits' Fourier form through cleanup
            method={"loss": {"kind": "cross_entropy", "float64": True}},
        ),
        Preset(
            "power2022",
            "Power et al. 2022, Grokking: x/y mod 97, 50%, 2-layer transformer (d=128, 4 heads)",
            {
                "task": {"op": "div", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": _POWER_TRANSFORMER,
                "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9,
                          "beta2": 0.98, "warmup_steps": 10},
                "train": {"steps": 100_000, "batch_size": 512},
            },
        ),
        Preset(
            "liu2022_toy",
            "Liu et al. 2022, Towards Understanding Grokking: toy model (E_a + E_b -> MLP) on a+b, p=10",
            {
                "task": {"op": "add_int", "p": 10, "fraction": 0.6, "dedupe_commutative": True},
                "model": {"kind": "toy", "d_embed": 1, "hidden": [200, 200], "act": "tanh"},
                "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0},
                "train": {"steps": 3000, "stop_val_acc": None},
            },
        ),
        Preset(
            "challenge97",
            "The grokking challenge thread: a+b mod 97 with its prefix split (first 50% of the table)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "prefix"},
                "model": {"kind": "transformer", "n_layers": 1, "d_model": 128, "n_heads": 4, "d_mlp": 512},
                "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "beta2": 0.98},
                "train": {"steps": 20_000},
            },
        ),
        Preset(
            "grokfast2024",
            "Lee et al. 2024, Grokfast (ironjr/grokfast README: main.py --filter ema --alpha 0.98 --lamb 2.0 "
            "--weight_decay 0.005): x*y mod 97, 50%, 2-layer pre-LN GELU transformer, Adam lr 1e-3, batch 512",
            {
                "task": {"op": "mul", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {"kind": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4,
                          "d_mlp": 512, "act": "gelu", "layer_norm": True},
                "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.005, "beta1": 0.9,
                          "beta2": 0.98, "warmup_steps": 10},
                "train": {"steps": 20_000, "batch_size": 512},
            },
            method={"grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}},
        ),
        Preset(
            "prieto2025_stablemax",
            "Prieto et al. 2025, Grokking at the Edge of Numerical Stability (their utils.py/run_main_experiments.sh): "
            "StableMax + perp-AdamW, one-hot MLP [200, 200], lr 1e-2, full batch; here a+b mod 97, 50%",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "layout": "ab="},
                "model": {"kind": "mlp", "embed": "onehot", "hidden": [200, 200], "act": "relu"},
                "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0, "beta1": 0.9,
                          "beta2": 0.99, "eps": 1e-25},
                "train": {"steps": 10_000, "batch_size": None},
            },
            method={"loss": {"kind": "stablemax", "float64": True},
                    "perp_grad": {"per_tensor": True, "renorm": True}},
        ),
        Preset(
            "fastest",
            "groklab challenge entry: a+b mod 97, random 50%, learned embeddings only; MLP [32+32 -> 128 -> 97], "
            "AdamW lr 3e-2 wd 1, batch 512 (first probe: 99% val in 168-224 steps, ~2 s, seeds 0-2, 1 CPU thread)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "random"},
                "model": {"kind": "mlp", "embed": "learned", "d_embed": 32, "hidden": [128], "act": "relu"},
                "optim": {"name": "adamw", "lr": 3e-2, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98},
                "train": _CHALLENGE_TRAIN,
            },
        ),
        Preset(
            "fastest_transformer",
            "groklab challenge entry with Power et al.'s 2-layer transformer (d=128, 4 heads, ReLU, pre-LN): "
            "x*y mod 97, 50%; AdamW lr 2e-3, wd 3, init scale 0.5, batch 512 (probes: 99% val in 178-224 steps)",
            {
                "task": {"op": "mul", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {**_POWER_TRANSFORMER, "init_scale": 0.5},
                "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 3.0, "beta1": 0.9,
                          "beta2": 0.98, "warmup_steps": 10},
                "train": _CHALLENGE_TRAIN,
            },
        ),
        Preset(
            "thread_sdr",
            "The grokking challenge thread's best entry (prior knowledge): 400-bit cyclic SDR codes (133 on), "
            "MLP [400, 200 x 5], Adam lr 1e-3, batch 200, MSE on one-hot targets (sklearn MLPRegressor)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "random"},
                "model": {"kind": "mlp", "embed": "cyclic_sdr", "d_embed": 400,
                          "hidden": [400, 200, 200, 200, 200, 200], "act": "relu"},
                "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999},
                "train": {"steps": 5000, "batch_size": 200, "loss": "mse"},
            },
        ),
    ]
}


def get_preset(name: str) -> RunConfig:
    """A fresh RunConfig with the preset's overrides applied."""
    if name not in PRESETS:
        raise ConfigError("--preset", name, f"unknown preset; choose from {', '.join(PRESETS)}")
    cfg = RunConfig(preset=name)
    apply_dict(cfg, PRESETS[name].overrides)
    if PRESETS[name].method:
        apply_dict(cfg, {"method": copy.deepcopy(PRESETS[name].method)})
    return cfg
