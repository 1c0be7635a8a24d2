"""Fourier progress measures for modular arithmetic (Nanda et al. 2023, "Progress measures
for grokking via mechanistic interpretability", ICLR 2023, Sections 4-5).

Real Fourier basis of Nanda et al. (orthonormal, p x p): row 0 the constant 1/sqrt(p); then
for k = 1..(p-1)/2 the pair cos(w_k x) sqrt(2/p), sin(w_k x) sqrt(2/p) with w_k = 2 pi k / p
(for even p a last row cos(pi x)/sqrt(p), frequency p/2). Row r has frequency
``basis_freqs(p)[r]`` (0 for the constant, (r+1)//2 otherwise).

Key-frequency rule (``key_frequencies``): over the non-constant frequencies k = 1..K
(K = p // 2), take the squared norm n_k^2 of the Fourier coefficients of frequency k and its
share s_k = n_k^2 / sum_{k'>=1} n_k'^2. Key frequencies are those with
s_k >= ``rel_threshold`` / K (default 1.5 / K: 1.5 times the share of a flat spectrum),
ordered by norm and capped at ``max_key`` (default 8). If none passes, the single largest
frequency is kept, so there is always at least one key frequency.
"""

from __future__ import annotations

import math

import torch

from groklab.measures._common import embedding, embedding_name, grid_logits, grid_tokens, unembedding
from groklab.spectrum import MAX_KEY, REL_THRESHOLD, key_frequencies

NEURON_THRESHOLD = 0.85


# --------------------------------------------------------------------------- basis


def fourier_basis(p: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """(p, p) orthonormal real Fourier basis, one basis function per row (see module doc)."""
    x = torch.arange(p, dtype=dtype, device=device)
    rows = [torch.full((p,), 1 / math.sqrt(p), dtype=dtype, device=device)]
    for k in range(1, (p - 1) // 2 + 1):
        w = 2 * math.pi * k / p
        rows += [torch.cos(w * x) * math.sqrt(2 / p), torch.sin(w * x) * math.sqrt(2 / p)]
    if p % 2 == 0:
        rows.append(torch.cos(math.pi * x) / math.sqrt(p))
    return torch.stack(rows)


def basis_freqs(p: int) -> torch.Tensor:
    """Frequency of each row of :func:`fourier_basis`: (p,) ints."""
    r = torch.arange(p)
    return torch.where(r == 0, 0, (r + 1) // 2)


def frequency_sq_norms(W: torch.Tensor) -> torch.Tensor:
    """W (E, p, d) over the token axis p -> squared norm per frequency (E, p // 2 + 1),
    column 0 the constant."""
    E, p, _ = W.shape
    B = fourier_basis(p, W.dtype, W.device)
    coef_sq = torch.einsum("rx,exd->erd", B, W).square().sum(-1)  # (E, p)
    out = torch.zeros(E, p // 2 + 1, dtype=W.dtype, device=W.device)
    return out.index_add_(1, basis_freqs(p).to(W.device), coef_sq)


def gini(x: torch.Tensor) -> torch.Tensor:
    """Gini coefficient along the last axis of non-negative x: sum_i (2i - n - 1) x_(i) /
    (n sum x), x sorted ascending, i = 1..n. 0 for a flat vector, (n-1)/n for one spike."""
    xs = x.sort(-1).values
    n = x.shape[-1]
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    return ((2 * i - n - 1) * xs).sum(-1) / (n * xs.sum(-1)).clamp_min(1e-300)


def ipr(x: torch.Tensor) -> torch.Tensor:
    """Inverse participation ratio of the vector x along the last axis:
    sum x^4 / (sum x^2)^2, in [1/n, 1] (1 for one spike)."""
    return x.pow(4).sum(-1) / x.square().sum(-1).square().clamp_min(1e-300)


def _spectrum_stats(W: torch.Tensor, prefix: str, rel_threshold: float, max_key: int,
                    keys: list[list[int]] | None = None):
    sq = frequency_sq_norms(W)
    keys = key_frequencies(sq.cpu(), rel_threshold, max_key) if keys is None else keys
    nc = sq[:, 1:]
    mask = torch.zeros_like(nc, dtype=torch.bool)
    for e, ks in enumerate(keys):
        mask[e, [k - 1 for k in ks]] = True
    share = (nc * mask).sum(1) / nc.sum(1).clamp_min(1e-300)
    norms = nc.sqrt()
    return {
        f"{prefix}key_share": share,
        f"{prefix}n_key": mask.sum(1).to(W.dtype),
        f"{prefix}gini": gini(norms),
        f"{prefix}ipr": ipr(norms),
    }, keys


def _resolve_keys(key_freqs, E: int) -> list[list[int]] | None:
    if key_freqs is None:
        return None
    key_freqs = list(key_freqs)
    if key_freqs and isinstance(key_freqs[0], (list, tuple)):
        assert len(key_freqs) == E, "key_freqs: one list per member"
        return [list(map(int, k)) for k in key_freqs]
    return [list(map(int, key_freqs))] * E


# --------------------------------------------------------------------------- measures


@torch.no_grad()
def embedding_key_frequencies(model, task, rel_threshold: float = REL_THRESHOLD,
                              max_key: int = MAX_KEY) -> list[list[int]]:
    """Each member's key frequencies of its embedding ``W_E[:p]`` (Nanda et al. 2023)."""
    return key_frequencies(frequency_sq_norms(embedding(model, task)).cpu(), rel_threshold, max_key)


@torch.no_grad()
def fourier(model, task, rel_threshold: float = REL_THRESHOLD, max_key: int = MAX_KEY,
            key_freqs=None) -> dict[str, torch.Tensor]:
    """Fourier sparsity of the embedding and unembedding (Nanda et al. 2023, Sec. 4-5).

    Embedding ``W_E[:p]`` (E, p, d): coefficients over the token axis in the real Fourier
    basis, per-frequency norm n_k (k = 1..p//2, the constant excluded).
    ``fourier_key_share`` = sum_{k key} n_k^2 / sum_{k>=1} n_k^2; ``fourier_n_key`` the number
    of key frequencies; ``fourier_gini`` the Gini coefficient of (n_k); ``fourier_ipr`` =
    sum n_k^4 / (sum n_k^2)^2. The same with prefix ``fourier_unembed_`` for the unembedding
    over the output-class axis (its own key frequencies). ``key_freqs`` (a list, or one list
    per member) fixes the embedding's key frequencies instead of the automatic rule.
    """
    W = embedding(model, task)
    out, _ = _spectrum_stats(W, "fourier_", rel_threshold, max_key, _resolve_keys(key_freqs, W.shape[0]))
    U = unembedding(model)
    if U is not None and U.shape[1] == task.cfg.p:
        out.update(_spectrum_stats(U, "fourier_unembed_", rel_threshold, max_key)[0])
    return out


def _hook_post(cache: dict) -> torch.Tensor:
    names = sorted(k for k in cache if k.endswith("hook_post"))
    if not names:
        raise ValueError("the model records no 'hook_post' activations")
    # the last MLP layer: blocks.{L-1}.mlp.hook_post (transformer) or dec.{n-2}.hook_post
    name = max(names, key=lambda k: int(k.split(".")[1]))
    acts = cache[name]
    return acts[:, :, -1] if acts.dim() == 4 else acts  # (E, N, n_neurons)


@torch.no_grad()
def neuron_frequency_fraction(acts: torch.Tensor, threshold: float = NEURON_THRESHOLD) -> torch.Tensor:
    """acts (E, p, p, n) of n neurons over the (a, b) grid -> (E,) share of neurons whose
    variance over the grid is more than ``threshold`` explained by one frequency.

    2-D Fourier transform C = B X B^T (B the real basis). The terms of frequency k are the
    coefficients (i, j) with freq(i), freq(j) in {0, k}, not both 0 (cos/sin w_k a, cos/sin
    w_k b and their products); the variance is the sum of all squared coefficients but
    (0, 0). Dead (constant) neurons count as not dominated.
    """
    E, p, _, n = acts.shape
    B = fourier_basis(p, torch.float64, acts.device)
    C = torch.einsum("ia,eabn,jb->eijn", B, acts.double(), B).square()  # (E, p, p, n)
    C[:, 0, 0] = 0
    total = C.sum((1, 2))  # (E, n)
    f = basis_freqs(p).to(acts.device)
    best = torch.zeros_like(total)
    for k in range(1, p // 2 + 1):
        sel = (f == 0) | (f == k)
        best = torch.maximum(best, C[:, sel][:, :, sel].sum((1, 2)))
    frac = best / total.clamp_min(1e-300)
    dominated = (frac > threshold) & (total > 1e-20 * total.amax(1, keepdim=True).clamp_min(1e-300))
    return dominated.double().mean(1)


@torch.no_grad()
def fourier_neurons(model, task, threshold: float = NEURON_THRESHOLD) -> dict[str, torch.Tensor]:
    """``fourier_neuron_frac``: share of the last MLP layer's neurons (at the last position)
    with more than 85% of their variance over the full (a, b) grid in the terms of a single
    frequency (Nanda et al. 2023, Sec. 4.2 / Fig. 4); see :func:`neuron_frequency_fraction`."""
    p = task.cfg.p
    cache: dict = {}
    model(grid_tokens(task, p), cache=cache, last_only=True)
    acts = _hook_post(cache)
    return {"fourier_neuron_frac": neuron_frequency_fraction(acts.reshape(acts.shape[0], p, p, -1), threshold)}


def default_key_frequencies(model, task, rel_threshold: float = REL_THRESHOLD,
                            max_key: int = MAX_KEY) -> list[list[int]]:
    """Nanda et al.'s neuron rule where the model records MLP neurons, else the embedding
    rule; a member whose neurons give no frequency falls back on the embedding rule."""
    emb = embedding_key_frequencies(model, task, rel_threshold, max_key)
    try:
        neu = neuron_key_frequencies(model, task)
    except ValueError:  # no 'hook_post' activations
        return emb
    return [n or e for n, e in zip(neu, emb)]


@torch.no_grad()
def neuron_key_frequencies(model, task) -> list[list[int]]:
    """Each member's key frequencies as Nanda et al.'s code picks them (``calculate_key_freqs``
    in progress-measures-paper/transformers.py): over the full (a, b) grid, centre each
    neuron of the last MLP layer (last position), take its 2-D Fourier transform, and give it
    the frequency k whose terms (the 3 x 3 block of the constant, cos k and sin k on each
    axis) hold the largest share of its squared coefficients; the key frequencies are the
    distinct frequencies so chosen, sorted. As in their loop, k runs over 1..p//2 - 1 (their
    ``range(1, p//2)`` leaves out p//2), and the first maximum wins. A neuron constant over
    the grid (0/0 in their code, which then records frequency -1) is left out."""
    p = task.cfg.p
    cache: dict = {}
    model(grid_tokens(task, p), cache=cache, last_only=True)
    acts = _hook_post(cache)
    return neuron_key_frequencies_from_acts(acts.reshape(acts.shape[0], p, p, -1))


@torch.no_grad()
def neuron_key_frequencies_from_acts(acts: torch.Tensor) -> list[list[int]]:
    """acts (E, p, p, n) of n neurons over the (a, b) grid -> each member's key frequencies by
    Nanda et al.'s rule (:func:`neuron_key_frequencies`)."""
    E, p = acts.shape[0], acts.shape[1]
    acts = acts.double()
    acts = acts - acts.mean((1, 2), keepdim=True)
    B = fourier_basis(p, torch.float64, acts.device)
    C = torch.einsum("ia,eabn,jb->eijn", B, acts, B).square()  # (E, p, p, n)
    total = C.sum((1, 2))  # (E, n)
    f = basis_freqs(p).to(acts.device)
    shares = []
    for k in range(1, p // 2):
        sel = (f == 0) | (f == k)
        shares.append(C[:, sel][:, :, sel].sum((1, 2)))
    best = torch.stack(shares, -1).argmax(-1) + 1  # (E, n), first maximum
    live = total > 0
    return [sorted(set(best[e][live[e]].tolist())) for e in range(E)]


# --------------------------------------------------------------------------- restricted / excluded loss


def _ce(logits: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of grid logits (p, p, C) at rows (a, b) with targets c."""
    return torch.nn.functional.cross_entropy(logits[a, b], c)


@torch.no_grad()
def fourier_logit_measures(logits: torch.Tensor, task, key_freqs) -> dict[str, torch.Tensor]:
    """Restricted / excluded loss and ``logit_approx_r2`` from grid logits (E, p, p, C=p).

    For each member, output c and key frequency k (w_k = 2 pi k / p), the logits L[:, :, c]
    over the full grid are projected onto span{cos(w_k(a+b)), sin(w_k(a+b))} (the same span
    as cos/sin(w_k(a+b-c)) for fixed c; these directions are orthogonal over the grid,
    squared norm p^2/2): proj_k = sum over the two directions of <L, u> u / (p^2/2).
    restricted logits = mean_{a,b} L[:, :, c] + sum_k proj_k; excluded logits = L - sum_k proj_k
    (their ``calculate_trig_loss`` with its bias correction, and ``calculate_excluded_loss``
    with every key frequency removed at once, as their analysis notebook does).
    As in their code, ``restricted_loss`` is the mean CE over **every** row of the table
    (all p^2 inputs) and ``excluded_loss`` over the **training** rows;
    ``restricted_loss_train`` and ``excluded_loss_all`` are the other two. ``logit_approx_r2``: with Lc = L minus its mean over c, fit
    Lc ~ sum_k alpha_k cos(w_k(a+b-c)) by least squares (the regressors are orthogonal, squared
    norm p^3/2); R^2 = 1 - |Lc - fit|^2 / |Lc|^2.
    """
    E, p, _, C = logits.shape
    L = logits.double()
    keys = _resolve_keys(key_freqs, E)
    dev = L.device
    x = torch.arange(p, dtype=torch.float64, device=dev)
    apb = x[:, None] + x[None, :]  # (p, p)
    abc = apb[:, :, None] - torch.arange(C, dtype=torch.float64, device=dev)  # (p, p, C)
    tr, al = task.train_idx, torch.arange(len(task.a), device=task.a.device)
    out = {n: torch.zeros(E, dtype=torch.float64) for n in
           ("restricted_loss", "restricted_loss_train", "excluded_loss", "excluded_loss_all", "logit_approx_r2")}
    for e in range(E):
        Le = L[e]
        proj = torch.zeros_like(Le)
        Lc = Le - Le.mean(-1, keepdim=True)
        fit = torch.zeros_like(Le)
        for k in keys[e]:
            w = 2 * math.pi * k / p
            for u in (torch.cos(w * apb), torch.sin(w * apb)):
                coef = torch.einsum("abc,ab->c", Le, u) / (p * p / 2)
                proj += u[:, :, None] * coef
            v = torch.cos(w * abc)
            fit += (Lc * v).sum() / (p**3 / 2) * v
        restricted = Le.mean((0, 1), keepdim=True) + proj
        excluded = Le - proj
        out["restricted_loss"][e] = _ce(restricted, task.a[al], task.b[al], task.c[al])
        out["restricted_loss_train"][e] = _ce(restricted, task.a[tr], task.b[tr], task.c[tr])
        out["excluded_loss"][e] = _ce(excluded, task.a[tr], task.b[tr], task.c[tr])
        out["excluded_loss_all"][e] = _ce(excluded, task.a[al], task.b[al], task.c[al])
        out["logit_approx_r2"][e] = 1 - (Lc - fit).square().sum() / Lc.square().sum().clamp_min(1e-300)
    return out


@torch.no_grad()
def restricted_loss(model, task, key_freqs=None, rel_threshold: float = REL_THRESHOLD,
                    max_key: int = MAX_KEY) -> dict[str, torch.Tensor]:
    """Restricted and excluded loss, and ``logit_approx_r2`` (Nanda et al. 2023, Sec. 5.1),
    for a+b mod p: logits at the last position on the full p x p grid, then
    :func:`fourier_logit_measures`. Key frequencies: ``key_freqs`` (Nanda et al. fix those of
    the final checkpoint for every step: ``groklab analyze`` passes them so by default), else
    this checkpoint's own, by Nanda et al.'s neuron rule (:func:`neuron_key_frequencies`)
    where the model has MLP neurons, by the embedding rule of this module otherwise."""
    L = grid_logits(model, task)
    keys = _resolve_keys(key_freqs, L.shape[0])
    if keys is None:
        keys = default_key_frequencies(model, task, rel_threshold, max_key)
    return fourier_logit_measures(L, task, keys)


# --------------------------------------------------------------------------- frequency ablation


def _freq_rows(p: int, freqs) -> list[int]:
    """Rows of :func:`fourier_basis` (p) holding the frequencies ``freqs`` (each in 1..p//2):
    the cos and sin rows 2k-1, 2k (one row, p-1, for k = p/2 when p is even)."""
    rows: list[int] = []
    for k in freqs:
        if not 1 <= int(k) <= p // 2:
            raise ValueError(f"key frequency {k!r} out of range: choose from 1..{p // 2} (p = {p})")
        rows += [r for r in (2 * int(k) - 1, 2 * int(k)) if r < p]
    return rows


def ablate_frequencies(W: torch.Tensor, remove: list[list[int]]) -> torch.Tensor:
    """W (E, p, d) over the token axis p; remove[e] the basis rows (see :func:`_freq_rows`)
    to zero for member e -> W minus its projection on those rows, (E, p, d), float64.

    With B the orthonormal basis, W = B^T (B W); zeroing rows R of B W gives
    W - B_R^T (B_R W), written as a subtraction: removing components that W does not have
    leaves W unchanged up to the float64 rounding of a near-zero term."""
    E, p, _ = W.shape
    B = fourier_basis(p, torch.float64, W.device)
    Wd = W.double()
    out = Wd.clone()
    for e, rows in enumerate(remove):
        if rows:
            Br = B[rows]  # (r, p)
            out[e] -= Br.T @ (Br @ Wd[e])  # (p, d)
    return out


def _loss_acc(logits: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (E, N, C), targets (N,) -> mean CE (E,) and accuracy (E,), float64."""
    lg = logits.double()
    E, N, C = lg.shape
    ce = torch.nn.functional.cross_entropy(lg.reshape(E * N, C), c.repeat(E), reduction="none")
    return ce.view(E, N).mean(1), (lg.argmax(-1) == c).double().mean(1)


@torch.no_grad()
def frequency_ablation(model, task, key_freqs=None, rel_threshold: float = REL_THRESHOLD,
                       max_key: int = MAX_KEY) -> dict[str, torch.Tensor]:
    """Loss and accuracy with frequencies removed from the embedding: the ablations in
    Fourier space of Nanda et al. 2023 (Sec. 4): removing one key frequency hurts, removing
    every other (non-key) frequency does not.

    The symbol rows ``W_E[:p]`` (E, p, d) are expanded in the real Fourier basis over the
    token axis; the chosen frequencies' cos/sin coefficients are set to 0 and the rest mapped
    back (:func:`ablate_frequencies`); the other vocabulary rows (``op``, ``=``) and every
    other parameter are kept. The model is run with that embedding on every row of the
    task's table. Per member:

    * ``ablate_nonkey_loss`` / ``_acc``: every non-constant, non-key frequency removed
      (only the constant and the key frequencies kept);
    * ``ablate_key_loss_max`` / ``ablate_key_acc_min``: the worst single key frequency
      removed (each key removed in turn, the rest kept); ``ablate_key_loss_mean`` the mean
      loss over the keys.

    Without suffix on the training rows, with ``_all`` on every row (as ``restricted_loss``).
    Key frequencies: ``key_freqs`` (a list, or one list per member), else each member's
    embedding key frequencies (module rule).
    """
    W = model.W_E.detach()  # (E, V, d), V >= p (the transformer adds the op and = tokens)
    E, p = W.shape[0], task.cfg.p
    keys = _resolve_keys(key_freqs, E)
    if keys is None:
        keys = embedding_key_frequencies(model, task, rel_threshold, max_key)
    nonkey = [[k for k in range(1, p // 2 + 1) if k not in set(ks)] for ks in keys]
    sym = W[:, :p]  # (E, p, d)

    def run(remove_freqs: list[list[int]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        new_sym = ablate_frequencies(sym, [_freq_rows(p, fs) for fs in remove_freqs]).to(W.dtype)
        W_new = torch.cat([new_sym, W[:, p:]], dim=1)  # (E, V, d)
        logits = torch.func.functional_call(model, {embedding_name(model): W_new}, (task.tokens,))  # (E, N, C)
        return {"": _loss_acc(logits[:, task.train_idx], task.c[task.train_idx]),
                "_all": _loss_acc(logits, task.c)}

    out: dict[str, torch.Tensor] = {}
    for sfx, (loss, acc) in run(nonkey).items():
        out[f"ablate_nonkey_loss{sfx}"], out[f"ablate_nonkey_acc{sfx}"] = loss, acc
    n_slots = max(len(ks) for ks in keys)
    losses = {s: torch.full((E, n_slots), float("nan"), dtype=torch.float64) for s in ("", "_all")}
    accs = {s: torch.full((E, n_slots), float("nan"), dtype=torch.float64) for s in ("", "_all")}
    for j in range(n_slots):  # slot j: each member removes its j-th key (if it has one)
        has = torch.tensor([j < len(ks) for ks in keys])  # (E,)
        res = run([[ks[j]] if j < len(ks) else [] for ks in keys])
        for sfx, (loss, acc) in res.items():
            losses[sfx][has, j], accs[sfx][has, j] = loss[has].cpu().double(), acc[has].cpu().double()
    for sfx in ("", "_all"):
        L, A = losses[sfx], accs[sfx]  # (E, n_slots), NaN where a member has fewer keys
        out[f"ablate_key_loss_max{sfx}"] = L.nan_to_num(float("-inf")).amax(1)
        out[f"ablate_key_acc_min{sfx}"] = A.nan_to_num(float("inf")).amin(1)
        out[f"ablate_key_loss_mean{sfx}"] = L.nanmean(1)
    return out
