"""The real CLI on the Omnigrok task kinds: a new user's `groklab train --preset
omnigrok_mnist` (no network), runs/plot on images and regression, a landscape sweep and its
figure, resume after a kill of an images run, and bad inputs exiting 2 with one line."""

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch

import groklab


def _sets(items):
    out = []
    for s in items:
        out += ["--set", s]
    return out


def test_omnigrok_mnist_preset_trains_offline(tmp_path, groklab_cmd, groklab_inproc):
    env = {**os.environ, "no_proxy": "", "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    r = subprocess.run(groklab_cmd + ["train", "--preset", "omnigrok_mnist", "--runs-dir", str(tmp_path),
                                      "--name", "m", "-q"] + _sets(["train.steps=30"]),
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["task"] == {"kind": "images", "dataset": "mnist", "train_size": 1000, "test_size": None,
                           "split_seed": 0, "idx_dir": None}
    assert cfg["model"]["init"] == "torch" and cfg["model"]["init_scale"] == 8.0
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert s["status"] == "completed" and s["steps"] == 30
    df = pd.read_parquet(tmp_path / "m" / "metrics.parquet")
    assert {"train_acc", "val_acc", "train_loss", "val_loss", "weight_norm"} <= set(df.name)
    w0 = df[(df.step == 0) & (df.name == "weight_norm")].value.item()
    assert abs(w0 - 8 * 11.71) < 1.0  # alpha x the default init's norm

    r = groklab_inproc(["runs", "--runs-dir", str(tmp_path)])
    assert r.returncode == 0 and "mnist" in r.stdout
    for extra in ([], ["--ensemble"]):
        png = tmp_path / f"c{len(extra)}.png"
        r = groklab_inproc(["plot", str(tmp_path / "m"), "-o", str(png)] + extra)
        assert r.returncode == 0, r.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_teacher_student_run_reports_regression_accuracy(tmp_path):
    run = groklab.train(groklab.resolve("omnigrok_teacher_student", overrides=["train.steps=200"]),
                        tmp_path / "ts", progress=False)
    w = run.wide(0)
    assert set(w.columns) >= {"train_acc", "val_acc", "train_loss", "val_loss"}
    assert w["train_loss"].iloc[-1] < w["train_loss"].iloc[0]
    # accuracy is the share of samples with mean squared error < 1e-3, recomputed from the model
    model, task = run.model(), run.task
    with torch.no_grad():
        out = model(task.inputs[task.train_idx])  # run.task's data come in the model's dtype
    acc = float(((out - task.targets[task.train_idx]).square().mean(-1) < 1e-3).double().mean())
    assert abs(acc - w["train_acc"].iloc[-1]) <= 0.011


def test_images_run_killed_resumes_bit_for_bit(tmp_path, groklab_cmd):
    sets = _sets(["task.dataset=digits", "task.train_size=200", "model.hidden=[32]", "train.steps=400",
                  "train.checkpoint_every=50", "train.batch_size=50", "model.init_scale=[1.0,3.0]"])
    base = groklab_cmd + ["train", "--preset", "omnigrok_mnist", "--runs-dir", str(tmp_path), "-q"]
    subprocess.run(base + ["--name", "whole"] + sets, check=True, capture_output=True)
    p = subprocess.Popen(base + ["--name", "killed"] + sets, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "checkpoints" / "resume.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.is_file() and (tmp_path / "killed" / "summary.json").is_file()):
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run(groklab_cmd + ["train", "--resume", str(tmp_path / "killed"), "-q"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    a, b = groklab.load_run(tmp_path / "whole").model(), groklab.load_run(tmp_path / "killed").model()
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_landscape_sweep_and_figure(tmp_path, groklab_cmd):
    spec = tmp_path / "land.toml"
    spec.write_text('name = "land"\npreset = "omnigrok_mnist_landscape"\nseeds = 1\n[base]\n'
                    '"task.dataset" = "digits"\n"model.hidden" = [16]\n"train.steps" = 40\n"train.eval_every" = 10\n'
                    '[axes]\n"model.init_scale" = { log = [0.5, 2.0], n = 3 }\n"task.train_size" = [100, 300]\n')
    r = subprocess.run(groklab_cmd + ["sweep", str(spec), "--runs-dir", str(tmp_path), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "land" / "groups").iterdir())) == 2  # one ensemble per size
    r = subprocess.run(groklab_cmd + ["landscape", str(tmp_path / "land")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t = pd.read_parquet(tmp_path / "land" / "landscape.parquet")
    assert len(t) == 6 and set(t["task.train_size"]) == {100, 300}
    # best accuracy over the evaluations, recomputed from one run's metrics
    g = groklab.load_run(tmp_path / "land" / "groups" / "g0000")
    best = g.metrics.query("name == 'val_acc'").groupby("member").value.max()
    row = t[(t["task.train_size"] == 100)].sort_values("alpha")
    assert sorted(row["best_test_acc"].round(12)) == sorted(best.round(12))
    assert (tmp_path / "land" / "landscape.png").read_bytes()[:4] == b"\x89PNG"
    # the norm is held: every member ends at alpha x its initial norm
    wn = g.metrics.query("name == 'weight_norm'").pivot(index="step", columns="member", values="value")
    assert (wn.iloc[-1] / wn.iloc[0] - 1).abs().max() < 1e-5


@pytest.mark.parametrize("sets,needle", [
    (["task.kind=images", "task.dataset=mnist_idx", "task.idx_dir=/nonexistent/dir", "model.kind=mlp"],
     "task.idx_dir='/nonexistent/dir': no such directory"),
    (["task.kind=images", "model.kind=transformer"], "model.kind='transformer'"),
    (["task.kind=images", "model.kind=mlp", 'measures=["restricted_loss"]'], "needs a modular table"),
    (["task.kind=teacher_student", "model.kind=mlp"], "train.loss='cross_entropy'"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, groklab_inproc, sets, needle):
    r = groklab_inproc(["train", "--runs-dir", str(tmp_path), "--name", "x", "-q"] + _sets(sets))
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_analyze_refuses_table_measures_on_images(tmp_path, groklab_inproc):
    groklab.train(groklab.resolve("omnigrok_mnist", overrides=["task.dataset=digits", "task.train_size=100",
                                                               "model.hidden=[8]", "train.steps=5",
                                                               "model.dtype=float64"]),  # data follow the model
                  tmp_path / "d", progress=False)
    r = groklab_inproc(["analyze", str(tmp_path / "d"), "-m", "weight_norm,fourier"])
    assert r.returncode == 2 and "needs a modular table" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = groklab_inproc(["analyze", str(tmp_path / "d"), "-m", "weight_norm,softmax_collapse"])
    assert r.returncode == 0, r.stderr
    r = groklab_inproc(["fourier", str(tmp_path / "d")])
    assert r.returncode == 2 and "needs a modular table" in r.stderr
