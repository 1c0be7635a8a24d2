"""Task kinds, one module each, chosen by ``task.kind``.

``make_task(cfg.task, device)`` builds a kind's whole data set and split as tensors on the
device (see :class:`groklab.tasks.base.Task` for what every kind provides);
``check_task(cfg.task)`` runs the checks that need the kind's own knowledge (an op's
modulus, ...). Adding a kind: a config dataclass in ``groklab.config`` (TASK_CONFIGS), a
module with ``make(cfg)`` (and optionally ``check_config(cfg)``), one entry in ``KINDS``.
"""

from __future__ import annotations

from types import ModuleType

import torch

from groklab.tasks import algorithmic, images, sparse_parity, teacher_student
from groklab.tasks.algorithmic import OPS, AlgorithmicTask, Op, split_indices, table
from groklab.tasks.base import Task, stratified_split
from groklab.tasks.images import ImagesTask
from groklab.tasks.sparse_parity import SparseParityTask
from groklab.tasks.teacher_student import TeacherStudentTask

KINDS: dict[str, ModuleType] = {"algorithmic": algorithmic, "images": images, "teacher_student": teacher_student,
                                "sparse_parity": sparse_parity}
TASK_CLASSES: dict[str, type[Task]] = {"algorithmic": AlgorithmicTask, "images": ImagesTask,
                                       "teacher_student": TeacherStudentTask, "sparse_parity": SparseParityTask}


def check_task(cfg) -> None:
    """Cross-checks of a task section that need the kind's module (field checks are the config's)."""
    check = getattr(KINDS[cfg.kind], "check_config", None)
    if check is not None:
        check(cfg)


def make_task(cfg, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> Task:
    """The task of ``cfg`` (a task section) on ``device``; float data in ``dtype`` if given."""
    return KINDS[cfg.kind].make(cfg).to(device, dtype)


__all__ = ["KINDS", "TASK_CLASSES", "OPS", "Op", "Task", "AlgorithmicTask", "ImagesTask", "TeacherStudentTask", "SparseParityTask", "make_task",
           "check_task", "split_indices", "stratified_split", "table"]
