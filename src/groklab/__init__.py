"""groklab: reproduce, measure, explain and accelerate grokking.

    >>> import groklab
    >>> cfg = groklab.resolve(preset="demo", overrides=["train.seeds=[0,1,2]"])
    >>> run = groklab.train(cfg)
    >>> run.summary["members"][0]["step_val_99"]

The names below load on first use (PEP 562), so that ``import groklab.config`` and the
command line's ``--help`` do not import torch.
"""

import sys
import types
from importlib import import_module

from groklab.config import ConfigError, RunConfig

__version__ = "0.1.0"
__all__ = ["ConfigError", "RunConfig", "resolve", "check", "Run", "load_run", "train", "resume"]

_LAZY = {"resolve": "groklab.resolve", "check": "groklab.resolve", "Run": "groklab.run",
         "load_run": "groklab.run", "train": "groklab.training.loop", "resume": "groklab.training.loop"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'groklab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Importing the submodule ``groklab.resolve`` would bind the package attribute
    ``resolve`` to that module, hiding the function of the same name: keep the function."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
