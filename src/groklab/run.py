"""``Run``: a finished (or interrupted) run, read back from its directory alone."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from groklab.models import DTYPES, build_model
from groklab.store import RunFiles
from groklab.tasks import make_task
from groklab.transformer_lens import to_transformer_lens


class Run(RunFiles):
    """A run directory as Python objects: its files (:class:`groklab.store.RunFiles`), and
    the task and the model they make.

    >>> run = groklab.load_run("runs/demo")
    >>> run.summary["members"][0]["step_val_99"]
    >>> run.metrics.query("name == 'val_acc'")
    >>> model = run.model()          # the last checkpoint; run.model(step=100) for another
    """

    @cached_property
    def task(self):
        """The task with the split this run used (checked against the saved indices)."""
        task = make_task(self.config.task, "cpu", DTYPES[self.config.model.dtype])  # data as the model's dtype
        self.store.check_split(task)
        return task

    def model(self, step: int | None = None, device: str = "cpu", impl: str | None = None):
        """The ensemble model with the weights saved at ``step`` (default: the last)."""
        cfg = self.config
        model = build_model(cfg, self.task, device)
        _, weights = self.store.load_weights(step)
        model.load_state_dict({k: v.to(device) for k, v in weights.items()})
        if impl:
            model.impl = impl
        return model.eval()

    def to_transformer_lens(self, member: int = 0, step: int | None = None, device: str = "cpu"):
        """One member as a TransformerLens ``HookedTransformer`` (the extra ``groklab[tl]``),
        logits equal to this run's: :func:`groklab.transformer_lens.to_transformer_lens`."""
        return to_transformer_lens(self, member, step, device)


def load_run(path: str | Path) -> Run:
    return Run(path)
