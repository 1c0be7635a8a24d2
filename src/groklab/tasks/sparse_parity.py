"""Multitask sparse parity (Michaud, Liu, Girit & Tegmark 2023, "The Quantization Model of
Neural Scaling", Sec. 3; the generator of their ``scripts/sparse-parity-v4.py``).

* **Subtasks.** ``n_tasks`` distinct sorted ``k``-subsets S_1, S_2, ... of the ``n_bits``
  data bits, drawn as their code draws them: ``random.seed(split_seed)`` then
  ``sorted(random.sample(range(n), k))`` until ``n_tasks`` distinct ones are found.
* **Frequencies.** Subtask i = 1..n_tasks (1 = the most frequent) is drawn with
  probability p_i = i^-(alpha+1) / sum_j j^-(alpha+1), alpha = ``zipf_alpha`` (the paper's
  alpha; their code's ``alpha`` argument is alpha + 1, 1.4 for the paper's 0.4).
* **A sample.** Task id i ~ p, data bits iid Bernoulli(1/2), label = the parity of the bits
  in S_i. The network sees [one-hot(i) (n_tasks bits) ‖ data bits (n_bits)]; here the row
  is stored compactly as ``(i, bits...)`` (int16, ``n_bits + 1`` columns) and the model's
  first layer reads the control block as a row gather (``groklab.models.ParityMLP``).
* **Training data.** ``train_size = None``: fresh samples every step (the paper's D = -1,
  "infinite data"), drawn by :meth:`SparseParityTask.sample` from each ensemble member's
  own generator. ``train_size = D``: D samples fixed once from ``split_seed``, iterated in
  shuffled minibatches like any other task.
* **Held-out data.** ``test_per_task`` fresh samples of *every* subtask, rows grouped by
  subtask (subtask i's rows are ``[(i-1) m, i m)``, m = test_per_task). Every subtask's
  loss and accuracy is measured on its m rows (``measures`` ``subtasks``); the reported
  ``val_loss`` / ``val_acc`` weight subtask i's mean by p_i, which is the expected loss
  under the task distribution (the paper's test batch holds int(p_i * 1e6) samples of each
  subtask instead; same expectation, here with each subtask's share measured on m rows).
* **Train metrics.** Fixed data: the D training rows. Fresh data: ``monitor_size`` rows
  drawn once from the training distribution (the loss on data the model has not seen, as
  every fresh batch is).
"""

from __future__ import annotations

import random

import torch

from groklab.config import ConfigError, SparseParityConfig
from groklab.tasks.base import Task

ROW_DTYPE = torch.int16  # (task id, bits): n_tasks <= 32767 (checked)


def zipf_probs(n_tasks: int, alpha: float) -> torch.Tensor:
    """p_i proportional to i^-(alpha+1), i = 1..n_tasks: (n_tasks,) float64, summing to 1."""
    w = torch.arange(1, n_tasks + 1, dtype=torch.float64).pow(-(alpha + 1.0))
    return w / w.sum()


def draw_subsets(n_tasks: int, n_bits: int, k: int, seed: int) -> torch.Tensor:
    """The subtasks' bit subsets, as Michaud et al.'s code draws them: (n_tasks, k) int64."""
    rng = random.Random(seed)
    subsets: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(subsets) < n_tasks:  # their loop gives up after 10 n_tasks draws; the draws are the same
        s = tuple(sorted(rng.sample(range(n_bits), k)))
        if s not in seen:
            seen.add(s)
            subsets.append(s)
    return torch.tensor(subsets, dtype=torch.int64)


class SparseParityTask(Task):
    """Multitask sparse parity: rows (subtask id, data bits) int16; the label is the parity of
    the subtask's k bits (classes 0/1)."""

    kind = "sparse_parity"
    input_kind, target_kind = "parity", "classes"

    def __init__(self, cfg: SparseParityConfig, subsets: torch.Tensor, probs: torch.Tensor,
                 inputs: torch.Tensor, targets: torch.Tensor, train_idx: torch.Tensor, val_idx: torch.Tensor):
        self.cfg, self.subsets, self.probs = cfg, subsets, probs
        self.inputs, self.targets, self.train_idx, self.val_idx = inputs, targets, train_idx, val_idx
        self.out_dim = self.n_classes = 2
        self.n_tasks, self.n_bits = cfg.n_tasks, cfg.n_bits
        self.fresh = cfg.train_size is None
        m = cfg.test_per_task
        self.val_task = torch.arange(cfg.n_tasks).repeat_interleave(m)  # subtask of each val row
        self.val_weights = (probs / m).repeat_interleave(m)  # p_i / m: the weighted mean is sum_i p_i L_i
        self._cdf = probs.cumsum(0)  # float64 on the CPU: the samplers' (never moved)

    def _tensor_names(self) -> tuple[str, ...]:
        return (*super()._tensor_names(), "val_task", "val_weights")

    def row_weights(self, split: str) -> torch.Tensor | None:
        return self.val_weights if split == "val" else None

    def sample(self, n: int, generator: torch.Generator, tasks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fresh samples (rows, labels) from ``generator`` (on the CPU): task ids from
        the Zipf law (or the given ``tasks``), bits uniform. Rows land on the task's device."""
        return sample_rows(self.subsets, self._cdf, self.n_bits, n, generator, tasks, device=self.inputs.device)


def sample_rows(subsets: torch.Tensor, cdf: torch.Tensor, n_bits: int, n: int, generator: torch.Generator,
                tasks: torch.Tensor | None = None, device: str | torch.device = "cpu"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (n, 1 + n_bits) int16 and their parities (n,) int64. Task ids: inverse-CDF
    sampling of uniforms (their code's ``searchsorted(cdf, rand)``) unless ``tasks`` given."""
    if tasks is None:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        tasks = torch.searchsorted(cdf, u, right=True).clamp_(max=len(cdf) - 1)
    bits = torch.randint(0, 2, (n, n_bits), generator=generator, dtype=ROW_DTYPE)
    labels = bits.gather(1, subsets[tasks]).sum(1).remainder(2).to(torch.int64)
    rows = torch.cat([tasks.to(ROW_DTYPE)[:, None], bits], 1)
    return rows.to(device), labels.to(device)


def check_config(cfg: SparseParityConfig) -> None:
    if cfg.n_tasks > torch.iinfo(ROW_DTYPE).max:
        raise ConfigError("task.n_tasks", cfg.n_tasks, f"at most {torch.iinfo(ROW_DTYPE).max}")


def make(cfg: SparseParityConfig) -> SparseParityTask:
    subsets = draw_subsets(cfg.n_tasks, cfg.n_bits, cfg.k, cfg.split_seed)
    probs = zipf_probs(cfg.n_tasks, cfg.zipf_alpha)
    cdf = probs.cumsum(0)
    g = torch.Generator().manual_seed(1_000_003 * cfg.split_seed + 424_242)
    m = cfg.test_per_task
    test_rows, test_y = sample_rows(subsets, cdf, cfg.n_bits, cfg.n_tasks * m, g,
                                    tasks=torch.arange(cfg.n_tasks).repeat_interleave(m))
    n_train = cfg.monitor_size if cfg.train_size is None else cfg.train_size
    train_rows, train_y = sample_rows(subsets, cdf, cfg.n_bits, n_train, g)
    inputs = torch.cat([test_rows, train_rows])
    targets = torch.cat([test_y, train_y])
    n_test = len(test_rows)
    return SparseParityTask(cfg, subsets, probs, inputs, targets,
                            train_idx=torch.arange(n_test, n_test + n_train), val_idx=torch.arange(n_test))
