"""Known-answer tests for groklab.measures (tiny models, p = 11)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import groklab
from groklab import measures
from groklab.measures import MEASURES

BASE = ["task.p=11", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32", "train.seeds=[0,1]"]
TOY = ["model.kind=toy", "model.d_embed=4", "model.hidden=[16]"]


def build(*overrides):
    cfg = groklab.resolve("demo", overrides=[*BASE, *overrides])
    task = groklab.tasks.make_task(cfg.task)
    return groklab.models.build_model(cfg, task), task


def planted(p, d, freqs_amps, seed=0):
    """W (p, d) = sum_k amp_k (cos(w_k a) u_k + sin(w_k a) v_k) with orthonormal u_k, v_k."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    a = torch.arange(p, dtype=torch.float64)[:, None]
    W = torch.zeros(p, d, dtype=torch.float64)
    for i, (k, amp) in enumerate(freqs_amps):
        w = 2 * math.pi * k / p
        W += amp * (torch.cos(w * a) * Q[2 * i] + torch.sin(w * a) * Q[2 * i + 1])
    return W


# --------------------------------------------------------------------------- Fourier


def test_fourier_basis_orthonormal():
    for p in (7, 11, 12):
        B = measures.fourier_basis(p)
        assert torch.allclose(B @ B.T, torch.eye(p, dtype=B.dtype), atol=1e-12)


def test_planted_embedding_key_frequencies():
    model, task = build()
    W = planted(11, 16, [(3, 1.0), (5, 0.7)])
    with torch.no_grad():
        model.W_E[0, :11] = W.float()
        model.W_E[1, :11] = torch.randn(11, 16, generator=torch.Generator().manual_seed(3))
    assert measures.embedding_key_frequencies(model, task)[0] == [3, 5]
    out = measures.fourier(model, task)
    assert out["fourier_key_share"][0] == pytest.approx(1.0, abs=1e-6)
    assert out["fourier_n_key"][0] == 2
    assert out["fourier_key_share"][1] < 0.6  # random Gaussian: no structure
    assert out["fourier_ipr"][0] > out["fourier_ipr"][1]
    assert out["fourier_gini"][0] > out["fourier_gini"][1]
    # fixed key frequencies override the rule
    fixed = measures.fourier(model, task, key_freqs=[3])
    assert fixed["fourier_key_share"][0] == pytest.approx(1 / (1 + 0.7**2), abs=1e-6)


def test_random_embedding_key_share_low_larger_p():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(2, 31, 32, generator=g, dtype=torch.float64)
    sq = measures.frequency_sq_norms(W)
    keys = measures.key_frequencies(sq)
    share = torch.tensor([sq[e, keys[e]].sum() / sq[e, 1:].sum() for e in range(2)])
    assert (share < 0.3).all()


def test_gini_ipr_extremes():
    flat, spike = torch.ones(5, dtype=torch.float64), torch.tensor([0, 0, 3.0, 0, 0], dtype=torch.float64)
    assert measures.gini(flat) == pytest.approx(0.0)
    assert measures.gini(spike) == pytest.approx(4 / 5)
    assert measures.ipr(flat) == pytest.approx(1 / 5)
    assert measures.ipr(spike) == pytest.approx(1.0)


def test_neuron_frequency_fraction():
    p = 11
    x = torch.arange(p, dtype=torch.float64)
    a, b = x[:, None], x[None, :]
    w = 2 * math.pi * 3 / p
    n1 = torch.cos(w * a) + 0.5 * torch.sin(w * b) + torch.cos(w * a) * torch.sin(w * b) + 2.0
    n2 = torch.relu(torch.cos(2 * math.pi * 4 / p * (a + b)))  # mostly frequency 4 (+ harmonics)
    rnd = torch.randn(p, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    acts = torch.stack([n1, rnd, torch.zeros(p, p, dtype=torch.float64)], -1)[None]
    assert measures.neuron_frequency_fraction(acts).tolist() == [pytest.approx(1 / 3)]
    only = measures.neuron_frequency_fraction(n1[None, :, :, None])
    assert only.item() == 1.0
    assert measures.neuron_frequency_fraction(n2[None, :, :, None]).item() in (0.0, 1.0)


# --------------------------------------------------------------------------- restricted / excluded loss


def ideal_logits(p, keys, alpha, E=2):
    x = torch.arange(p, dtype=torch.float64)
    abc = x[:, None, None] + x[None, :, None] - x[None, None, :]
    L = sum(alpha * torch.cos(2 * math.pi * k / p * abc) for k in keys)
    return L.expand(E, p, p, p).clone()


def ce_on(L, task, idx):
    return F.cross_entropy(L[task.a[idx], task.b[idx]], task.c[idx]).item()


def test_restricted_excluded_ideal_table():
    _, task = build()
    p = 11
    L = ideal_logits(p, [2, 5], 3.0)
    out = measures.fourier_logit_measures(L, task, [2, 5])
    full = ce_on(L[0], task, task.train_idx)
    assert out["restricted_loss_train"][0].item() == pytest.approx(full, abs=1e-9)
    assert out["restricted_loss"][1].item() == pytest.approx(ce_on(L[0], task, torch.arange(p * p)), abs=1e-9)
    assert out["excluded_loss"][0].item() == pytest.approx(math.log(p), abs=1e-9)
    assert out["logit_approx_r2"][0].item() == pytest.approx(1.0, abs=1e-9)
    # keeping only k=2: the restricted logits are the k=2 term alone, the excluded the k=5 term
    part = measures.fourier_logit_measures(L, task, [2])
    assert part["restricted_loss_train"][0].item() == pytest.approx(ce_on(ideal_logits(p, [2], 3.0)[0], task, task.train_idx), abs=1e-9)
    assert part["restricted_loss"][0].item() == pytest.approx(ce_on(ideal_logits(p, [2], 3.0)[0], task, torch.arange(p * p)), abs=1e-9)
    assert part["excluded_loss"][0].item() == pytest.approx(ce_on(ideal_logits(p, [5], 3.0)[0], task, task.train_idx), abs=1e-9)
    assert part["logit_approx_r2"][0].item() == pytest.approx(0.5, abs=1e-9)
    # a constant per-(a,b) shift changes nothing
    shifted = L + torch.randn(2, p, p, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert measures.fourier_logit_measures(shifted, task, [2, 5])["logit_approx_r2"][0].item() == pytest.approx(1.0)


def _nanda_calculate_key_freqs(neuron_acts: torch.Tensor, p: int) -> list[int]:
    """Nanda et al.'s calculate_key_freqs (progress-measures-paper/transformers.py),
    transliterated: neuron_acts (p*p, d_mlp) over the (a, b) grid, a major."""
    fb = [torch.ones(p, dtype=torch.float64) / math.sqrt(p)]
    for i in range(1, p // 2 + 1):
        fb.append(torch.cos(2 * torch.pi * torch.arange(p) * i / p).double())
        fb.append(torch.sin(2 * torch.pi * torch.arange(p) * i / p).double())
        fb[-2] /= fb[-2].norm()
        fb[-1] /= fb[-1].norm()
    fourier_basis = torch.stack(fb)
    centred = neuron_acts - neuron_acts.mean(0, keepdim=True)
    mat = centred.reshape(p, p, -1)
    F2 = torch.einsum("xyz,fx,Fy->fFz", mat, fourier_basis, fourier_basis)
    neuron_freqs = []
    for ni in range(neuron_acts.shape[1]):
        best_frac, best_freq = -1e6, -1
        for freq in range(1, p // 2):
            idx = [0, 2 * freq - 1, 2 * freq]
            frac = F2[idx][:, idx][:, :, ni].pow(2).sum() / F2[:, :, ni].pow(2).sum().item()
            if frac > best_frac:
                best_freq, best_frac = freq, frac
        neuron_freqs.append(best_freq)
    return sorted(set(neuron_freqs))


def test_neuron_key_frequencies_equal_nanda_et_als_code():
    """Known answer: planted neurons (each a cos/sin of one frequency in a, b or a + b, plus
    noise) and pure noise; groklab's rule equals a transliteration of their loop."""
    from groklab.measures.fourier import neuron_key_frequencies_from_acts

    p, n = 13, 24
    g = torch.Generator().manual_seed(3)
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    cols = []
    for i, k in enumerate([2, 2, 5, 5, 5, 3] * 4):
        w = 2 * math.pi * k / p
        term = [torch.cos(w * (a + b)), torch.sin(w * a) + 0.3 * torch.cos(w * b), torch.cos(w * a) * torch.sin(w * b)][i % 3]
        cols.append(term + 0.05 * torch.randn(p, p, generator=g, dtype=torch.float64))
    planted = torch.stack(cols, -1)  # (p, p, n)
    noise = torch.randn(p, p, n, generator=g, dtype=torch.float64)
    got = neuron_key_frequencies_from_acts(torch.stack([planted, noise]))
    assert got[0] == _nanda_calculate_key_freqs(planted.reshape(p * p, n), p) == [2, 3, 5]
    assert got[1] == _nanda_calculate_key_freqs(noise.reshape(p * p, n), p)


def test_restricted_loss_on_model_runs_with_fixed_keys():
    model, task = build()
    out = measures.restricted_loss(model, task, key_freqs=[1, 2])
    assert set(out) >= {"restricted_loss", "excluded_loss", "logit_approx_r2"}
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in out.values())


# --------------------------------------------------------------------------- RQI


def test_rqi_linear_vs_random_embedding():
    model, task = build(*TOY, "task.op=add_int")
    v = torch.tensor([0.3, -1.0, 0.5, 2.0])
    with torch.no_grad():
        model.W_E[0] = torch.arange(11, dtype=torch.float32)[:, None] * v
        model.W_E[1] = torch.randn(11, 4, generator=torch.Generator().manual_seed(0))
    out = measures.rqi(model, task)
    assert out["rqi"][0].item() == 1.0
    assert out["rqi"][1].item() < 0.05
    assert out["rqi_pred_acc"][0] > out["rqi_pred_acc"][1]


def _liu_train_add_rqi_and_pred_acc(reprs: torch.Tensor, p: int, train_id, threshold_P=0.01):
    """Liu et al.'s own computation, transliterated from toy/train_add.py (grokking-squared):
    samples (i, j), i <= j, of non-modular a + b; RQI over their `parallelograms` list; the
    predicted test accuracy from P0, PR and calculate_Dbar."""
    D0_id = [(i, j) for i in range(p) for j in range(i, p)]
    all_num = len(D0_id)
    P0 = [{D0_id[i], D0_id[j]} for i in range(all_num) for j in range(i + 1, all_num)
          if sum(D0_id[i]) == sum(D0_id[j])]
    test_id = sorted(set(range(all_num)) - set(train_id))
    reprs_scale = (reprs - reprs.mean(0).unsqueeze(dim=0)) / reprs.std(0).unsqueeze(dim=0)
    parallelograms = torch.tensor([[i, n, j, m] for i in range(p) for j in range(i + 1, p) for m in range(j, p)
                                   for n in range(m + 1, p) if (i + n - j - m) == 0])
    dists = reprs_scale[parallelograms[:, :2]].sum(axis=1) - reprs_scale[parallelograms[:, 2:]].sum(axis=1)
    rqi = torch.sum((dists ** 2).mean(1) < threshold_P).item() / len(parallelograms)
    PR = []
    for pg in P0:
        (i, j), (m, n) = list(pg)
        if torch.mean((reprs_scale[i] + reprs_scale[j] - reprs_scale[m] - reprs_scale[n]) ** 2) < threshold_P:
            PR.append(pg)
    Dbar_id = list(train_id)
    for i1 in test_id:
        for j1 in train_id:
            if {D0_id[i1], D0_id[j1]} in PR:
                Dbar_id.append(i1)
                break
    return rqi, (len(Dbar_id) - len(train_id)) / len(test_id), D0_id


@pytest.mark.parametrize("kind", ["linear", "noisy", "random", "two_dim"])
def test_rqi_and_predicted_accuracy_equal_liu_et_als_code(kind):
    """Known answer: groklab's RQI and predicted accuracy equal the authors' own loops on
    the toy task (a + b, p = 10, 45 of the 55 samples trained), on four representations."""
    from groklab.config import AlgorithmicConfig
    from groklab.measures.parallelograms import rqi_from_embedding

    task = groklab.tasks.make_task(AlgorithmicConfig(op="add_int", p=10, fraction=45 / 55, dedupe_commutative=True,
                                                     split_seed=3))
    g = torch.Generator().manual_seed(7)
    k = torch.arange(10, dtype=torch.float64)[:, None]
    R = {"linear": 0.3 * k - 1.0,
         "noisy": k + 0.04 * torch.randn(10, 1, generator=g, dtype=torch.float64),
         "random": torch.rand(10, 1, generator=g, dtype=torch.float64) - 0.5,
         "two_dim": torch.cat([k, k.square() / 9], 1) + 0.02 * torch.randn(10, 2, generator=g, dtype=torch.float64)}[kind]
    D0_id = [(i, j) for i in range(10) for j in range(i, 10)]
    row_of = {(int(a), int(b)): r for r, (a, b) in enumerate(zip(task.a, task.b))}
    train_id = sorted(D0_id.index((min(int(task.a[r]), int(task.b[r])), max(int(task.a[r]), int(task.b[r]))))
                      for r in task.train_idx.tolist())
    assert len(train_id) == 45 and len(row_of) == 55
    want_rqi, want_pred, _ = _liu_train_add_rqi_and_pred_acc(R, 10, train_id)
    got = rqi_from_embedding(R[None], task)
    assert got["rqi"].item() == pytest.approx(want_rqi, abs=1e-12)
    assert got["rqi_pred_acc"].item() == pytest.approx(want_pred, abs=1e-12)
    if kind == "linear":
        assert want_rqi == 1.0 and got["rqi_train"].item() == 1.0


def test_rqi_modular_uses_answer_mod_p():
    model, task = build(*TOY)  # a + b mod 11: a linear embedding is not modular
    with torch.no_grad():
        model.W_E[:] = torch.arange(11, dtype=torch.float32)[:, None] * torch.tensor([1.0, 0, 0, 0])
    r = measures.rqi(model, task)["rqi"][0].item()
    assert 0.2 < r < 0.9  # exact only for the pairs whose plain sums agree


# --------------------------------------------------------------------------- description length


def test_model_bits_grow_with_nonzero_weights():
    g = torch.Generator().manual_seed(0)
    bits = []
    for n_nonzero in (0, 100, 1000, 4000):
        w = torch.zeros(4000)
        w[:n_nonzero] = torch.randn(n_nonzero, generator=g)
        bits.append(measures.model_bits_of([w], [1e-2]))
    assert bits == sorted(bits) and bits[0] < bits[-1] / 10
    # below half the quantisation step counts as zero
    assert measures.model_bits_of([torch.full((4000,), 1e-3)], [1e-2]) == bits[0]


def test_data_bits_by_hand():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]])
    targets = torch.tensor([0, 2])
    z = math.exp(2) + 1 + math.exp(-1)
    expected = -math.log2(math.exp(2) / z) + math.log2(3)
    assert measures.data_bits_from_logits(logits, targets).item() == pytest.approx(expected, rel=1e-12)


def test_description_length_is_a_two_part_code():
    """Known answers: weights already on a coarse grid cost the coarsest step and nothing in
    fit; the data bits are those of the dequantised model the model bits encode; a member
    with all-zero weights is shorter to state than a random one."""
    from groklab.measures.numerics import LADDER, LADDER_BITS, _quantized

    model, task = build(*TOY)
    with torch.no_grad():  # member 0: every weight a multiple of 1/2, so step 1/2 loses nothing
        for p in model.parameters():
            p[0] = torch.round(p[0] * 2) / 2
    out = measures.description_length(model, task, tolerance=1e-3)
    assert out["quant_step_log2"][0].item() == -1.0
    lg = model(task.tokens[task.train_idx]).double()
    exact0 = F.cross_entropy(lg[0], task.c[task.train_idx], reduction="sum").item() / math.log(2)
    assert out["data_bits"][0].item() == pytest.approx(exact0, rel=1e-12)  # nothing lost at step 1/2
    assert torch.equal(out["description_bits"], out["data_bits"] + out["model_bits"])
    base1 = F.cross_entropy(lg[1], task.c[task.train_idx]).item()
    assert out["data_bits"][1].item() / len(task.train_idx) * math.log(2) <= base1 + 1e-3 + 1e-9
    assert out["quant_step_log2"][1].item() < -1.0
    names = [n for n, _ in model.named_parameters()]
    assert LADDER_BITS == 5 and len(LADDER) == 24
    with torch.no_grad():
        for p in model.parameters():
            p[0] = 0
    zeroed = measures.description_length(model, task)
    assert zeroed["model_bits"][0] < zeroed["model_bits"][1]
    zeros = [torch.zeros_like(p[0]) for p in model.parameters()]  # the coarsest step, and only zeros to code
    assert zeroed["model_bits"][0].item() == measures.model_bits_of(zeros, [LADDER[0]] * len(names)) + LADDER_BITS * len(names)
    assert _quantized(torch.tensor([0.74, -0.26]), 0.5).tolist() == [0.5, -0.5]


# --------------------------------------------------------------------------- softmax collapse


def test_softmax_collapse():
    targets = torch.tensor([0, 1, 2])
    big = torch.full((1, 3, 5), -100.0)
    big[0, torch.arange(3), targets] = 100.0
    out = measures.softmax_collapse_from_logits(big, targets)
    assert out["softmax_collapse"].item() == 1.0 and out["zero_loss_fraction"].item() == 1.0
    small = torch.zeros(1, 3, 5)
    small[0, torch.arange(3), targets] = 3.0
    out = measures.softmax_collapse_from_logits(small, targets)
    assert out["softmax_collapse"].item() == 0.0 and out["zero_loss_fraction"].item() == 0.0
    mixed = torch.cat([big[:, :2], small[:, 2:]], 1)
    assert measures.softmax_collapse_from_logits(mixed, targets)["softmax_collapse"].item() == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- registry


REQUIRED = {"weight_norm", "fourier_key_share", "restricted_loss", "excluded_loss", "logit_approx_r2",
            "rqi", "data_bits", "model_bits", "description_bits", "softmax_collapse"}


def single_member(model, cfg_overrides, e):
    one, _ = build(*cfg_overrides, "train.seeds=[5]")
    with torch.no_grad():
        for (n, p), (_, q) in zip(one.named_parameters(), model.named_parameters()):
            p.copy_(q[e : e + 1])
    return one


@pytest.mark.parametrize("overrides", [(), TOY, (*TOY, "task.op=add_int")], ids=["transformer", "toy", "toy_int"])
def test_registry_every_measure_per_member(overrides):
    model, task = build(*overrides)
    res = measures.compute(None, model, task)
    assert all(v.shape == (2,) and v.dtype == torch.float64 for v in res.values())
    for name in measures.applicable(model, task):
        assert set(MEASURES[name].metrics) <= set(res)
    if "task.op=add_int" not in overrides:
        assert REQUIRED - ({"rqi"} if not overrides else set()) <= set(res)  # rqi: E_a + E_b models only
    assert res["weight_norm"][0] != res["weight_norm"][1]
    for e in range(2):
        one = single_member(model, overrides, e)
        r1 = measures.compute(None, one, task)
        assert set(r1) == set(res)
        for k in res:
            assert r1[k].shape == (1,)
            assert r1[k][0].item() == pytest.approx(res[k][e].item(), rel=1e-5, abs=1e-6), k


def test_compute_unknown_and_strict():
    model, task = build(*TOY, "task.op=add_int")
    with pytest.raises(KeyError):
        measures.compute(["nope"], model, task)
    assert "fourier_key_share" not in measures.compute(["fourier"], model, task)
    with pytest.raises(ValueError):
        measures.compute(["fourier"], model, task, strict=True)


# --------------------------------------------------------------------------- frequency ablation


def ce_acc(logits, task, idx):
    lg = logits.double()[idx]
    return F.cross_entropy(lg, task.c[idx]).item(), (lg.argmax(-1) == task.c[idx]).double().mean().item()


@pytest.mark.parametrize("overrides", [(), TOY], ids=["transformer", "toy"])
def test_frequency_ablation_single_planted_frequency(overrides):
    """Embedding = constant + frequency 3 only: removing the other frequencies changes
    nothing; removing 3 leaves identical symbol rows, so every row gets the same logits and
    the accuracy over the whole table is exactly 1/p (each answer occurs p times)."""
    model, task = build(*overrides)
    p, d = 11, model.W_E.shape[-1]
    const = 0.5 * torch.randn(d, generator=torch.Generator().manual_seed(9), dtype=torch.float64)  # kept
    with torch.no_grad():
        for e in range(2):
            model.W_E[e, :p] = (planted(p, d, [(3, 1.0 + e)], seed=e) + const).float()
        base = model(task.tokens)  # (E, N, C)
    assert measures.embedding_key_frequencies(model, task) == [[3], [3]]
    out = measures.frequency_ablation(model, task)
    allrows = torch.arange(p * p)
    for e in range(2):
        loss_tr, _ = ce_acc(base[e], task, task.train_idx)
        loss_all, acc_all = ce_acc(base[e], task, allrows)
        assert out["ablate_nonkey_loss"][e].item() == pytest.approx(loss_tr, rel=1e-6)
        assert out["ablate_nonkey_loss_all"][e].item() == pytest.approx(loss_all, rel=1e-6)
        assert out["ablate_nonkey_acc_all"][e].item() == acc_all
        assert out["ablate_key_acc_min_all"][e].item() == pytest.approx(1 / p, abs=1e-12)
        assert out["ablate_key_loss_max_all"][e].item() != pytest.approx(loss_all, rel=1e-3)
        assert out["ablate_key_loss_mean"][e].item() == out["ablate_key_loss_max"][e].item()  # one key
    assert set(MEASURES["frequency_ablation"].metrics) == set(out)


def fft_keep(W, keep, p):
    """Independent reference: complex DFT over the token axis, zero every bin whose
    frequency min(j, p - j) is not in keep (bin 0 always kept), inverse DFT."""
    Wh = torch.fft.fft(W.double(), dim=0)
    j = torch.arange(p)
    freq = torch.minimum(j, p - j)
    mask = (freq == 0) | torch.isin(freq, torch.tensor(sorted(keep), dtype=torch.long))
    return torch.fft.ifft(Wh * mask[:, None], dim=0).real


def test_frequency_ablation_matches_fft_and_per_key_runs():
    model, task = build()
    p = 11
    out = measures.frequency_ablation(model, task, key_freqs=[[1, 2, 4], [5]])
    for e, keep in enumerate(([1, 2, 4], [5])):
        ref = single_member(model, (), e)
        with torch.no_grad():
            ref.W_E[0, :p] = fft_keep(model.W_E[e, :p], keep, p).float()
        loss, acc = ce_acc(ref(task.tokens)[0], task, task.train_idx)
        assert out["ablate_nonkey_loss"][e].item() == pytest.approx(loss, rel=1e-5)
        assert out["ablate_nonkey_acc"][e].item() == pytest.approx(acc, abs=1e-12)
    # each key removed in turn, member 0 has three keys, member 1 one: the worst/mean over the
    # slots equal separate one-key runs
    single = {k: measures.frequency_ablation(model, task, key_freqs=[k])["ablate_key_loss_max"] for k in (1, 2, 4, 5)}
    l0 = [single[k][0].item() for k in (1, 2, 4)]
    assert out["ablate_key_loss_max"][0].item() == pytest.approx(max(l0), rel=1e-12)
    assert out["ablate_key_loss_mean"][0].item() == pytest.approx(sum(l0) / 3, rel=1e-12)
    assert out["ablate_key_loss_max"][1].item() == pytest.approx(single[5][1].item(), rel=1e-12)
    # every frequency a key: nothing is removed, the loss is the model's own
    nothing = measures.frequency_ablation(model, task, key_freqs=[1, 2, 3, 4, 5])
    with torch.no_grad():
        own = [ce_acc(model(task.tokens)[e], task, task.train_idx)[0] for e in range(2)]
    assert nothing["ablate_nonkey_loss"].tolist() == pytest.approx(own, rel=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        measures.frequency_ablation(model, task, key_freqs=[6])


def test_ablate_frequencies_all_removed_leaves_the_mean():
    W = torch.randn(2, 11, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = list(range(1, 11))
    out = measures.ablate_frequencies(W, [rows, []])
    assert torch.allclose(out[0], W[0].mean(0, keepdim=True).expand(11, 5), atol=1e-12)
    assert torch.equal(out[1], W[1])


@pytest.mark.parametrize("p", [7, 10, 113])
def test_spectrum_by_fft_equals_the_fourier_basis(p):
    """groklab.spectrum (numpy's real FFT, for the torch-free report) against
    groklab.measures.fourier (Nanda et al.'s basis, for the measures): the same norms per
    frequency, the same cos/sin coefficients, the same key frequencies."""
    from groklab import spectrum
    from groklab.measures.fourier import fourier_basis, frequency_sq_norms

    W = torch.randn(3, p, 5, generator=torch.Generator().manual_seed(p), dtype=torch.float64)
    W[0] += 4 * torch.cos(2 * math.pi * 2 * torch.arange(p, dtype=torch.float64) / p)[:, None]  # a key frequency
    want = frequency_sq_norms(W).numpy()
    got = spectrum.frequency_sq_norms(W.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    coef = (fourier_basis(p) @ W[0]).numpy()
    for k in range(1, (p - 1) // 2 + 1):
        c, s = spectrum.cos_sin_directions(W[0].numpy(), k)
        np.testing.assert_allclose(np.stack([c, s]), coef[2 * k - 1: 2 * k + 1], rtol=1e-10, atol=1e-12)
    assert spectrum.key_frequencies(got) == spectrum.key_frequencies(torch.from_numpy(want))
    assert spectrum.key_frequencies(got)[0][0] == 2
