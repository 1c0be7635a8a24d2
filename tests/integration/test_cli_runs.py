"""`groklab runs` as a first-time user meets it: fast (no torch), runs inside sweeps found,
a run being trained shown as running, filters and sorting, and a table that stays whole at
80 columns and in a pipe."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import groklab
from groklab.config import ConfigError
from groklab.report.html import write_report
from groklab.report.plots import plot_run
from groklab.rundir import writer_pid
from groklab.store import RunStore
from groklab.training.loop import resume

SMALL = ["task.p=17", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64", "train.stop_val_acc=none",
         "train.progress=false"]


def _cli(groklab_cmd, *args, env=None):
    return subprocess.run(groklab_cmd + list(args), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


def test_the_command_line_does_not_import_torch():
    code = "import sys, groklab.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_help_lists_examples_without_type_tags_and_loads_nothing_heavy():
    """What a first --help costs is what it imports: neither torch, pandas, nor the pydantic
    that typer 0.29 brings, nor rich's markdown help (speed itself: benchmarks/bench_startup.py)."""
    code = ("import sys; from groklab.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'pandas', 'pydantic', 'rich.markdown') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    from groklab.cli import EXAMPLES
    for args in (["--help"], ["presets"], ["runs", "--help"], *([c, "--help"] for c in EXAMPLES)):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "80"})
        assert "HEAVY []" in r.stderr, (args, r.stderr)
        for tag in ("<str>", "<bool>", "<int>", "<path>", "TEXT", "{"):
            assert tag not in r.stdout.split("Example")[0], (args, tag, r.stdout)
        if args[-1] == "--help" and len(args) == 2:
            assert f"Example: {EXAMPLES[args[0]]}" in r.stdout, r.stdout
    top = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True).stdout
    assert all(ex in top for ex in EXAMPLES.values())  # the top-level help: one example per command
    assert "..." not in top.split("Commands:")[1].split("Examples:")[0]  # no command's summary cut short


def test_runs_finds_sweeps_filters_sorts_and_fits_80_columns(tmp_path, groklab_cmd):
    root = tmp_path / "runs"
    groklab.train(groklab.resolve("demo", overrides=[*SMALL, "train.steps=20"]), root / "short", progress=False)
    groklab.train(groklab.resolve("demo", overrides=[*SMALL, "train.steps=40", "train.seeds=[0,1,2]"]),
                  root / "a_very_long_sweep_name_that_must_fold" / "groups" / "g0000", progress=False)
    r = _cli(groklab_cmd, "runs", str(root), "--sort", "steps")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), r.stdout
    assert "…" not in r.stdout  # nothing cut short
    text = r.stdout.replace("\n", "")
    assert "short" in text and "g0000" in text
    assert "completed" in r.stdout and "(0/3)" in r.stdout  # the ensemble's 3 members, none at 99%
    assert r.stdout.index("short") < r.stdout.index("g0000")  # sorted by steps: 20 before 40
    r = _cli(groklab_cmd, "runs", str(root), "--status", "running")
    assert r.returncode == 0 and "no runs" in r.stdout
    r = _cli(groklab_cmd, "runs", str(root), "--sort", "colour")
    assert r.returncode == 2 and "colour" in r.stderr


def _title_of(png) -> str:
    from PIL import Image

    return Image.open(png).text.get("Title", "")


def test_a_run_being_trained_shows_as_running(tmp_path, groklab_cmd):
    root = tmp_path / "runs"
    cmd = groklab_cmd + ["train", "--preset", "demo", "--runs-dir", str(root), "--name", "live", "-q"]
    for s in [*SMALL, "train.steps=100000", "train.checkpoint_every=50"]:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while writer_pid(root / "live") != proc.pid and time.time() < deadline:
            time.sleep(0.05)
        assert writer_pid(root / "live") == proc.pid
        r = _cli(groklab_cmd, "runs", str(root))
        assert r.returncode == 0 and "running" in r.stdout, r.stdout
        while not (root / "live" / "metrics.parquet").is_file() and time.time() < deadline:
            time.sleep(0.05)
        html = write_report(root / "live").read_text()  # from its saved files, while it trains
        assert '<span class="status-running">running</span>' in html and 'data-figure="curves"' in html
        assert "running (drawn at step" in _title_of(plot_run(root / "live", tmp_path / "live.png"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert writer_pid(root / "live") is None  # killed: its PID is gone, the line it left is ignored
    r = _cli(groklab_cmd, "runs", str(root))
    assert "running" not in r.stdout and "interrupted" in r.stdout


def test_a_finished_run_extended_equals_the_longer_run(tmp_path, groklab_cmd):
    """--resume with more steps (and early stop off) continues a completed or early-stopped
    run; its weights equal those of a run configured for the longer length from the start."""
    sets = [*SMALL, "train.seeds=[0,1]", "train.checkpoint_every=10"]
    short = groklab.train(groklab.resolve("demo", overrides=[*sets, "train.steps=20"]), tmp_path / "short",
                          progress=False)
    assert short.summary["status"] == "completed"
    r = _cli(groklab_cmd, "train", "--resume", str(short.path), "-q", "--set", "train.steps=50")
    assert r.returncode == 0, r.stderr
    long = groklab.train(groklab.resolve("demo", overrides=[*sets, "train.steps=50"]), tmp_path / "long",
                         progress=False)
    ext = groklab.load_run(short.path)
    assert ext.summary["steps"] == 50 and ext.config.train.steps == 50
    wa, wb = RunStore(long.path).load_weights()[1], RunStore(short.path).load_weights()[1]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    m = ext.metrics.query("name == 'val_loss'")
    assert not m.duplicated(["step", "member"]).any() and m.step.max() == 50
    # only how far a run goes may change, and never backwards
    with pytest.raises(ConfigError, match="optim.lr"):
        resume(short.path, progress=False, overrides=["optim.lr=1"])
    with pytest.raises(ConfigError, match="50 steps"):
        resume(short.path, progress=False, overrides=["train.steps=30"])
    assert groklab.load_run(short.path).config.train.steps == 50  # refused: nothing written


def test_progress_is_plain_lines_when_output_is_not_a_terminal(tmp_path, groklab_cmd):
    cmd = ["train", "--preset", "demo", "--runs-dir", str(tmp_path), "--name", "p"]
    for s in [*SMALL, "train.steps=30", "train.progress=true"]:
        cmd += ["--set", s]
    r = _cli(groklab_cmd, *cmd)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("step ")]
    assert lines and lines[-1].startswith("step 30/30  train acc"), r.stdout


def test_dry_run_prints_config_members_and_estimate_and_writes_nothing(tmp_path, groklab_cmd):
    r = _cli(groklab_cmd, "train", "--preset", "demo", "--runs-dir", str(tmp_path / "runs"), "--dry-run",
             "--set", "train.seeds=[0,1]", "--set", "optim.lr=[1e-3,3e-3]", "--set", "task.p=17",
             "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.d_mlp=64")
    assert r.returncode == 0, r.stderr
    assert '"preset": "demo"' in r.stdout and "2 member(s)" in r.stdout
    assert "do not form a grid" in " ".join(r.stdout.split())
    assert "estimate:" in r.stdout and "ms/step" in r.stdout
    assert not (tmp_path / "runs").exists()
