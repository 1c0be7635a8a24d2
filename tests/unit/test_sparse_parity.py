"""Multitask sparse parity (Michaud et al. 2023) and the quanta analysis, with known answers:
the generator's frequencies follow the Zipf law (chi-square), every label is its parity,
the subsets are the original code's, the gather first layer equals the dense one, a power
law's planted exponent is recovered inside its interval, QDG separates planted gradient
clusters, emergence steps of planted curves are found."""

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare

import groklab
from groklab.config import ConfigError, SparseParityConfig
from groklab.measures import compute, subtask_means
from groklab.models import ParityMLP, build_model
from groklab.quanta import bootstrap_power_law, cluster_gradients, emergence, fit_power_law, theory_exponent
from groklab.quanta.qdg import _cosines, method_name, per_sample_grads, rbf_affinity
from groklab.quanta.emergence import crossing
from groklab.tasks import make_task
from groklab.tasks.sparse_parity import draw_subsets, zipf_probs


def _task(**kw):
    cfg = SparseParityConfig(**{"n_tasks": 20, "n_bits": 16, "test_per_task": 50, "monitor_size": 300, **kw})
    return make_task(cfg, "cpu", torch.float64)


def test_task_frequencies_follow_the_zipf_law():
    task = _task(zipf_alpha=0.4)
    rows, _ = task.sample(200_000, torch.Generator().manual_seed(1))
    counts = np.bincount(rows[:, 0].long().numpy(), minlength=20)
    expected = zipf_probs(20, 0.4).numpy() * counts.sum()
    assert chisquare(counts, expected).pvalue > 1e-3
    # the same counts against a neighbouring exponent are rejected: the test has power
    wrong = zipf_probs(20, 0.5).numpy() * counts.sum()
    assert chisquare(counts, wrong).pvalue < 1e-6
    # p_i proportional to i^-(alpha+1), the paper's alpha (their code's alpha = 1.4 for alpha 0.4)
    p = zipf_probs(500, 0.4)
    assert p[0] == pytest.approx(0.345, abs=5e-4) and p[9] == pytest.approx(0.0137, abs=5e-5)


def test_every_label_is_its_subsets_parity():
    task = _task(k=3)
    for rows, y in (task.sample(2000, torch.Generator().manual_seed(0)), (task.inputs, task.targets)):
        for row, label in zip(rows.tolist(), y.tolist()):
            t, bits = row[0], row[1:]
            assert label == sum(bits[i] for i in task.subsets[t].tolist()) % 2


def test_subsets_are_the_original_codes_distinct_draws():
    # scripts/sparse-parity-v4.py: random.seed(seed); sorted(random.sample(range(n), k)) until distinct
    n_tasks, n, k, seed = 40, 12, 3, 5
    random.seed(seed)
    theirs = []
    for _ in range(n_tasks * 10):
        S = tuple(sorted(random.sample(range(n), k)))
        if S not in theirs:
            theirs.append(S)
        if len(theirs) == n_tasks:
            break
    ours = draw_subsets(n_tasks, n, k, seed)
    assert [tuple(s) for s in ours.tolist()] == theirs
    assert len(set(theirs)) == n_tasks


def test_held_out_rows_cover_every_subtask_and_weights_give_the_expected_loss():
    task = _task(test_per_task=50)
    vt = task.inputs[task.val_idx, 0].long()
    assert torch.equal(vt, torch.arange(20).repeat_interleave(50))
    assert torch.equal(task.val_task, vt)
    assert float(task.val_weights.sum()) == pytest.approx(1.0)
    assert len(task.train_idx) == 300 and task.fresh
    fixed = _task(train_size=123)
    assert len(fixed.train_idx) == 123 and not fixed.fresh
    # the split seed fixes everything; another seed changes the subsets
    assert torch.equal(_task().inputs, _task().inputs)
    assert not torch.equal(_task(split_seed=1).subsets, _task().subsets)


def _parity_model(first_layer, n_tasks=30, n_bits=10, width=16, E=2):
    m = ParityMLP(E, n_tasks, n_bits, [width], 2, "relu", "torch", first_layer)
    m.initialise([3, 4][:E], [1.0] * E, torch.float64)
    return m


def test_gather_first_layer_equals_the_dense_product():
    g, d = _parity_model("gather"), _parity_model("dense")
    d.load_state_dict(g.state_dict())
    task = _task(n_tasks=30, n_bits=10)
    rows, y = task.sample(500, torch.Generator().manual_seed(2))
    out_g, out_d = g(rows), d(rows)
    assert torch.allclose(out_g, out_d, rtol=0, atol=1e-12)
    for m, out in ((g, out_g), (d, out_d)):
        torch.nn.functional.cross_entropy(out.reshape(-1, 2), y.repeat(2)).backward()
    for (n, pg), (_, pd_) in zip(g.named_parameters(), d.named_parameters()):
        assert torch.allclose(pg.grad, pd_.grad, rtol=0, atol=1e-12), n
    # per-member rows (E, N, ...) too
    per = torch.stack([rows[:7], rows[7:14]])
    assert torch.allclose(g(per), d(per), rtol=0, atol=1e-12)


def test_parameter_count_is_the_papers():
    cfg = groklab.resolve("michaud2023_parity", overrides=["task.test_per_task=1", "task.monitor_size=1"])
    for w in (9, 500):
        cfg.model.hidden = [w]
        task = make_task(cfg.task)
        n = sum(p.numel() for p in build_model(cfg, task).parameters())
        assert n == 603 * w + 2  # their stored outputs: 5,429 at w = 9, 301,502 at w = 500


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="task.n_tasks"):
        SparseParityConfig(n_tasks=200, n_bits=8, k=3).check()  # C(8, 3) = 56 subsets
    with pytest.raises(ConfigError, match="task.k"):
        SparseParityConfig(n_bits=2, k=3).check()
    with pytest.raises(ConfigError, match="train.batch_size"):
        groklab.resolve(None, overrides=["task.kind=sparse_parity", "model.kind=mlp", "train.batch_size=none"])
    with pytest.raises(ConfigError, match="model.kind"):
        groklab.resolve(None, overrides=["task.kind=sparse_parity", "train.batch_size=10"])
    with pytest.raises(ConfigError, match="subtasks"):
        groklab.resolve("demo", overrides=["measures=['subtasks']"])


def test_subtask_measure_matches_a_direct_computation():
    task = _task(test_per_task=40)
    model = _parity_model("gather", n_tasks=20, n_bits=16)
    out = compute(["subtasks"], model, task)
    assert {"val_loss_bits", "subtask_loss_bits/1", "subtask_acc/20"} <= set(out)
    with torch.no_grad():
        lg = model(task.inputs[task.val_idx])[1]
    y = task.targets[task.val_idx]
    rows = slice(3 * 40, 4 * 40)  # subtask rank 4
    ce = torch.nn.functional.cross_entropy(lg[rows], y[rows]).item() / math.log(2)
    assert out["subtask_loss_bits/4"][1].item() == pytest.approx(ce, rel=1e-9)
    acc = (lg[rows].argmax(-1) == y[rows]).double().mean().item()
    assert out["subtask_acc/4"][1].item() == pytest.approx(acc)
    loss, _ = subtask_means(model, task)
    assert out["val_loss_bits"][0].item() == pytest.approx(float((loss[0] * task.probs).sum()))


def test_power_law_fit_recovers_a_planted_exponent():
    rng = np.random.default_rng(0)
    xs = np.geomspace(1e3, 1e6, 8)
    rows = [{"x": x, "seed": s, "loss_bits": 3.0 * x ** -0.4 * math.exp(rng.normal(0, 0.05))}
            for x in xs for s in range(4)]
    fit = bootstrap_power_law(pd.DataFrame(rows), n_boot=500)
    assert fit.ci_low < 0.4 < fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.05
    assert not (fit.ci_low < 0.5 < fit.ci_high)
    assert fit_power_law(xs, 2 * xs ** -0.25)[0] == pytest.approx(0.25)
    assert theory_exponent("N", 0.4) == 0.4 and theory_exponent("D", 0.4) == pytest.approx(0.4 / 1.4)


def test_qdg_separates_planted_gradient_clusters():
    from sklearn.metrics import adjusted_rand_score

    g = torch.Generator().manual_seed(0)
    centers = torch.randn(6, 300, generator=g, dtype=torch.float64)
    true = torch.arange(6).repeat_interleave(torch.tensor([80, 40, 25, 15, 10, 8]))
    G = centers[true] * torch.rand(len(true), 1, generator=g, dtype=torch.float64).add(0.5)  # sizes vary
    G = G + 0.3 * torch.randn(G.shape, generator=g, dtype=torch.float64)
    labels = cluster_gradients(G, 6)
    assert adjusted_rand_score(true.numpy(), labels) == 1.0


def _small_parity_model():
    """A float64 sparse-parity task (6 subtasks, 10 data bits) and its [16] MLP, seed 0."""
    torch.manual_seed(0)
    cfg = groklab.resolve("michaud2023_parity_laptop", overrides=["task.n_tasks=6", "task.n_bits=10",
                                                                  "model.hidden=[16]", "model.dtype=float64"])
    task = make_task(cfg.task, "cpu", torch.float64)
    return task, build_model(cfg, task)


def test_logit_diff_gradient_is_the_loss_gradient_without_the_label_sign():
    """Two classes: dL/dtheta = -(2y - 1) sigma(-(2y - 1) m) dm/dtheta with m = z_1 - z_0, so the
    normalised loss gradient is -(2y - 1) times the normalised logit-difference gradient."""
    task, model = _small_parity_model()
    rows, y = task.sample(64, torch.Generator().manual_seed(1))
    gl = torch.nn.functional.normalize(per_sample_grads(model, 0, rows, y), dim=1)
    gd = torch.nn.functional.normalize(per_sample_grads(model, 0, rows, y, gradient="logit_diff"), dim=1)
    sign = -(2 * y.double() - 1)[:, None]
    torch.testing.assert_close(gl, sign * gd, rtol=0, atol=1e-12)
    assert (y == 0).any() and (y == 1).any()  # both signs occur, so the identity is not vacuous
    with pytest.raises(ValueError, match="margin"):
        per_sample_grads(model, 0, rows, y, gradient="margin")


def test_per_tensor_norm_makes_the_cosine_the_mean_of_per_tensor_cosines():
    """norm="tensor": each parameter tensor's part has unit length, so the cosine of two samples
    (:func:`_cosines`) is the mean over the T tensors of their per-tensor cosines."""
    task, model = _small_parity_model()
    rows, y = task.sample(32, torch.Generator().manual_seed(2))
    raw = per_sample_grads(model, 0, rows, y, gradient="logit_diff")
    per = per_sample_grads(model, 0, rows, y, gradient="logit_diff", norm="tensor")
    sizes = [10 * 16, 16, 16 * 2, 2]  # dec_0_W without the 6 control rows, dec_0_b, dec_1_W, dec_1_b
    assert raw.shape == per.shape == (32, sum(sizes))
    blocks = [torch.nn.functional.normalize(b, dim=1) for b in raw.split(sizes, 1)]
    for b, p in zip(blocks, per.split(sizes, 1)):
        torch.testing.assert_close(p, b, rtol=0, atol=1e-12)
        assert ((p.norm(dim=1) - 1).abs() < 1e-12).all()
    mean_cos = sum(b @ b.T for b in blocks) / len(blocks)
    np.testing.assert_allclose(_cosines(per), mean_cos.clamp(-1, 1).numpy(), rtol=0, atol=1e-12)
    assert not np.allclose(_cosines(per), _cosines(raw), atol=1e-3)  # it does change the cosines
    with pytest.raises(ValueError, match="norm='layer'"):
        per_sample_grads(model, 0, rows, y, norm="layer")
    assert method_name("logit_diff", clustering="average", norm="tensor") == \
        "QDG variant (logit-difference gradients, normalised per tensor, average-linkage clustering of 1 - cos)"


def test_rbf_affinity_by_hand_and_on_weak_planted_clusters():
    from sklearn.metrics import adjusted_rand_score

    G = torch.tensor([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]], dtype=torch.float64) * torch.tensor([[2.0], [1.0], [5.0]])
    A = rbf_affinity(G, 0.1)  # cosines 0.6 and -1: exp(-0.4 / 0.1), exp(-2 / 0.1)
    assert A[0, 0] == pytest.approx(1.0) and A[0, 1] == pytest.approx(math.exp(-4.0))
    assert A[0, 2] == pytest.approx(math.exp(-20.0)) and np.allclose(A, A.T)
    with pytest.raises(ValueError, match="tau"):
        rbf_affinity(G, 0.0)
    # 5 clusters whose members share only a weak direction: cosine ~0.2 within, ~0 between
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 2000, generator=g, dtype=torch.float64)
    true = torch.arange(5).repeat_interleave(torch.tensor([120, 80, 50, 30, 20]))
    X = centers[true] + 2.0 * torch.randn(len(true), 2000, generator=g, dtype=torch.float64)
    C = torch.nn.functional.normalize(X, dim=1) @ torch.nn.functional.normalize(X, dim=1).T
    within = C[true[:, None] == true[None, :]].mean().item()
    assert 0.15 < within < 0.3 and abs(C[true[:, None] != true[None, :]].mean().item()) < 0.02
    labels = cluster_gradients(X, 5, affinity="rbf", tau=0.03)
    assert adjusted_rand_score(true.numpy(), labels) == 1.0
    with pytest.raises(ValueError, match="cosine"):
        cluster_gradients(X, 5, affinity="cosine")
    assert method_name() == "QDG" and method_name("logit_diff", "rbf", 0.03) == \
        "QDG variant (logit-difference gradients, RBF affinity, tau 0.03)"


def test_average_linkage_on_weak_zipf_sized_planted_clusters():
    """Clusters sized as a Zipf law (the subtasks' frequencies), cosine ~0.2 within and ~0
    between: average linkage on 1 - C recovers them exactly; its hand-checkable case first."""
    from sklearn.metrics import adjusted_rand_score

    G = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.05, 1.0]], dtype=torch.float64)
    assert cluster_gradients(G, 2, clustering="average").tolist() in ([0, 0, 1, 1, 1], [1, 1, 0, 0, 0])
    g = torch.Generator().manual_seed(1)
    sizes = torch.tensor([400 // (i + 1) ** 1.4 for i in range(8)]).long()  # 400, 151, 85, ...
    centers = torch.randn(8, 2000, generator=g, dtype=torch.float64)
    true = torch.arange(8).repeat_interleave(sizes)
    X = centers[true] + 2.0 * torch.randn(len(true), 2000, generator=g, dtype=torch.float64)
    labels = cluster_gradients(X, 8, clustering="average")
    assert adjusted_rand_score(true.numpy(), labels) == 1.0
    with pytest.raises(ValueError, match="ward"):
        cluster_gradients(X, 8, clustering="ward")
    with pytest.raises(ValueError, match="takes no affinity"):
        cluster_gradients(X, 8, affinity="rbf", clustering="average")
    assert method_name("logit_diff", clustering="average") == \
        "QDG variant (logit-difference gradients, average-linkage clustering of 1 - cos)"


def test_emergence_of_planted_curves():
    steps = np.unique(np.round(np.geomspace(1, 1e4, 120))).astype(int)
    steps = np.concatenate([[0], steps])
    onsets = {1: 100, 2: 300, 3: 900, 4: 2500}
    curves = pd.DataFrame({r: [1.0 / (1 + math.exp((math.log(max(s, 1)) - math.log(t)) * 8)) for s in steps]
                           for r, t in onsets.items()}, index=steps)
    curves[5] = 1.0  # never learned
    res = emergence(curves, threshold=0.1)
    assert res["n_learned"] == 4 and res["spearman_rho"] == pytest.approx(1.0)
    t = res["table"]
    for r, onset in onsets.items():  # loss 0.1 where 8 log(s / t) = log 9
        assert t.loc[r, "emergence_step"] == pytest.approx(onset * 9 ** (1 / 8), rel=0.02)
        # 90% -> 10% of the initial ~1 bit: from t 9^(-1/8) to t 9^(1/8); relative width 9^(1/4) - 1
        assert t.loc[r, "abruptness"] == pytest.approx(9 ** 0.25 - 1, rel=0.05)
    assert math.isnan(t.loc[5, "emergence_step"])
    assert crossing(np.array([0, 10, 100]), np.array([1.0, 0.5, 0.0]), 0.25) == pytest.approx(math.sqrt(1000))


def test_d_fit_starts_at_the_first_size_below_095_bits():
    from groklab.quanta.scaling import from_first_below

    pts = pd.DataFrame({"x": [1e3, 1e3, 2e3, 2e3, 4e3, 4e3, 8e3], "loss_bits": [1.0, 1.0, 0.99, 0.96, 0.9, 0.95, 0.7]})
    assert sorted(from_first_below(pts)["x"].unique()) == [4e3, 8e3]  # 4e3's mean, 0.925, is the first below
    assert from_first_below(pts.assign(loss_bits=1.0)).empty
