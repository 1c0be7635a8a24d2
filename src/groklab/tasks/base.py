"""What every task kind gives the training loop: its whole data set as tensors on the
device, the split (index sets fixed by the task's config and its own seed), and how its
outputs are scored.

* ``inputs``  (N, T) int64 token ids (``input_kind = "tokens"``) or (N, D) float feature
  vectors (``input_kind = "features"``)
* ``targets`` (N,) int64 classes (``target_kind = "classes"``) or (N, D_out) float vectors
  (``target_kind = "vectors"``)
* ``train_idx`` / ``val_idx`` rows of ``inputs``; the held-out rows are reported as
  ``val_*`` for every kind
* ``out_dim`` the model's output width (classes, or D_out)
"""

from __future__ import annotations

import torch

FLOAT = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Task:
    """Base class of the task kinds. Subclasses set the attributes above in ``__init__``."""

    kind = ""
    input_kind = "tokens"  # tokens | features
    target_kind = "classes"  # classes | vectors
    cfg: object
    inputs: torch.Tensor
    targets: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    out_dim: int

    @property
    def in_dim(self) -> int:
        """Width of a feature vector (features tasks)."""
        return self.inputs.shape[-1]

    fresh = False  # True: training batches are fresh samples (``sample``), not rows of train_idx

    def row_weights(self, split: str) -> torch.Tensor | None:
        """Weights of ``split``'s rows (summing to 1) for its reported loss and accuracy, or
        None for the plain mean (every kind but sparse parity's held-out rows)."""
        return None

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fresh training samples (inputs, targets); tasks with ``fresh = True`` only."""
        raise NotImplementedError(f"task.kind={self.kind!r} has a fixed training set")

    def correct(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """outputs (E, N, out_dim), targets (N, ...) -> (E, N) bool: which rows count as right.
        Classes: the arg-max is the target."""
        return outputs.argmax(-1) == targets

    def _tensor_names(self) -> tuple[str, ...]:
        return ("inputs", "targets", "train_idx", "val_idx")

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> "Task":
        """Move every tensor to ``device``; float data (features, vector targets) to ``dtype``."""
        for name in self._tensor_names():
            t = getattr(self, name).to(device)
            if dtype is not None and t.dtype in FLOAT:
                t = t.to(dtype)
            setattr(self, name, t)
        return self

    def split_tensors(self) -> dict[str, torch.Tensor]:
        return {"train_idx": self.train_idx.cpu(), "val_idx": self.val_idx.cpu()}


def stratified_split(labels: torch.Tensor, n_train: int, n_test: int | None, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/held-out rows with each class in proportion (largest remainders), drawn by a
    generator of their own seed. Each class's rows are permuted; the first of them train,
    the next ones are held out. Both index sets are sorted."""
    n = len(labels)
    n_test = n - n_train if n_test is None else n_test
    classes, counts = torch.unique(labels, return_counts=True)
    g = torch.Generator().manual_seed(seed)
    perms = {int(c): torch.nonzero(labels == c).flatten()[torch.randperm(int(k), generator=g)]
             for c, k in zip(classes.tolist(), counts.tolist())}
    tr, te = _proportional(counts, n_train), _proportional(counts, n_test)
    train = torch.cat([perms[int(c)][: tr[i]] for i, c in enumerate(classes.tolist())])
    test = torch.cat([perms[int(c)][tr[i]: tr[i] + te[i]] for i, c in enumerate(classes.tolist())])
    return train.sort().values, test.sort().values


def _proportional(counts: torch.Tensor, total: int) -> list[int]:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainders)."""
    share = counts.double() * total / counts.sum()
    out = share.floor().long()
    rest = total - int(out.sum())
    order = torch.argsort(share - out, descending=True, stable=True)
    out[order[:rest]] += 1
    return out.tolist()
