"""Sweeps through the real CLI: the executors agree run for run, a killed sweep completes
only what was missing, a real local Ray cluster gives the ensemble's numbers, and the
phase-diagram figures are drawn from the summary."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from groklab.sweep import SweepSpec, run_sweep

SPEC = """
name = "{name}"
preset = "liu2022_toy"
seeds = 2
[base]
"task.fraction" = 0.8
"task.split_seed" = 1
"model.hidden" = [16, 16]
"model.embed_init_scale" = 0.01
"optim.name" = "adamw"
"optim.embed_lr" = 1e-2
"optim.embed_wd_mult" = 0
"train.steps" = {steps}
"train.stop_val_acc" = 0.9
"train.stop_patience" = 2
"train.checkpoint_every" = 50
"train.evals_per_decade" = 20
[axes]
"optim.lr" = [1e-3, 1e-2]
"optim.weight_decay" = [0.0, 1.0]
"task.fraction" = [0.6, 0.8]
"""
EXACT = ["phase", "step_train_99", "step_val_99", "train_acc", "val_acc", "diverged"]
CLOSE = ["train_loss", "val_loss"]


def write_spec(tmp_path, name="toy", steps=400) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(SPEC.format(name=name, steps=steps))
    return p


def assert_same_results(a: pd.DataFrame, b: pd.DataFrame):
    a, b = a.sort_values("run").reset_index(drop=True), b.sort_values("run").reset_index(drop=True)
    assert list(a["run"]) == list(b["run"])
    assert (a["status"] == "done").all() and (b["status"] == "done").all()
    for c in EXACT:
        assert a[c].fillna(-1).tolist() == b[c].fillna(-1).tolist(), c
    for c in CLOSE:
        assert a[c].to_numpy() == pytest.approx(b[c].to_numpy(), rel=1e-5, abs=1e-6), c


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The ensemble executor's results on the spec: the reference every test compares to."""
    tmp = tmp_path_factory.mktemp("base")
    spec = SweepSpec.load(write_spec(tmp))
    df = run_sweep(spec, tmp / "toy", "ensemble", progress=False, log=lambda *_: None)
    df.attrs["dir"] = str(tmp / "toy")
    return df


def test_ensemble_groups_and_summary(baseline):
    assert len(baseline) == 2 * 2 * 2 * 2
    assert set(baseline["dir"]) == {"groups/g0000", "groups/g0001"}  # one ensemble per fraction
    assert set(baseline["phase"]) <= {"comprehension", "grokking", "memorization", "confusion"}
    assert baseline["phase"].nunique() >= 2  # the spec spans more than one phase


def test_process_executor_gives_the_ensemble_results(tmp_path, baseline, groklab_cmd):
    r = subprocess.run(groklab_cmd + ["sweep", str(write_spec(tmp_path)), "--executor", "process",
                                      "--workers", "2", "--runs-dir", str(tmp_path), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


def _done_runs(runs_dir: Path) -> list[Path]:
    return [p for p in runs_dir.glob("*/summary.json")
            if '"status": "completed"' in p.read_text() or '"status": "stopped"' in p.read_text()]


def test_killed_sweep_completes_only_what_was_missing(tmp_path, baseline, groklab_cmd):
    spec = write_spec(tmp_path)
    cmd = groklab_cmd + ["sweep", str(spec), "--executor", "process", "--workers", "1",
                         "--runs-dir", str(tmp_path), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs_dir = tmp_path / "toy" / "runs"
    deadline = time.time() + 300
    while len(_done_runs(runs_dir)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker, with no warning
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in _done_runs(runs_dir)}
    assert 3 <= len(finished) < 16

    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{len(finished)} finished" in " ".join(r.stdout.split())
    for name, mtime in finished.items():  # finished runs were not run again
        assert (runs_dir / name / "summary.json").stat().st_mtime_ns == mtime
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


def test_killed_ensemble_sweep_resumes_its_group(tmp_path, baseline, groklab_cmd):
    spec = write_spec(tmp_path)
    cmd = groklab_cmd + ["sweep", str(spec), "--runs-dir", str(tmp_path), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    g0 = tmp_path / "toy" / "groups" / "g0000" / "summary.json"
    g1_resume = tmp_path / "toy" / "groups" / "g0001" / "checkpoints" / "resume.safetensors"
    deadline = time.time() + 300
    while not g1_resume.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    mtime = g0.stat().st_mtime_ns
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "1 finished, 1 to resume, 0 to start" in out
    assert g0.stat().st_mtime_ns == mtime
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


@pytest.mark.parametrize("executor", ["ensemble"])  # the lock is the sweep's, whatever its executor
def test_second_sweep_on_the_same_directory_is_refused_and_the_first_finishes(tmp_path, baseline, groklab_cmd,
                                                                             executor):
    spec = write_spec(tmp_path)
    cmd = groklab_cmd + ["sweep", str(spec), "--executor", executor, "--workers", "1", "--runs-dir", str(tmp_path),
                         "-q"]
    if executor == "ensemble":
        cmd = [c for c in cmd if c not in ("--workers", "1")]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    record = tmp_path / "toy" / "sweep.json"
    deadline = time.time() + 120
    while not record.is_file() and time.time() < deadline:
        time.sleep(0.02)
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert first.poll() is None, "the first sweep ended before the second started"
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert "being written by another groklab process" in second.stderr
    # nor can a run directory the sweep is training be resumed beside it
    runs = tmp_path / "toy" / ("groups" if executor == "ensemble" else "runs")
    while first.poll() is None and not any(runs.glob("*/config.json")):
        time.sleep(0.02)
    busy = [p.parent for p in runs.glob("*/config.json") if not (p.parent / "summary.json").is_file()
            or '"completed"' not in (p.parent / "summary.json").read_text()]
    if busy and first.poll() is None:
        r = subprocess.run(groklab_cmd + ["train", "--resume", str(busy[0]), "-q"], capture_output=True, text=True)
        if r.returncode == 0:  # only if the sweep finished that run in between: then it is complete
            status = json.loads((busy[0] / "summary.json").read_text())["status"]
            assert status in ("completed", "stopped", "diverged"), status
        else:
            assert r.returncode == 2 and "being written by another groklab process" in r.stderr, r.stderr
    assert first.wait() == 0, first.stderr.read()
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


def test_sigterm_stops_a_sweep_resumably(tmp_path, baseline, groklab_cmd):
    spec = write_spec(tmp_path)
    cmd = groklab_cmd + ["sweep", str(spec), "--runs-dir", str(tmp_path), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    resume_ckpt = tmp_path / "toy" / "groups" / "g0000" / "checkpoints" / "resume.prev.safetensors"
    deadline = time.time() + 300
    while not resume_ckpt.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 130
    assert "interrupted" in proc.stderr.read()
    s = (tmp_path / "toy" / "groups" / "g0000" / "summary.json").read_text()
    assert '"status": "interrupted"' in s
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


def test_rerun_with_another_spec_or_executor_is_refused(tmp_path, baseline, groklab_cmd):
    spec = write_spec(tmp_path, steps=50)
    base = groklab_cmd + ["sweep", str(spec), "--runs-dir", str(tmp_path), "-q"]
    assert subprocess.run(base, capture_output=True).returncode == 0
    r = subprocess.run(base + ["--executor", "process"], capture_output=True, text=True)
    assert r.returncode == 2 and "ensemble" in r.stderr
    spec.write_text(SPEC.format(name="toy", steps=50).replace("[1e-3, 1e-2]", "[1e-3, 3e-2]"))
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode == 2 and "different sweep" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_cluster_on_a_shared_file_system_gives_the_ensemble_results(tmp_path, baseline, groklab_cmd):
    pytest.importorskip("ray", reason="Ray is installed by `make install` (groklab[ray])")
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a loopback test cluster
    start = subprocess.run([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                           capture_output=True, text=True, env=env)
    assert start.returncode == 0, start.stderr
    try:
        r = subprocess.run(groklab_cmd + ["sweep", str(write_spec(tmp_path)), "--executor", "ray",
                                          "--ray-storage", "shared", "--address", f"127.0.0.1:{port}",
                                          "--runs-dir", str(tmp_path), "-q"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env)
    assert_same_results(pd.read_parquet(tmp_path / "toy" / "summary.parquet"), baseline)


def test_phase_diagram_and_curve_figures(tmp_path, baseline, groklab_inproc):
    sweep_dir = baseline.attrs["dir"]
    for extra in (["--y", "optim.weight_decay"], ["--y", "optim.weight_decay", "--color", "val_acc"]):
        out = tmp_path / f"fig{len(extra)}.png"
        r = groklab_inproc(["phase-diagram", str(sweep_dir), "--x", "optim.lr", *extra, "-o", str(out)])
        assert r.returncode == 0, r.stderr
        assert out.stat().st_size > 10_000
    # a curve over one axis of a sweep that varies two more would pool them: refused, naming them
    r = groklab_inproc(["phase-diagram", str(sweep_dir), "--x", "optim.lr", "--color", "step_train_99"])
    assert r.returncode == 2 and "optim.weight_decay" in r.stderr and "--y" in r.stderr
    r = groklab_inproc(["phase-diagram", str(sweep_dir), "--x", "optim.lrr"])
    assert r.returncode == 2 and "optim.lrr" in r.stderr
