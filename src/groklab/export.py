"""Runs into the trackers researchers already use: TensorBoard, MLflow and Weights & Biases.

A *sink* takes a run's metric rows (step, member, name, value), its config (as
hyperparameters) and its figures (as artifacts). The same sinks serve

* ``groklab export RUN --to tensorboard|mlflow|wandb --dest DIR``: after the fact, from the
  run's saved files (``metrics.parquet``, ``config.json``, ``summary.json``, ``*.png``);
* ``train.log_to = ["tensorboard", ...]``: live, during training. The loop hands a sink the
  rows it has just written to ``metrics.parquet`` at each checkpoint, so a tracker holds
  exactly what the run directory holds (a run killed and resumed logs nothing twice).

Layout, one tracker run per ensemble member (trackers overlay runs, not members):

* TensorBoard: ``DEST/<run>/member<e>/events.out.tfevents...``, one scalar tag per metric
  name, the config as hparams and as text, the figures as images. Read back with
  ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``.
* MLflow: a SQLite store ``DEST/mlflow.db`` (artifacts in ``DEST/artifacts``), experiment ``groklab``, one MLflow run
  ``<run>/member<e>`` per member with the metric history, the flattened config as params and
  the run directory's JSON and PNG files as artifacts.
* W&B: offline mode (no network, no login), ``DEST/wandb/offline-run-*``, one W&B run per
  member; ``wandb sync`` uploads it later. A resumed run writes a further offline part under
  the same W&B run id (``resume="allow"``).

The libraries are optional extras (``pip install groklab[tensorboard]`` / ``[mlflow]`` /
``[wandb]``), imported only by the sink that needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from groklab.config import LOG_TO, ConfigError, RunConfig
from groklab.run import Run

TRACKERS = LOG_TO
MLFLOW_EXPERIMENT = "groklab"


def flat_config(cfg: RunConfig) -> dict[str, str | int | float | bool]:
    """The config as dotted keys with scalar values (lists and None as JSON text)."""
    out: dict = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v)

    walk(cfg.to_dict(), "")
    return out


def _missing(lib: str, extra: str) -> ConfigError:
    return ConfigError("--to", extra, f"needs the optional package {lib!r}: pip install 'groklab[{extra}]'")


class Sink:
    """One tracker for one run directory: ``log(rows)`` any number of times, then ``close()``."""

    def __init__(self, run_name: str, dest: Path, cfg: RunConfig, members: int):
        self.run_name, self.dest, self.cfg, self.members = run_name, Path(dest), cfg, members

    def log(self, rows: list[tuple[int, int, str, float]]) -> None:
        raise NotImplementedError

    def artifacts(self, paths: list[Path]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class TensorBoardSink(Sink):
    def __init__(self, run_name, dest, cfg, members):
        super().__init__(run_name, dest, cfg, members)
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError:
            raise _missing("tensorboard", "tensorboard") from None
        hp = flat_config(cfg)
        self.writers = []
        for e in range(members):
            w = SummaryWriter(log_dir=str(self.dest / run_name / f"member{e}"))
            exp, ssi, sei = hparams({**hp, "member": e}, {})
            for s in (exp, ssi, sei):
                w.file_writer.add_summary(s)
            w.add_text("config", "```\n" + json.dumps(cfg.to_dict(), indent=2) + "\n```", 0)
            self.writers.append(w)

    def log(self, rows):
        for step, e, name, value in rows:
            self.writers[e].add_scalar(name, value, step)
        for w in self.writers:
            w.flush()

    def artifacts(self, paths):
        import numpy as np
        from PIL import Image

        for p in paths:
            if p.suffix == ".png":
                img = np.asarray(Image.open(p).convert("RGB"))
                self.writers[0].add_image(f"figures/{p.stem}", img, 0, dataformats="HWC")

    def close(self):
        for w in self.writers:
            w.close()


def mlflow_uri(dest: str | Path) -> str:
    """The tracking URI of the MLflow store at ``dest``: ``sqlite:///DEST/mlflow.db`` (MLflow's
    default backend since 3.7; its file store is in maintenance mode and refused by default)."""
    return f"sqlite:///{(Path(dest) / 'mlflow.db').resolve()}"


class MLflowSink(Sink):
    def __init__(self, run_name, dest, cfg, members):
        super().__init__(run_name, dest, cfg, members)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow") from None
        from mlflow.entities import Param

        self.dest.mkdir(parents=True, exist_ok=True)
        self.uri = mlflow_uri(self.dest)
        self.client = MlflowClient(tracking_uri=self.uri)
        exp = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(
            MLFLOW_EXPERIMENT, artifact_location=(self.dest / "artifacts").resolve().as_uri())
        params = [Param(k, str(v)[:6000]) for k, v in flat_config(cfg).items()]
        self.run_ids = []
        for e in range(members):
            name = f"{run_name}/member{e}"
            found = self.client.search_runs([exp_id], f"tags.`mlflow.runName` = '{name}'", max_results=1)
            if found:  # a resumed run goes on logging into its MLflow run
                self.run_ids.append(found[0].info.run_id)
                continue
            r = self.client.create_run(exp_id, run_name=name, tags={"groklab.run": run_name, "groklab.member": str(e)})
            for i in range(0, len(params), 100):
                self.client.log_batch(r.info.run_id, params=params[i:i + 100] + ([Param("member", str(e))] if i == 0
                                                                                   else []))
            self.run_ids.append(r.info.run_id)

    def log(self, rows):
        from mlflow.entities import Metric

        by_member: dict[int, list] = {}
        for step, e, name, value in rows:
            by_member.setdefault(e, []).append(Metric(name, float(value), 0, int(step)))
        for e, ms in by_member.items():
            for i in range(0, len(ms), 1000):
                self.client.log_batch(self.run_ids[e], metrics=ms[i:i + 1000])

    def artifacts(self, paths):
        for p in paths:
            for rid in self.run_ids:
                self.client.log_artifact(rid, str(p))

    def close(self):
        for rid in self.run_ids:
            self.client.set_terminated(rid)


class WandbSink(Sink):
    def __init__(self, run_name, dest, cfg, members):
        super().__init__(run_name, dest, cfg, members)
        try:
            import wandb
        except ImportError:
            raise _missing("wandb", "wandb") from None
        self.wandb = wandb
        self.dest.mkdir(parents=True, exist_ok=True)
        self.runs = []
        # One W&B run id per member and destination, the same at every start: a resumed run
        # writes its next offline part under the id of the first, and `wandb sync` sends both
        # parts to one W&B run (resume="allow").
        stem = hashlib.sha1(str(self.dest.resolve()).encode()).hexdigest()[:12]
        for e in range(members):
            r = wandb.init(mode="offline", dir=str(self.dest), project="groklab", name=f"{run_name}/member{e}",
                           id=f"{stem}-m{e}", resume="allow",
                           config={**flat_config(cfg), "member": e}, reinit="create_new",
                           settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
            self.runs.append(r)

    def log(self, rows):
        df = pd.DataFrame(rows, columns=["step", "member", "name", "value"])
        for e, g in df.groupby("member"):
            for step, h in g.groupby("step", sort=True):
                self.runs[e].log(dict(zip(h["name"], h["value"].astype(float))), step=int(step))

    def artifacts(self, paths):
        for p in paths:
            if p.suffix == ".png":
                for r in self.runs:
                    r.log({f"figures/{p.stem}": self.wandb.Image(str(p))})

    def close(self):
        for r in self.runs:
            r.finish()


SINKS = {"tensorboard": TensorBoardSink, "mlflow": MLflowSink, "wandb": WandbSink}


def open_sink(tracker: str, run_name: str, dest: str | Path, cfg: RunConfig, members: int) -> Sink:
    if tracker not in SINKS:
        raise ConfigError("--to", tracker, f"unknown tracker; choose from {', '.join(TRACKERS)}")
    return SINKS[tracker](run_name, Path(dest), cfg, members)


def run_artifacts(run_dir: Path) -> list[Path]:
    return sorted(p for p in Path(run_dir).iterdir() if p.suffix in (".png", ".json") and p.is_file())


def export_run(run_dir: str | Path, tracker: str, dest: str | Path | None = None) -> Path:
    """Write a run's metrics, config and figures into ``tracker`` at ``dest`` (default
    RUN_DIR/<tracker>). Returns the destination."""
    run = Run(run_dir)
    df = run.metrics
    dest = Path(dest) if dest else run.path / tracker
    members = int(df["member"].max()) + 1 if not df.empty else len(run.config.train.seeds)
    sink = open_sink(tracker, run.path.name, dest, run.config, members)
    try:
        sink.log(list(df.itertuples(index=False, name=None)))
        sink.artifacts(run_artifacts(run.path))
    finally:
        sink.close()
    return dest


def default_dest(run_dir: Path, tracker: str) -> Path:
    """Live logging's destination: $GROKLAB_<TRACKER>_DIR if set, else RUN_DIR/<tracker>."""
    env = os.environ.get(f"GROKLAB_{tracker.upper()}_DIR")
    return Path(env) if env else Path(run_dir) / tracker


__all__ = ["TRACKERS", "export_run", "open_sink", "flat_config", "default_dest", "mlflow_uri", "Sink"]
