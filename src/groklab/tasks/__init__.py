"""Datasets. ``make_task(cfg.task)`` returns the full table, its tokens and its split."""

from groklab.tasks.algorithmic import OPS, AlgorithmicTask, Op, make_task, split_indices, table

__all__ = ["OPS", "Op", "AlgorithmicTask", "make_task", "split_indices", "table"]
