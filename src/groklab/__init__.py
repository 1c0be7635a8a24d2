"""groklab: reproduce, measure, explain and accelerate grokking.

    >>> import groklab
    >>> cfg = groklab.resolve(preset="demo", overrides=["train.seeds=[0,1,2]"])
    >>> run = groklab.train(cfg)
    >>> run.summary["members"][0]["step_val_99"]
"""

from groklab.config import ConfigError, RunConfig
from groklab.resolve import check, resolve
from groklab.run import Run, load_run
from groklab.training.loop import resume, train

__version__ = "0.1.0"
__all__ = ["ConfigError", "RunConfig", "resolve", "Run", "load_run", "train", "resume"]
