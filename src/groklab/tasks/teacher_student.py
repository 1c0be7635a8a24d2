"""Teacher-student regression (Liu, Michaud & Tegmark 2023, "Omnigrok", Sec. 3.1 and their
``teacher-student/grokking/regression_grokking.ipynb``).

A fixed random teacher, ``d_in -> hidden... -> d_out`` with tanh between its layers and
PyTorch's default ``nn.Linear`` init (weights and biases U(+-1/sqrt(fan_in))) times
``teacher_scale``, labels inputs x ~ N(0, I): ``n_train`` training and ``n_test`` held-out
samples. The teacher's weights come from ``teacher_seed``, the inputs from ``split_seed``.
A sample counts as correct when its squared error, averaged over the outputs, is below
``tol`` (Omnigrok: 1e-3), so "accuracy" is the share of such samples.
"""

from __future__ import annotations

import math

import torch

from groklab.config import TeacherStudentConfig
from groklab.tasks.base import Task


class TeacherStudentTask(Task):
    """Inputs x (N, d_in) float64 and the teacher's outputs (N, d_out): regression."""

    kind = "teacher_student"
    input_kind, target_kind = "features", "vectors"

    def __init__(self, cfg: TeacherStudentConfig, x: torch.Tensor, y: torch.Tensor, teacher: list):
        self.cfg, self.inputs, self.targets = cfg, x, y
        self.train_idx = torch.arange(cfg.n_train)
        self.val_idx = torch.arange(cfg.n_train, cfg.n_train + cfg.n_test)
        self.out_dim = cfg.d_out
        self.teacher = teacher  # [(W (in, out), b (out,)), ...] float64

    def correct(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).square().mean(-1) < self.cfg.tol


def teacher_forward(layers: list, x: torch.Tensor) -> torch.Tensor:
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = torch.tanh(x)
    return x


def make(cfg: TeacherStudentConfig) -> TeacherStudentTask:
    widths = [cfg.d_in, *cfg.hidden, cfg.d_out]
    g = torch.Generator().manual_seed(cfg.teacher_seed)
    layers = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        bound = 1 / math.sqrt(w_in)
        w = (torch.rand(w_in, w_out, generator=g, dtype=torch.float64) * 2 - 1) * bound * cfg.teacher_scale
        b = (torch.rand(w_out, generator=g, dtype=torch.float64) * 2 - 1) * bound * cfg.teacher_scale
        layers.append((w, b))
    gx = torch.Generator().manual_seed(cfg.split_seed)
    x = torch.randn(cfg.n_train + cfg.n_test, cfg.d_in, generator=gx, dtype=torch.float64)
    y = teacher_forward(layers, x)
    return TeacherStudentTask(cfg, x, y, layers)  # float64; the loop casts to the model dtype
