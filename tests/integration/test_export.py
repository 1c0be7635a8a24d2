"""`groklab export` and `train.log_to`: each tracker's files read back with the tracker's own
reader equal metrics.parquet (every member, name and step); live logging holds exactly what
the run directory holds, also across a resume."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from groklab.export import mlflow_uri
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
        "--set", "train.stop_val_acc=none", "--set", 'train.log_to=["tensorboard","mlflow"]',
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


def test_export_mlflow_reads_back_equal(run_dir, tmp_path, groklab_cmd):
    cli(groklab_cmd, "export", str(run_dir), "--to", "mlflow", "--dest", str(tmp_path / "ml"))
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
    cli(groklab_cmd, "train", "--resume", str(run_dir), "--set", "train.steps=200", "-q")
    want = parquet_series(run_dir)
    assert max(want[(0, "val_acc")].index) == 200
    assert_equal_series(read_tensorboard(run_dir / "tensorboard" / "r"), want, float32=True)
    got, runs = read_mlflow(run_dir / "mlflow")
    assert len(runs) == 2  # the resumed run logs into the same two MLflow runs
    assert_equal_series(got, want)


def test_bad_tracker_is_refused(run_dir, groklab_cmd, tmp_path):
    r = cli(groklab_cmd, "export", str(run_dir), "--to", "neptune", "--dest", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and "neptune" in r.stderr and "tensorboard" in r.stderr
    r = cli(groklab_cmd, "train", "--preset", "fastest", "--set", 'train.log_to=["tb"]', "--dry-run", ok=False)
    assert r.returncode == 2 and "train.log_to" in r.stderr and "'tb'" in r.stderr
