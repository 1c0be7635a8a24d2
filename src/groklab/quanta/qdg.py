"""Quanta discovery from gradients (QDG; Michaud et al. 2023, Sec. 5 and their
``experiments/clustering-0``), applied to multitask sparse parity, where the true quanta
(the subtasks) are known, so the clusters can be scored: the paper could only inspect its
clusters of language-model tokens by eye.

Their steps, kept here: (1) samples the model predicts well (loss < 0.1 nats); (2) each
sample's gradient of its own loss w.r.t. the parameters (here ``torch.func.vmap(grad)``);
(3) each gradient normalised to unit length; (4) cosine similarities C = G G^T; (5) the
angular affinity A = 1 - arccos(C) / pi; (6) ``sklearn`` spectral clustering on A
(``affinity="precomputed"``, ``n_init=30``). groklab adds (7): the adjusted Rand index
(and NMI) of the clusters against the true subtask.

The first layer's rows for the one-hot control block receive a gradient only in the row of
the sample's own subtask, which names the subtask outright; by default they are left out
(``with_control=False``), so the clusters must come from the shared weights.

A groklab variant, not the paper's method (docs/METHODS.md), is two options away:

* ``gradient="logit_diff"``: each sample's gradient of the model's logit difference
  z_1 - z_0 instead of its loss. With two classes the loss gradient is
  -(2y - 1) sigma(.) grad(z_1 - z_0): once normalised, the two labels' gradients point in
  opposite directions, so half the pairs within a subtask have cosine -c where the other half
  have +c. The logit difference takes the label's sign out; nothing else changes.
* ``affinity="rbf"``: exp((C - 1) / tau) instead of 1 - arccos(C) / pi. The angular affinity
  maps cosines 0.2 and 0.07 to 0.56 and 0.52, too flat for spectral clustering; a Gaussian
  kernel on the chord distance (|g_i - g_j|^2 = 2 - 2C) with width tau separates them.
* ``clustering="average"``: instead of spectral clustering on an affinity, agglomerative
  clustering with average linkage on the cosine distance 1 - C (``sklearn``'s
  ``AgglomerativeClustering``), cut at the same number of clusters. The subtasks' sizes
  follow a Zipf law; spectral clustering's k-means step on such clusters lets the most
  frequent subtask's cluster take samples of most others, and its result moved by +-0.3 in
  ARI between nearby widths tau. Average linkage has no width to set.
* ``norm="tensor"``: each parameter tensor's part of a sample's gradient normalised to unit
  length on its own before the parts are joined, so the cosine of two samples is the mean
  over the model's tensors of their per-tensor cosines. With the paper's one norm over all
  coordinates, the first layer's weights (input x hidden coordinates, the bulk of the
  vector) dominate; their gradient is the outer product of the hidden units' backward signal
  and the input, whose random data bits scale every pair's cosine by the overlap of the two
  inputs' bits. Per tensor, the hidden units' signal (the first bias's gradient) and their
  activations (the second weight's gradient) weigh as much as the first layer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import AgglomerativeClustering, SpectralClustering
from sklearn.metrics import adjusted_rand_score, homogeneity_score, normalized_mutual_info_score

from groklab.measures.subtasks import subtask_means


GRADIENTS = ("loss", "logit_diff")
AFFINITIES = ("angular", "rbf")
CLUSTERINGS = ("spectral", "average")
NORMS = ("global", "tensor")
RBF_TAU = 0.03  # the rbf affinity's width, chosen on dev seed 0 (benchmarks/RESULTS.md, issue 14, session 15)


def check_options(gradient: str = "loss", affinity: str = "angular", tau: float = RBF_TAU,
                  clustering: str = "spectral", norm: str = "global") -> None:
    """ValueError naming the bad value, if a QDG option is not one QDG knows."""
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient={gradient!r}: choose from {', '.join(GRADIENTS)}")
    if affinity not in AFFINITIES:
        raise ValueError(f"affinity={affinity!r}: choose from {', '.join(AFFINITIES)}")
    if not tau > 0:
        raise ValueError(f"tau={tau!r}: the kernel width must be > 0")
    if clustering not in CLUSTERINGS:
        raise ValueError(f"clustering={clustering!r}: choose from {', '.join(CLUSTERINGS)}")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: choose from {', '.join(NORMS)}")
    if clustering == "average" and affinity != "angular":
        raise ValueError(f"affinity={affinity!r} is spectral clustering's; clustering='average' clusters the cosine "
                         "distance 1 - C and takes no affinity")


def per_sample_grads(model, member: int, rows: torch.Tensor, targets: torch.Tensor,
                     with_control: bool = False, chunk: int = 1024, gradient: str = "loss",
                     norm: str = "global") -> torch.Tensor:
    """Each sample's cross-entropy gradient w.r.t. member ``member``'s parameters,
    flattened: (N, P) float64. ``with_control=False`` drops the first layer's control rows.
    ``gradient="logit_diff"``: the gradient of z_1 - z_0 instead (two-class models only).
    ``norm="tensor"``: each parameter tensor's part scaled to unit length (a zero part stays
    zero); ``"global"`` leaves the scale to :func:`_cosines`."""
    check_options(gradient=gradient, norm=norm)
    params = {n: p.detach()[member: member + 1] for n, p in model.named_parameters()}
    n_tasks = getattr(model, "n_tasks", 0)

    def loss(ps, row, y):
        logits = torch.func.functional_call(model, ps, (row[None],))  # (1, 1, C)
        if gradient == "logit_diff":
            if logits.shape[-1] != 2:
                raise ValueError(f"gradient='logit_diff' needs a two-class model; this one has {logits.shape[-1]} "
                                 "logits")
            return logits[0, 0, 1] - logits[0, 0, 0]
        return F.cross_entropy(logits[0], y[None])

    per = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    out = []
    for i in range(0, len(rows), chunk):
        g = per(params, rows[i: i + chunk], targets[i: i + chunk])
        parts = []
        for name, t in g.items():
            t = t[:, 0]  # the member axis (one member)
            if name == "dec_0_W" and n_tasks and not with_control:
                t = t[:, n_tasks:]
            t = t.reshape(len(t), -1).double()
            parts.append(F.normalize(t, p=2, dim=1) if norm == "tensor" else t)
        out.append(torch.cat(parts, 1))
    return torch.cat(out)


def _cosines(G: torch.Tensor, similarity: str = "cos") -> np.ndarray:
    """Rows L2-normalised, C = G G^T clipped to [-1, 1]; ``similarity="abs"``: the paper's
    C_abs, |G_i| . |G_j| (element-wise absolute values of the normalised gradients)."""
    G = F.normalize(G.double(), p=2, dim=1)
    if similarity == "abs":
        G = G.abs()
    elif similarity != "cos":
        raise ValueError(f"similarity={similarity!r}: choose from cos, abs")
    return (G @ G.T).clamp(-1, 1).numpy()


def angular_affinity(G: torch.Tensor, similarity: str = "cos") -> np.ndarray:
    """The paper's affinity 1 - arccos(C) / pi of the cosines C (:func:`_cosines`)."""
    return 1 - np.arccos(_cosines(G, similarity)) / math.pi


def rbf_affinity(G: torch.Tensor, tau: float, similarity: str = "cos") -> np.ndarray:
    """groklab's variant: exp((C - 1) / tau) of the cosines C (:func:`_cosines`), a Gaussian
    kernel of width tau on half the squared chord distance between normalised gradients."""
    check_options(tau=tau)
    return np.exp((_cosines(G, similarity) - 1) / tau)


def cluster_gradients(G: torch.Tensor, n_clusters: int, seed: int = 0, similarity: str = "cos",
                      affinity: str = "angular", tau: float = RBF_TAU, clustering: str = "spectral") -> np.ndarray:
    """Spectral clustering of the affinity of the gradients ``G`` (N, P) -> labels (N,): the
    paper's angular affinity, or (``affinity="rbf"``) groklab's Gaussian kernel of width ``tau``;
    or (``clustering="average"``) average-linkage clustering of the cosine distance 1 - C."""
    check_options(affinity=affinity, clustering=clustering)
    if clustering == "average":
        D = np.clip(1 - _cosines(G, similarity), 0, None)
        return AgglomerativeClustering(n_clusters=n_clusters, metric="precomputed", linkage="average").fit_predict(D)
    A = angular_affinity(G, similarity) if affinity == "angular" else rbf_affinity(G, tau, similarity)
    sc = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", n_init=30, random_state=seed,
                            assign_labels="kmeans")
    return sc.fit_predict(A)


@torch.no_grad()
def _losses(model, member: int, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    lg = model(rows)[member]
    return F.cross_entropy(lg.double(), y, reduction="none")


def qdg(model, task, member: int = 0, n_samples: int = 2000, loss_max: float = 0.1, learned_bits: float = 0.1,
        min_count: int = 1, n_clusters: int | None = None, with_control: bool = False, similarity: str = "cos",
        seed: int = 0, gradient: str = "loss", affinity: str = "angular", tau: float = RBF_TAU,
        clustering: str = "spectral", norm: str = "global") -> dict:
    """QDG on ``n_samples`` fresh samples from the task's own (Zipf) distribution, drawn from
    ``seed``. Kept: samples of the *learned* subtasks (held-out loss < ``learned_bits`` bits)
    whose own loss is < ``loss_max`` nats (the paper's token filter), of subtasks with at
    least ``min_count`` kept samples. Clusters: ``n_clusters`` (default: the number of
    subtasks kept). Returns the true and found labels; the adjusted Rand index, NMI and
    homogeneity (is each cluster one subtask?) against the true subtask; the cluster sizes.
    ``gradient``, ``affinity``, ``tau``, ``clustering`` and ``norm``: the paper's method by default
    ("loss", "angular", "spectral", "global"); otherwise groklab's variant (module docstring), named
    so in ``method``."""
    check_options(gradient, affinity, tau if affinity == "rbf" else RBF_TAU, clustering, norm)  # before any work
    g = torch.Generator().manual_seed(seed)
    rows, y = task.sample(n_samples, g)
    sub_loss, _ = subtask_means(model, task)
    learned = torch.nonzero(sub_loss[member] < learned_bits).flatten()
    keep = (_losses(model, member, rows, y) < loss_max) & torch.isin(rows[:, 0].long(), learned)
    rows, y = rows[keep], y[keep]
    true = rows[:, 0].long().numpy()
    ids, counts = np.unique(true, return_counts=True)
    common = set(ids[counts >= min_count].tolist())
    sel = np.array([t in common for t in true], bool)
    rows, y, true = rows[torch.from_numpy(sel)], y[torch.from_numpy(sel)], true[sel]
    k = n_clusters or len(common)
    if len(common) < 2:
        raise ValueError(f"QDG needs samples of at least two learned subtasks; found {len(common)}")
    G = per_sample_grads(model, member, rows, y, with_control, gradient=gradient, norm=norm)
    labels = cluster_gradients(G, k, seed, similarity, affinity, tau, clustering)
    return {"true": true + 1, "labels": labels, "n_clusters": k, "n_subtasks": len(common),
            "n_learned": int(len(learned)),
            "ari": float(adjusted_rand_score(true, labels)), "nmi": float(normalized_mutual_info_score(true, labels)),
            "homogeneity": float(homogeneity_score(true, labels)),
            "n_drawn": n_samples, "n_kept": int(len(true)), "n_rare_dropped": int((~sel).sum()),
            "cluster_sizes": np.sort(np.bincount(labels))[::-1], "true_sizes": np.sort(counts[counts >= min_count])[::-1],
            "n_params": int(G.shape[1]), "with_control": with_control, "similarity": similarity,
            "gradient": gradient, "affinity": affinity if clustering == "spectral" else None,
            "tau": tau if affinity == "rbf" else None, "clustering": clustering, "norm": norm,
            "method": method_name(gradient, affinity, tau, clustering, norm)}


def method_name(gradient: str = "loss", affinity: str = "angular", tau: float = RBF_TAU,
                clustering: str = "spectral", norm: str = "global") -> str:
    """"QDG" for the paper's method; "QDG variant (...)" naming what differs otherwise."""
    parts = ([] if gradient == "loss" else ["logit-difference gradients"]) + \
        ([] if norm == "global" else ["normalised per tensor"]) + \
        ([] if affinity == "angular" else [f"RBF affinity, tau {tau:g}"]) + \
        ([] if clustering == "spectral" else ["average-linkage clustering of 1 - cos"])
    return "QDG" if not parts else f"QDG variant ({', '.join(parts)})"
