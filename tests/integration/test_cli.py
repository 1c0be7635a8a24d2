"""The real CLI on small configs: train, runs, plot, presets, tasks; the Python API."""

import json
import subprocess

import pandas as pd
import torch

import groklab
from groklab import load_run

SMALL = ["task.p=17", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64",
         "train.steps=60", "train.stop_val_acc=none"]


def _sets(items):
    out = []
    for s in items:
        out += ["--set", s]
    return out


def test_train_runs_plot(tmp_path, groklab_cmd):
    r = subprocess.run(groklab_cmd + ["train", "--preset", "demo", "--runs-dir", str(tmp_path), "--name", "a", "-q"]
                       + _sets(SMALL + ["train.seeds=[0,1]"]), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "a"
    assert str(run_dir) in r.stdout
    for f in ("config.json", "metrics.parquet", "summary.json", "split.safetensors",
              "checkpoints/resume.safetensors", "checkpoints/step_00000060.safetensors"):
        assert (run_dir / f).is_file(), f
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["task"]["p"] == 17 and cfg["train"]["seeds"] == [0, 1] and cfg["preset"] == "demo"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 60
    assert len(summary["members"]) == 2
    for m in summary["members"]:
        assert set(m) >= {"seed", "train_acc", "val_acc", "train_loss", "val_loss", "step_train_99",
                          "step_val_99", "seconds_val_99", "phase"}
    df = pd.read_parquet(run_dir / "metrics.parquet")
    assert list(df.columns) == ["step", "member", "name", "value"]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "weight_norm", "time_s"} <= set(df.name)
    assert set(df.member) == {0, 1} and df.step.min() == 0 and df.step.max() == 60

    r = subprocess.run(groklab_cmd + ["runs", "--runs-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0 and "a" in r.stdout and "add" in r.stdout

    png = tmp_path / "curves.png"
    r = subprocess.run(groklab_cmd + ["plot", str(run_dir), "-o", str(png)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same name again is refused, and the run is left as it was
    r = subprocess.run(groklab_cmd + ["train", "--runs-dir", str(tmp_path), "--name", "a", "-q"] + _sets(SMALL),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert json.loads((run_dir / "summary.json").read_text()) == summary


def test_presets_and_tasks_list(groklab_cmd):
    r = subprocess.run(groklab_cmd + ["presets"], capture_output=True, text=True)
    assert r.returncode == 0
    for name in ("demo", "nanda2023", "power2022", "liu2022_toy", "challenge97"):
        assert name in r.stdout
    r = subprocess.run(groklab_cmd + ["tasks"], capture_output=True, text=True)
    assert r.returncode == 0 and "s5_conj" in r.stdout


def test_python_api_matches_saved_files(tmp_path):
    cfg = groklab.resolve("demo", overrides=SMALL)
    run = groklab.train(cfg, tmp_path / "r", progress=False)
    again = load_run(tmp_path / "r")
    assert again.summary == run.summary
    assert run.checkpoint_steps[0] == 0 and run.checkpoint_steps[-1] == 60
    # the saved model reproduces the saved final val accuracy
    model, task = run.model(), run.task
    with torch.no_grad():
        logits = model(task.tokens[task.val_idx])
    acc = (logits.argmax(-1) == task.c[task.val_idx]).double().mean().item()
    assert abs(acc - run.summary["members"][0]["val_acc"]) < 1e-6  # stored from a float32 mean
    # the reference implementation of the same checkpoint gives the same predictions
    with torch.no_grad():
        ref = run.model(impl="reference")(task.tokens[task.val_idx])
    assert torch.equal(ref.argmax(-1), logits.argmax(-1))
    assert torch.equal(run.task.train_idx, run.store.split()["train_idx"])
    w0 = run.wide(0)
    assert w0.index[0] == 0 and "val_acc" in w0


def test_ensemble_members_match_single_runs(tmp_path):
    """Three seeds and three learning rates as one batched model equal three single runs."""
    sets = ["train.steps=150", "train.stop_val_acc=none"]
    ens = groklab.train(groklab.resolve("liu2022_toy", overrides=sets + ["train.seeds=[0,1,2]",
                                                                         "optim.lr=[1e-3,2e-3,3e-3]"]),
                        tmp_path / "ens", progress=False)
    wa = ens.model().state_dict()
    for e, (seed, lr) in enumerate([(0, 1e-3), (1, 2e-3), (2, 3e-3)]):
        one = groklab.train(groklab.resolve("liu2022_toy", overrides=sets + [f"train.seeds=[{seed}]",
                                                                             f"optim.lr={lr}"]),
                            tmp_path / f"one{e}", progress=False)
        wb = one.model().state_dict()
        for k in wa:
            assert torch.equal(wa[k][e], wb[k][0]), k  # batch-invariant: the same bits
        me = ens.summary["members"][e]
        mo = one.summary["members"][0]
        assert me["train_loss"] == mo["train_loss"] and me["val_acc"] == mo["val_acc"]


def test_diverging_member_is_stopped_others_go_on(tmp_path):
    cfg = groklab.resolve("liu2022_toy", overrides=["train.steps=100", "optim.name=sgd", "optim.momentum=0.0",
                                                    "optim.lr=[1e-2,1e30]", "train.seeds=[0,0]", "model.act=relu"])
    run = groklab.train(cfg, tmp_path / "d", progress=False)
    m = run.summary["members"]
    assert m[1]["diverged"] is True and m[0]["diverged"] is False
    assert run.summary["status"] == "completed" and run.summary["steps"] == 100
    assert m[0]["train_loss"] is not None
