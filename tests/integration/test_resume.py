"""A run killed with SIGKILL and resumed ends bit for bit where an unkilled run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import groklab
from groklab import load_run

BASE = [
    "task.p=23", "task.fraction=0.5", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64",
    "optim.lr=3e-3", "optim.weight_decay=1.0", "train.steps=300", "train.checkpoint_every=20",
    "train.stop_val_acc=none", "train.seeds=[0,1]",
]
CASES = {
    "full_batch": BASE,
    "minibatch_2layer_ln": BASE + ["train.batch_size=64", "model.n_layers=2", "model.layer_norm=true",
                                   "task.layout=aopb="],
    "grokfast_norm_constraint": BASE + ["method.grokfast.kind=ema", "method.norm_constraint.factor=1.0"],
}


def _resume_step(run_dir):
    path = run_dir / "checkpoints" / "resume.safetensors"
    if not path.is_file():
        return -1
    try:
        with safe_open(path, framework="pt") as f:
            return json.loads(f.metadata()["state"])["loop"]["step"]
    except Exception:  # replaced while we read it
        return -1


def _train(groklab_cmd, runs, name, sets):
    cmd = groklab_cmd + ["train", "--runs-dir", str(runs), "--name", name, "-q"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


@pytest.mark.parametrize("case", list(CASES))
def test_sigkill_then_resume_is_bit_identical(tmp_path, groklab_cmd, case):
    sets = CASES[case]
    groklab.train(groklab.resolve(None, overrides=sets), tmp_path / "whole", progress=False)  # in-process: the reference

    proc = subprocess.Popen(_train(groklab_cmd, tmp_path, "killed", sets),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = tmp_path / "killed"
    deadline = time.time() + 120
    while _resume_step(killed) < 100 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = _resume_step(killed)
    assert 100 <= step_at_kill < 300
    assert load_run(killed).summary["status"] == "interrupted"  # valid and resumable

    subprocess.run(groklab_cmd + ["train", "--resume", str(killed), "-q"], check=True, capture_output=True)

    a, b = load_run(tmp_path / "whole"), load_run(killed)
    assert a.summary["status"] == b.summary["status"] == "completed"
    assert a.summary["steps"] == b.summary["steps"] == 300
    ma = a.metrics[a.metrics.name != "time_s"].reset_index(drop=True)
    mb = b.metrics[b.metrics.name != "time_s"].reset_index(drop=True)
    assert ma.equals(mb)  # every step, member, name and value, bit for bit
    wa = load_file(a.path / "checkpoints" / "step_00000300.safetensors")
    wb = load_file(b.path / "checkpoints" / "step_00000300.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_sigint_checkpoints_at_a_step_boundary_and_resumes(tmp_path, groklab_cmd):
    sets = CASES["full_batch"]
    groklab.train(groklab.resolve(None, overrides=sets), tmp_path / "whole", progress=False)  # in-process: the reference
    proc = subprocess.Popen(_train(groklab_cmd, tmp_path, "int", sets),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "int"
    deadline = time.time() + 120
    while _resume_step(run_dir) < 100 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    summary = load_run(run_dir).summary
    assert summary["status"] == "interrupted" and 100 <= summary["steps"] < 300
    subprocess.run(groklab_cmd + ["train", "--resume", str(run_dir), "-q"], check=True, capture_output=True)
    a, b = load_run(tmp_path / "whole"), load_run(run_dir)
    ma = a.metrics[a.metrics.name != "time_s"].reset_index(drop=True)
    mb = b.metrics[b.metrics.name != "time_s"].reset_index(drop=True)
    assert ma.equals(mb)
    wa = load_file(a.path / "checkpoints" / "step_00000300.safetensors")
    wb = load_file(b.path / "checkpoints" / "step_00000300.safetensors")
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
