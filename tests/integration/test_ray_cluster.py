"""A real two-node Ray cluster on this machine whose worker node cannot see the sweep
directory: the head node (no CPUs, so every run goes to the worker) and a worker node started
in its own mount namespace with an empty tmpfs over the runs directory. Runs train on the
worker's own disk and travel back through Ray's object store; the driver alone writes the
sweep directory. One worker process is killed mid-sweep: its run is retried from the
checkpoint that reached the driver, and every run still equals an unfaulted run, bit for bit.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from groklab.store import RunStore
from groklab.sweep import SweepSpec, run_sweep
from groklab.training.loop import train

pytest.importorskip("ray", reason="Ray is installed by `make install` (groklab[ray])")

SPEC = """
name = "hidden"
preset = "liu2022_toy"
seeds = 2
[base]
"task.fraction" = 0.8
"model.hidden" = [16, 16]
"optim.name" = "adamw"
"train.steps" = 3000
"train.checkpoint_every" = 100
"train.evals_per_decade" = 20
[axes]
"optim.lr" = [1e-3, 1e-2]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_hide_directories() -> str | None:
    """Why a private mount namespace with a tmpfs cannot be made here (None if it can)."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs in a private mount namespace"
    if not shutil.which("unshare"):
        return "needs util-linux's unshare"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot mount in a private mount namespace: {probe.stderr.strip()}"
    return None


@pytest.fixture
def hidden_cluster(tmp_path):
    """(address, runs dir, env): a head node with 0 CPUs, a worker node with 2 CPUs that
    sees an empty tmpfs where the runs directory is."""
    reason = _can_hide_directories()
    if reason:
        pytest.skip(reason)
    ray_bin = str(Path(sys.executable).parent / "ray")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "visible-only-to-the-driver").write_text("")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a loopback test cluster
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        head = subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=0",
                               "--include-dashboard=false", *common], capture_output=True, text=True, env=env)
        assert head.returncode == 0, head.stderr
        worker = subprocess.run(
            ["unshare", "-m", "sh", "-c", f'mount -t tmpfs tmpfs "{runs}" && exec "$0" "$@"', ray_bin, "start",
             f"--address=127.0.0.1:{port}", "--num-cpus=2", *common],
            capture_output=True, text=True, env=env)
        assert worker.returncode == 0, worker.stderr
        yield f"127.0.0.1:{port}", runs, env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env)


def _ray_job_pids() -> list[int]:
    """Ray worker processes running a groklab run (Ray titles them ray::<function>)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::ray_job"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _in_flight_steps(sweep_dir: Path) -> list[int | None]:
    """For each run directory the driver holds that is not finished: its checkpoint's step."""
    steps = []
    for d in sorted((sweep_dir / "runs").glob("r*")):
        s = RunStore(d)
        try:
            if (d / "config.json").is_file() and (s.summary() or {}).get("status") in (None, "interrupted"):
                steps.append(RunStore._resume_step(s.resume_path))
        except Exception:
            steps.append(None)
    return steps


def test_runs_travel_back_and_a_killed_worker_resumes_from_the_driver_copy(tmp_path, hidden_cluster, groklab_cmd):
    address, runs, env = hidden_cluster
    spec_path = tmp_path / "hidden.toml"
    spec_path.write_text(SPEC)
    sweep = subprocess.Popen(groklab_cmd + ["sweep", str(spec_path), "--executor", "ray", "--address", address,
                                            "--runs-dir", str(runs), "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and sweep.poll() is None and time.monotonic() < deadline:
        # kill once both runs in flight have a checkpoint past step 0 on the driver's side
        steps, pids = _in_flight_steps(runs / "hidden"), _ray_job_pids()
        if len(steps) == 2 and all(s is not None and s > 0 for s in steps) and len(pids) == 2:
            killed = pids[0]
            # the worker's view of the runs directory is the empty tmpfs: the sweep is not there
            assert os.readlink(f"/proc/{killed}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
            assert not any(Path(f"/proc/{killed}/root{runs}").iterdir())
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    out, err = sweep.communicate(timeout=300)
    assert killed is not None, f"no run was caught in flight to kill\n{out}\n{err}"
    assert sweep.returncode == 0, err
    retries = re.findall(r"(r\d{5}): WorkerCrashedError \(worker lost\); retrying from its checkpoint at step (\d+)",
                         re.sub(r"\s+", " ", out))
    assert len(retries) == 1, out
    run_id, step = retries[0][0], int(retries[0][1])
    assert step > 0

    # every run once, each equal to the ensemble executor's, the killed one bit for bit an unfaulted run
    df = pd.read_parquet(runs / "hidden" / "summary.parquet")
    spec = SweepSpec.load(spec_path)
    base = run_sweep(spec, tmp_path / "ensemble" / "hidden", "ensemble", progress=False, log=lambda *_: None)
    assert sorted(df["run"]) == sorted(base["run"]) and (df["status"] == "done").all()
    a, b = df.sort_values("run").reset_index(drop=True), base.sort_values("run").reset_index(drop=True)
    for c in ("phase", "step_train_99", "step_val_99", "train_acc", "val_acc"):
        assert a[c].fillna(-1).tolist() == b[c].fillna(-1).tolist(), c
    killed_dir = runs / "hidden" / "runs" / run_id
    metrics = RunStore(killed_dir).metrics()
    assert not metrics.duplicated(["step", "member", "name"]).any()
    ref = train(RunStore(killed_dir).config(), tmp_path / "unfaulted", progress=False)
    untimed = lambda m: m[m["name"] != "time_s"].reset_index(drop=True)  # noqa: E731 - wall-clock differs
    pd.testing.assert_frame_equal(untimed(metrics), untimed(RunStore(ref.path).metrics()), check_exact=True)
    final = RunStore(killed_dir).weight_steps()[-1]
    got, want = RunStore(killed_dir).load_weights(final)[1], RunStore(ref.path).load_weights(final)[1]
    assert all(torch.equal(got[k], want[k]) for k in want)
    # the driver's copy holds only what the loop writes (no temporary files of the transfers)
    assert {p.name for p in killed_dir.iterdir()} - {".lock"} == {"checkpoints", "config.json", "metrics.parquet",
                                                                   "split.safetensors", "summary.json"}
