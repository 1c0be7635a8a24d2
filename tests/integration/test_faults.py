"""Faults injected for real into run directories (issue 18): a damaged config.json,
summary.json, metrics.parquet or split file gets one line naming it, exit 2, and nothing
else is overwritten; a disk that fills up during training stops the run with one line
naming the path, leaves its directory valid, and ``--resume`` finishes it, once there is
room, with the numbers of a run that never failed."""

import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from groklab.cli import app

SETS = ["--set", "train.steps=800", "--set", "train.checkpoint_every=50", "--set", "train.stop_val_acc=none",
        "--set", "task.p=23", "--set", "model.d_model=32", "--set", "model.d_mlp=64"]


def _train(groklab_cmd, runs_dir, name, **kw):
    return subprocess.run(groklab_cmd + ["train", "--preset", "demo", "--runs-dir", str(runs_dir), "--name", name,
                                         "-q"] + SETS, capture_output=True, text=True, **kw)


def _files(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def _metrics(d: Path) -> pd.DataFrame:
    m = pd.read_parquet(d / "metrics.parquet")
    return m[m.name != "time_s"].sort_values(["step", "member", "name"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory, groklab_cmd_module):
    d = tmp_path_factory.mktemp("whole")
    r = _train(groklab_cmd_module, d, "w")
    assert r.returncode == 0, r.stderr
    return d / "w"


@pytest.fixture(scope="module")
def groklab_cmd_module():
    import sys

    return [sys.executable, "-m", "groklab.cli"]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, groklab_cmd_module):
    """A run stopped by SIGINT after its first checkpoints: resumable."""
    d = tmp_path_factory.mktemp("int")
    p = subprocess.Popen(groklab_cmd_module + ["train", "--preset", "demo", "--runs-dir", str(d), "--name", "i", "-q"]
                         + SETS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = d / "i" / "checkpoints" / "resume.prev.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.is_file():
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    assert p.wait() == 130
    return d / "i"


DAMAGE = {"config.json": b'{"format": 2, "task": {', "summary.json": b"\x00\x01 not json",
          "metrics.parquet": b"PAR1 truncated", "split.safetensors": b"\xff" * 64}


def _cli(args):
    """The real CLI in this process (no interpreter start-up): exit code and stderr."""
    r = CliRunner().invoke(app, args)
    try:
        err = r.stderr
    except ValueError:  # older click: stderr mixed into output
        err = r.output
    return r.exit_code, err


def test_damaged_files_are_named_in_one_line_and_nothing_is_overwritten(tmp_path, interrupted, whole):
    for name, damage in DAMAGE.items():
        d = tmp_path / name
        shutil.copytree(interrupted, d)
        (d / name).write_bytes(damage)
        before = _files(d)
        cmds = [["train", "--resume", str(d), "-q"]]
        if name != "split.safetensors":  # plot reads the config, the summary and the metrics, not the split
            cmds.append(["plot", str(d), "-o", str(tmp_path / "p.png")])
        for cmd in cmds:
            code, err = _cli(cmd)
            assert code == 2, (name, cmd, err)
            assert len(err.strip().splitlines()) == 1 and name in err, err
            assert "Traceback" not in err
        assert _files(d) == before, name  # nothing written
    # the good file back: the run resumes to the numbers of one that was never interrupted
    d = tmp_path / "metrics.parquet"
    shutil.copy(interrupted / "metrics.parquet", d / "metrics.parquet")
    r = subprocess.run([sys.executable, "-m", "groklab.cli", "train", "--resume", str(d), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(_metrics(d), _metrics(whole))


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"groklab-{uuid.uuid4().hex[:6]}",
                           str(path)], capture_output=True).returncode == 0


def test_full_disk_stops_with_one_line_and_resume_finishes_the_run(tmp_path, groklab_cmd, whole):
    """A real small file system: a 600 KB tmpfs mounted by the test (root only)."""
    mnt = tmp_path / "small"
    mounted = _mount_tmpfs(mnt, "600k")
    if not mounted:
        pytest.skip("mounting a tmpfs needs root (and the mount tool); this machine refused it")
    try:
        r = _train(groklab_cmd, mnt, "f")
        d = mnt / "f"
        assert r.returncode == 2, (r.stdout, r.stderr)
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1 and "no space left" in line and str(mnt) in line, line
        assert "Traceback" not in r.stderr
        assert not list(d.rglob(".*.*"))  # no temporary file left behind
        # the directory is valid: every file reads, a resume checkpoint loads
        import groklab
        from groklab.store import RunStore

        run = groklab.load_run(d)
        assert run.summary["status"] == "interrupted"
        assert len(run.metrics) > 0
        RunStore(d).load_resume()
        # room again: --resume finishes it with the numbers of a run that never failed
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        r = subprocess.run(groklab_cmd + ["train", "--resume", str(d), "-q"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        pd.testing.assert_frame_equal(_metrics(d), _metrics(whole))
        for step in RunStore(whole).weight_steps():
            assert (d / "checkpoints" / f"step_{step:08d}.safetensors").read_bytes() == \
                (whole / "checkpoints" / f"step_{step:08d}.safetensors").read_bytes()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
