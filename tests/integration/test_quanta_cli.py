"""The real CLI on multitask sparse parity: a small run with per-subtask losses live,
`groklab emergence`, `groklab qdg`, `groklab analyze -m subtasks` post hoc, a width sweep and
`groklab scaling` over parameters and steps; fixed-data (D) runs; a killed fresh-sample run
resumes bit for bit; bad inputs exit 2 with one line."""

import json
import signal
import subprocess
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

import groklab
from groklab.cli import app


class _R:
    def __init__(self, r):
        self.returncode, self.stdout = r.exit_code, r.stdout
        try:
            self.stderr = r.stderr
        except ValueError:  # older click: stderr mixed into output
            self.stderr = r.output


def cli(args, **_):
    """The real CLI in this process (no interpreter start-up per call)."""
    return _R(CliRunner().invoke(app, args, env={"COLUMNS": "250"}))

SMALL = ["task.n_tasks=8", "task.n_bits=12", "task.test_per_task=100", "task.monitor_size=500",
         "model.hidden=[32]", "train.batch_size=500", "train.evals_per_decade=20"]


def _sets(items):
    out = []
    for s in items:
        out += ["--set", s]
    return out


def _train(groklab_cmd, tmp_path, name, extra=()):
    r = subprocess.run(groklab_cmd + ["train", "--preset", "michaud2023_parity_laptop", "--runs-dir", str(tmp_path),
                                      "--name", name, "-q"] + _sets(SMALL + list(extra)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return tmp_path / name


def test_parity_run_logs_subtasks_and_the_analyses_read_it(tmp_path, groklab_cmd):
    d = _train(groklab_cmd, tmp_path, "p", ["train.steps=3000"])
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["task"]["kind"] == "sparse_parity" and cfg["model"]["first_layer"] == "gather"
    df = pd.read_parquet(d / "metrics.parquet")
    names = set(df.name)
    assert {"val_loss", "val_acc", "val_loss_bits", "subtask_loss_bits/1", "subtask_acc/8"} <= names
    last = df[df.step == df.step.max()].set_index("name").value
    assert last["subtask_loss_bits/1"] < 0.1 < last["subtask_loss_bits/8"]  # the most frequent is learned first

    r = cli(["plot", str(d), "-o", str(tmp_path / "p.png")])
    assert r.returncode == 0, r.stderr
    r = cli(["runs", "--runs-dir", str(tmp_path)])
    assert r.returncode == 0 and "parity" in r.stdout, r.stdout

    r = cli(["emergence", str(d)])
    assert r.returncode == 0, r.stderr
    assert "Spearman" in r.stdout and (d / "emergence.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_parquet(d / "emergence.parquet")
    assert table["emergence_step"].iloc[0] < 3000

    r = cli(["qdg", str(d), "--samples", "400", "--min-count", "3"])
    assert r.returncode == 0, r.stderr
    assert "ARI" in r.stdout and (d / "qdg.png").is_file() and "variant" not in r.stdout
    # groklab's variant names itself; a bad option value is named, exit 2
    r = cli(["qdg", str(d), "--samples", "400", "--min-count", "3", "--gradient", "logit_diff", "--affinity", "rbf",
             "-o", str(tmp_path / "v.png")])
    assert r.returncode == 0, r.stderr
    assert "QDG variant (logit-difference gradients, RBF affinity, tau 0.03)" in " ".join(r.stdout.split())
    r = cli(["qdg", str(d), "--samples", "400", "--min-count", "3", "--gradient", "logit_diff", "--clustering",
             "average", "--norm", "tensor", "-o", str(tmp_path / "a.png")])
    assert r.returncode == 0, r.stderr
    assert ("QDG variant (logit-difference gradients, normalised per tensor, average-linkage clustering of 1 - cos)"
            in " ".join(r.stdout.split()))
    for opt, bad in (("--affinity", "cosine"), ("--gradient", "margin"), ("--tau", "0"), ("--clustering", "ward"),
                     ("--norm", "layer")):
        r = cli(["qdg", str(d), "--samples", "400", "--min-count", "3", "--affinity", "rbf", opt, bad])
        assert r.returncode == 2 and bad in r.stderr, (opt, r.stderr)

    # post hoc: the same measure from the saved checkpoints
    before = df[df.name == "subtask_loss_bits/1"].set_index("step").value
    r = cli(["analyze", str(d), "-m", "subtasks"])
    assert r.returncode == 0, r.stderr
    after = pd.read_parquet(d / "metrics.parquet")
    after = after[after.name == "subtask_loss_bits/1"].set_index("step").value
    common = before.index.intersection(after.index)
    assert len(common) >= 3 and (before[common] - after[common]).abs().max() < 1e-5


def test_fixed_training_set_of_D_samples(tmp_path):
    cfg = groklab.resolve("michaud2023_parity_laptop", overrides=SMALL + ["task.train_size=300", "train.steps=300",
                                                                         "train.batch_size=100"])
    run = groklab.train(cfg, tmp_path / "d", progress=False)
    w = run.wide(0)
    assert len(run.task.train_idx) == 300
    assert w["train_loss"].iloc[-1] < w["val_loss"].iloc[-1]  # it fits its 300 samples before it generalises


def test_width_sweep_and_scaling_fits(tmp_path, groklab_cmd):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\npreset = "michaud2023_parity_laptop"\nseeds = 2\n[base]\n'
                    + "".join(f'"{s.split("=")[0]}" = {s.split("=", 1)[1]}\n' for s in SMALL)
                    + '"train.steps" = 400\n[axes]\n"model.hidden" = [[4], [16]]\n')
    r = subprocess.run(groklab_cmd + ["sweep", str(spec), "--runs-dir", str(tmp_path), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = cli(["scaling", str(tmp_path / "s"), "--x", "model.hidden", "--n-boot", "200"])
    assert r.returncode == 0, r.stderr
    assert "alpha_N" in r.stdout and "theory 0.400" in r.stdout
    assert (tmp_path / "s" / "scaling_model_hidden.png").is_file()
    r = cli(["scaling", str(tmp_path / "s"), "--x", "step", "--fit-range", "50,400", "--n-boot", "200"])
    assert r.returncode == 0, r.stderr
    assert "alpha_S" in r.stdout and "theory 0.286" in r.stdout
    r = cli(["scaling", str(tmp_path / "s"), "--x", "task.train_size"])
    assert r.returncode == 2 and "task.train_size" in r.stderr and "not an axis" in r.stderr


def test_killed_fresh_sample_run_resumes_bit_for_bit(tmp_path, groklab_cmd):
    extra = ["train.steps=1200", "train.checkpoint_every=100", "train.seeds=[0,1]"]
    whole = _train(groklab_cmd, tmp_path, "whole", extra)
    base = groklab_cmd + ["train", "--preset", "michaud2023_parity_laptop", "--runs-dir", str(tmp_path), "-q",
                          "--name", "killed"] + _sets(SMALL + extra)
    p = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = tmp_path / "killed" / "summary.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if summary.is_file() and json.loads(summary.read_text()).get("steps", 0) >= 100:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert json.loads(summary.read_text())["status"] != "completed"
    r = subprocess.run(groklab_cmd + ["train", "--resume", str(tmp_path / "killed"), "-q"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    a = pd.read_parquet(whole / "metrics.parquet")
    b = pd.read_parquet(tmp_path / "killed" / "metrics.parquet")
    a, b = (x[x.name != "time_s"].sort_values(["step", "member", "name"]).reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("args, key", [
    (["train", "--preset", "michaud2023_parity_laptop", "--set", "task.n_bits=4"], "task.n_tasks"),
    (["train", "--preset", "michaud2023_parity_laptop", "--set", "task.zipf_alpha=-1"], "task.zipf_alpha"),
    (["train", "--preset", "michaud2023_parity_laptop", "--set", "model.first_layer=sparse"], "model.first_layer"),
])
def test_bad_parity_inputs_exit_2_with_one_line(tmp_path, groklab_cmd, args, key):
    r = cli(args + ["--runs-dir", str(tmp_path)])
    assert r.returncode == 2 and key in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_emergence_and_qdg_refuse_other_task_kinds(tmp_path, groklab_cmd):
    cfg = groklab.resolve("demo", overrides=["train.steps=5"])
    groklab.train(cfg, tmp_path / "demo", progress=False)
    for cmd in (["emergence", str(tmp_path / "demo")], ["qdg", str(tmp_path / "demo")]):
        r = cli(cmd)
        assert r.returncode == 2 and ("subtask" in r.stderr or "sparse_parity" in r.stderr), r.stderr
