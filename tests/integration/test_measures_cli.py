"""Progress measures live during training and post hoc with `groklab analyze`."""

import subprocess

import groklab
from groklab import load_run

SMALL = ["task.p=13", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32", "train.steps=40",
         "train.stop_val_acc=none", "train.seeds=[0,1]"]


def test_live_measures_and_analyze(tmp_path, groklab_inproc):
    cfg = groklab.resolve("demo", overrides=SMALL + ['measures=["fourier","softmax_collapse","fourier_neurons"]',
                                                     "train.measures_per_decade=4"])
    run = groklab.train(cfg, tmp_path / "m", progress=False)
    df = run.metrics
    names = set(df.name)
    assert {"fourier_key_share", "softmax_collapse", "fourier_neuron_frac"} <= names
    evals = set(df[df.name == "val_acc"].step)
    assert set(df[df.name == "fourier_key_share"].step) == evals  # cheap: every evaluation
    costly_steps = set(df[df.name == "fourier_neuron_frac"].step)
    assert costly_steps < evals and {0, 40} <= costly_steps  # costly: its own sparser schedule
    assert (df.groupby(["step", "member", "name"]).size() == 1).all()  # no duplicate rows

    r = groklab_inproc(["analyze", str(run.path), "--measures", "restricted_loss,description_length"])
    assert r.returncode == 0, r.stderr
    df2 = load_run(run.path).metrics
    steps = set(df2[df2.name == "restricted_loss"].step)
    assert steps == set(run.checkpoint_steps)
    assert {"excluded_loss", "data_bits", "model_bits", "description_bits"} <= set(df2.name)
    assert len(df2[df2.name == "val_acc"]) == len(df[df.name == "val_acc"])  # the rest kept

    # Nanda et al.'s convention: the final checkpoint's key frequencies at every step
    from groklab.measures.fourier import embedding_key_frequencies

    final = embedding_key_frequencies(run.model(), run.task)
    r = groklab_inproc(["analyze", str(run.path), "--measures", "fourier", "--final-keys"])
    assert r.returncode == 0, r.stderr
    df3 = load_run(run.path).metrics
    n_key = df3[(df3.name == "fourier_n_key")]
    for e, keys in enumerate(final):
        assert set(n_key[n_key.member == e].value) == {len(keys)}  # the same keys at every step

    r = groklab_inproc(["analyze", str(run.path), "--measures", "nope"])
    assert r.returncode == 2 and "nope" in r.stderr
    r = groklab_inproc(["measures"])
    assert r.returncode == 0 and "restricted_loss" in r.stdout


def test_a_live_measure_that_does_not_apply_is_refused_before_anything_is_written(tmp_path):
    import pytest

    from groklab.config import ConfigError

    cfg = groklab.resolve("demo", overrides=SMALL + ['measures=["fourier","rqi"]'])  # rqi: toy models only
    with pytest.raises(ConfigError, match="measure 'rqi' does not apply here: it needs the toy model"):
        groklab.train(cfg, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_measure_and_fourier_plots(tmp_path, groklab_inproc):
    run = groklab.train(groklab.resolve("demo", overrides=SMALL + ['measures=["fourier"]']), tmp_path / "f",
                        progress=False)
    png = tmp_path / "m.png"
    r = groklab_inproc(["plot", str(run.path), "-m", "fourier_key_share,weight_norm", "-o", str(png)])
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the names `analyze` takes work here too: a measure draws its saved metrics
    r = groklab_inproc(["plot", str(run.path), "-m", "fourier", "-o", str(tmp_path / "f4.png")])
    assert r.returncode == 0, r.stderr
    r = groklab_inproc(["plot", str(run.path), "-m", "softmax_collapse"])
    assert r.returncode == 2 and "groklab analyze" in r.stderr and "-m softmax_collapse" in r.stderr
    r = groklab_inproc(["fourier", str(run.path), "--step", "0", "-o", str(tmp_path / "f.png")])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
