"""`groklab export` and `train.log_to`: each tracker's files read back with the tracker's own
reader equal metrics.parquet (every member, name and step); live logging holds exactly what
the run directory holds, also across a resume."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from groklab.config import ConfigError
from groklab.export import export_run, mlflow_uri
from groklab.resolve import resolve
from groklab.run import Run


def cli(groklab_cmd, *args, timeout=300, ok=True):
    r = subprocess.run(groklab_cmd + list(args), capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import sys

    cmd = [sys.executable, "-m", "groklab.cli"]
    runs = tmp_path_factory.mktemp("export")
    cli(cmd, "train", "--preset", "fastest", "--set", "train.seeds=[0,1]", "--set", "train.steps=120",
        "--set", "train.stop_val_acc=none", "--set", 'train.log_to=["tensorboard","mlflow","wandb"]',
        "--runs-dir", str(runs), "--name", "r", "-q")
    cli(cmd, "plot", str(runs / "r"))  # a figure to travel as an artifact
    return runs / "r"


def parquet_series(run_dir) -> dict[tuple[int, str], pd.Series]:
    df = Run(run_dir).metrics
    return {(int(e), n): g.set_index("step")["value"].sort_index() for (e, n), g in df.groupby(["member", "name"])}


def read_tensorboard(root) -> dict[tuple[int, str], pd.Series]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for d in sorted(root.glob("member*")):
        acc = EventAccumulator(str(d), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        e = int(d.name[len("member"):])
        for tag in acc.Tags()["scalars"]:
            ev = acc.Scalars(tag)
            out[(e, tag)] = pd.Series([x.value for x in ev], index=[x.step for x in ev], dtype=float)
    return out


def read_mlflow(root) -> tuple[dict[tuple[int, str], pd.Series], list]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri(root))
    exp = client.get_experiment_by_name("groklab")
    out, runs = {}, client.search_runs([exp.experiment_id])
    for r in runs:
        e = int(r.data.tags["groklab.member"])
        for key in r.data.metrics:
            h = sorted(client.get_metric_history(r.info.run_id, key), key=lambda m: m.step)
            out[(e, key)] = pd.Series([m.value for m in h], index=[m.step for m in h], dtype=float)
    return out, runs


def assert_equal_series(got, want, float32=False):
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        g = got[k]
        assert list(g.index) == list(w.index), k  # every step once, in order
        expect = w.to_numpy().astype(np.float32).astype(float) if float32 else w.to_numpy()
        np.testing.assert_array_equal(g.to_numpy(), expect, err_msg=str(k))


def test_export_tensorboard_reads_back_equal(run_dir, tmp_path, groklab_cmd):
    r = cli(groklab_cmd, "export", str(run_dir), "--to", "tensorboard", "--dest", str(tmp_path / "tb"))
    assert "tensorboard --logdir" in r.stdout
    got = read_tensorboard(tmp_path / "tb" / "r")
    assert_equal_series(got, parquet_series(run_dir), float32=True)  # TensorBoard keeps float32


def test_export_mlflow_reads_back_equal(run_dir, tmp_path):
    export_run(run_dir, "mlflow", tmp_path / "ml")  # what `groklab export --to mlflow` calls
    got, runs = read_mlflow(tmp_path / "ml")
    assert_equal_series(got, parquet_series(run_dir))
    assert len(runs) == 2
    params = runs[0].data.params
    assert params["preset"] == "fastest" and params["train.steps"] == "120" and params["train.seeds"] == "[0, 1]"
    from mlflow.tracking import MlflowClient

    arts = {a.path for a in MlflowClient(tracking_uri=mlflow_uri(tmp_path / "ml"))
            .list_artifacts(runs[0].info.run_id)}
    assert {"config.json", "summary.json", "curves.png"} <= arts


def test_live_logging_equals_the_run_and_survives_a_resume(run_dir, groklab_cmd):
    assert_equal_series(read_tensorboard(run_dir / "tensorboard" / "r"), parquet_series(run_dir), float32=True)
    assert_equal_series(read_mlflow(run_dir / "mlflow")[0], parquet_series(run_dir))
    assert_equal_series(read_wandb(run_dir / "wandb")[0], parquet_series(run_dir))
    cli(groklab_cmd, "train", "--resume", str(run_dir), "--set", "train.steps=200", "-q")
    want = parquet_series(run_dir)
    assert max(want[(0, "val_acc")].index) == 200
    assert_equal_series(read_tensorboard(run_dir / "tensorboard" / "r"), want, float32=True)
    got, runs = read_mlflow(run_dir / "mlflow")
    assert len(runs) == 2  # the resumed run logs into the same two MLflow runs
    assert_equal_series(got, want)
    got, parts = read_wandb(run_dir / "wandb")  # W&B: a second offline part of each member's run id
    assert len(parts) == 2 and all(len(p) == 2 for p in parts.values()), parts
    assert_equal_series(got, want)


def test_bad_tracker_is_refused(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="--to='neptune'.*tensorboard"):
        export_run(run_dir, "neptune", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="train.log_to='tb'"):
        resolve("fastest", overrides=['train.log_to=["tb"]'])


def wandb_records(path):
    """The records of a W&B transaction log (``run-*.wandb``), as wandb-core writes it: a 7-byte
    header, then LevelDB's log format (32 KiB blocks; records with a 7-byte header: CRC,
    length, type FULL/FIRST/MIDDLE/LAST), each a ``wandb_internal_pb2.Record``. wandb 0.31 ships
    the schema but no Python reader of the file (its ``datastore`` module went with the Go core)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    buf, pos, part, block = path.read_bytes(), 7, b"", 32768
    assert buf[:4] == b":W&B"
    while pos + 7 <= len(buf):
        if block - pos % block < 7:  # a block's trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos:pos + 7])
        data, pos = buf[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(part + data if kind == 4 else data)
            part = b""
            yield rec
        elif kind in (2, 3):
            part = data if kind == 2 else part + data


def read_wandb(root) -> tuple[dict[tuple[int, str], pd.Series], dict[str, list]]:
    """Every offline W&B run under ``root``, parts of one run id (a resumed run's) joined:
    the scalars per (member, name), each step once, and the offline directories per run id."""
    import json

    got, parts = {}, {}
    for f in sorted(root.glob("wandb/offline-run-*/run-*.wandb")):
        hist, cfg, run_id = [], {}, None
        for rec in wandb_records(f):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                run_id = rec.run.run_id
            if kind in ("config", "run"):  # the config travels in the run record, and in updates
                upd = rec.config.update if kind == "config" else rec.run.config.update
                cfg.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in upd})
            elif kind == "history":
                hist.append({it.key or "/".join(it.nested_key): json.loads(it.value_json) for it in rec.history.item})
        e = int(cfg["member"])
        assert cfg["preset"] == "fastest" and cfg["train.steps"] in (120, 200)
        parts.setdefault(run_id, []).append(f.parent.name)
        for h in hist:
            for k, v in h.items():
                if not k.startswith("_") and not k.startswith("figures/"):
                    series = got.setdefault((e, k), {})
                    assert h["_step"] not in series, (e, k, h["_step"])  # no step twice across parts
                    series[h["_step"]] = float(v)
    return {k: pd.Series(v).sort_index() for k, v in got.items()}, parts


def test_export_wandb_offline_reads_back_equal(run_dir, tmp_path):
    pytest.importorskip("wandb", reason="W&B is the optional extra groklab[wandb]")
    export_run(run_dir, "wandb", tmp_path / "wb")
    got, parts = read_wandb(tmp_path / "wb")
    assert len(parts) == 2 and all(len(p) == 1 for p in parts.values())  # one W&B run per member
    assert_equal_series(got, parquet_series(run_dir))
