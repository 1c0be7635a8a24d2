"""Training: the one loop (``loop.py``), the ensemble optimizer, schedules."""

from groklab.training.loop import resume, train

__all__ = ["train", "resume"]
