"""Known-answer tests for groklab.theory (the effective theory of Liu et al. 2022), p <= 10."""

import math

import numpy as np
import pytest
import torch

from groklab import theory as T
from groklab.config import ConfigError, AlgorithmicConfig
from groklab.measures.parallelograms import rqi_from_embedding
from groklab.tasks import make_task


def toy_task(fraction, split_seed=0, op="add_int", p=10, dedupe=True):
    return make_task(AlgorithmicConfig(op=op, p=p, fraction=fraction, split_seed=split_seed,
                                dedupe_commutative=dedupe))


# --------------------------------------------------------------------------- parallelograms


def test_parallelograms_hand_made():
    # rows (0,3), (1,2) answer 3; (0,1) answer 1: one parallelogram, both orders
    q = T.parallelograms(np.array([0, 1, 0]), np.array([3, 2, 1]), np.array([3, 3, 1]))
    assert sorted(map(tuple, q.tolist())) == [(0, 3, 1, 2), (1, 2, 0, 3)]
    # the swapped row (3, 0) is trivial against (0, 3), but not against (1, 2)
    q = T.parallelograms(torch.tensor([0, 3, 1]), torch.tensor([3, 0, 2]), torch.tensor([3, 3, 3]))
    assert sorted(map(tuple, q.tolist())) == [(0, 3, 1, 2), (1, 2, 0, 3), (1, 2, 3, 0), (3, 0, 1, 2)]
    assert T.parallelograms(np.array([0]), np.array([1]), np.array([1])).shape == (0, 4)


def test_parallelograms_match_rqi_reading():
    """A linear embedding with symbol k moved breaks exactly the quadruples whose v_q has a
    nonzero k coefficient; the package's RQI over the training samples must see the same P0(D)."""
    task = toy_task(0.6)
    q = T.parallelograms_of_task(task)
    assert len(q) > 0 and np.all(q[:, 0] + q[:, 1] == q[:, 2] + q[:, 3])
    k = 4
    W = torch.arange(10, dtype=torch.float64)[:, None].clone()
    W[k] += 0.3
    coef = (q[:, 0] == k).astype(int) + (q[:, 1] == k) - (q[:, 2] == k) - (q[:, 3] == k)
    rqi = rqi_from_embedding(W[None], task, threshold=1e-12)["rqi_train"].item()
    assert rqi == pytest.approx(np.mean(coef == 0))
    assert rqi < 1.0


def test_parallelograms_modular_add_wrap_around():
    q = T.parallelograms_of_task(toy_task(0.9, op="add"))
    s = q[:, 0] + q[:, 1] - q[:, 2] - q[:, 3]
    assert np.all(s % 10 == 0) and np.any(s != 0)


# --------------------------------------------------------------------------- quadratic form


QUADS3 = np.array([[0, 3, 1, 2], [1, 3, 2, 2], [0, 2, 1, 1]])
# v = (1,-1,-1,1), (0,1,-2,1), (1,-2,1,0); A = sum v v^T / 3
A3 = np.array([[2, -3, 0, 1], [-3, 6, -3, 0], [0, -3, 6, -3], [1, 0, -3, 2]]) / 3


def test_quadratic_form_hand_computed():
    A = T.quadratic_form(4, QUADS3)
    np.testing.assert_allclose(A, A3, atol=1e-15)
    E = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    l0 = np.trace(E.numpy().T @ A @ E.numpy())  # sum over dims of e^T A e
    assert T.effective_loss(E, QUADS3).item() == pytest.approx(l0 / E.square().sum().item())


def test_hessian_eigenvalues_hand_computed():
    lam = T.hessian_eigenvalues(4, QUADS3)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(2 * A3), atol=1e-12)
    assert lam[0] == lam[1] == 0.0 and lam[2] > 0  # 3 independent v's span the 2-D complement
    assert T.grokking_rate(4, QUADS3) == pytest.approx(lam[2])


@pytest.mark.parametrize("fraction,seed", [(0.3, 0), (0.6, 1), (0.9, 2)])
def test_null_space_constant_and_linear(fraction, seed):
    q = T.parallelograms_of_task(toy_task(fraction, seed))
    A = T.quadratic_form(10, q)
    np.testing.assert_allclose(A @ np.ones(10), 0, atol=1e-12)
    np.testing.assert_allclose(A @ np.arange(10.0), 0, atol=1e-12)
    lam = T.hessian_eigenvalues(10, q)
    assert lam[0] == lam[1] == 0.0 and np.all(np.diff(lam) >= 0)


def test_lambda3_full_table_positive_tiny_fraction_zero():
    assert T.grokking_rate(10, T.parallelograms_of_task(toy_task(0.99))) > 0.5
    assert T.grokking_rate(10, T.parallelograms_of_task(toy_task(0.05))) == 0.0
    assert T.grokking_rate(10, np.zeros((0, 4), dtype=int)) == 0.0


def test_modular_add_linear_not_exact():
    lam = T.hessian_eigenvalues(10, T.parallelograms_of_task(toy_task(0.9, op="add")))
    assert lam[0] == 0.0 and lam[1] > 0.1  # only the constant embedding is exact mod p


def test_lambda3_median_non_decreasing_in_fraction():
    sweep = T.lambda3_vs_fraction(10, [0.2, 0.4, 0.6, 0.8], n_splits=20)
    assert sweep["lambda3"].shape == (4, 20)
    assert np.all(np.diff(sweep["median"]) >= 0) and sweep["median"][-1] > 0
    assert np.all(np.diff(sweep["share_positive"]) >= 0)
    assert sweep["share_positive"][0] == 0.0 and sweep["share_positive"][-1] == 1.0
    np.testing.assert_array_equal(sweep["n_train"], [11, 22, 33, 44])  # int(55 f), as make_task


def test_critical_fraction_interpolation():
    sweep = {"fraction": np.array([0.2, 0.4, 0.6]), "share_positive": np.array([0.0, 0.25, 0.75]),
             "actual_fraction": np.array([0.2, 0.4, 0.6])}
    assert T.critical_fraction_of(sweep) == pytest.approx(0.5)
    assert math.isnan(T.critical_fraction_of({**sweep, "share_positive": np.array([0.0, 0.1, 0.2])}))
    crit = T.critical_fraction(10, [0.3, 0.35, 0.4, 0.45, 0.5], n_splits=10)
    assert 0.3 < crit < 0.5


def _runs(shares: dict, splits: int = 4, seeds: int = 2):
    """A synthetic runs table: at fraction f, the first round(share * splits) splits generalize
    (every init seed of a split alike)."""
    import pandas as pd

    rows = [{"fraction": f, "split_seed": s, "seed": k, "generalized": s < round(sh * splits)}
            for f, sh in shares.items() for s in range(splits) for k in range(seeds)]
    return pd.DataFrame(rows)


def test_measured_critical_fraction_half_plateau():
    from groklab.theory.compare import measured_critical_fraction

    crit, share = measured_critical_fraction(_runs({0.2: 0.0, 0.4: 0.25, 0.6: 0.75, 0.8: 0.75}))
    assert crit == pytest.approx(0.4 + (0.375 - 0.25) / 0.5 * 0.2)  # half of the 0.75 plateau
    assert list(share) == [0.0, 0.25, 0.75, 0.75]


def test_bootstrap_interval_contains_point_and_shrinks_with_splits():
    from groklab.theory.compare import bootstrap_critical_fractions, measured_critical_fraction

    fr = np.array([0.2, 0.4, 0.6, 0.8])
    lam = np.tile(np.array([[-1.0], [-1.0], [1.0], [1.0]]), (1, 8))  # theory: crossing between 0.4 and 0.6
    lam[1, :4] = 1.0  # half the splits positive at 0.4 -> predicted exactly 0.4
    widths = []
    for splits in (4, 40):
        tab = _runs({0.2: 0.0, 0.4: 0.25, 0.6: 0.75, 0.8: 1.0}, splits=splits)
        point = measured_critical_fraction(tab)[0]
        b = bootstrap_critical_fractions(tab, lam, fr, n_boot=300, seed=1)
        assert b["measured"][0] <= point <= b["measured"][1]
        assert b["predicted"][0] <= 0.4 + 1e-9 and b["samples"]["difference"].shape == (300,)
        widths.append(b["measured"][1] - b["measured"][0])
    assert widths[1] < widths[0]


# --------------------------------------------------------------------------- loss and flow


def test_effective_loss_scale_invariant_and_gradient():
    q = T.parallelograms_of_task(toy_task(0.6))
    E = torch.randn(10, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    l = T.effective_loss(E, q)
    assert T.effective_loss(3.7 * E, q).item() == pytest.approx(l.item(), rel=1e-12)
    assert T.effective_loss(-0.2 * E, q).item() == pytest.approx(l.item(), rel=1e-12)
    assert T.effective_loss(torch.arange(10.0, dtype=torch.float64), q).item() < 1e-20
    E.requires_grad_(True)
    (g,) = torch.autograd.grad(T.effective_loss(E, q), E)
    h = 1e-6
    for idx in [(0, 0), (4, 1), (9, 0)]:
        Ep, Em = E.detach().clone(), E.detach().clone()
        Ep[idx] += h
        Em[idx] -= h
        fd = (T.effective_loss(Ep, q) - T.effective_loss(Em, q)).item() / (2 * h)
        assert g[idx].item() == pytest.approx(fd, rel=1e-6, abs=1e-10)
    # the flow's closed-form gradient is the same: one Euler step
    flow = T.gradient_flow(E.detach(), q, lr=1e-3, steps=1, record_every=1)
    np.testing.assert_allclose((flow["E"][0] - flow["E"][1]) / 1e-3, g.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_gradient_flow_reaches_linear_representation(d):
    task = toy_task(0.6)
    q = T.parallelograms_of_task(task)
    assert T.grokking_rate(10, q) > 0
    E0 = torch.randn(10, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    flow = T.gradient_flow(E0, q, lr=0.5, steps=1500, record_every=100)
    assert flow["E"].shape == (16, 10, d) and flow["steps"][-1] == 1500
    rqi0, rqi1 = (rqi_from_embedding(torch.from_numpy(flow["E"][i])[None], task)["rqi"].item()
                  for i in (0, -1))
    assert rqi0 < 0.5 and rqi1 == 1.0
    assert flow["linearity"][-1] > 0.9999 and flow["loss"][-1] < 1e-10 < flow["loss"][0]


def test_gradient_flow_late_decay_rate_is_lambda3():
    """Late in the flow l_eff ~ exp(-2 lam3 t / Z0): the grokking rate is lam3."""
    q = T.parallelograms_of_task(toy_task(0.6))
    lam3 = T.grokking_rate(10, q)
    E0 = torch.randn(10, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flow = T.gradient_flow(E0, q, lr=0.05, steps=800, record_every=100)
    Z0 = float((flow["E"][-1] ** 2).sum())
    rate = -np.diff(np.log(flow["loss"][-2:]))[0] / np.diff(flow["time"][-2:])[0]
    assert rate == pytest.approx(2 * lam3 / Z0, rel=0.03)


def test_gradient_flow_no_linear_pull_when_lambda3_zero():
    q = T.parallelograms_of_task(toy_task(0.2))
    assert T.grokking_rate(10, q) == 0.0
    E0 = torch.randn(10, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flow = T.gradient_flow(E0, q, lr=0.5, steps=1500, record_every=500)
    assert flow["loss"][-1] < 1e-10  # the training parallelograms are all kept ...
    assert flow["linearity"][-1] < 0.9  # ... by a representation that is not linear


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs,key,value", [
    ({"fractions": [0.5, 1.2]}, "fractions", 1.2),
    ({"fractions": [0.0, 0.5]}, "fractions", 0.0),
    ({"fractions": [0.6, 0.4]}, "fractions", [0.6, 0.4]),
    ({"n_splits": 0}, "n_splits", 0),
    ({"p": 2}, "p", 2),
    ({"op": "mul"}, "op", "mul"),
])
def test_bad_sweep_input_raises(kwargs, key, value):
    args = {"p": 10, "fractions": [0.3, 0.5], "n_splits": 2, **kwargs}
    for fn in (T.lambda3_vs_fraction, T.critical_fraction):
        with pytest.raises(ConfigError) as err:
            fn(**args)
        assert err.value.key == key and err.value.value == value and repr(value) in str(err.value)


def test_bad_quads_and_embedding_raise():
    with pytest.raises(ConfigError, match="quads=9"):
        T.quadratic_form(4, np.array([[0, 9, 1, 2]]))
    with pytest.raises(ConfigError, match=r"quads=\(2, 3\)"):
        T.quadratic_form(4, np.zeros((2, 3), dtype=int))
    with pytest.raises(ConfigError, match=r"E0=\(10, 3\)"):
        T.gradient_flow(torch.ones(10, 3), QUADS3)
    with pytest.raises(ConfigError, match="lr=-1"):
        T.gradient_flow(torch.ones(10, 1), QUADS3, lr=-1)
